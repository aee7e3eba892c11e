"""The per-lead engine against shared/docs/model-spec.md, with hand-computed numbers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadscore.engine import Event, Lead, LeadScore, round_score, score_lead
from leadscore.engine.timestamps import MICROS_PER_DAY, parse_timestamp, to_micros
from leadscore.model import ScoringModel, parse_model

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF_US = to_micros(AS_OF)


def ago(days: float = 0, micros: int = 0) -> datetime:
    """The moment `days` days (plus `micros` µs) before AS_OF; negative means after it."""
    return AS_OF - timedelta(days=days, microseconds=micros)


def ev(type_: str, days: float = 0, props: dict[str, Any] | None = None, event_id: str | None = None,
       micros: int = 0) -> Event:
    return Event.at("L1", type_, ago(days, micros), props, event_id)


def model(rules: list[dict[str, Any]], **top: Any) -> ScoringModel:
    """A model from plain data, read as JSON like a user's file would be."""
    document = {"version": 1, "name": "test", "rules": rules, **top}
    return parse_model(json.dumps(document), fmt="json")


def rule(when: dict[str, Any], points: float = 10, rule_id: str = "r", **more: Any) -> dict[str, Any]:
    return {"id": rule_id, "points": points, "when": when, **more}


def run(m: ScoringModel, attributes: dict[str, Any] | None = None, events: list[Event] = (),
        as_of: datetime = AS_OF) -> LeadScore:
    return score_lead(m, Lead("L1", attributes or {}), list(events), as_of)


def total(m: ScoringModel, attributes: dict[str, Any] | None = None, events: list[Event] = (),
          as_of: datetime = AS_OF) -> float:
    return run(m, attributes, events, as_of).total


# ---------------------------------------------------------------- operators
# (operator, operand, value, holds)
OPERATOR_CASES: list[tuple[str, Any, Any, bool]] = [
    # equals: folded text, numbers as numbers when the operand is a number
    ("equals", "germany", "Germany", True),
    ("equals", "GERMANY ", "  Germany\t\n", True),
    ("equals", "Germ", "Germany", False),
    ("equals", "giám đốc", "Giám Đốc", True),
    ("equals", "VIỆT NAM", "Việt Nam", True),
    ("equals", 50, 50, True),
    ("equals", 50, 50.0, True),
    ("equals", 50, "50", True),
    ("equals", 50, " 5e1 ", True),
    ("equals", 50, "50.000", True),
    ("equals", 50, "fifty", False),
    ("equals", 50, 51, False),
    ("equals", "50", 50, True),        # text operand: the value's text form "50"
    ("equals", "50", 50.0, True),      # whole floats have no decimal part
    ("equals", "0.1", 0.1, True),
    ("equals", True, True, True),
    ("equals", True, " TRUE ", True),
    ("equals", "true", True, True),
    ("equals", False, False, True),
    ("equals", True, 1, False),        # a boolean is not the number 1
    ("equals", 1, True, False),
    ("equals", "", "   ", True),
    # not_equals
    ("not_equals", "a", " A ", False),
    ("not_equals", "a", "b", True),
    ("not_equals", 5, "abc", True),
    ("not_equals", 5, "5.0", False),
    # in / not_in
    ("in", ["NO", "SE"], "no", True),
    ("in", ["NO", "SE"], " se ", True),
    ("in", ["NO", "SE"], "DK", False),
    ("in", [1, 2, 3], "3.0", True),
    ("in", [1, 2, 3], 4, False),
    ("in", ["3", "x"], 3, True),
    ("in", [True], "true", True),
    ("not_in", ["NO", "SE"], "DK", True),
    ("not_in", ["NO", "SE"], "No", False),
    ("not_in", [1, 2], "2", False),
    # contains / starts_with: folded, on the text form
    ("contains", "vp", "Senior VP of Sales", True),
    ("contains", " VP ", "vp", True),
    ("contains", "vp", "Director", False),
    ("contains", "234", 12345, True),
    ("contains", "đốc", "GIÁM ĐỐC", True),
    ("contains", "", "anything", True),
    ("starts_with", "vp", "  VP Sales", True),
    ("starts_with", "vp", "Senior VP", False),
    ("starts_with", "tr", True, True),
    # matches: the pattern as written, re.search on the text form (not folded)
    ("matches", "Chief", "Chief Executive", True),
    ("matches", "Chief", "chief executive", False),
    ("matches", "(?i)CHIEF", "chief executive", True),
    (r"matches", r"\bceo\b", "the ceo here", True),
    ("matches", "^x", " x", False),
    ("matches", "^50$", 50.0, True),
    ("matches", "^true$", True, True),
    ("matches", "Đốc", "Giám Đốc", True),
    ("matches", "Đốc", "giám đốc", False),
    # numeric operators: numbers and numeric texts; anything else is false
    ("gt", 5, 10, True),
    ("gt", 5, 5, False),
    ("gte", 5, 5, True),
    ("gte", 5, "5", True),
    ("gt", 7, " 7.5 ", True),
    ("gt", 999, "1e3", True),
    ("gt", 0, "+3", True),
    ("gt", 0.4, ".5", True),
    ("gte", 5, "5.", True),
    ("lt", 0, -3, True),
    ("lt", 0, "-3", True),
    ("lte", 2.5, 2.5, True),
    ("lte", 2.5, 2.5000001, False),
    ("gt", 1, "abc", False),
    ("lt", 1, "abc", False),
    ("lt", 1, "", False),
    ("lt", 1, "nan", False),
    ("gt", 1, "inf", False),
    ("gt", 1, "1_000", False),
    ("gt", 1, "0x10", False),
    ("gt", 1, "5 apples", False),
    ("gt", 0, True, False),
    ("lt", 1, False, False),
    ("between", [1, 5], 5, True),
    ("between", [1, 5], 1, True),
    ("between", [1, 5], 0.999, False),
    ("between", [1, 5], 5.001, False),
    ("between", [1, 5], "3", True),
    ("between", [1, 5], "x", False),
    ("between", [2, 2], 2, True),
    # exists: present and not null
    ("exists", True, "x", True),
    ("exists", False, "x", False),
    ("exists", True, "", True),
    ("exists", True, 0, True),
    ("exists", True, False, True),
]

ONE_OPERAND_PER_OP = {
    "equals": "x", "not_equals": "x", "in": ["x"], "not_in": ["x"], "contains": "x",
    "starts_with": "x", "matches": ".*", "gt": 0, "gte": 0, "lt": 0, "lte": 0,
    "between": [0, 1], "exists": True,
}


def _case_id(case: tuple[str, Any, Any, bool]) -> str:
    return f"{case[2]!r} {case[0]} {case[1]!r}"


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=[_case_id(c) for c in OPERATOR_CASES])
def test_operator_on_attribute(case: tuple[str, Any, Any, bool]) -> None:
    op, operand, value, holds = case
    m = model([rule({"attribute": "x", op: operand})])
    assert total(m, {"x": value}) == (10 if holds else 0)


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=[_case_id(c) for c in OPERATOR_CASES])
def test_operator_on_event_property(case: tuple[str, Any, Any, bool]) -> None:
    op, operand, value, holds = case
    m = model([rule({"event": "visit", "where": {"p": {op: operand}}})])
    assert total(m, {}, [ev("visit", 1, {"p": value})]) == (10 if holds else 0)


@pytest.mark.parametrize("op", list(ONE_OPERAND_PER_OP))
@pytest.mark.parametrize("missing", ["absent", None, math.nan], ids=["absent", "null", "nan"])
def test_missing_value_fails_every_operator_but_exists_false(op: str, missing: Any) -> None:
    attributes = {} if missing == "absent" else {"x": missing}
    for operand in ([ONE_OPERAND_PER_OP[op]] if op != "exists" else [True, False]):
        m = model([rule({"attribute": "x", op: operand})])
        expected = 10 if (op == "exists" and operand is False) else 0
        assert total(m, attributes) == expected, (op, operand)
        m = model([rule({"event": "visit", "where": {"x": {op: operand}}})])
        assert total(m, {}, [ev("visit", 1, attributes)]) == expected, (op, operand)


def test_not_equals_and_not_in_on_absent_attribute_are_false() -> None:
    assert total(model([rule({"attribute": "country", "not_equals": "NO"})])) == 0
    assert total(model([rule({"attribute": "country", "not_in": ["NO", "SE"]})])) == 0
    # `not` of equals is how to include the absent ones
    assert total(model([rule({"not": {"attribute": "country", "equals": "NO"}})])) == 10


def test_norway_in_a_yaml_list_matches_the_text_no() -> None:
    m = parse_model(
        "version: 1\nname: t\nrules:\n"
        "  - {id: nordic, points: 5, when: {attribute: country, in: [NO, SE, DK]}}\n"
    )
    assert total(m, {"country": "no"}) == 5
    assert total(m, {"country": False}) == 0


# ---------------------------------------------------------------- rule kinds


def test_attribute_rule_gives_its_points_and_is_explained() -> None:
    m = model([rule({"attribute": "job_title", "matches": r"(?i)\b(ceo|vp|chief)\b"}, 20,
                    "exec-title", label="CEO / VP", group="fit")])
    result = run(m, {"job_title": "VP Marketing", "country": "NO"})
    assert result.total == 20
    assert result.groups == {"fit": 20}
    (contribution,) = result.contributions
    assert contribution.to_dict() == {
        "rule": "exec-title", "label": "CEO / VP", "group": "fit", "points": 20,
        "attributes": {"job_title": "VP Marketing"},
    }
    assert run(m, {"job_title": "Vice Chair"}).total == 0
    assert run(m, {"job_title": "Vice Chair"}).contributions == ()


def test_event_rule_once_counts_the_most_recent_matching_event() -> None:
    m = model([rule({"event": "page_view"}, 15)])
    result = run(m, {}, [ev("page_view", 3, event_id="a"), ev("page_view", 1, event_id="b"),
                         ev("page_view", 2, event_id="c")])
    assert result.total == 15
    assert [e.event_id for e in result.contributions[0].events] == ["b"]
    assert total(m, {}, [ev("signup", 1)]) == 0


def test_event_rule_once_with_decay_uses_the_most_recent_event() -> None:
    m = model([rule({"event": "page_view"}, 15, decay={"half_life_days": 20})])
    # most recent is 10 days old: 15 * 0.5 ** (10 / 20)
    assert total(m, {}, [ev("page_view", 30), ev("page_view", 10)]) == 15 * 0.5 ** (10 / 20)


def test_event_rule_each_counts_every_matching_event() -> None:
    m = model([rule({"event": "page_view"}, 5, repeat="each")])
    assert total(m, {}, [ev("page_view", d) for d in (1, 2, 3, 400)]) == 20  # 4 * 5


def test_max_times_keeps_the_most_recent_events() -> None:
    m = model([rule({"event": "page_view"}, 5, repeat="each", max_times=2)])
    events = [ev("page_view", 3, event_id="old"), ev("page_view", 1, event_id="new"),
              ev("page_view", 9, event_id="oldest"), ev("page_view", 2, event_id="mid")]
    result = run(m, {}, events)
    assert result.total == 10  # 2 * 5
    assert [e.event_id for e in result.contributions[0].events] == ["new", "mid"]


def test_decay_each_is_exact_and_sums_most_recent_first() -> None:
    m = model([rule({"event": "page_view"}, 10, repeat="each", max_times=3,
                    decay={"half_life_days": 30})])
    events = [ev("page_view", 60), ev("page_view", 5), ev("page_view", 30), ev("page_view", 1)]
    result = run(m, {}, events)
    # counted: ages 1, 5, 30 (60 is the 4th): 10*0.5**(1/30) + 10*0.5**(5/30) + 10*0.5**(30/30)
    expected = 0.0
    for age in (1, 5, 30):
        expected += 10 * 0.5 ** (age / 30)
    assert result.total == expected
    assert result.score == 23.68  # 9.7716... + 8.9090... + 5 = 23.6806...
    counted = result.contributions[0].events
    assert [e.age_days for e in counted] == [1, 5, 30]
    assert [e.factor for e in counted] == [0.5 ** (1 / 30), 0.5 ** (5 / 30), 0.5]


def test_decay_of_fractional_ages() -> None:
    m = model([rule({"event": "e"}, -8, decay={"half_life_days": 7})])
    # 36 hours = 1.5 days: -8 * 0.5 ** (1.5 / 7)
    result = run(m, {}, [Event.at("L1", "e", AS_OF - timedelta(hours=36))])
    assert result.raw_groups["default"] == -8 * 0.5 ** (1.5 / 7)
    assert result.total == 0  # clipped to score.min


def test_min_count() -> None:
    m = model([rule({"event": "page_view", "min_count": 3}, 12, decay={"half_life_days": 10})])
    two = [ev("page_view", 10), ev("page_view", 20)]
    assert total(m, {}, two) == 0
    # three events: once, from the most recent (10 days): 12 * 0.5 ** (10 / 10) = 6
    assert total(m, {}, [*two, ev("page_view", 30)]) == 6


def test_min_count_inside_a_combinator() -> None:
    m = model([rule({"all": [{"event": "visit", "min_count": 2, "within_days": 7},
                             {"attribute": "x", "exists": True}]})])
    assert total(m, {"x": 1}, [ev("visit", 1), ev("visit", 8)]) == 0
    assert total(m, {"x": 1}, [ev("visit", 1), ev("visit", 7)]) == 10


def test_within_days_boundary_is_inclusive() -> None:
    m = model([rule({"event": "visit", "within_days": 7})])
    assert total(m, {}, [ev("visit", 7)]) == 10                # age exactly 7 days counts
    assert total(m, {}, [ev("visit", 7, micros=1)]) == 0       # 1 µs older does not
    assert total(m, {}, [ev("visit", 0)]) == 10


def test_within_days_zero_counts_only_events_at_as_of() -> None:
    m = model([rule({"event": "visit", "within_days": 0})])
    assert total(m, {}, [ev("visit", 0)]) == 10
    assert total(m, {}, [ev("visit", 0, micros=1)]) == 0


def test_fractional_within_days() -> None:
    m = model([rule({"event": "visit", "within_days": 0.5})])
    assert total(m, {}, [Event.at("L1", "visit", AS_OF - timedelta(hours=12))]) == 10
    assert total(m, {}, [Event.at("L1", "visit", AS_OF - timedelta(hours=12, seconds=1))]) == 0


def test_events_after_as_of_are_ignored_and_at_as_of_count() -> None:
    m = model([rule({"event": "visit"}, 10, repeat="each", decay={"half_life_days": 1})])
    assert total(m, {}, [ev("visit", 0, micros=-1)]) == 0      # 1 µs after as_of
    assert total(m, {}, [ev("visit", -3)]) == 0
    result = run(m, {}, [ev("visit", 0)])                      # exactly at as_of: factor 1
    assert result.total == 10
    assert result.contributions[0].events[0].age_days == 0


def test_timestamps_with_offsets_and_naive_ones_are_utc() -> None:
    m = model([rule({"event": "visit"})])
    # 2026-02-28T20:00-05:00 is 2026-03-01T01:00Z, after as_of
    assert total(m, {}, [Event.at("L1", "visit", "2026-02-28T20:00:00-05:00")]) == 0
    assert total(m, {}, [Event.at("L1", "visit", "2026-03-01T00:30:00+01:00")]) == 10
    assert total(m, {}, [Event.at("L1", "visit", "2026-03-01T00:00:00")]) == 10   # naive = UTC
    assert total(m, {}, [Event.at("L1", "visit", "2026-03-01T00:00:01")]) == 0
    assert score_lead(m, Lead("L1"), [ev("visit", 0)], AS_OF_US).total == 10       # as_of in µs


def test_duplicate_event_ids_count_once_and_the_first_one_counts() -> None:
    each = model([rule({"event": "visit"}, 10, repeat="each")])
    assert total(each, {}, [ev("visit", 1, event_id="x"), ev("visit", 1, event_id="x")]) == 10
    assert total(each, {}, [ev("visit", 1, event_id="x"), ev("visit", 2, event_id="y"),
                            ev("visit", 3, event_id="x")]) == 20
    # events without an id are never merged
    assert total(each, {}, [ev("visit", 1), ev("visit", 1)]) == 20
    # the first copy is the one that counts (its properties, its timestamp)
    pricing = model([rule({"event": "visit", "where": {"url": {"contains": "pricing"}}})])
    assert total(pricing, {}, [ev("visit", 1, {"url": "/blog"}, "x"),
                               ev("visit", 1, {"url": "/pricing"}, "x")]) == 0
    assert total(pricing, {}, [ev("visit", 1, {"url": "/pricing"}, "x"),
                               ev("visit", 1, {"url": "/blog"}, "x")]) == 10
    decayed = model([rule({"event": "visit"}, 8, decay={"half_life_days": 1})])
    assert total(decayed, {}, [ev("visit", 2, event_id="x"), ev("visit", 0, event_id="x")]) == 2


def test_same_event_id_on_another_type_is_still_a_duplicate() -> None:
    m = model([rule({"event": "form_submit"}, 5), rule({"event": "page_view"}, 3, "pv")])
    assert total(m, {}, [ev("page_view", 1, event_id="x"), ev("form_submit", 1, event_id="x")]) == 3


def test_equal_timestamps_the_later_input_counts_first() -> None:
    # the module's decision (the spec leaves ties open); only the explanation shows it
    m = model([rule({"event": ["a", "b"]}, 2, repeat="each", max_times=2)])
    events = [ev("a", 1, event_id="a-first"), ev("a", 1, event_id="a-second"),
              ev("b", 1, event_id="b-first"), ev("a", 2, event_id="older")]
    result = run(m, {}, events)
    assert result.total == 4
    assert [e.event_id for e in result.contributions[0].events] == ["a-second", "a-first"]


def test_created_at_as_datetime_and_with_offset() -> None:
    m = model([rule({"no_event": "email_open", "within_days": 10}, 7)])
    assert total(m, {"created_at": ago(9)}) == 0
    assert total(m, {"created_at": ago(10)}) == 7
    # 2026-02-19T01:00+01:00 is 2026-02-19T00:00Z: exactly 10 days before as_of
    assert total(m, {"created_at": "2026-02-19T01:00:00+01:00"}) == 7
    assert total(m, {"created_at": "2026-02-19T01:00:01+01:00"}) == 0


def test_several_event_types_in_one_condition() -> None:
    m = model([rule({"event": ["page_view", "form_submit"]}, 3, repeat="each", max_times=3)])
    events = [ev("page_view", 5, event_id="pv5"), ev("form_submit", 1, event_id="fs1"),
              ev("page_view", 2, event_id="pv2"), ev("form_submit", 4, event_id="fs4"),
              ev("email_open", 0, event_id="eo0")]
    result = run(m, {}, events)
    assert result.total == 9  # 3 * 3
    assert [e.event_id for e in result.contributions[0].events] == ["fs1", "pv2", "fs4"]
    once = model([rule({"event": ["page_view", "form_submit"]}, 4, decay={"half_life_days": 2})])
    # the most recent of either type: form_submit 1 day ago: 4 * 0.5 ** (1/2)
    assert total(once, {}, events) == 4 * 0.5 ** (1 / 2)


def test_where_with_several_properties_needs_all_of_them() -> None:
    m = model([rule({"event": "page_view", "where": {"url": {"contains": "/pricing"},
                                                     "plan": {"in": ["pro", "enterprise"]},
                                                     "seconds": {"gte": 30}}}, 7, repeat="each")])
    events = [
        ev("page_view", 1, {"url": "https://x.io/PRICING", "plan": "Pro", "seconds": "45"}),  # yes
        ev("page_view", 2, {"url": "/pricing", "plan": "free", "seconds": 60}),               # plan
        ev("page_view", 3, {"url": "/pricing", "plan": "enterprise", "seconds": 29}),          # seconds
        ev("page_view", 4, {"url": "/pricing", "plan": "enterprise"}),                        # absent
        ev("page_view", 5, {"url": "/pricing", "plan": "enterprise", "seconds": 30.0}),       # yes
    ]
    assert total(m, {}, events) == 14  # 2 * 7


def test_absence_rule_without_created_at() -> None:
    m = model([rule({"no_event": "email_open", "within_days": 30}, -10, group="engagement")],
              groups={"engagement": {"min": -20}})
    assert run(m).groups == {"engagement": -10}
    assert run(m, {}, [ev("email_open", 31)]).groups == {"engagement": -10}   # too old
    assert run(m, {}, [ev("email_open", 30)]).groups == {"engagement": 0}     # exactly 30: in
    assert run(m, {}, [ev("email_open", 30, micros=1)]).groups == {"engagement": -10}
    assert run(m, {}, [ev("email_open", -1)]).groups == {"engagement": -10}   # after as_of
    assert run(m, {}, [ev("page_view", 1)]).groups == {"engagement": -10}     # other type
    assert run(m, {"created_at": None}).groups == {"engagement": -10}
    assert run(m, {"created_at": ""}).groups == {"engagement": -10}


def test_absence_rule_does_not_punish_a_young_lead() -> None:
    m = model([rule({"no_event": "email_open", "within_days": 30}, -10)], score={"min": -50, "max": 50})
    assert total(m, {"created_at": ago(29).isoformat()}) == 0
    assert total(m, {"created_at": ago(30, micros=-1).isoformat()}) == 0    # 1 µs short of 30 days
    assert total(m, {"created_at": ago(30).isoformat()}) == -10             # exactly 30 days old
    assert total(m, {"created_at": ago(400).isoformat()}) == -10
    assert total(m, {"created_at": "2026-01-30T00:00:00Z"}) == -10           # 30 days before
    assert total(m, {"created_at": "2026-01-30T00:00:01+00:00"}) == 0
    assert total(m, {"created_at": ago(-1).isoformat()}) == 0                # created after as_of


def test_absence_with_where_and_several_types() -> None:
    m = model([rule({"no_event": ["email_open", "email_click"], "within_days": 14,
                     "where": {"campaign": {"equals": "spring"}}}, 5)])
    assert total(m, {}, [ev("email_open", 3, {"campaign": "autumn"})]) == 5
    assert total(m, {}, [ev("email_click", 3, {"campaign": "Spring "})]) == 0
    assert total(m, {}, [ev("email_open", 15, {"campaign": "spring"})]) == 5


def test_combinators_nested() -> None:
    m = model([rule({"all": [
        {"any": [{"attribute": "country", "in": ["NO", "SE"]},
                 {"event": "demo_request", "within_days": 7}]},
        {"not": {"attribute": "email", "matches": "@gmail\\.com$"}},
        {"not": {"not": {"attribute": "employees", "gte": 50}}},
    ]}, 25)])
    base = {"country": "de", "email": "a@corp.com", "employees": "120"}
    assert total(m, base) == 0                                           # any: neither
    assert total(m, {**base, "country": " se"}) == 25
    assert total(m, base, [ev("demo_request", 7)]) == 25
    assert total(m, base, [ev("demo_request", 8)]) == 0
    assert total(m, {**base, "country": "NO", "email": "a@gmail.com"}) == 0
    assert total(m, {**base, "country": "NO", "email": "a@GMAIL.com"}) == 25   # matches is exact
    assert total(m, {**base, "country": "NO", "employees": 49}) == 0
    assert total(m, {"country": "NO", "employees": 50}) == 25                  # email absent
    result = run(m, {**base, "country": "NO"})
    assert result.contributions[0].attributes == {"country": "NO", "email": "a@corp.com",
                                                  "employees": "120"}


def test_not_of_absence_and_any_of_events() -> None:
    m = model([rule({"not": {"no_event": "visit", "within_days": 10}}, 4),
               rule({"any": [{"event": "a"}, {"event": "b", "min_count": 2}]}, 6, "r2")])
    assert total(m) == 0
    assert total(m, {}, [ev("visit", 3)]) == 4
    assert total(m, {}, [ev("b", 3)]) == 0
    assert total(m, {}, [ev("b", 3), ev("b", 300)]) == 6
    assert total(m, {}, [ev("a", 300), ev("visit", 10)]) == 10


# ---------------------------------------------------------------- groups, totals, stages, grades


def test_negative_points_and_group_clipping() -> None:
    m = model(
        [rule({"attribute": "a", "exists": True}, 30, "a", group="fit"),
         rule({"attribute": "b", "exists": True}, 30, "b", group="fit"),
         rule({"attribute": "c", "exists": True}, -15, "c", group="engagement"),
         rule({"attribute": "d", "exists": True}, -15, "d", group="engagement")],
        groups={"fit": {"max": 50}, "engagement": {"min": -20, "max": 60}},
    )
    result = run(m, {"a": 1, "b": 1, "c": 1, "d": 1})
    assert result.raw_groups == {"fit": 60, "engagement": -30}
    assert result.groups == {"fit": 50, "engagement": -20}    # clipped to [.., 50] and [-20, 60]
    assert result.total == 30                                 # 50 + (-20)
    assert result.explanation()["groups"] == {
        "fit": {"score": 50, "unclipped": 60},
        "engagement": {"score": -20, "unclipped": -30},
    }
    # a negative group is not clipped when it has no min
    result = run(m, {"c": 1, "d": 1, "a": 1})
    assert result.groups == {"fit": 30, "engagement": -20}
    assert result.total == 10


def test_total_is_clipped_to_score_range() -> None:
    m = model([rule({"attribute": "a", "exists": True}, 80, "a"),
               rule({"attribute": "b", "exists": True}, 80, "b"),
               rule({"attribute": "c", "exists": True}, -500, "c")])
    assert total(m, {"a": 1, "b": 1}) == 100                  # 160 clipped to the default 0..100
    assert total(m, {"c": 1}) == 0
    m = model([rule({"attribute": "a", "exists": True}, 80, "a"),
               rule({"attribute": "c", "exists": True}, -500, "c")], score={"min": -10, "max": 20})
    assert total(m, {"a": 1}) == 20
    assert total(m, {"c": 1}) == -10
    assert total(m, {}) == 0                                  # nothing fires: 0, inside the range


def test_no_rules_fire_gives_zero_clipped_to_score_min() -> None:
    m = model([rule({"attribute": "a", "exists": True})], score={"min": 5, "max": 10})
    assert total(m) == 5


def test_declared_group_without_rules_and_undeclared_group() -> None:
    m = model([rule({"attribute": "a", "exists": True}, 150, "big", group="extra")],
              groups={"quiet": {"min": 10, "max": 20, "grades": {"A": 15, "B": 10}}},
              score={"min": 0, "max": 1000})
    result = run(m, {"a": 1})
    assert result.raw_groups == {"quiet": 0, "extra": 150}
    assert result.groups == {"quiet": 10, "extra": 150}   # quiet: 0 clipped up to min 10
    assert result.grades == {"quiet": "B"}
    assert result.total == 160
    # the undeclared group has no bounds, even beyond the total's max
    result = run(model([rule({"attribute": "a", "exists": True}, 150, group="extra")]), {"a": 1})
    assert result.groups == {"extra": 150}
    assert result.total == 100


def test_grades_first_threshold_at_or_below_the_group_score() -> None:
    m = model([rule({"attribute": "p", "exists": True}, 1, "p", group="fit"),
               rule({"attribute": "q", "exists": True}, 24, "q", group="fit"),
               rule({"attribute": "r", "exists": True}, 70, "r", group="fit"),
               rule({"attribute": "s", "exists": True}, 9, "s", group="fit")],
              groups={"fit": {"max": 50, "grades": {"A": 40, "B": 25, "C": 10}}})

    def grade(*names: str) -> str | None:
        return run(m, dict.fromkeys(names, 1)).grades["fit"]

    assert grade("p", "q") == "B"            # 25: exactly B's threshold
    assert grade("q") == "C"                 # 24
    assert grade("s") is None                # 9: below the lowest grade
    assert grade() is None                   # 0
    assert grade("r") == "A"                 # 70 clipped to 50
    assert grade("p", "s") == "C"            # 10
    assert run(m, {"r": 1}).explanation()["groups"]["fit"] == {"score": 50, "unclipped": 70,
                                                               "grade": "A"}


def test_grades_with_negative_thresholds() -> None:
    m = model([rule({"attribute": "x", "lt": 0}, -30, group="eng")],
              groups={"eng": {"min": -20, "grades": {"hot": 10, "cold": -20}}})
    assert run(m, {"x": -1}).grades == {"eng": "cold"}
    assert run(m, {"x": 1}).grades == {"eng": "cold"}     # 0 >= -20


def test_stages_first_stage_at_or_below_the_total() -> None:
    m = model([rule({"attribute": "a", "exists": True}, 80, "a"),
               rule({"attribute": "b", "exists": True}, -0.01, "b"),
               rule({"attribute": "c", "exists": True}, 500, "c")],
              stages=[{"name": "SQL", "min_score": 80}, {"name": "MQL", "min_score": 50},
                      {"name": "Warm", "min_score": 20}, {"name": "New", "min_score": 0}])
    assert run(m, {"a": 1}).stage == "SQL"                 # exactly 80
    assert run(m, {"a": 1, "b": 1}).stage == "MQL"         # 79.99
    assert run(m, {"c": 1}).stage == "SQL"                 # clipped total 100
    assert run(m, {}).stage == "New"


def test_stage_uses_the_clipped_total_and_is_none_without_stages() -> None:
    m = model([rule({"attribute": "c", "exists": True}, -500)],
              stages=[{"name": "Hot", "min_score": 1}, {"name": "Cold", "min_score": -5}],
              score={"min": -5, "max": 10})
    assert run(m, {"c": 1}).stage == "Cold"                # -500 clipped to -5
    assert run(model([rule({"attribute": "c", "exists": True})]), {"c": 1}).stage is None


# ---------------------------------------------------------------- rounding


def test_rounding_only_at_the_end() -> None:
    third = 0.3333333333333333
    m = model([rule({"attribute": "a", "exists": True}, third, f"r{i}") for i in range(3)])
    result = run(m, {"a": 1})
    # exact: 0.3333333333333333 * 3 sums to 1.0; rounding each first would give 0.99
    assert result.total == third + third + third == 1.0
    assert result.score == 1.0
    assert [c.to_dict()["points"] for c in result.contributions] == [0.33, 0.33, 0.33]

    m = model([rule({"attribute": "a", "exists": True}, 0.005, f"r{i}") for i in range(3)])
    result = run(m, {"a": 1})
    # each 0.005 would round to 0.01 (0.03 together); the exact sum 0.015 is
    # 0.01499999999999999944... in binary, which rounds to 0.01
    assert result.total == 0.005 + 0.005 + 0.005
    assert result.score == 0.01
    assert result.explanation()["score"] == 0.01


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(0.125, 0.13), (-0.125, -0.13), (2.675, 2.67), (1.005, 1.0), (0.015, 0.01), (2.5, 2.5),
     (99.995, 100.0), (0.285, 0.28), (12.345, 12.35), (-12.345, -12.35), (1e-9, 0.0), (-1e-9, 0.0),
     (100, 100.0), (23.680652, 23.68)],
)
def test_round_score_half_away_from_zero_on_the_binary_value(value: float, rounded: float) -> None:
    # 0.125 is exact in binary (a true half): away from zero. 2.675 is 2.67499999... and
    # 0.285 is 0.28499999... in binary (down); 99.995 is 99.99500000000000454... (up).
    assert round_score(value) == rounded


def test_score_property_rounds_the_decayed_total() -> None:
    m = model([rule({"event": "visit"}, 10, repeat="each", decay={"half_life_days": 30})])
    result = run(m, {}, [ev("visit", 1), ev("visit", 5), ev("visit", 30)])
    # 10 * (0.5**(1/30) + 0.5**(5/30) + 0.5) = 9.7716... + 8.9090... + 5 = 23.6806...
    assert result.score == 23.68
    assert result.total != 23.68


# ---------------------------------------------------------------- explanation


def test_explanation_lists_each_contributing_rule_with_its_events() -> None:
    m = model(
        [rule({"attribute": "job_title", "contains": "vp"}, 20, "exec", label="VP", group="fit"),
         rule({"attribute": "job_title", "contains": "intern"}, -5, "intern", group="fit"),
         rule({"event": "page_view", "where": {"url": {"contains": "/pricing"}}, "within_days": 90},
              15, "pricing", group="engagement", repeat="each", max_times=2,
              decay={"half_life_days": 30}),
         rule({"no_event": "email_open", "within_days": 30}, -3, "silent", group="engagement")],
        groups={"fit": {"max": 50, "grades": {"A": 40, "B": 20}}, "engagement": {"min": -20}},
        stages=[{"name": "MQL", "min_score": 30}, {"name": "New", "min_score": 0}],
    )
    events = [
        ev("page_view", 30, {"url": "/pricing"}, "e1"),
        ev("page_view", 0, {"url": "/pricing?x"}, "e2"),
        ev("page_view", 60, {"url": "/pricing"}, "e3"),
        ev("page_view", 1, {"url": "/blog"}, "e4"),
    ]
    result = run(m, {"job_title": "VP Sales"}, events)
    # pricing: 15 * 0.5**(0/30) + 15 * 0.5**(30/30) = 15 + 7.5 = 22.5; silent: -3
    assert result.raw_groups == {"fit": 20, "engagement": 19.5}
    assert result.total == 39.5
    assert result.explanation() == {
        "score": 39.5,
        "stage": "MQL",
        "groups": {
            "fit": {"score": 20, "grade": "B"},
            "engagement": {"score": 19.5},
        },
        "rules": [
            {"rule": "exec", "label": "VP", "group": "fit", "points": 20,
             "attributes": {"job_title": "VP Sales"}},
            {"rule": "pricing", "label": "pricing", "group": "engagement", "points": 22.5,
             "events_counted": 2,
             "events": [
                 {"event_id": "e2", "type": "page_view", "timestamp": "2026-03-01T00:00:00Z",
                  "age_days": 0.0, "factor": 1.0},
                 {"event_id": "e1", "type": "page_view", "timestamp": "2026-01-30T00:00:00Z",
                  "age_days": 30.0, "factor": 0.5},
             ]},
            {"rule": "silent", "label": "silent", "group": "engagement", "points": -3},
        ],
    }
    json.dumps(result.explanation())  # JSON-ready


def test_explanation_shows_at_most_20_events_but_counts_all() -> None:
    m = model([rule({"event": "visit"}, 1, repeat="each")])
    result = run(m, {}, [ev("visit", d, event_id=f"v{d}") for d in range(25)])
    explained = result.explanation()["rules"][0]
    assert result.total == 25
    assert explained["events_counted"] == 25
    assert [e["event_id"] for e in explained["events"]] == [f"v{d}" for d in range(20)]


def test_explanation_rounds_factors_and_ages() -> None:
    m = model([rule({"event": "visit"}, 9, decay={"half_life_days": 7})])
    result = run(m, {}, [Event.at("L1", "visit", AS_OF - timedelta(hours=10))])
    (event,) = result.explanation()["rules"][0]["events"]
    # age 10/24 = 0.41666 days; factor 0.5 ** (0.41666 / 7) = 0.95957...
    assert event["age_days"] == 0.42
    assert event["factor"] == 0.9596
    assert result.total == 9 * 0.5 ** ((10 / 24) / 7)
    assert result.contributions[0].events[0].age_days == 10 * 3600 * 1_000_000 / MICROS_PER_DAY


def test_rules_that_give_nothing_are_not_listed() -> None:
    m = model([rule({"event": "visit"}, 1, "a"), rule({"attribute": "x", "exists": True}, 2, "b")])
    assert run(m).explanation() == {"score": 0, "stage": None, "groups": {"default": {"score": 0}},
                                    "rules": []}


def test_created_at_is_read_the_same_every_time() -> None:
    """Lead.created_us remembers the moments of the texts it read: the same text gives the
    same moment again, an empty or bad text is never remembered as a moment."""
    from leadscore.engine import scoring

    text = "2026-01-01T02:00:00+02:00"
    for _ in range(2):
        assert Lead("a", {"created_at": text}).created_us() == to_micros(parse_timestamp("2026-01-01T00:00:00Z"))
        assert Lead("b", {"created_at": "  "}).created_us() is None
        with pytest.raises(ValueError):
            Lead("c", {"created_at": "yesterday"}).created_us()
    assert scoring._CREATED[text] == to_micros(parse_timestamp(text)) and "  " not in scoring._CREATED


@pytest.mark.parametrize("kind", ["Event", "Lead", "CountedEvent", "Contribution", "LeadScore", "ScoreChange"])
def test_scores_are_built_as_the_dataclass_says(kind: str) -> None:
    """Event, Lead, CountedEvent, Contribution, LeadScore (engine/scoring.py) and the service's
    ScoreChange have a faster __init__ (engine/records.direct_init): the same parameters
    (names, order, defaults) as the one the dataclass writes, each field set to its argument,
    positional or by name; a default dict of its own; equality, hashing, replace, pickling
    and immutability kept."""
    import dataclasses
    import inspect
    import pickle

    from leadscore.engine import scoring
    from leadscore.service import scoring as service

    cls = getattr(scoring, kind, None) or getattr(service, kind)
    reference = dataclasses.make_dataclass(  # the __init__ the dataclass would write
        "Reference", [(f.name, Any, dataclasses.field(default=f.default, default_factory=f.default_factory))
                      for f in dataclasses.fields(cls)])
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls.__init__).parameters)[1:] == names
    for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        expected = inspect.signature(reference.__init__).parameters[name].default
        if expected is not inspect.Parameter.empty and param.default is not dataclasses.MISSING:
            assert param.default == expected, name
    values = [f"v{i}" for i in range(len(names))]
    for built in (cls(*values), cls(**dict(zip(names, values, strict=True)))):
        assert [getattr(built, name) for name in names] == values
        assert built == cls(*values) and built != cls(*values[:-1], "other")
        assert pickle.loads(pickle.dumps(built)) == built
        assert dataclasses.replace(built, **{names[0]: "x"}) == cls("x", *values[1:])
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, names[0], "y")
    required = [n for n, p in list(inspect.signature(reference.__init__).parameters.items())[1:]
                if p.default is inspect.Parameter.empty]
    shortest = cls(*values[: len(required)])
    longest = reference(*values[: len(required)])
    assert [getattr(shortest, n) for n in names] == [getattr(longest, n) for n in names]
    if kind in ("Lead", "Contribution"):
        assert shortest.attributes is not cls(*values[: len(required)]).attributes
    if kind in ("Event", "Lead", "CountedEvent", "Contribution"):
        assert hash(cls(*values)) == hash(cls(*values))


def test_direct_init_refuses_what_it_cannot_write() -> None:
    """A class it would build wrongly is refused when it is defined, not misbuilt later."""
    import dataclasses

    from leadscore.engine.records import direct_init

    class Plain:
        pass

    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:  # pragma: no cover - never built
            raise AssertionError

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Named:
        x: int

    @dataclasses.dataclass
    class Mutable:
        x: int

    for cls in (Plain, Checked, Named, Mutable):
        with pytest.raises(TypeError, match=cls.__name__):
            direct_init(cls)


def test_events_are_built_as_the_dataclass_says() -> None:
    """Event has a faster __init__ of its own (engine/scoring.py): same fields, defaults, equality,
    immutability."""
    import dataclasses

    a, b = Event("L1", "page_view", 5), Event(lead_id="L1", type="page_view", ts=5, properties={}, event_id=None)
    assert a == b and a.properties == {} and a.properties is not Event("L1", "t", 1).properties
    assert Event("L1", "t", 1, None).properties is None  # given, even None, is kept
    assert dataclasses.replace(a, ts=7, event_id="e") == Event("L1", "page_view", 7, {}, "e")
    assert repr(a) == "Event(lead_id='L1', type='page_view', ts=5, properties={}, event_id=None)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.ts = 6  # type: ignore[misc]
