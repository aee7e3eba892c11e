"""Owner assignment (territory rules, round-robin) and tags, recorded in the lead's
automation log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from leadscore.engine.values import test_value
from leadscore.model.automation import AssignOwnerAction, TagAction
from leadscore.store.queries import dialect_of, insert_ignoring
from leadscore.store.tables_automation import (
    automation_counters,
    automation_log,
    lead_owners,
    lead_tags,
)

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def log_action(session: Session, lead_pk: int, now_us: int, trigger_id: str | None, action: str,
               detail: str | None) -> None:
    session.execute(automation_log.insert().values(
        lead_pk=lead_pk, at_us=now_us, trigger_id=trigger_id, action=action, detail=detail))


def next_counter(session: Session, name: str) -> int:
    """Increment a named counter and return its value before (0, 1, 2, ...), atomically."""
    insert: Any = _INSERT[dialect_of(session)](automation_counters).values(name=name, value=1)
    statement = insert.on_conflict_do_update(
        index_elements=["name"], set_={"value": automation_counters.c.value + 1}
    ).returning(automation_counters.c.value)
    return int(session.execute(statement).scalar_one()) - 1


def owner_of(session: Session, lead_pk: int) -> str | None:
    return session.execute(
        select(lead_owners.c.owner).where(lead_owners.c.lead_pk == lead_pk)
    ).scalar_one_or_none()


def choose_owner(session: Session, action: AssignOwnerAction, attributes: Mapping[str, Any],
                 counter: str) -> str | None:
    for territory in action.territories or []:
        cond = territory.when
        if test_value(attributes, cond.attribute, cond.op, cond.value):
            return territory.owner
    reps = action.round_robin or []
    if not reps:
        return None
    return reps[next_counter(session, counter) % len(reps)]


def assign_owner(session: Session, action: AssignOwnerAction, lead_pk: int,
                 attributes: Mapping[str, Any], now_us: int, trigger_id: str, counter: str) -> str | None:
    """Give the lead an owner; returns the owner (None when none applies or one is kept)."""
    current = owner_of(session, lead_pk)
    if current is not None and action.keep_existing:
        return None
    owner = choose_owner(session, action, attributes, counter)
    if owner is None or owner == current:
        return None
    session.execute(delete(lead_owners).where(lead_owners.c.lead_pk == lead_pk))
    session.execute(lead_owners.insert().values(
        lead_pk=lead_pk, owner=owner, assigned_us=now_us, trigger_id=trigger_id))
    log_action(session, lead_pk, now_us, trigger_id, "assign_owner",
               owner if current is None else f"{current} -> {owner}")
    return owner


def apply_tags(session: Session, action: TagAction, lead_pk: int, now_us: int,
               trigger_id: str) -> None:
    for tag in action.add or []:
        result = session.execute(insert_ignoring(session, lead_tags, ["lead_pk", "tag"]),
                                 [{"lead_pk": lead_pk, "tag": tag, "added_us": now_us}])
        if result.rowcount:  # type: ignore[attr-defined]
            log_action(session, lead_pk, now_us, trigger_id, "tag_add", tag)
    for tag in action.remove or []:
        result = session.execute(delete(lead_tags).where(
            and_(lead_tags.c.lead_pk == lead_pk, lead_tags.c.tag == tag)))
        if result.rowcount:  # type: ignore[attr-defined]
            log_action(session, lead_pk, now_us, trigger_id, "tag_remove", tag)


def tags_of(session: Session, lead_pk: int) -> list[str]:
    return sorted(session.scalars(select(lead_tags.c.tag).where(lead_tags.c.lead_pk == lead_pk)))
