"""Segments: named dynamic lists, kept current whenever a lead is scored, with their
membership history (entered at, left at)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.engine.values import test_value
from leadscore.model import ScoringModel
from leadscore.model.automation import Segment
from leadscore.service.errors import NotFound
from leadscore.service.scoring import ScoreChange, chunks
from leadscore.store.tables import events, leads
from leadscore.store.tables_automation import segment_members

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class LeadView:
    """What a segment filter looks at."""

    score: float | None
    stage: str | None
    grades: Mapping[str, str | None]
    attributes: Mapping[str, Any]
    rules: frozenset[str]
    last_activity_us: int | None


def _fold(value: str | None) -> str:
    return (value or "").strip().lower()


def matches(segment: Segment, lead: LeadView, now_us: int) -> bool:
    """Every filter of the segment holds for the lead."""
    if lead.score is None:
        return False
    if segment.min_score is not None and lead.score < segment.min_score:
        return False
    if segment.max_score is not None and lead.score > segment.max_score:
        return False
    stages = segment.stages
    if stages is not None and lead.stage not in stages:
        return False
    for group, wanted in (segment.grades or {}).items():
        allowed = {_fold(w) for w in ([wanted] if isinstance(wanted, str) else wanted)}
        if _fold(lead.grades.get(group)) not in allowed:
            return False
    for cond in segment.attributes or []:
        if not test_value(lead.attributes, cond.attribute, cond.op, cond.value):
            return False
    if any(rule not in lead.rules for rule in segment.rules):
        return False
    if segment.active_within_days is not None:
        if lead.last_activity_us is None:
            return False
        if now_us - lead.last_activity_us > segment.active_within_days * DAY_US:
            return False
    return True


def last_activity(session: Session, pks: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in chunks(sorted(pks)):
        rows = session.execute(
            select(events.c.lead_pk, func.max(events.c.ts_us))
            .where(events.c.lead_pk.in_(part)).group_by(events.c.lead_pk)
        )
        out.update({int(pk): int(ts) for pk, ts in rows})
    return out


def view_of_change(change: ScoreChange, attributes: Mapping[str, Any], last: int | None) -> LeadView:
    result = change.result
    return LeadView(result.score, result.stage, dict(result.grades), attributes,
                    frozenset(c.rule_id for c in result.contributions if c.points), last)


def current_memberships(session: Session, pks: Sequence[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {pk: set() for pk in pks}
    for part in chunks(sorted(pks)):
        rows = session.execute(
            select(segment_members.c.lead_pk, segment_members.c.segment)
            .where(segment_members.c.lead_pk.in_(part), segment_members.c.left_us.is_(None))
        )
        for pk, name in rows:
            out.setdefault(int(pk), set()).add(str(name))
    return out


def apply_memberships(
    session: Session, wanted: Mapping[int, set[str]], known: Iterable[str], now_us: int,
) -> dict[int, tuple[set[str], set[str]]]:
    """Bring memberships to ``wanted`` (for the segments in ``known``); returns each lead's
    ``(entered, left)`` segment names."""
    names = set(known)
    current = current_memberships(session, list(wanted))
    out: dict[int, tuple[set[str], set[str]]] = {}
    inserts: list[dict[str, Any]] = []
    for pk, segments in wanted.items():
        have = current.get(pk, set()) & names
        entered, left = segments - have, have - segments
        if entered or left:
            out[pk] = (entered, left)
        inserts.extend({"segment": s, "lead_pk": pk, "entered_us": now_us, "left_us": None}
                       for s in sorted(entered))
        for name in left:
            session.execute(
                update(segment_members)
                .where(segment_members.c.lead_pk == pk, segment_members.c.segment == name,
                       segment_members.c.left_us.is_(None))
                .values(left_us=now_us)
            )
    if inserts:
        session.execute(segment_members.insert(), inserts)
    return out


def update_for_changes(
    session: Session, model: ScoringModel, changes: Sequence[ScoreChange],
    attributes: Mapping[int, Mapping[str, Any]],
) -> dict[int, tuple[set[str], set[str]]]:
    """Re-evaluate the model's segments for rescored leads (in the scoring transaction)."""
    segments = model.segments or []
    if not segments or not changes:
        return {}
    now = changes[0].at_us
    needs_activity = any(s.active_within_days is not None for s in segments)
    last = last_activity(session, [c.lead_pk for c in changes]) if needs_activity else {}
    wanted: dict[int, set[str]] = {}
    for change in changes:
        view = view_of_change(change, attributes.get(change.lead_pk, {}), last.get(change.lead_pk))
        wanted[change.lead_pk] = {s.name for s in segments if matches(s, view, now)}
    return apply_memberships(session, wanted, [s.name for s in segments], now)


def refresh(session: Session, model: ScoringModel, now_us: int, *, chunk: int = 500) -> int:
    """Re-evaluate every scored lead against every segment (for filters that change with
    time alone, such as ``active_within_days``). Returns the number of membership changes."""
    segments = model.segments or []
    changed = 0
    last_pk = 0
    while True:
        rows = list(session.execute(
            select(leads.c.id, leads.c.score, leads.c.stage, leads.c.grades, leads.c.attributes,
                   leads.c.explanation)
            .where(leads.c.id > last_pk, leads.c.score.is_not(None)).order_by(leads.c.id).limit(chunk)
        ))
        if not rows:
            return changed
        last_pk = rows[-1].id
        activity = last_activity(session, [r.id for r in rows])
        wanted = {}
        for r in rows:
            fired = frozenset(x["rule"] for x in (r.explanation or {}).get("rules", []) if x.get("points"))
            view = LeadView(r.score, r.stage, r.grades or {}, r.attributes or {}, fired, activity.get(r.id))
            wanted[int(r.id)] = {s.name for s in segments if matches(s, view, now_us)}
        changed += sum(len(a) + len(b) for a, b in
                       apply_memberships(session, wanted, [s.name for s in segments], now_us).values())


def segment_of(model: ScoringModel, name: str) -> Segment:
    for segment in model.segments or []:
        if segment.name == name:
            return segment
    from leadscore.model.schema import did_you_mean

    hint = did_you_mean(name, [s.name for s in model.segments or []])
    raise NotFound(f"no segment '{name}' in the active model{hint}", "name")


def list_segments(session: Session, model: ScoringModel) -> list[dict[str, Any]]:
    sizes: dict[str, int] = dict(session.execute(  # type: ignore[arg-type]
        select(segment_members.c.segment, func.count())
        .where(segment_members.c.left_us.is_(None)).group_by(segment_members.c.segment)
    ).all())
    return [
        {"name": s.name, "description": s.description, "members": int(sizes.get(s.name, 0)),
         "filter": s.model_dump(mode="json", by_alias=True, exclude_none=True,
                                exclude={"name", "description"})}
        for s in model.segments or []
    ]


MEMBER_COLUMNS = ("lead_id", "score", "stage", "entered_at", "left_at")


def members(
    session: Session, name: str, *, include_left: bool = False, limit: int | None = None,
    after: int = 0,
) -> list[dict[str, Any]]:
    """A segment's members (with ``include_left``, its whole history), in entry order."""
    query = (
        select(segment_members.c.id, leads.c.lead_id, leads.c.score, leads.c.stage,
               leads.c.attributes, segment_members.c.entered_us, segment_members.c.left_us)
        .join(leads, leads.c.id == segment_members.c.lead_pk)
        .where(and_(segment_members.c.segment == name, segment_members.c.id > after))
        .order_by(segment_members.c.id)
    )
    if not include_left:
        query = query.where(segment_members.c.left_us.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [
        {"id": r.id, "lead_id": r.lead_id, "score": r.score, "stage": r.stage,
         "attributes": r.attributes or {}, "entered_at": iso(r.entered_us),
         "left_at": iso(r.left_us) if r.left_us is not None else None}
        for r in session.execute(query)
    ]


def members_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MEMBER_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in MEMBER_COLUMNS])
    return buffer.getvalue()
