"""Property tests: set-based scoring with explanations (leadscore.sql.explain) gives exactly
what the service stores from the per-lead engine: the score, groups, grades, stage, the
explanation (each rule's points, the events it counted with their ages and decay factors,
the attributes it read), the next discrete change and whether the score decays.

Random models (every construct of the language), leads and events come from
``tests/strategies.py``, as in ``test_sql_equivalence.py``, on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sql_harness import duckdb_connection, events_by_lead

from leadscore.engine import Event, Lead
from leadscore.engine.scoring import score_and_schedule
from leadscore.model import ScoringModel, parse_model
from leadscore.sql import UnsupportedOnEngine, model_columns
from leadscore.sql.explain import score_explained
from leadscore.sql.tables import event_rows, events_schema, lead_rows, leads_schema
from strategies import AS_OF_US, event_lists, leads, models

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_DUCK_TYPES = {"text": "VARCHAR", "bigint": "BIGINT"}


@st.composite
def worlds(draw: st.DrawFn) -> tuple[ScoringModel, list[Lead], list[Event]]:
    model = draw(models())
    people = [Lead(f"L{i}", lead.attributes) for i, lead in enumerate(draw(st.lists(leads(), min_size=1, max_size=3)))]
    events: list[Event] = []
    for lead in people:
        events += draw(event_lists(lead_id=lead.lead_id))
    draw(st.randoms()).shuffle(events)  # input order decides duplicates and equal timestamps
    return model, people, events


def oracle(model: ScoringModel, people: list[Lead], events: list[Event]) -> dict[str, Any]:
    """The engine's answer, as the service stores it (duplicates of an event_id: the first
    in input order counts, across leads, as the readers do)."""
    by_lead = events_by_lead(events)
    out = {}
    for lead in people:
        result, moment, decays = score_and_schedule(model, lead, by_lead.get(lead.lead_id, []), AS_OF_US)
        out[lead.lead_id] = stored(result, moment, decays)
    return out


def stored(result: Any, moment: int | None, decays: bool) -> dict[str, Any]:
    return {"total": result.total, "groups": result.groups, "raw_groups": result.raw_groups,
            "grades": result.grades, "stage": result.stage, "contributions": result.contributions,
            "explanation": result.explanation(), "next_change_us": moment, "decays": decays}


def assert_identical(expected: dict[str, Any], got: dict[str, Any], engine: str) -> None:
    assert set(got) == set(expected), engine
    for lead_id, want in expected.items():
        assert got[lead_id] == want, f"{engine}: lead {lead_id}"


def first_copies(events: list[Event]) -> list[Event]:
    """The events without later copies of an event_id (what the service stores)."""
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        out.append(event)
    return out


def _duckdb(model: ScoringModel, people: list[Lead], events: list[Event], *, dedupe: bool = True) -> dict[str, Any]:
    con = duckdb_connection()
    columns = model_columns(model)
    for name, schema, rows in (("leads", leads_schema(columns), lead_rows(columns, people)),
                               ("events", events_schema(columns), event_rows(columns, events))):
        con.execute(f"CREATE TABLE {name} (" + ", ".join(f'"{c}" {_DUCK_TYPES[t]}' for c, t in schema) + ")")
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES (" + ", ".join("?" * len(schema)) + ")", rows)

    def fetch(sql: str) -> tuple[list[str], list[Any]]:
        relation = con.sql(sql)
        return relation.columns, relation.fetchall()

    found = score_explained(fetch, model, "duckdb", {p.lead_id: p for p in people},
                            leads="leads", events="events", as_of_us=AS_OF_US, dedupe=dedupe)
    return {lead_id: stored(*value) for lead_id, value in found.items()}


@SETTINGS
@given(worlds(), st.booleans())
def test_duckdb_explained_is_the_engines(world: tuple[ScoringModel, list[Lead], list[Event]], dedupe: bool) -> None:
    """With ``dedupe=False`` (the service's stores keep event ids unique) each rule reads
    the events table itself."""
    model, people, events = world
    expected = oracle(model, people, events)
    try:
        got = _duckdb(model, people, events if dedupe else first_copies(events), dedupe=dedupe)
    except UnsupportedOnEngine:
        return
    assert_identical(expected, got, "duckdb")


def test_ties_and_type_order_follow_the_engine() -> None:
    """Equal timestamps: the condition's type order first, then the later input first; the
    top-N of `max_times` and `once` pick the engine's events."""
    model = parse_model(
        "version: 1\nname: t\nrules:\n"
        "- {id: a, points: 3, when: {event: [y, x]}, repeat: each, max_times: 2, decay: {half_life_days: 7}}\n"
        "- {id: b, points: 2, when: {event: x, min_count: 2}}\n"
        "- {id: c, points: 1, when: {event: [x, y], within_days: 3}, repeat: each}\n"
    )
    day = 86_400_000_000
    events = [Event("L1", "x", AS_OF_US - day, {}, "e1"), Event("L1", "y", AS_OF_US - day, {}, "e2"),
              Event("L1", "x", AS_OF_US - day, {}, "e3"), Event("L1", "y", AS_OF_US - 5 * day, {}, "e4"),
              Event("L1", "x", AS_OF_US + day, {}, "e5")]
    expected = oracle(model, [Lead("L1")], events)
    assert [e["event_id"] for e in expected["L1"]["explanation"]["rules"][0]["events"]] == ["e2", "e3"]
    assert expected["L1"]["next_change_us"] == AS_OF_US + day
    assert_identical(expected, _duckdb(model, [Lead("L1")], events), "duckdb")
    assert_identical(expected, _duckdb(model, [Lead("L1")], events, dedupe=False), "duckdb")


@pytest.mark.postgres
@settings(SETTINGS, max_examples=50)
@given(world=worlds(), dedupe=st.booleans())
def test_postgres_explained_is_the_engines(pg: Any, world: tuple[ScoringModel, list[Lead], list[Event]],
                                           dedupe: bool) -> None:
    from leadscore.sql.postgres import load_tables

    model, people, events = world
    if not dedupe:
        events = first_copies(events)
    expected = oracle(model, people, events)
    suffix = uuid.uuid4().hex[:8]

    def fetch(sql: str) -> tuple[list[str], list[Any]]:
        with pg.cursor() as cursor:
            cursor.execute(sql)
            return [d.name for d in cursor.description], cursor.fetchall()

    try:
        load_tables(pg, model, people, events, leads_table=f"leads_{suffix}", events_table=f"events_{suffix}")
        found = score_explained(fetch, model, "postgres", {p.lead_id: p for p in people},
                                leads=f"leads_{suffix}", events=f"events_{suffix}", as_of_us=AS_OF_US,
                                dedupe=dedupe)
    except UnsupportedOnEngine:
        return
    finally:
        pg.rollback()
    assert_identical(expected, {k: stored(*v) for k, v in found.items()}, "postgres")
