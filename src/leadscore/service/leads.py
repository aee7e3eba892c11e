"""Reading leads (list with filters and cursor pagination, one lead, history, export)
and erasing a lead with every trace of it.

Erasure and export work from the store's metadata, not from a list kept by hand: every
table with a ``lead_pk`` or ``lead_id`` column is erased and exported, so a table added
later cannot be forgotten (tests/api/test_privacy.py checks every table after an erasure)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, Table, and_, cast, delete, func, or_, select, text
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.engine.scoring import forget_moments
from leadscore.engine.values import WHITESPACE, as_number, forget_values
from leadscore.ingest.normalise import nfc
from leadscore.service import (
    audit,
    predictive,  # predict: lead detail shows the prediction
)
from leadscore.service.errors import InvalidRequest, NotFound
from leadscore.service.scoring import forget_properties
from leadscore.store.db import WIPE_WAL
from leadscore.store.event_cache import cache_of
from leadscore.store.tables import Base, events, leads, score_history, stage_transitions
from leadscore.store.tables_automation import lead_owners, lead_tags

ORDERS = ("score", "updated")
MAX_LIMIT = 1000


def _iso(us: int | None) -> str | None:
    return None if us is None else iso(us)


@dataclass
class LeadFilter:
    """Filters of ``GET /v1/leads``; all must hold."""

    stage: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    grades: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    updated_since_us: int | None = None
    owner: str | None = None  # the lead's owner (a rep), exactly
    tags: list[str] = field(default_factory=list)  # every one of these tags


def _encode_cursor(order: str, value: Any, pk: int) -> str:
    raw = json.dumps([order, value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _is_key(value: Any) -> bool:
    """An integer a database key can be (64 bits), not a boolean."""
    return value.__class__ is int and -(2**63) <= value < 2**63


def _decode_cursor(cursor: str, order: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value, pk = json.loads(raw)
        # only what _encode_cursor writes: a finite number (score) or microseconds (updated), a key
        number = int if order == "updated" else (int, float)
        if (kind != order or not _is_key(pk) or value.__class__ is bool or not isinstance(value, number)
                or not math.isfinite(value) or abs(value) >= 2**63):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidRequest(
            "cursor is not valid for this order (use the next_cursor of a previous page)", "cursor"
        ) from None
    return value, pk


def _text_of(document: Any, key: str) -> Any:
    """A JSON member as comparable text on both databases."""
    return func.lower(cast(document[key].as_string(), String))


# engine.values.NUMBER_RE between the engine's WHITESPACE (PostgreSQL's \s is wider)
_PLAIN_NUMBER_SQL = r"^[ \t\n\r\f\v]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*$"


def _pg_double(number_text: str) -> str:
    """PostgreSQL: the float (double) a number's text stands for, as Python's ``float``
    reads it (the engine compares numbers as floats: 2**53 + 1 equals 2**53), NULL
    beyond the largest float (the engine's ``as_number`` of ``1e400``: no number; a plain
    cast would fail the query)."""
    exact = f"CAST({number_text} AS numeric)"
    return (f"(CASE WHEN abs({exact}) <= 1.7976931348623158e308"
            f" THEN CAST({exact} AS double precision) END)")


def _attribute_equals(index: int, name: str, value: str, postgresql: bool) -> Any:
    """``attr.NAME=VALUE`` as the model language's ``equals`` compares, on both databases
    alike: a text attribute equal ignoring case (every letter, not A-Z only) and outer
    white space (the engine's: space, tab, line breaks, form feed, vertical tab), a boolean
    as ``true``/``false``, a number as a number (``100`` finds ``100.0`` and the text
    ``" 100 "``; a big float by its value, whatever its stored digits); name and value in
    Unicode NFC, as stored. Any attribute name (quotes and backslashes included)."""
    wanted = nfc(value.strip(WHITESPACE))
    number = as_number(wanted)
    params = {f"an{index}": nfc(name), f"at{index}": wanted.lower(), f"av{index}": number,
              f"aw{index}": WHITESPACE}
    if postgresql:
        member = f"(leads.attributes -> :an{index})"
        sql = (f"(jsonb_typeof({member}) = 'string' AND lower(btrim(leads.attributes ->> :an{index}, :aw{index})) = :at{index})"
               f" OR (jsonb_typeof({member}) = 'boolean' AND (leads.attributes ->> :an{index}) = :at{index})")
        if number is not None:
            sql += (f" OR (jsonb_typeof({member}) = 'number'"
                    f" AND {_pg_double(f'(leads.attributes ->> :an{index})')} = :av{index})"
                    f" OR (jsonb_typeof({member}) = 'string' AND leads.attributes ->> :an{index} ~ '{_PLAIN_NUMBER_SQL}'"
                    f" AND {_pg_double(f'btrim(leads.attributes ->> :an{index}, :aw{index})')} = :av{index})")
    else:
        sql = (f"EXISTS (SELECT 1 FROM json_each(leads.attributes) AS a{index} WHERE a{index}.key = :an{index}"
               f" AND ((a{index}.type = 'text' AND ls_lower(trim(a{index}.value, :aw{index})) = :at{index})"
               f" OR (a{index}.type IN ('true', 'false') AND a{index}.type = :at{index})")
        if number is not None:
            sql += (f" OR (a{index}.type IN ('integer', 'real') AND CAST(a{index}.value AS REAL) = :av{index})"
                    f" OR (a{index}.type = 'text' AND ls_number(a{index}.value) = :av{index})")
        sql += "))"
    if number is None:
        params.pop(f"av{index}")
    return text(f"({sql})").bindparams(**params)


def list_leads(
    session: Session, filters: LeadFilter, *, order: str = "score", limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of scored leads, best score (or most recently updated) first."""
    if order not in ORDERS:
        raise InvalidRequest(f"order must be one of {', '.join(ORDERS)}, got '{order}'", "order")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", "limit")
    for name, bound in (("min_score", filters.min_score), ("max_score", filters.max_score)):
        if bound is not None and not math.isfinite(bound):
            raise InvalidRequest(f"{name} must be a finite number, got {bound}", name)
    key = leads.c.score if order == "score" else leads.c.updated_us
    query = select(
        leads.c.id, leads.c.lead_id, leads.c.attributes, leads.c.score, leads.c.stage,
        leads.c.groups, leads.c.grades, leads.c.updated_us,
    ).where(leads.c.score.is_not(None))
    if filters.stage is not None:
        query = query.where(leads.c.stage == filters.stage)
    if filters.min_score is not None:
        query = query.where(leads.c.score >= filters.min_score)
    if filters.max_score is not None:
        query = query.where(leads.c.score <= filters.max_score)
    if filters.updated_since_us is not None:
        query = query.where(leads.c.updated_us >= filters.updated_since_us)
    for group, grade in filters.grades.items():
        query = query.where(_text_of(leads.c.grades, group) == grade.strip().lower())
    postgresql = session.get_bind().dialect.name == "postgresql"
    for index, (name, value) in enumerate(filters.attributes.items()):
        query = query.where(_attribute_equals(index, name, value, postgresql))
    if filters.owner is not None:
        query = query.where(leads.c.id.in_(
            select(lead_owners.c.lead_pk).where(lead_owners.c.owner == filters.owner)))
    for tag in filters.tags:
        query = query.where(leads.c.id.in_(select(lead_tags.c.lead_pk).where(lead_tags.c.tag == tag)))
    if cursor:
        value, pk = _decode_cursor(cursor, order)
        query = query.where(or_(key < value, and_(key == value, leads.c.id < pk)))
    rows = list(session.execute(query.order_by(key.desc(), leads.c.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = _encode_cursor(order, last.score if order == "score" else last.updated_us, last.id)
    owners, tags = _owners_and_tags(session, [r.id for r in page])
    items = [
        {"lead_id": r.lead_id, "score": r.score, "stage": r.stage, "groups": r.groups or {},
         "grades": r.grades or {}, "attributes": r.attributes or {}, "updated_at": _iso(r.updated_us),
         "owner": owners.get(r.id), "tags": tags.get(r.id, [])}
        for r in page
    ]
    return items, next_cursor


def _owners_and_tags(session: Session, pks: list[int]) -> tuple[dict[int, str], dict[int, list[str]]]:
    """The owners and the tags (sorted) of these leads, given by triggers' actions."""
    if not pks:
        return {}, {}
    owners = {pk: owner for pk, owner in session.execute(
        select(lead_owners.c.lead_pk, lead_owners.c.owner).where(lead_owners.c.lead_pk.in_(pks)))}
    tags: dict[int, list[str]] = {}
    for pk, tag in session.execute(select(lead_tags.c.lead_pk, lead_tags.c.tag)
                                   .where(lead_tags.c.lead_pk.in_(pks)).order_by(lead_tags.c.tag)):
        tags.setdefault(pk, []).append(tag)
    return owners, tags


def _lead_row(session: Session, lead_id: str) -> Any:
    # the id as ingestion stores it (trimmed, Unicode NFC): a URL may carry another form
    # of the same text (an NFD "ễ" from a macOS file name, say)
    lead_id = nfc(lead_id.strip())
    row = session.execute(select(leads).where(leads.c.lead_id == lead_id)).first()
    if row is None:
        raise NotFound(f"no lead with lead_id '{lead_id}'", "lead_id")
    return row


def _event_public(row: Any) -> dict[str, Any]:
    return {"event_id": row.event_id, "type": row.type, "timestamp": iso(row.ts_us),
            "properties": row.properties or {}, "received_at": iso(row.received_us)}


def _history_public(row: Any) -> dict[str, Any]:
    return {
        "at": iso(row.at_us), "cause": row.cause, "detail": row.detail,
        "model_version": row.model_version_id,
        "old_score": row.old_score, "new_score": row.new_score,
        "old_stage": row.old_stage, "new_stage": row.new_stage,
        "old_grades": row.old_grades, "new_grades": row.new_grades,
    }


def _transition_public(row: Any) -> dict[str, Any]:
    return {"at": iso(row.at_us), "from_stage": row.from_stage, "to_stage": row.to_stage,
            "cause": row.cause}


def _lead_public(row: Any) -> dict[str, Any]:
    return {
        "lead_id": row.lead_id,
        "attributes": row.attributes or {},
        "score": row.score,
        "stage": row.stage,
        "groups": row.groups or {},
        "grades": row.grades or {},
        "explain": row.explanation,
        "model_version": row.model_version_id,
        "created_at": _iso(row.created_us),
        "updated_at": _iso(row.updated_us),
        "scored_at": _iso(row.scored_us),
        "next_change_at": _iso(row.next_change_us),
    }


def history(session: Session, lead_pk: int, limit: int | None = None) -> list[dict[str, Any]]:
    """A lead's score history, newest first."""
    query = select(score_history).where(score_history.c.lead_pk == lead_pk).order_by(
        score_history.c.id.desc()
    )
    if limit is not None:
        query = query.limit(limit)
    return [_history_public(r) for r in session.execute(query)]


def lead_detail(session: Session, lead_id: str, *, recent: int = 50) -> dict[str, Any]:
    """Everything ``GET /v1/leads/{lead_id}`` shows: score, explanation, owner and tags,
    recent events, history."""
    row = _lead_row(session, lead_id)
    recent_events = session.execute(
        select(events).where(events.c.lead_pk == row.id)
        .order_by(events.c.ts_us.desc(), events.c.id.desc()).limit(recent)
    )
    out = _lead_public(row)
    owners, tags = _owners_and_tags(session, [row.id])
    out["owner"], out["tags"] = owners.get(row.id), tags.get(row.id, [])
    out["events"] = [_event_public(e) for e in recent_events]
    out["history"] = history(session, row.id, recent)
    out["predictive"] = predictive.lead_prediction(session, row.id)  # predict: beside the rule score
    return out


def lead_history(session: Session, lead_id: str, *, limit: int = 1000) -> dict[str, Any]:
    row = _lead_row(session, lead_id)
    transitions = session.execute(
        select(stage_transitions).where(stage_transitions.c.lead_pk == row.id)
        .order_by(stage_transitions.c.id.desc()).limit(limit)
    )
    return {
        "lead_id": row.lead_id,
        "history": history(session, row.id, limit),
        "transitions": [_transition_public(t) for t in transitions],
    }


# tables exported in their own format; every other table about the lead goes to "records"
OWN_SECTIONS = {"events": "events", "score_history": "history", "stage_transitions": "transitions"}


def lead_tables() -> list[Table]:
    """Every table (but ``leads``) that holds rows about one lead: it has a ``lead_pk`` or
    ``lead_id`` column. Children first (the order to delete in)."""
    return [
        table for table in reversed(Base.metadata.sorted_tables)
        if table.name != leads.name and ("lead_pk" in table.c or "lead_id" in table.c)
    ]


def _about(table: Table, lead_pk: int, lead_id: str) -> Any:
    conditions = []
    if "lead_pk" in table.c:
        conditions.append(table.c.lead_pk == lead_pk)
    if "lead_id" in table.c:
        conditions.append(table.c.lead_id == lead_id)
    return or_(*conditions)


def _record_public(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        if column.name in ("lead_pk", "lead_id"):
            continue
        value = getattr(row, column.name)
        if column.name.endswith("_us"):
            name = "at" if column.name == "at_us" else column.name[:-3] + "_at"
            out[name] = _iso(value)
        else:
            out[column.name] = value
    return out


_OUTBOX_PUBLIC = ("id", "kind", "trigger_id", "status", "attempts", "created_at", "finished_at")
_EMAIL_PUBLIC = ("from", "subject", "body", "template")
_DELIVERY_PUBLIC = ("id", "outbox_id", "attempt", "at", "ok", "status_code")


def _outbox_public(table: Table, row: Any) -> dict[str, Any]:
    """A message about the person: what was sent (a webhook's body, an e-mail's subject and
    text; to the person's own address: that address), when, and how it went. Not the
    operator's internals: the webhook URL template (names of environment variables), its
    signing secret, the CRM's error text, idempotency key and lease."""
    full = _record_public(table, row)
    out = {name: full[name] for name in _OUTBOX_PUBLIC}
    payload = row.payload if isinstance(row.payload, dict) else {}
    if row.kind == "webhook":
        out["payload"] = payload.get("body")
    else:
        out["payload"] = {name: payload[name] for name in _EMAIL_PUBLIC if name in payload}
        if row.kind == "email_lead":
            out["to"] = row.target
    return out


def _delivery_public(table: Table, row: Any) -> dict[str, Any]:
    """An attempt to deliver a message about the person: when and whether it worked (not the
    receiver's error text, which may echo anything)."""
    full = _record_public(table, row)
    return {name: full[name] for name in _DELIVERY_PUBLIC}


# tables exported by the columns that concern the person (the rest: every column)
_RECORD_VIEWS: dict[str, Callable[[Table, Any], dict[str, Any]]] = {
    "outbox": _outbox_public, "deliveries": _delivery_public,
}


def export_lead(session: Session, lead_id: str, now_us: int | None = None) -> dict[str, Any]:
    """Everything held about one person (for a data-subject access request): the lead,
    its events, history and transitions, every other table's rows about it (``records``,
    by table name; messages and delivery attempts by the columns that concern the person,
    see :func:`_outbox_public`) and the audit entries about it. With ``now_us`` (a write session) the
    export itself is audited."""
    row = _lead_row(session, lead_id)
    all_events = session.execute(
        select(events).where(events.c.lead_pk == row.id).order_by(events.c.id)
    )
    transitions = session.execute(
        select(stage_transitions).where(stage_transitions.c.lead_pk == row.id)
        .order_by(stage_transitions.c.id)
    )
    history_rows = session.execute(
        select(score_history).where(score_history.c.lead_pk == row.id).order_by(score_history.c.id)
    )
    records: dict[str, list[dict[str, Any]]] = {}
    for table in lead_tables():
        if table.name in OWN_SECTIONS:
            continue
        query = select(table).where(_about(table, row.id, row.lead_id))
        order = [c for c in table.primary_key.columns]
        view = _RECORD_VIEWS.get(table.name, _record_public)
        records[table.name] = [view(table, r) for r in session.execute(query.order_by(*order))]
    subject = audit.lead_subject(session, row.lead_id, now_us or 0, create=now_us is not None)
    if now_us is not None:
        audit.record(session, "lead_exported", now_us, subject=subject)
    audit_entries, _ = audit.entries(session, subject=subject, limit=audit.MAX_LIMIT)
    return {
        # predict: the lead's prediction is data held about the person too
        "lead": {**_lead_public(row), "predictive": predictive.lead_prediction(session, row.id)},
        "events": [_event_public(e) for e in all_events],
        "history": [_history_public(h) for h in history_rows],
        "transitions": [_transition_public(t) for t in transitions],
        "records": records,
        "audit": audit_entries,
    }


EraseListener = Callable[[Session, int, str], None]
_erase_listeners: list[EraseListener] = []


def on_lead_erased(listener: EraseListener) -> EraseListener:
    """Register ``listener(session, lead_pk, lead_id)``, called before a lead's rows go
    (for anything that is not a row with ``lead_pk``/``lead_id``: those go anyway)."""
    if listener not in _erase_listeners:
        _erase_listeners.append(listener)
    return listener


def erase_lead(session: Session, lead_id: str, now_us: int | None = None) -> dict[str, int]:
    """Delete the lead and every row about it in every table (:func:`lead_tables`); the
    audit log gets one ``lead_erased`` row naming the lead only by its hash, with the
    number of rows deleted per table (returned too). On SQLite the deleted bytes are
    overwritten (``secure_delete``), not merely marked free, and the WAL, which holds
    older images of the pages, is emptied once the erasure is committed."""
    row = _lead_row(session, lead_id)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = ON"))
        session.info[WIPE_WAL] = True  # and the WAL is emptied after the commit (Store.write)
    tables = lead_tables()
    deleted: dict[str, int] = {}
    for table in tables:  # counted first: listeners delete some of them
        n = session.execute(
            select(func.count()).select_from(table).where(_about(table, row.id, row.lead_id))
        ).scalar_one()
        if n:
            deleted[table.name] = int(n)
    for listener in list(_erase_listeners):
        listener(session, row.id, row.lead_id)
    for table in tables:
        session.execute(delete(table).where(_about(table, row.id, row.lead_id)))
    session.execute(delete(leads).where(leads.c.id == row.id))
    deleted["leads"] = 1
    now = now_us if now_us is not None else time.time_ns() // 1000
    audit.record(session, "lead_erased", now, subject=audit.lead_subject(session, row.lead_id, now, create=True),
                 detail={"rows": deleted})
    # the in-memory caches of values (decoded event properties, `matches` results) may hold
    # the lead's data: emptied now, and again once the erasure is committed (a batch scored
    # meanwhile may have read the lead's rows before they were deleted)
    forget_cached_values(session)
    sqlalchemy_event.listen(session, "after_commit", _forget_after_commit, once=True)
    return deleted


def forget_cached_values(session: Session | None = None) -> None:
    """Empty every in-memory cache of lead values (see :func:`erase_lead`), and the event
    cache of ``session``'s store (the other processes' event caches are emptied by their
    next batch: the erasure's deletions are counted, store/event_cache.py)."""
    forget_properties()
    forget_values()
    forget_moments()
    cache = cache_of(session) if session is not None else None
    if cache is not None:
        cache.clear()


def _forget_after_commit(session: Session) -> None:
    forget_cached_values(session)


def stage_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(leads.c.stage, func.count()).group_by(leads.c.stage))
    return {str(stage): int(n) for stage, n in rows}
