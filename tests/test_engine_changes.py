"""next_change against the engine: for models without decay, the score is the same at
as_of and at every moment before next_change; and next_change is never needlessly None."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.engine import Event, Lead, iso, score_lead
from leadscore.engine.changes import decays, next_change
from leadscore.engine.scoring import score_and_schedule
from leadscore.model import parse_model
from strategies import AS_OF_US, scenarios

DAY = 86_400_000_000
AS_OF = 1_780_000_000_000_000
TYPES = ("view", "open", "click")

condition = st.one_of(
    st.builds(lambda t, w, n: {"event": t, "within_days": w, "min_count": n},
              st.sampled_from(TYPES), st.sampled_from([0.5, 1, 3, 7.25]), st.integers(1, 3)),
    st.builds(lambda t, w: {"no_event": t, "within_days": w}, st.sampled_from(TYPES),
              st.sampled_from([1, 2.5, 10])),
    st.builds(lambda t, w: {"event": t, "within_days": w, "where": {"url": {"contains": "pricing"}}},
              st.sampled_from(TYPES), st.sampled_from([1, 4])),
    st.builds(lambda t: {"event": t}, st.sampled_from(TYPES)),
)
rule = st.one_of(
    st.builds(lambda c, p: {"points": p, "when": c}, condition, st.sampled_from([5, -3, 10])),
    st.builds(lambda t, w, k: {"points": 4, "when": {"event": t, "within_days": w},
                               "repeat": "each", "max_times": k},
              st.sampled_from(TYPES), st.sampled_from([1, 2, 6]), st.integers(1, 3)),
    st.builds(lambda a, b: {"points": 7, "when": {"any": [a, {"not": b}]}}, condition, condition),
)


def _model(rules: list[dict[str, Any]]) -> Any:
    doc = {"version": 1, "name": "p", "score": {"min": -100, "max": 100},
           "rules": [{"id": f"r{i}", **r} for i, r in enumerate(rules)],
           "stages": [{"name": "Hot", "min_score": 10}, {"name": "Cold", "min_score": -100}]}
    import json

    return parse_model(json.dumps(doc), fmt="json")


events = st.lists(
    st.builds(
        lambda i, t, offset, url: Event("L", t, AS_OF + offset, {"url": url}, f"e{i % 12}"),
        st.integers(0, 30), st.sampled_from(TYPES),
        st.integers(-12 * DAY, 10 * 60_000_000), st.sampled_from(["/pricing", "/blog"]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule, min_size=1, max_size=4), events,
       st.one_of(st.none(), st.integers(-15 * DAY, 0)), st.floats(0, 1))
def test_score_is_constant_until_next_change(
    rules: list[dict[str, Any]], evs: list[Event], created: int | None, where: float
) -> None:
    model = _model(rules)
    lead = Lead("L", {} if created is None else {"created_at": iso(AS_OF + created)})
    before = score_lead(model, lead, evs, AS_OF)
    assert not decays(model, before)
    moment = next_change(model, lead, evs, AS_OF)
    horizon = AS_OF + 30 * DAY if moment is None else moment
    assert horizon > AS_OF
    for t in (horizon - 1, AS_OF + int((horizon - 1 - AS_OF) * where)):
        later = score_lead(model, lead, evs, t)
        assert (later.total, later.groups, later.stage) == (before.total, before.groups, before.stage)


def test_next_change_moments() -> None:
    model = _model([
        {"points": 5, "when": {"event": "view", "within_days": 2}},
        {"points": -5, "when": {"no_event": "open", "within_days": 10}},
    ])
    lead = Lead("L", {"created_at": iso(AS_OF - 3 * DAY)})
    view = Event("L", "view", AS_OF - DAY)
    # the view leaves its 2-day window one microsecond after AS_OF + 1 day
    assert next_change(model, lead, [view], AS_OF) == AS_OF + DAY + 1
    # silence starts to count 10 days after created_at
    assert next_change(model, lead, [], AS_OF) == AS_OF + 7 * DAY
    # an event stamped in the future counts from its moment
    assert next_change(model, lead, [Event("L", "view", AS_OF + 5)], AS_OF) == AS_OF + 5
    assert next_change(_model([{"points": 1, "when": {"event": "view"}}]), lead, [view], AS_OF) is None


def test_decays() -> None:
    model = parse_model(
        "version: 1\nname: d\nrules:\n  - {id: a, points: 10, when: {event: view}, decay: {half_life_days: 3}}\n"
    )
    lead = Lead("L")
    assert decays(model, score_lead(model, lead, [Event("L", "view", AS_OF - DAY)], AS_OF))
    assert not decays(model, score_lead(model, lead, [], AS_OF))


def _same_as_the_three(model: Any, lead: Lead, evs: list[Event], as_of: int) -> None:
    result, moment, decaying = score_and_schedule(model, lead, evs, as_of)
    reference = score_lead(model, lead, evs, as_of)
    assert (result.total, result.groups, result.raw_groups, result.grades, result.stage,
            result.contributions) == (reference.total, reference.groups, reference.raw_groups,
                                      reference.grades, reference.stage, reference.contributions)
    assert result.explanation() == reference.explanation()
    assert moment == next_change(model, lead, evs, as_of)
    assert decaying == decays(model, reference)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule, min_size=1, max_size=4), events,
       st.one_of(st.none(), st.integers(-15 * DAY, 0)), st.sampled_from([0, -1, 1, DAY // 2]))
def test_score_and_schedule_is_score_lead_next_change_and_decays(
    rules: list[dict[str, Any]], evs: list[Event], created: int | None, shift: int
) -> None:
    """The one-pass function the service runs gives the numbers of the three reference functions."""
    lead = Lead("L", {} if created is None else {"created_at": iso(AS_OF + created)})
    _same_as_the_three(_model(rules), lead, evs, AS_OF + shift)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_score_and_schedule_on_random_models(scenario: Any) -> None:
    """Also on the property tests' models: nested conditions, decay, property filters."""
    model, lead, evs = scenario
    _same_as_the_three(model, lead, evs, AS_OF_US)


def _only_counted(model: Any, evs: list[Event], as_of: int) -> list[Event]:
    from leadscore.engine.scoring import event_horizons, oldest_counted

    oldest = oldest_counted(event_horizons(model), as_of)
    return [e for e in evs if e.type in oldest and (oldest[e.type] is None or e.ts >= oldest[e.type])]


def _same_without_old_events(model: Any, lead: Lead, evs: list[Event], as_of: int) -> None:
    # a store holds an event_id once (the first copy wins at ingestion): the engine's own
    # de-duplication then has nothing to do, with or without the older events
    seen: set[str | None] = set()
    evs = [e for e in evs if e.event_id is None or not (e.event_id in seen or seen.add(e.event_id))]
    full = score_and_schedule(model, lead, evs, as_of)
    kept = score_and_schedule(model, lead, _only_counted(model, evs, as_of), as_of)
    assert (kept[0].total, kept[0].groups, kept[0].raw_groups, kept[0].grades, kept[0].stage,
            kept[0].contributions) == (full[0].total, full[0].groups, full[0].raw_groups, full[0].grades,
                                       full[0].stage, full[0].contributions)
    assert kept[0].explanation() == full[0].explanation()
    assert kept[1:] == full[1:]


@settings(max_examples=300, deadline=None)
@given(st.lists(rule, min_size=1, max_size=4), events,
       st.one_of(st.none(), st.integers(-15 * DAY, 0)), st.sampled_from([0, -1, 1, DAY // 2, 20 * DAY]))
def test_events_older_than_every_window_change_nothing(
    rules: list[dict[str, Any]], evs: list[Event], created: int | None, shift: int
) -> None:
    """What the service reads back (engine.scoring.oldest_counted: per type, the events a
    condition can still count, and none of a type no condition reads) scores, explains and
    schedules as all the lead's events do."""
    lead = Lead("L", {} if created is None else {"created_at": iso(AS_OF + created)})
    _same_without_old_events(_model(rules), lead, evs, AS_OF + shift)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(distinct=True))
def test_events_older_than_every_window_change_nothing_on_random_models(scenario: Any) -> None:
    model, lead, evs = scenario
    _same_without_old_events(model, lead, evs, AS_OF_US)
