"""Set-based scoring with everything the service stores: explanations and next changes.

The database selects, for every lead at once, what only the events can tell: which events
each event rule counts (:func:`leadscore.sql.compiler.compile_counted`), whether each other
rule holds, and the moments at which a window or a future event will change a lead's score
(:func:`leadscore.sql.compiler.compile_model` with ``explain=True``). Python then builds
each lead's :class:`~leadscore.engine.LeadScore` from those rows with the engine's own
arithmetic (ages, decay factors and points computed in the same order, from the same
integers), so the numbers, the explanation and ``next_change_us`` are the engine's exactly,
not merely to 1e-9: :func:`assemble` is :func:`leadscore.engine.scoring.score_and_schedule`
fed by SQL (property-tested in ``tests/sql/test_sql_explain.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leadscore.engine.scoring import Contribution, CountedEvent, Lead, LeadScore, clip
from leadscore.engine.timestamps import MICROS_PER_DAY
from leadscore.engine.values import value_test
from leadscore.model.schema import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    ScoringModel,
    walk_conditions,
)
from leadscore.sql.compiler import (
    attribute_only,
    compile_counted,
    compile_model,
    next_change_conditions,
)
from leadscore.sql.dialects import Dialect, get_dialect

# (rule index, event_id, type, ts_us), in the engine's order within each rule
Counted = Sequence[tuple[int, str | None, str, int]]
Fetch = Callable[[str], tuple[list[str], Iterable[Sequence[Any]]]]


@dataclass(frozen=True)
class _RuleShape:
    index: int
    event: bool  # the rule's `when` is one event condition: its counted events come from SQL
    half_life: float | None
    attributes: tuple[str, ...]
    holds: Callable[[Mapping[str, Any]], bool] | None  # attributes only: tested here


def _attribute_test(condition: Any) -> Callable[[Mapping[str, Any]], bool]:
    """A condition on attributes only, as the engine tests it (``value_test``)."""
    if isinstance(condition, AttributeCondition):
        return value_test(condition.attribute, condition.op, condition.value)
    if isinstance(condition, AllCondition):
        parts = [_attribute_test(c) for c in condition.all]
        return lambda attrs: all(part(attrs) for part in parts)
    if isinstance(condition, AnyCondition):
        parts = [_attribute_test(c) for c in condition.any]
        return lambda attrs: any(part(attrs) for part in parts)
    if isinstance(condition, NotCondition):
        inner = _attribute_test(condition.not_)
        return lambda attrs: not inner(attrs)
    raise TypeError(f"not an attribute condition: {type(condition).__name__}")  # pragma: no cover


@dataclass(frozen=True)
class ExplainPlan:
    """What :func:`assemble` needs of a model, computed once."""

    model: ScoringModel
    rules: tuple[_RuleShape, ...]
    groups: tuple[tuple[str, float | None, float | None], ...]
    grades: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    stages: tuple[tuple[str, float], ...]
    # per condition: (absence offset or None, leaves-the-window offset or None)
    changes: tuple[tuple[int | None, int | None], ...]
    decaying: frozenset[str]

    @classmethod
    def of(cls, model: ScoringModel) -> ExplainPlan:
        rules = []
        for i, rule in enumerate(model.rules):
            attributes = tuple(dict.fromkeys(
                c.attribute for c in walk_conditions(rule.when) if isinstance(c, AttributeCondition)))
            event = isinstance(rule.when, EventCondition)
            rules.append(_RuleShape(i, event, rule.decay.half_life_days if rule.decay else None, attributes,
                                    _attribute_test(rule.when) if not event and attribute_only(rule.when) else None))
        groups = []
        for name in model.group_names():
            spec = model.groups.get(name)
            groups.append((name, spec.min if spec else None, spec.max if spec else None))
        changes = []
        for _, c in next_change_conditions(model):
            window = c.within_days
            absence = (math.ceil(window * MICROS_PER_DAY)
                       if isinstance(c, AbsenceCondition) and window is not None else None)
            leave = None if window is None else math.floor(window * MICROS_PER_DAY) + 1
            changes.append((absence, leave))
        return cls(
            model, tuple(rules), tuple(groups),
            tuple((name, tuple((model.groups[name].grades or {}).items())) for name in model.graded_groups()),
            tuple((s.name, s.min_score) for s in model.stages or ()),
            tuple(changes), frozenset(r.id for r in model.rules if r.decay is not None),
        )


def assemble(plan: ExplainPlan, lead: Lead, row: Mapping[str, Any], counted: Counted, as_of_us: int
             ) -> tuple[LeadScore, int | None, bool]:
    """``score_and_schedule(model, lead, events, as_of_us)`` of one lead from its row of the
    ``explain`` query and its rows of the counted query (in rule, then position order)."""
    by_rule: dict[int, list[tuple[str | None, str, int]]] = {}
    for rule_index, event_id, kind, ts in counted:
        by_rule.setdefault(rule_index, []).append((event_id, kind, ts))
    model = plan.model
    attrs = lead.attributes
    contributions: list[Contribution] = []
    raw = {name: 0.0 for name, _, _ in plan.groups}
    for shape in plan.rules:
        rule = model.rules[shape.index]
        events: list[CountedEvent] = []
        if shape.event:
            found = by_rule.get(shape.index)
            if not found:
                continue
            points = 0.0
            half_life, rule_points = shape.half_life, rule.points
            for event_id, kind, ts in found:
                age = (as_of_us - ts) / MICROS_PER_DAY
                factor = 0.5 ** (age / half_life) if half_life else 1.0
                points += rule_points * factor
                events.append(CountedEvent(event_id, kind, ts, age, factor))
        elif shape.holds is not None:
            if not shape.holds(attrs):
                continue
            points = rule.points
        else:
            if not row[f"rule_{shape.index}"]:
                continue
            points = rule.points
        if points == 0:
            continue
        used = {name: attrs.get(name) for name in shape.attributes}
        contributions.append(Contribution(rule.id, rule.label, rule.group, points, tuple(events), used))
        raw[rule.group] += points
    groups = {name: clip(raw[name], low, high) for name, low, high in plan.groups}
    total = clip(sum(groups.values()), model.score.min, model.score.max)
    stage = next((name for name, min_score in plan.stages if min_score <= total), None)
    grades: dict[str, str | None] = {
        name: next((g for g, t in thresholds if t <= groups[name]), None) for name, thresholds in plan.grades
    }
    result = LeadScore(lead.lead_id, total, groups, raw, grades, stage, tuple(contributions))
    best: int | None = None
    created = lead.created_us() if any(a is not None for a, _ in plan.changes) else None
    for k, (absence, leave) in enumerate(plan.changes):
        moments = [row[f"next_future_{k}"]]
        if absence is not None and created is not None:
            moments.append(created + absence)
        if leave is not None:
            oldest = row[f"next_oldest_{k}"]
            moments.append(None if oldest is None else oldest + leave)
        for moment in moments:
            if moment is not None and moment > as_of_us and (best is None or moment < best):
                best = int(moment)
    decays = bool(plan.decaying) and any(c.rule_id in plan.decaying and c.events for c in contributions)
    return result, best, decays


def explained_queries(model: ScoringModel, dialect: str | Dialect, *, leads: str, events: str, as_of_us: int,
                      dedupe: bool = True) -> tuple[str, str | None]:
    """The SQL texts of the two queries :func:`score_explained` runs."""
    target = get_dialect(dialect)
    main = compile_model(model, target, leads=leads, events=events, as_of_us=as_of_us, dedupe=dedupe,
                         explain=True)
    counted = compile_counted(model, target, events=events, as_of_us=as_of_us, dedupe=dedupe)
    return target.sql(main), None if counted is None else target.sql(counted)


def score_explained(fetch: Fetch, model: ScoringModel, dialect: str | Dialect, people: Mapping[str, Lead], *,
                    leads: str, events: str, as_of_us: int, dedupe: bool = True,
                    ) -> dict[str, tuple[LeadScore, int | None, bool]]:
    """Score every lead of the ``leads`` table (the compiled model's shape, ``seq`` required)
    with ``fetch(sql) -> (column names, rows)``; ``people`` gives each lead's attributes
    (explanations show the values the rules read)."""
    main, counted_sql = explained_queries(model, dialect, leads=leads, events=events, as_of_us=as_of_us,
                                          dedupe=dedupe)
    counted: dict[str, list[tuple[int, int, str | None, str, int]]] = {}
    if counted_sql is not None:
        _, rows = fetch(counted_sql)
        for lead_id, rule, event_id, kind, ts, position in rows:
            counted.setdefault(lead_id, []).append((rule, position, event_id, kind, ts))
    names, rows = fetch(main)
    plan = ExplainPlan.of(model)
    out: dict[str, tuple[LeadScore, int | None, bool]] = {}
    for values in rows:
        row = dict(zip(names, values, strict=True))
        lead_id = row["lead_id"]
        mine = sorted(counted.get(lead_id, ()), key=lambda c: (c[0], c[1]))
        out[lead_id] = assemble(plan, people[lead_id], row, [(r, e, k, t) for r, _, e, k, t in mine], as_of_us)
    return out
