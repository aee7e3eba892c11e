"""Properties of the per-lead engine on random valid models, leads and events."""

from __future__ import annotations

import json
import math
import re
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadscore.engine import (
    Contribution,
    CountedEvent,
    Event,
    LeadScore,
    clip,
    round_score,
    score_lead,
)
from leadscore.engine.explain import (
    explanation_json,
    grades_json,
    public_fields_json,
    rounded_groups_json,
)
from leadscore.engine.timestamps import MICROS_PER_DAY, parse_timestamp, to_micros
from leadscore.engine.values import OPERATORS, is_missing, value_test
from leadscore.model import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    ScoringModel,
)
from strategies import (
    AS_OF_US,
    attribute_values,
    event_lists,
    event_rules,
    events,
    leads,
    models,
    predicates,
    scenarios,
    to_model,
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: LeadScore, b: LeadScore) -> None:
    """Two results are the same in every reported detail."""
    assert a.total == b.total
    assert a.groups == b.groups
    assert a.raw_groups == b.raw_groups
    assert a.grades == b.grades
    assert a.stage == b.stage
    assert a.contributions == b.contributions
    assert a.explanation() == b.explanation()


@FAST
@given(scenarios())
def test_totals_groups_grades_stage_and_counted_events_follow_the_rules(scenario: Any) -> None:
    model, lead, evs = scenario
    result = score_lead(model, lead, evs, AS_OF_US)

    assert model.score.min <= result.total <= model.score.max
    assert list(result.groups) == model.group_names()
    raw = dict.fromkeys(model.group_names(), 0.0)
    for contribution in result.contributions:
        assert contribution.points != 0
        raw[contribution.group] += contribution.points
    assert result.raw_groups == raw
    for name, value in result.groups.items():
        spec = model.groups.get(name)
        if spec is None:  # undeclared groups are never clipped
            assert value == raw[name]
            continue
        assert value == clip(raw[name], spec.min, spec.max)
        if spec.min is not None:
            assert value >= spec.min
        if spec.max is not None:
            assert value <= spec.max
    assert result.total == clip(sum(result.groups.values()), model.score.min, model.score.max)

    assert set(result.grades) == {n for n, g in model.groups.items() if g.grades}
    for name, grade in result.grades.items():
        thresholds = model.groups[name].grades
        passed = [g for g, t in thresholds.items() if t <= result.groups[name]]
        assert grade == (passed[0] if passed else None)

    if model.stages:
        assert result.stage is not None  # the last stage is at most score.min
        index = [s.name for s in model.stages].index(result.stage)
        assert model.stages[index].min_score <= result.total
        assert all(s.min_score > result.total for s in model.stages[:index])
    else:
        assert result.stage is None
    assert result.explanation()["score"] == result.score == round_score(result.total)

    # what each rule counted: `once` one event, `each` at most max_times, most recent first
    for contribution in result.contributions:
        rule = model.rule(contribution.rule_id)
        counted = contribution.events
        if not rule.is_event_rule:
            assert counted == ()
            assert contribution.points == rule.points
            continue
        assert counted, "an event rule that gives points counted an event"
        if rule.repeat == "once":
            assert len(counted) == 1
        elif rule.max_times is not None:
            assert len(counted) <= rule.max_times
        # most recent first, none after as_of, inside the window
        assert [e.ts for e in counted] == sorted((e.ts for e in counted), reverse=True)
        for event in counted:
            assert AS_OF_US - event.ts >= 0
            if rule.when.within_days is not None:
                assert event.age_days <= rule.when.within_days
        expected = 0.0
        for event in counted:
            expected += rule.points * event.factor
        assert contribution.points == expected
        assert len({e.event_id for e in counted if e.event_id is not None}) == len(
            [e for e in counted if e.event_id is not None])


@settings(FAST, max_examples=50)
@given(models(stages=True), st.lists(st.tuples(leads(), event_lists()), min_size=2, max_size=4))
def test_stage_never_falls_when_the_score_rises(model: ScoringModel, inputs: list[Any]) -> None:
    names = [s.name for s in model.stages]
    results = [score_lead(model, lead, evs, AS_OF_US) for lead, evs in inputs]
    for a in results:
        for b in results:
            if a.total <= b.total:
                assert names.index(a.stage) >= names.index(b.stage)


_late_stamps = st.integers(AS_OF_US + 1, AS_OF_US + 30 * MICROS_PER_DAY)
_late_events = st.lists(events(ts=None), min_size=1, max_size=3)


@FAST
@given(scenarios(), st.data())
def test_late_events_repeated_ids_and_unused_types_change_nothing(
    scenario: Any, data: st.DataObject
) -> None:
    model, lead, evs = scenario
    before = score_lead(model, lead, evs, AS_OF_US)

    # events after as_of (without an id, or with an id of their own), anywhere in the input
    late = [Event(e.lead_id, e.type, data.draw(_late_stamps), e.properties,
                  f"late-{i}" if i % 2 else None) for i, e in enumerate(data.draw(_late_events))]
    mixed = list(evs)
    for event in late:
        mixed.insert(data.draw(st.integers(0, len(mixed))), event)
    same(score_lead(model, lead, mixed, AS_OF_US), before)

    # events of a type no rule mentions
    other = [Event(e.lead_id, "webinar_attended", e.ts, e.properties, None)
             for e in data.draw(_late_events)]
    same(score_lead(model, lead, [*other, *evs], AS_OF_US), before)

    # a copy of an event, or another event with an id already used, after its first occurrence
    with_ids = [i for i, e in enumerate(evs) if e.event_id is not None]
    if with_ids:
        mixed = list(evs)
        for index in data.draw(st.lists(st.sampled_from(with_ids), min_size=1, max_size=4)):
            original = evs[index]
            first = next(i for i, e in enumerate(mixed) if e.event_id == original.event_id)
            copy = Event(original.lead_id, original.type, original.ts, dict(original.properties),
                         original.event_id)
            if data.draw(st.booleans()):
                copy = data.draw(events(event_id=original.event_id))
            mixed.insert(data.draw(st.integers(first + 1, len(mixed))), copy)
        same(score_lead(model, lead, mixed, AS_OF_US), before)


@FAST
@given(models(), leads(), event_lists(distinct=True), st.data())
def test_order_and_copies_of_distinct_events_change_nothing(
    model: ScoringModel, lead: Any, evs: list[Event], data: st.DataObject
) -> None:
    # distinct ids and distinct timestamps: the input order does not matter
    before = score_lead(model, lead, evs, AS_OF_US)
    same(score_lead(model, lead, data.draw(st.permutations(evs)), AS_OF_US), before)
    same(score_lead(model, lead, list(reversed(evs)), AS_OF_US), before)
    # and exact copies, anywhere (even before the original), count once
    if evs:
        mixed = list(evs)
        for event in data.draw(st.lists(st.sampled_from(evs), min_size=1, max_size=4)):
            mixed.insert(data.draw(st.integers(0, len(mixed))), event)
        same(score_lead(model, lead, mixed, AS_OF_US), before)


@st.composite
def event_rule_models(draw: st.DrawFn) -> ScoringModel:
    """Models whose every rule has a single event condition (no absence, no combinators)."""
    rules = [{"id": f"r{i}", **draw(event_rules())} for i in range(draw(st.integers(1, 5)))]
    return to_model({"version": 1, "name": "events-only", "rules": rules})


@FAST
@given(event_rule_models(), leads(), event_lists(after_as_of=False),
       st.integers(0, 100 * MICROS_PER_DAY))
def test_event_rules_never_grow_as_time_passes_without_new_events(
    model: ScoringModel, lead: Any, evs: list[Event], later: int
) -> None:
    # with event rules only (an absence rule or a `not` may start to hold later), a
    # contribution's magnitude never grows as as_of moves on and no event arrives
    now = score_lead(model, lead, evs, AS_OF_US)
    then = score_lead(model, lead, evs, AS_OF_US + later)
    before = {c.rule_id: c.points for c in now.contributions}
    after = {c.rule_id: c.points for c in then.contributions}
    assert set(after) <= set(before)
    for rule_id, points in after.items():
        assert abs(points) <= abs(before[rule_id])
        assert (points > 0) == (before[rule_id] > 0)
    for contribution in now.contributions:
        rule = model.rule(contribution.rule_id)
        assert isinstance(rule.when, EventCondition)
        limit = abs(rule.points) * (1 if rule.repeat == "once" else len(contribution.events))
        assert abs(contribution.points) <= limit


# ---- An oracle: the spec written out plainly, independent of the engine's code ----------
# Operator semantics are the spec's plus the decisions documented in engine/values.py
# (text form, ASCII white space, NUMBER_RE, None/NaN missing). Deliberately slow and simple.

_WS = " \t\n\r\f\v"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ABSENT = object()


def _text_form(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def _fold(v: Any) -> str:
    return _text_form(v).strip(_WS).lower()


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        v = v.strip(_WS)
        if not _NUMBER.fullmatch(v):
            return None
    if isinstance(v, (int, float, str)):
        n = float(v)
        return n if math.isfinite(n) else None
    return None


def _equal(v: Any, o: Any) -> bool:
    if isinstance(o, (int, float)) and not isinstance(o, bool):
        return _number(v) == o
    return _fold(v) == _fold(o)


def spec_value_holds(values: Any, name: str, op: str, o: Any) -> bool:
    v = values.get(name, _ABSENT)
    if v is _ABSENT or v is None or (isinstance(v, float) and math.isnan(v)):
        return op == "exists" and o is False
    n = _number(v)
    return {
        "equals": lambda: _equal(v, o),
        "not_equals": lambda: not _equal(v, o),
        "in": lambda: any(_equal(v, x) for x in o),
        "not_in": lambda: not any(_equal(v, x) for x in o),
        "contains": lambda: _fold(o) in _fold(v),
        "starts_with": lambda: _fold(v).startswith(_fold(o)),
        "matches": lambda: re.search(o, _text_form(v)) is not None,
        "gt": lambda: n is not None and n > o,
        "gte": lambda: n is not None and n >= o,
        "lt": lambda: n is not None and n < o,
        "lte": lambda: n is not None and n <= o,
        "between": lambda: n is not None and o[0] <= n <= o[1],
        "exists": lambda: o is True,
    }[op]()


def _age_days(as_of_us: int, ts: int) -> float:
    return (as_of_us - ts) / MICROS_PER_DAY


def _unique(evs: list[Event]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for event in evs:  # events with the same event_id count once: the first one
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        out.append(event)
    return out


def spec_matching(cond: Any, evs: list[Event], as_of_us: int) -> list[Event]:
    """Matching events, most recent first."""
    found = [
        e for e in _unique(evs)
        if e.type in cond.types
        and e.ts <= as_of_us
        and (cond.within_days is None or _age_days(as_of_us, e.ts) <= cond.within_days)
        and all(spec_value_holds(e.properties, p, f.op, f.value) for p, f in (cond.where or {}).items())
    ]
    return sorted(found, key=lambda e: e.ts, reverse=True)


def spec_holds(cond: Any, lead: Any, evs: list[Event], as_of_us: int) -> bool:
    if isinstance(cond, AttributeCondition):
        return spec_value_holds(lead.attributes, cond.attribute, cond.op, cond.value)
    if isinstance(cond, EventCondition):
        return len(spec_matching(cond, evs, as_of_us)) >= cond.min_count
    if isinstance(cond, AbsenceCondition):
        created = lead.attributes.get("created_at")
        if created not in (None, "") and _age_days(as_of_us, to_micros(parse_timestamp(created))) < cond.within_days:
            return False
        return not spec_matching(cond, evs, as_of_us)
    if isinstance(cond, AllCondition):
        return all(spec_holds(c, lead, evs, as_of_us) for c in cond.all)
    if isinstance(cond, AnyCondition):
        return any(spec_holds(c, lead, evs, as_of_us) for c in cond.any)
    assert isinstance(cond, NotCondition)
    return not spec_holds(cond.not_, lead, evs, as_of_us)


def spec_points(rule: Any, lead: Any, evs: list[Event], as_of_us: int) -> float:
    """Section "Points"."""
    if not rule.is_event_rule:
        return rule.points if spec_holds(rule.when, lead, evs, as_of_us) else 0.0
    matching = spec_matching(rule.when, evs, as_of_us)

    def f(e: Event) -> float:
        if rule.decay is None:
            return 1.0
        return 0.5 ** (_age_days(as_of_us, e.ts) / rule.decay.half_life_days)

    if rule.repeat == "once":
        return rule.points * f(matching[0]) if len(matching) >= rule.when.min_count else 0.0
    total = 0.0
    for event in matching if rule.max_times is None else matching[: rule.max_times]:
        total += rule.points * f(event)
    return total


@FAST
@given(scenarios(), st.sampled_from((0, 0, 0, 1, -1, MICROS_PER_DAY // 2, -7 * MICROS_PER_DAY)))
def test_engine_gives_what_the_spec_gives(scenario: Any, shift: int) -> None:
    model, lead, evs = scenario
    as_of = AS_OF_US + shift
    result = score_lead(model, lead, evs, as_of)

    given_points = {c.rule_id: c.points for c in result.contributions}
    raw = dict.fromkeys(model.group_names(), 0.0)
    for rule in model.rules:
        points = spec_points(rule, lead, evs, as_of)
        assert given_points.get(rule.id, 0.0) == points, rule
        raw[rule.group] += points
    assert result.raw_groups == raw
    groups = {}
    for name, value in raw.items():  # 1. clipped to the group's bounds (when declared)
        spec = model.groups.get(name)
        low = spec.min if spec and spec.min is not None else -math.inf
        high = spec.max if spec and spec.max is not None else math.inf
        groups[name] = min(max(value, low), high)
    assert result.groups == groups
    # 2. the total, summed in the engine's group order so that the floats are the same
    total = min(max(sum(groups.values()), model.score.min), model.score.max)
    assert result.total == total
    # 3. the stage, 4. grades
    stage = next((s.name for s in model.stages or () if s.min_score <= total), None)
    assert result.stage == stage
    for name, group in model.groups.items():
        if group.grades:
            assert result.grades[name] == next(
                (g for g, t in group.grades.items() if t <= groups[name]), None)


def _decimal_round(value: float) -> float:
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@given(st.one_of(
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
    st.integers(-10**9, 10**9).map(lambda n: n / 8),  # every exact half lies here
    st.integers(-10**9, 10**9).map(lambda n: n / 200),
    st.integers(-10**9, 10**9).map(lambda n: math.nextafter(n / 8, math.inf)),
    st.integers(-10**9, 10**9).map(lambda n: math.nextafter(n / 8, -math.inf)),
    st.integers(-10**6, 10**6).map(lambda n: (2 * n + 1) * 0.005),
    # multiples of 1/8 up to 1e15 (the fast path for them stops at 1e13)
    st.integers(-8 * 10**15, 8 * 10**15).map(lambda n: n / 8),
    st.integers(-10**3, 10**3).map(lambda n: 10**13 + n / 8),
    st.integers(-10**3, 10**3).map(lambda n: -(10**13) + n / 8),
    st.sampled_from([0.0, -0.0, 0.125, -0.125, 0.375, -0.625, 2.5, -7.875, 1e15, -1e15]),
))
@settings(max_examples=3000, deadline=None)
def test_round_score_is_half_up_on_the_exact_binary_value(value: float) -> None:
    got, expected = round_score(value), _decimal_round(value)
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected), value


def test_round_score_on_every_eighth() -> None:
    """Whole scores and eighths are the commonest totals: each one against the reference."""
    for n in (*range(-20_000, 20_000), *range(8 * 10**13 - 5_000, 8 * 10**13 + 5_000)):
        value = n / 8
        got, expected = round_score(value), _decimal_round(value)
        assert got == expected and math.copysign(1, got) == math.copysign(1, expected), value


def _json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@FAST
@given(scenarios(), st.sampled_from((0, 0, 1, -7 * MICROS_PER_DAY)))
def test_explanation_json_is_the_explanation_encoded(scenario: Any, shift: int) -> None:
    """The texts the service stores and answers are, byte for byte, what json writes of
    explanation(), the rounded groups, the grades and the public score."""
    model, lead, evs = scenario
    result = score_lead(model, lead, evs, AS_OF_US + shift)
    assert explanation_json(result) == _json(result.explanation())
    assert rounded_groups_json(result) == _json(result.rounded_groups())
    assert grades_json(result.grades) == _json(result.grades)
    public = {"score": result.score, "stage": result.stage, "groups": result.rounded_groups(),
              "grades": dict(result.grades)}
    assert "{" + public_fields_json(result) + "}" == _json(public)


@given(st.one_of(st.floats(), st.integers(-10**20, 10**20), st.booleans(), st.none(), st.text(),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.floats(), max_size=2)))
@example(math.nan)
@example(math.inf)
@example(-math.inf)
@example(-0.0)
@example(2**70)
def test_explanation_json_writes_every_attribute_value_as_json_does(value: Any) -> None:
    """Attribute values of any JSON kind (PostgreSQL gives them back as stored), NaN, infinities,
    huge integers; -0.0, quotes, control and non-ASCII characters in the rest."""
    counted = CountedEvent("e\"1\u2028", "page_view", AS_OF_US - 1, 1e-7, -0.0)
    contribution = Contribution('r"1', "Giám đốc\n", "fit", -0.0, (counted,), {"a\u00e9": value, "b": MappingProxyType({"x": 1})})
    result = LeadScore("L", 12.345, {"fit": -0.0, "x": 1e14 + 0.125}, {"fit": 3.0, "x": 1e14 + 0.125},
                       {"fit": None}, None, (contribution,))
    assert explanation_json(result) == _json({**result.explanation(), "rules": [
        {**contribution.to_dict(), "attributes": {"a\u00e9": value, "b": {"x": 1}}}]})


@settings(max_examples=500, deadline=None)
@given(predicates(), attribute_values | st.text(max_size=6))
def test_value_test_is_the_operators_test_on_a_present_value(predicate: dict[str, Any], value: Any) -> None:
    """``value_test`` tests a str value of the text operators on its folded text, inline
    (perf, issue #3): the same answers as the operator table's own test."""
    (op, operand), = predicate.items()
    got = value_test("x", op, operand)({"x": value})
    if op == "exists":
        assert got is (operand is not is_missing(value))
    elif is_missing(value):
        assert got is False
    else:
        assert got == OPERATORS[op](operand)(value)
