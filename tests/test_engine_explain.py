"""The fast paths of engine/explain.py (remembered texts, numbers written without a call of
round_score or round) give, byte for byte, what json writes of the explanation, the rounded
groups and the grades; every value twice, so that the second time finds what the first left."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadscore.engine import Contribution, CountedEvent, LeadScore, explain, round_score
from leadscore.engine.explain import (
    explanation_json,
    grades_json,
    public_fields_json,
    rounded_groups_json,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TS = 1_767_225_600_123_400  # 2026-01-01T00:00:00.1234Z

# the bounds of the fast paths, and what lies on either side of them
EDGES = (0.0, -0.0, 1.0, -1.0, 0.005, -0.005, 0.015, 0.125, -0.125, 0.375, 2.5, 1e-5, -1e-5, 5e-5,
         0.00005, 0.99995, 1e10, -1e10, 1e12, -1e12, 1e13 + 0.125, 1e15, 1e16, 1e300, 5e-324,
         math.nextafter(1e10, 0), math.nextafter(1e12, 0), math.nextafter(-1e12, 0),
         math.nextafter(1e10, math.inf), 123456789.995, 99999999999.995, 0.15949189587793347,
         37.07822965608796, math.nan, math.inf, -math.inf)
numbers = st.one_of(
    st.floats(),
    st.floats(-2e12, 2e12),
    st.floats(-2, 2),
    st.integers(-10**6, 10**6).map(lambda n: n / 8),
    st.integers(-10**6, 10**6).map(lambda n: n / 200),
    st.sampled_from(EDGES),
    st.integers(-10**20, 10**20),
    st.booleans(),
)
names = st.sampled_from(("fit", "engagement", "Giám đốc", 'a"b\\c', "\u2028", "", "x" * 40))
texts_or_none = st.one_of(st.none(), names)


def _json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _outcome(make: Any) -> tuple[str, Any]:
    """A text, or the kind of error making it raised."""
    try:
        return "text", make()
    except Exception as error:  # noqa: BLE001 - the same error either way
        return "error", type(error)


def _check(score: LeadScore) -> None:
    """The texts of a score, and of a copy of it (which finds the remembered texts), are
    what json writes of its explanation, its rounded groups, its grades, its public fields."""
    for result in (score, replace(score), replace(score)):
        assert _outcome(lambda r=result: explanation_json(r)) == _outcome(lambda r=result: _json(r.explanation()))
        assert _outcome(lambda r=result: rounded_groups_json(r)) == _outcome(
            lambda r=result: _json(r.rounded_groups()))
        assert grades_json(result.grades) == _json(result.grades)
        expected = _outcome(lambda r=result: _json({"score": r.score, "stage": r.stage, "groups": r.rounded_groups(),
                                                    "grades": dict(r.grades)}))
        got = _outcome(lambda r=result: "{" + public_fields_json(r) + "}")
        assert got == expected


@st.composite
def scores(draw: st.DrawFn, *, rules: bool = True) -> LeadScore:
    group_names = draw(st.lists(names, unique=True, max_size=3))
    groups = {name: draw(numbers) for name in group_names}
    raw_groups = {name: draw(st.one_of(st.just(value), numbers)) for name, value in groups.items()}
    grades = {name: draw(texts_or_none) for name in group_names if draw(st.booleans())}
    contributions: tuple[Contribution, ...] = ()
    if rules and draw(st.booleans()):
        contributions = tuple(draw(st.lists(contributions_, min_size=1, max_size=2)))
    return LeadScore("L", draw(numbers), groups, raw_groups, grades, draw(texts_or_none), contributions)


counted_events = st.builds(
    CountedEvent,
    st.one_of(st.none(), st.text(max_size=4), names),
    names,
    st.one_of(st.sampled_from((TS, TS - 1, 0, 1, -1, 10**6, -30_610_224_000_000_001)),
              st.integers(-60_000_000_000_000_000, 250_000_000_000_000_000)),
    numbers,
    st.one_of(st.just(1.0), st.just(1), numbers),
)
contributions_ = st.builds(
    Contribution,
    names,
    texts_or_none,
    names,
    numbers.filter(lambda n: n == n),  # NaN points are no contribution
    st.lists(counted_events, max_size=22).map(tuple),
    st.dictionaries(st.one_of(names, st.integers(-3, 3), st.booleans(), st.none(), st.floats(-2, 2)),
                    st.one_of(numbers, texts_or_none), max_size=3),
)


@SETTINGS
@given(scores())
def test_every_text_is_what_json_writes(score: LeadScore) -> None:
    _check(score)


@SETTINGS
@given(scores(rules=False))
def test_every_text_of_a_score_without_rules_is_what_json_writes(score: LeadScore) -> None:
    _check(score)


@pytest.mark.parametrize("first", [0.0, -0.0])
def test_a_zero_keeps_its_sign_whatever_was_remembered_before(first: float) -> None:
    """0.0 and -0.0 are the same key of a dict: the remembered texts must not swap them."""
    for zero in (first, -first, first, -first):
        for where in ("total", "group", "raw"):
            groups = {"fit": zero if where == "group" else 0.0, "engagement": 0.0}
            raw_groups = {"fit": zero if where == "raw" else 0.0, "engagement": 0.0}
            _check(LeadScore("L", zero if where == "total" else 0.0, groups, raw_groups,
                             {"fit": "D", "engagement": None}, "New", ()))
            _check(LeadScore("L", 5.0, {"fit": zero, "engagement": 5.0}, {"fit": zero, "engagement": 5.0},
                             {}, None, ()))


@given(numbers)
@example(-0.0)
@settings(max_examples=2000, deadline=None)
def test_rounded_numbers_are_written_as_json_writes_round_score(value: Any) -> None:
    assert _outcome(lambda: explain._rounded(value)) == _outcome(lambda: _json(round_score(value)))


@given(numbers, st.sampled_from((2, 4)))
@settings(max_examples=2000, deadline=None)
def test_ages_and_factors_are_written_as_json_writes_them_rounded(value: Any, digits: int) -> None:
    counted = CountedEvent("e", "t", TS, value, 1.0) if digits == 2 else CountedEvent("e", "t", TS, 1.0, value)
    expected = _json([counted.to_dict()])[1:-1]
    assert explain._events_json((counted,)) == expected
    assert explain._events_json((counted,)) == expected


def test_remembered_texts_stay_bounded() -> None:
    limit = explain._TEXTS_LIMIT
    for n in range(limit + 10):
        value = n + 0.5
        score = LeadScore("L", value, {"fit": value}, {"fit": value}, {"fit": str(n)}, None, (
            Contribution("r", None, "fit", value, (CountedEvent(None, "t", TS + n, 1.5, 1.0),)),) if n % 2 else ())
        _ = explanation_json(score), rounded_groups_json(score), grades_json(score.grades)
    for cache in (explain._PLAIN, explain._ROUNDED_GROUPS, explain._GRADES):
        assert 0 < len(cache) <= limit
