"""The per-lead engine: the reference semantics of the scoring-model language.

``score_lead(model, lead, events, as_of)`` is pure and deterministic: no I/O, no clock.
Every other engine (SQL, Spark, the service) is tested against it, so it favours
plain, readable code over cleverness. The numbered comments point to the sections
of ``shared/docs/model-spec.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any

from leadscore.engine.memo import once, remember
from leadscore.engine.records import direct_init
from leadscore.engine.timestamps import MICROS_PER_DAY, iso, micros_of, parse_timestamp, to_micros
from leadscore.engine.values import LookupTest, value_test
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
    time_conditions,
    walk_conditions,
)

MAX_EVENTS_IN_EXPLANATION = 20


def event_horizons(model: ScoringModel) -> dict[str, float | None]:
    """For each event type the model's conditions look at, the longest ``within_days`` of
    those conditions, or None when one of them has none (it counts events of any age)."""
    longest: dict[str, float | None] = {}
    for rule in model.rules:
        for condition in walk_conditions(rule.when):
            if isinstance(condition, (EventCondition, AbsenceCondition)):
                days = condition.within_days
                for kind in condition.types:
                    if kind in longest and longest[kind] is None:
                        continue
                    if days is None or not days * MICROS_PER_DAY < 2**60:  # any age, or as good as
                        longest[kind] = None
                    else:
                        longest[kind] = max(longest.get(kind) or 0.0, float(days))
    return longest


def oldest_counted(horizons: Mapping[str, float | None], as_of_us: int) -> dict[str, int | None]:
    """For each event type, the earliest timestamp an event of it can have and still count
    for a condition at ``as_of_us`` (None: any): an event counts for a condition with
    ``within_days`` only while ``age_days <= within_days`` (model spec, "Conditions"; an
    absence condition always has one), so older ones change no score, explanation or
    next change (property-tested). A day of margin below the bound. The service reads
    only these events back from the store (perf, issue #3: a lead's history then costs
    what its windows hold, not all it ever did)."""
    return {kind: None if days is None else as_of_us - math.ceil(days * MICROS_PER_DAY) - MICROS_PER_DAY
            for kind, days in horizons.items()}


# the service builds thousands of these records for a batch of events: their __init__ sets
# the fields without object.__setattr__ (engine/records.py; perf, issue #3)
@direct_init
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


@direct_init
@dataclass(frozen=True, slots=True)
class Lead:
    """A lead: its id and attributes. ``created_at`` (when present) is an ISO 8601 attribute."""

    lead_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def created_us(self) -> int | None:
        """``created_at`` in epoch microseconds, None when absent or empty."""
        value = self.attributes.get("created_at")
        if value.__class__ is str:  # the text of a moment: read once (perf, issue #3)
            found = _CREATED.get(value)
            if found is not None:
                return found
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, float) and value != value:  # NaN from a file reader
            return None
        moment = micros_of(value)
        if value.__class__ is str:
            remember(_CREATED, value, moment, _CREATED_LIMIT)
        return moment


# created_at texts already read, and their moments (every lead scored reads its own; a text
# always gives the same moment)
_CREATED: dict[str, int] = {}
_CREATED_LIMIT = 16_384


def forget_moments() -> None:
    """Empty the remembered ``created_at`` texts (when a lead is erased: no cache keeps its data)."""
    _CREATED.clear()


@direct_init
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


@direct_init
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
            # CountedEvent.to_dict inlined (this runs for every rescored lead)
            out["events"] = [
                {"event_id": e.event_id, "type": e.type, "timestamp": iso(e.ts),
                 "age_days": round(e.age_days, 2), "factor": round(e.factor, 4)}
                for e in self.events[:MAX_EVENTS_IN_EXPLANATION]
            ]
        return out


@direct_init
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

    @once
    def score(self) -> float:
        """The total rounded to 2 decimals, as reported (rounded once: the service reads it
        a few times for every lead it scores)."""
        return round_score(self.total)

    def rounded_groups(self) -> dict[str, float]:
        return {name: round_score(value) for name, value in self.groups.items()}

    def explanation(self) -> dict[str, Any]:
        """The explanation as plain data (JSON-ready)."""
        raw_groups, grades = self.raw_groups, self.grades
        groups: dict[str, Any] = {}
        for name, value in self.groups.items():
            entry: dict[str, Any] = {"score": round_score(value)}
            unclipped = raw_groups[name]
            if unclipped != value:
                entry["unclipped"] = round_score(unclipped)
            if name in grades:
                entry["grade"] = grades[name]
            groups[name] = entry
        return {
            "score": self.score,
            "stage": self.stage,
            "groups": groups,
            "rules": [c.to_dict() for c in self.contributions],
        }


_CENT = Decimal("0.01")


def round_score(value: float) -> float:
    """Round to 2 decimals, halves away from zero, on the exact binary value.

    Python's ``round(x, 2)`` rounds the exact binary value correctly too (halves to even);
    the two differ only on an exact half, and a double is exactly ``n + 0.005`` only when
    it is a multiple of 1/8 (``(2n+1)/200`` is dyadic only when 25 divides ``2n+1``). Those,
    and values too large or not finite, take the decimal path (4x slower) - except the
    common ones: a multiple of 1/4 (whole scores) has at most two decimals and is its own
    rounding; an odd multiple of 1/8 below 1e13 is ``n + 0.5`` hundredths exactly (``x * 100``
    is exact there), which rounds away from zero to ``(n + 1) / 100``, and that correctly
    rounded division is the double nearest to the decimal result, as ``float(Decimal)`` is."""
    if -1e15 < value < 1e15:
        if not (value * 8.0).is_integer():
            return round(value, 2)
        if (value * 4.0).is_integer():
            return float(value)
        if -1e13 < value < 1e13:
            return math.copysign((math.floor(abs(value) * 100.0) + 1) / 100, value)
    return float(Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP))


def clip(value: float, low: float | None, high: float | None) -> float:
    """Clip to [low, high]; a missing bound does not clip."""
    if low is not None and value < low:
        return float(low)
    if high is not None and value > high:
        return float(high)
    return value


_timestamp_of = attrgetter("ts")


class _LeadView:
    """One lead's events, deduplicated, before as_of, indexed by type (most recent first).

    ``future`` holds the (deduplicated) events stamped after as_of, for :func:`score_and_schedule`.
    ``created`` is the lead's ``created_us()``, False until an absence test or the next change
    looks it up (a lookup read in place rather than a method; perf, issue #3).
    """

    __slots__ = ("lead", "as_of_us", "by_type", "future", "created", "_matched")

    def __init__(self, lead: Lead, events: Iterable[Event], as_of_us: int) -> None:
        self.lead = lead
        self.as_of_us = as_of_us
        self.created: int | None | bool = False  # False: not looked up yet
        seen: set[str] = set()
        by_type: dict[str, list[Event]] = {}
        future: list[Event] = []
        for event in events:
            event_id = event.event_id
            if event_id is not None:
                if event_id in seen:
                    continue  # the first occurrence counts, later copies do not
                seen.add(event_id)
            if event.ts > as_of_us:
                future.append(event)
                continue
            bucket = by_type.get(event.type)
            if bucket is None:
                by_type[event.type] = [event]
            else:
                bucket.append(event)
        for bucket in by_type.values():
            if len(bucket) > 1:
                # most recent first; equal timestamps keep the later input first (the sort is
                # stable, also with reverse=True, so reversing the input first does that)
                bucket.reverse()
                bucket.sort(key=_timestamp_of, reverse=True)
        self.by_type = by_type
        self.future = future
        self._matched: dict[_EventQuery, list[Event]] = {}

    def matching(self, query: _EventQuery) -> list[Event]:
        """Matching events, most recent first (section "Event condition"). The list is
        shared (computed once per query): callers must not change it."""
        found = self._matched.get(query)
        if found is not None:
            return found
        window = query.window_us
        where = query.where
        as_of_us = self.as_of_us
        found = []
        for kind in query.types:
            bucket = self.by_type.get(kind)
            if not bucket:
                continue
            if window is None and not where:
                found.extend(bucket)
            elif len(where) == 1:
                test = where[0]
                for event in bucket:
                    if window is not None and as_of_us - event.ts > window:
                        break  # age_days > within_days; sorted, so every later event is older too
                    if test(event.properties):
                        found.append(event)
            else:
                for event in bucket:
                    if window is not None and as_of_us - event.ts > window:
                        break
                    if where and not all(test(event.properties) for test in where):
                        continue
                    found.append(event)
        if len(query.types) > 1 and len(found) > 1:
            # most recent first, equal timestamps in bucket order (a stable sort, also with
            # reverse=True); not a lambda made at each call (perf, issue #3)
            found.sort(key=_timestamp_of, reverse=True)
        self._matched[query] = found
        return found

    def age_days(self, event: Event) -> float:
        return (self.as_of_us - event.ts) / MICROS_PER_DAY


# ---- The model, compiled once into plain functions ----------------------------------
# Walking pydantic objects for every lead is slow; a plan holds the same conditions as
# closures over pre-folded operands. The meaning is exactly that of the model.

Test = Callable[[_LeadView], bool]


# eq=False: a query is its own key in _LeadView._matched, hashed by identity (one object per
# condition of a plan; the field hash was a Python call per look-up; perf, issue #3)
@dataclass(frozen=True, slots=True, eq=False)
class _EventQuery:
    """Which events match: types, property tests, and the age window in microseconds."""

    types: tuple[str, ...]
    where: tuple[LookupTest, ...]
    window_us: float | None


def _query(types: tuple[str, ...], where: Mapping[str, Predicate] | None, within_days: float | None) -> _EventQuery:
    tests = tuple(value_test(prop, f.op, f.value) for prop, f in (where or {}).items())
    window = None if within_days is None else within_days * MICROS_PER_DAY
    return _EventQuery(types, tests, window)


_Queries = dict[int, _EventQuery]  # id(condition) -> its query, one per condition of a plan


def _query_of(condition: EventCondition | AbsenceCondition, queries: _Queries) -> _EventQuery:
    """The query of a condition, one object per condition (a view computes each once)."""
    found = queries.get(id(condition))
    if found is None:
        found = queries[id(condition)] = _query(condition.types, condition.where, condition.within_days)
    return found


def _compile_condition(condition: Any, queries: _Queries) -> Test:
    """Section "Conditions": a condition as a test of the lead."""
    if isinstance(condition, AttributeCondition):
        test = value_test(condition.attribute, condition.op, condition.value)
        return lambda view: test(view.lead.attributes)
    if isinstance(condition, EventCondition):
        query, needed = _query_of(condition, queries), condition.min_count
        return lambda view: len(view.matching(query)) >= needed
    if isinstance(condition, AbsenceCondition):
        query = _query_of(condition, queries)
        window = condition.within_days * MICROS_PER_DAY

        def absent(view: _LeadView) -> bool:
            created = view.created
            if created is False:
                created = view.created = view.lead.created_us()
            if created is not None and view.as_of_us - created < window:
                return False  # not punished for silence it has not had time for
            return not view.matching(query)

        return absent
    if isinstance(condition, AllCondition):
        parts = [_compile_condition(c, queries) for c in condition.all]
        if len(parts) == 2:  # the common case, without a generator per lead
            first, second = parts
            return lambda view: first(view) and second(view)
        return lambda view: all(part(view) for part in parts)
    if isinstance(condition, AnyCondition):
        parts = [_compile_condition(c, queries) for c in condition.any]
        if len(parts) == 2:
            first, second = parts
            return lambda view: first(view) or second(view)
        return lambda view: any(part(view) for part in parts)
    if isinstance(condition, NotCondition):
        inner = _compile_condition(condition.not_, queries)
        return lambda view: not inner(view)
    raise TypeError(f"unknown condition {type(condition).__name__}")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _RulePlan:
    rule: Rule
    attributes: tuple[str, ...]  # attributes the rule reads, shown in explanations
    holds: Test | None = None  # rules whose `when` is not a single event condition
    query: _EventQuery | None = None  # event rules
    min_count: int = 1
    limit: int | None = None  # 1 for repeat: once, max_times (or None) for repeat: each
    half_life: float | None = None
    # a rule of attribute conditions only that does not hold when none of its attributes
    # is present: left out for such a lead (see _select)
    fact: bool = False


_FACT_CONDITIONS = (AttributeCondition, AllCondition, AnyCondition, NotCondition)


def _plan_rule(rule: Rule, queries: _Queries) -> _RulePlan:
    attributes = tuple(
        dict.fromkeys(c.attribute for c in walk_conditions(rule.when) if isinstance(c, AttributeCondition))
    )
    if isinstance(rule.when, EventCondition):
        cond = rule.when
        return _RulePlan(
            rule,
            attributes,
            query=_query_of(cond, queries),
            min_count=cond.min_count if rule.repeat == "once" else 1,
            limit=1 if rule.repeat == "once" else rule.max_times,
            half_life=rule.decay.half_life_days if rule.decay else None,
        )
    holds = _compile_condition(rule.when, queries)
    # an absent attribute reads as None, as in a lead without attributes
    fact = (all(isinstance(c, _FACT_CONDITIONS) for c in walk_conditions(rule.when))
            and not holds(_LeadView(Lead(""), (), 0)))
    return _RulePlan(rule, attributes, holds=holds, fact=fact)


@dataclass(frozen=True, slots=True)
class _ModelPlan:
    rules: tuple[_RulePlan, ...]
    groups: tuple[tuple[str, float | None, float | None], ...]  # name, min, max
    grades: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # group, (grade, threshold)
    stages: tuple[tuple[str, float], ...]
    score_min: float
    score_max: float
    # every event and absence condition, for the next discrete change (see engine/changes.py):
    # (query, created_at + this for an absence condition, leaves-the-window offset)
    changes: tuple[tuple[_EventQuery, int | None, int | None], ...] = ()
    has_absence: bool = False
    decaying: frozenset[str] = frozenset()  # ids of the rules with decay
    absences: tuple[int, ...] = ()  # the absence offsets of `changes`, ascending
    # by the set of event types a lead has: the rules that can give it points and the
    # (query, leave) of `changes` whose events can leave a window (see _select)
    selections: dict[frozenset[str], _Selection] = field(default_factory=dict)
    facts: frozenset[str] = frozenset()  # the attributes of the `fact` rules
    bare_selections: dict[frozenset[str], _Selection] = field(default_factory=dict)  # see _select
    zero_raw: dict[str, float] = field(default_factory=dict)  # every group at 0.0 (copied, never changed)
    nothing: tuple[Any, ...] = ()  # _totals of zero_raw: the result of a lead without points


# The rules worth looking at for a lead with events of these types (model order), and the
# `changes` entries with a window whose query can find one of its events. An event rule
# whose types the lead has no event of finds nothing and gives nothing, as does such an
# entry; skipping them is the same result (perf, issue #3: most leads have one to three
# types of the model's seven, and looking at every rule was a third of the engine's time).
# A lead without any attribute of `_ModelPlan.facts` (most new leads: only created_at) is
# looked up in `bare_selections`, whose rules also leave out the rules of `facts` (perf,
# issue #3: five of the demo model's fourteen rules, tested for every lead).
_Selection = tuple[tuple[_RulePlan, ...], tuple[tuple[_EventQuery, int], ...]]
_SELECTIONS_LIMIT = 4096  # type sets remembered per plan


def _select(plan: _ModelPlan, types: frozenset[str], attributes: Mapping[str, Any]) -> _Selection:
    bare = plan.facts.isdisjoint(attributes)
    selections = plan.bare_selections if bare else plan.selections
    found = selections.get(types)
    if found is None:
        rules = tuple(
            p for p in plan.rules
            if (p.query is None or not types.isdisjoint(p.query.types)) and not (bare and p.fact)
        )
        leaving = tuple(
            (query, leave) for query, _, leave in plan.changes
            if leave is not None and not types.isdisjoint(query.types)
        )
        found = remember(selections, types, (rules, leaving), _SELECTIONS_LIMIT)
    return found


def _plan_model(model: ScoringModel) -> _ModelPlan:
    groups = []
    for name in model.group_names():
        spec = model.groups.get(name)
        groups.append((name, spec.min if spec else None, spec.max if spec else None))
    grades = tuple(
        (name, tuple((model.groups[name].grades or {}).items())) for name in model.graded_groups()
    )
    stages = tuple((s.name, s.min_score) for s in model.stages or ())
    queries: _Queries = {}
    rules = tuple(_plan_rule(rule, queries) for rule in model.rules)
    changes = []
    for rule in model.rules:
        for c in time_conditions(rule.when):
            window = c.within_days
            absence = (math.ceil(window * MICROS_PER_DAY)
                       if isinstance(c, AbsenceCondition) and window is not None else None)
            leave = None if window is None else math.floor(window * MICROS_PER_DAY) + 1
            changes.append((_query_of(c, queries), absence, leave))
    absences = tuple(sorted({absence for _, absence, _ in changes if absence is not None}))
    plan = _ModelPlan(
        rules, tuple(groups), grades, stages, model.score.min, model.score.max, tuple(changes),
        bool(absences), frozenset(rule.id for rule in model.rules if rule.decay is not None),
        absences, facts=frozenset(name for p in rules if p.fact for name in p.attributes),
        zero_raw={name: 0.0 for name, _, _ in groups},
    )
    return replace(plan, nothing=_totals(plan, plan.zero_raw))


_PLANS: dict[int, tuple[ScoringModel, _ModelPlan]] = {}


def _plan(model: ScoringModel) -> _ModelPlan:
    """The compiled model, built once per model object (models are immutable)."""
    hit = _PLANS.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    plan = _plan_model(model)
    if len(_PLANS) >= 64:
        _PLANS.pop(next(iter(_PLANS)), None)
    _PLANS[id(model)] = (model, plan)  # the reference keeps id(model) from being reused
    return plan


def _event_contribution(plan: _RulePlan, view: _LeadView, found: list[Event]) -> Contribution | None:
    """Section "Points": what an event rule gives, or None when it gives nothing. ``found``
    are its matching events (not none)."""
    if plan.min_count > 1 and len(found) < plan.min_count:
        return None
    counted = found if plan.limit is None else found[: plan.limit]
    points = 0.0
    rule = plan.rule
    as_of_us, half_life, rule_points = view.as_of_us, plan.half_life, rule.points
    events: list[CountedEvent] = []
    for event in counted:
        age = (as_of_us - event.ts) / MICROS_PER_DAY  # view.age_days, inlined
        factor = 0.5 ** (age / half_life) if half_life else 1.0
        points += rule_points * factor
        events.append(CountedEvent(event.event_id, event.type, event.ts, age, factor))
    if points == 0:
        return None
    attrs = view.lead.attributes
    used = {name: attrs.get(name) for name in plan.attributes} if plan.attributes else {}
    return Contribution(rule.id, rule.label, rule.group, points, tuple(events), used)


def score_lead(
    model: ScoringModel, lead: Lead, events: Iterable[Event], as_of: datetime | int
) -> LeadScore:
    """Score one lead at ``as_of`` (an aware datetime, or epoch microseconds).

    ``events`` are the lead's events in input order; events with the same ``event_id``
    count once (the first), events after ``as_of`` are ignored.
    """
    as_of_us = as_of if isinstance(as_of, int) else to_micros(parse_timestamp(as_of))
    return _score_view(_plan(model), _LeadView(lead, events, as_of_us))


def score_and_schedule(
    model: ScoringModel, lead: Lead, events: Iterable[Event], as_of_us: int
) -> tuple[LeadScore, int | None, bool]:
    """``score_lead``, :func:`leadscore.engine.changes.next_change` and
    :func:`leadscore.engine.changes.decays` of one lead in one pass over its events:
    ``(score, next discrete change or None, decays)``. The same numbers as the three
    functions (property-tested); what the service runs for every lead it scores."""
    view = _LeadView(lead, events, as_of_us)
    hit = _PLANS.get(id(model))  # _plan, its common case inlined (perf, issue #3)
    plan = hit[1] if hit is not None and hit[0] is model else _plan(model)
    rules, leaving = _select(plan, frozenset(view.by_type), lead.attributes)
    result = _score_view(plan, view, rules)
    decays = False
    decaying = plan.decaying
    if decaying:  # a loop rather than any() of a generator (perf, issue #3)
        for c in result.contributions:
            if c.events and c.rule_id in decaying:
                decays = True
                break
    return result, _next_change(plan, view, leaving), decays


def _next_change(plan: _ModelPlan, view: _LeadView, leaving: tuple[tuple[_EventQuery, int], ...]) -> int | None:
    """``next_change`` from a view: the earliest of the candidate moments after as_of. The
    matching events of a query are those the engine found (``as_of - ts <= window`` is
    ``ts > as_of - leave`` for integer microseconds), the oldest is the last; the events
    stamped after as_of are ``view.future``; ``leaving`` are the entries of ``plan.changes``
    with a window whose query can find one of the lead's events (the others find none)."""
    as_of_us = view.as_of_us
    best: int | None = None
    if plan.has_absence:
        created = view.created
        if created is False:
            created = view.created = view.lead.created_us()
        if created is not None:
            for absence in plan.absences:  # ascending: the first one after as_of is the earliest
                if created + absence > as_of_us:
                    best = created + absence
                    break
    future = view.future
    if future:
        for query, _, _ in plan.changes:
            types, where = query.types, query.where
            for event in future:
                if ((best is None or event.ts < best) and event.type in types
                        and all(test(event.properties) for test in where)):
                    best = event.ts
    matched = view._matched
    for query, leave in leaving:
        found = matched.get(query)  # mostly found by a rule already (perf, issue #3)
        if found is None:
            found = view.matching(query)
        if found:
            moment = found[-1].ts + leave
            if moment > as_of_us and (best is None or moment < best):
                best = moment
    return best


def _score_view(plan: _ModelPlan, view: _LeadView, rules: tuple[_RulePlan, ...] | None = None) -> LeadScore:
    if rules is None:
        rules = _select(plan, frozenset(view.by_type), view.lead.attributes)[0]
    contributions: list[Contribution] = []
    raw: dict[str, float] | None = None  # made at the first contribution
    attrs = view.lead.attributes
    for rule_plan in rules:
        holds = rule_plan.holds
        if holds is None:
            assert rule_plan.query is not None
            found = view.matching(rule_plan.query)
            if not found:
                continue  # most event rules find nothing: no call (perf, issue #3)
            contribution = _event_contribution(rule_plan, view, found)
            if contribution is None:
                continue
        else:  # section "Points": a rule whose `when` holds gives its points
            rule = rule_plan.rule
            if not holds(view) or rule.points == 0:
                continue
            used = {name: attrs.get(name) for name in rule_plan.attributes} if rule_plan.attributes else {}
            contribution = Contribution(rule.id, rule.label, rule.group, rule.points, (), used)
        contributions.append(contribution)
        if raw is None:
            raw = plan.zero_raw.copy()
        raw[contribution.group] += contribution.points
    if raw is None:
        # no rule gave points (most leads): the plan's groups, total, stage and grades of
        # zero points, in fresh dicts (perf, issue #3)
        groups, total, stage, grades = plan.nothing
        return LeadScore(view.lead.lead_id, total, groups.copy(), plan.zero_raw.copy(), grades.copy(), stage, ())
    groups, total, stage, grades = _totals(plan, raw)
    return LeadScore(view.lead.lead_id, total, groups, raw, grades, stage, tuple(contributions))


def _totals(plan: _ModelPlan, raw: dict[str, float]) -> tuple[dict[str, float], float, str | None, dict[str, str | None]]:
    """Totals, stages, grades: 1. clip groups, 2. clip the total, 3. stage, 4. grades."""
    groups: dict[str, float] = {}
    for name, low, high in plan.groups:  # a loop, not a comprehension (perf, issue #3)
        groups[name] = clip(raw[name], low, high)
    total = clip(sum(groups.values()), plan.score_min, plan.score_max)
    stage = None
    for name, min_score in plan.stages:
        if min_score <= total:
            stage = name
            break
    grades: dict[str, str | None] = {}
    for name, thresholds in plan.grades:
        value = groups[name]
        grade = None
        for letter, threshold in thresholds:
            if threshold <= value:
                grade = letter
                break
        grades[name] = grade
    return groups, total, stage, grades
