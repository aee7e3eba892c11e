"""The per-lead engine: the reference semantics of the scoring-model language.

``score_lead(model, lead, events, as_of)`` is pure and deterministic: no I/O, no clock.
Every other engine (SQL, Spark, the service) is tested against it, so it favours
plain, readable code over cleverness. The numbered comments point to the sections
of ``shared/docs/model-spec.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from leadscore.engine.timestamps import MICROS_PER_DAY, iso, parse_timestamp, to_micros
from leadscore.engine.values import test_value
from leadscore.model.schema import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    Predicate,
    Rule,
    ScoringModel,
)

MAX_EVENTS_IN_EXPLANATION = 20


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a lead did. ``ts`` is the timestamp in epoch microseconds (UTC)."""

    lead_id: str
    type: str
    ts: int
    properties: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None

    @classmethod
    def at(
        cls,
        lead_id: str,
        type: str,
        timestamp: str | datetime,
        properties: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> Event:
        """Build an event from an ISO 8601 text or a datetime (naive means UTC)."""
        return cls(lead_id, type, to_micros(parse_timestamp(timestamp)), properties or {}, event_id)

    @property
    def timestamp(self) -> str:
        """The timestamp as ISO 8601 text (UTC, ``Z``)."""
        return iso(self.ts)


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead: its id and attributes. ``created_at`` (when present) is an ISO 8601 attribute."""

    lead_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def created_us(self) -> int | None:
        """``created_at`` in epoch microseconds, None when absent or empty."""
        value = self.attributes.get("created_at")
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, float) and value != value:  # NaN from a file reader
            return None
        return to_micros(parse_timestamp(value))


@dataclass(frozen=True, slots=True)
class CountedEvent:
    """An event that counted towards a rule, with the factor its decay gave it."""

    event_id: str | None
    type: str
    ts: int
    age_days: float
    factor: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "timestamp": iso(self.ts),
            "age_days": round(self.age_days, 2),
            "factor": round(self.factor, 4),
        }


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one rule gave a lead (only rules with non-zero points are reported)."""

    rule_id: str
    label: str | None
    group: str
    points: float
    events: tuple[CountedEvent, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule_id,
            "label": self.label or self.rule_id,
            "group": self.group,
            "points": round_score(self.points),
        }
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        if self.events:
            out["events_counted"] = len(self.events)
            out["events"] = [e.to_dict() for e in self.events[:MAX_EVENTS_IN_EXPLANATION]]
        return out


@dataclass(frozen=True)
class LeadScore:
    """The result of scoring one lead. Numbers are exact; ``round_score`` them to report."""

    lead_id: str
    total: float
    groups: dict[str, float]
    raw_groups: dict[str, float]
    grades: dict[str, str | None]
    stage: str | None
    contributions: tuple[Contribution, ...]

    @property
    def score(self) -> float:
        """The total rounded to 2 decimals, as reported."""
        return round_score(self.total)

    def rounded_groups(self) -> dict[str, float]:
        return {name: round_score(value) for name, value in self.groups.items()}

    def explanation(self) -> dict[str, Any]:
        """The explanation as plain data (JSON-ready)."""
        return {
            "score": self.score,
            "stage": self.stage,
            "groups": {
                name: {
                    "score": round_score(value),
                    **({"unclipped": round_score(self.raw_groups[name])}
                       if self.raw_groups[name] != value else {}),
                    **({"grade": self.grades[name]} if name in self.grades else {}),
                }
                for name, value in self.groups.items()
            },
            "rules": [c.to_dict() for c in self.contributions],
        }


def round_score(value: float) -> float:
    """Round to 2 decimals, halves away from zero, on the exact binary value."""
    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def clip(value: float, low: float | None, high: float | None) -> float:
    """Clip to [low, high]; a missing bound does not clip."""
    if low is not None and value < low:
        return float(low)
    if high is not None and value > high:
        return float(high)
    return value


class _LeadView:
    """One lead's events, deduplicated, before as_of, indexed by type (most recent first)."""

    def __init__(self, lead: Lead, events: Iterable[Event], as_of_us: int) -> None:
        self.lead = lead
        self.as_of_us = as_of_us
        seen: set[str] = set()
        by_type: dict[str, list[tuple[int, Event]]] = {}
        for position, event in enumerate(events):
            if event.event_id is not None:
                if event.event_id in seen:
                    continue  # the first occurrence counts, later copies do not
                seen.add(event.event_id)
            if event.ts > as_of_us:
                continue
            by_type.setdefault(event.type, []).append((position, event))
        # most recent first; equal timestamps keep the later input first
        self.by_type = {
            kind: [e for _, e in sorted(items, key=lambda pe: (-pe[1].ts, -pe[0]))]
            for kind, items in by_type.items()
        }

    def matching(
        self, types: tuple[str, ...], where: Mapping[str, Predicate] | None, within_days: float | None
    ) -> list[Event]:
        """Matching events, most recent first (section "Event condition")."""
        window = None if within_days is None else within_days * MICROS_PER_DAY
        found: list[Event] = []
        for kind in types:
            for event in self.by_type.get(kind, ()):
                if window is not None and self.as_of_us - event.ts > window:
                    break  # age_days > within_days; sorted, so every later event is older too
                if where and not all(
                    test_value(event.properties, prop, f.op, f.value) for prop, f in where.items()
                ):
                    continue
                found.append(event)
        if len(types) > 1:
            found.sort(key=lambda e: -e.ts)
        return found

    def age_days(self, event: Event) -> float:
        return (self.as_of_us - event.ts) / MICROS_PER_DAY


def _holds(condition: Any, view: _LeadView) -> bool:
    """Does a condition hold for the lead (section "Conditions")?"""
    if isinstance(condition, AttributeCondition):
        return test_value(view.lead.attributes, condition.attribute, condition.op, condition.value)
    if isinstance(condition, EventCondition):
        found = view.matching(condition.types, condition.where, condition.within_days)
        return len(found) >= condition.min_count
    if isinstance(condition, AbsenceCondition):
        created = view.lead.created_us()
        window = condition.within_days * MICROS_PER_DAY
        if created is not None and view.as_of_us - created < window:
            return False  # not punished for silence it has not had time for
        return not view.matching(condition.types, condition.where, condition.within_days)
    if isinstance(condition, AllCondition):
        return all(_holds(c, view) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return any(_holds(c, view) for c in condition.any)
    if isinstance(condition, NotCondition):
        return not _holds(condition.not_, view)
    raise TypeError(f"unknown condition {type(condition).__name__}")  # pragma: no cover


def _attributes_used(condition: Any, into: list[str]) -> list[str]:
    if isinstance(condition, AttributeCondition) and condition.attribute not in into:
        into.append(condition.attribute)
    for child in getattr(condition, "all", None) or getattr(condition, "any", None) or ():
        _attributes_used(child, into)
    if isinstance(condition, NotCondition):
        _attributes_used(condition.not_, into)
    return into


def _rule_contribution(rule: Rule, view: _LeadView) -> Contribution | None:
    """Section "Points": what one rule gives, or None when it gives nothing."""
    events: list[CountedEvent] = []
    if isinstance(rule.when, EventCondition):
        cond = rule.when
        found = view.matching(cond.types, cond.where, cond.within_days)
        if rule.repeat == "once":
            counted = found[:1] if len(found) >= cond.min_count else []
        else:
            counted = found if rule.max_times is None else found[: rule.max_times]
        points = 0.0
        for event in counted:
            age = view.age_days(event)
            factor = 0.5 ** (age / rule.decay.half_life_days) if rule.decay else 1.0
            points += rule.points * factor
            events.append(CountedEvent(event.event_id, event.type, event.ts, age, factor))
        if not counted:
            return None
    else:
        if not _holds(rule.when, view):
            return None
        points = rule.points
    if points == 0:
        return None
    attrs = view.lead.attributes
    used = {name: attrs.get(name) for name in _attributes_used(rule.when, [])}
    return Contribution(rule.id, rule.label, rule.group, points, tuple(events), used)


def score_lead(
    model: ScoringModel, lead: Lead, events: Iterable[Event], as_of: datetime | int
) -> LeadScore:
    """Score one lead at ``as_of`` (an aware datetime, or epoch microseconds).

    ``events`` are the lead's events in input order; events with the same ``event_id``
    count once (the first), events after ``as_of`` are ignored.
    """
    as_of_us = as_of if isinstance(as_of, int) else to_micros(parse_timestamp(as_of))
    view = _LeadView(lead, events, as_of_us)
    contributions: list[Contribution] = []
    raw = dict.fromkeys(model.group_names(), 0.0)
    for rule in model.rules:
        contribution = _rule_contribution(rule, view)
        if contribution is not None:
            contributions.append(contribution)
            raw[rule.group] += contribution.points
    # Totals, stages, grades: 1. clip groups, 2. clip the total, 3. stage, 4. grades
    groups: dict[str, float] = {}
    for name, value in raw.items():
        spec = model.groups.get(name)
        groups[name] = clip(value, spec.min, spec.max) if spec else value
    total = clip(sum(groups.values()), model.score.min, model.score.max)
    stage = None
    if model.stages:
        stage = next((s.name for s in model.stages if s.min_score <= total), None)
    grades: dict[str, str | None] = {}
    for name in model.graded_groups():
        thresholds = model.groups[name].grades or {}
        grades[name] = next((g for g, t in thresholds.items() if t <= groups[name]), None)
    return LeadScore(lead.lead_id, total, groups, raw, grades, stage, tuple(contributions))
