"""Property tests: the compiled model gives the python engine's numbers on DuckDB and PostgreSQL.

Random models (every construct of the language), leads and events come from
``tests/strategies.py``; several leads share an event stream so that duplicates of an
``event_id`` across leads are exercised. The Spark engine has its own module
(``test_sql_spark.py``: one Spark session per module).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sql_harness import assert_same, duckdb_connection, duckdb_scores, python_scores

from leadscore.engine import Event, Lead
from leadscore.model import ScoringModel
from leadscore.sql import UnsupportedOnEngine
from strategies import AS_OF_US, event_lists, leads, models

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[ScoringModel, list[Lead], list[Event]]:
    model = draw(models())
    people = [Lead(f"L{i}", lead.attributes) for i, lead in enumerate(draw(st.lists(leads(), min_size=1, max_size=3)))]
    events: list[Event] = []
    for lead in people:
        events += draw(event_lists(lead_id=lead.lead_id))
    draw(st.randoms()).shuffle(events)  # input order matters for duplicates only
    return model, people, events


@SETTINGS
@given(worlds())
def test_duckdb_agrees_with_python(world: tuple[ScoringModel, list[Lead], list[Event]]) -> None:
    model, people, events = world
    expected = python_scores(model, people, events, AS_OF_US)
    try:
        rows = duckdb_scores(duckdb_connection(), model, people, events, AS_OF_US)
    except UnsupportedOnEngine:
        return  # refused with a message (tested in test_sql_regex.py)
    assert_same(model, expected, rows, "duckdb")


@pytest.mark.postgres
@settings(SETTINGS, max_examples=50)
@given(world=worlds())
def test_postgres_agrees_with_python(pg: Any, world: tuple[ScoringModel, list[Lead], list[Event]]) -> None:
    from leadscore.sql.postgres import load_tables, score_in_database

    model, people, events = world
    expected = python_scores(model, people, events, AS_OF_US)
    suffix = uuid.uuid4().hex[:8]  # temp tables are per session; names are unique anyway
    try:
        load_tables(pg, model, people, events, leads_table=f"leads_{suffix}", events_table=f"events_{suffix}")
        rows = score_in_database(pg, model, AS_OF_US, leads=f"leads_{suffix}", events=f"events_{suffix}")
    finally:
        pg.rollback()
    assert_same(model, expected, rows, "postgres")


@pytest.mark.postgres
def test_postgres_without_dedupe_reads_unique_events(pg: Any) -> None:
    """The service keeps events unique itself and says dedupe=False."""
    from leadscore.model import parse_model
    from leadscore.sql.postgres import load_tables, score_in_database

    model = parse_model("version: 1\nname: t\nrules:\n- {id: a, points: 5, when: {event: x}, repeat: each}\n")
    events = [Event("L1", "x", AS_OF_US - 10, {}, "e1"), Event("L1", "x", AS_OF_US - 5, {}, "e1")]
    try:
        load_tables(pg, model, [Lead("L1")], events)
        once = score_in_database(pg, model, AS_OF_US, leads="ls_input_leads", events="ls_input_events")
        twice = score_in_database(pg, model, AS_OF_US, leads="ls_input_leads", events="ls_input_events",
                                  dedupe=False)
    finally:
        pg.rollback()
    assert [r["score"] for r in once] == [5.0]
    assert [r["score"] for r in twice] == [10.0]


SPACED = ["7.5", " 7.5 ", "\t42\n", "\x0b3\x0c", "\r-1e2 ", " +.5", "7 .5", " ", "4 2"]
SPACED_MODEL = """
version: 1
name: spaced
score: {min: -100, max: 100}
rules:
  - {id: gt, points: 1, when: {event: view, where: {n: {gt: 2}}}}
  - {id: eq, points: 2, when: {event: view, where: {n: {equals: 7.5}}}}
  - {id: between, points: 4, when: {event: view, where: {n: {between: [-200, 0]}}}}
  - {id: in, points: 8, when: {event: view, where: {n: {in: [42, 0.5]}}}}
"""


def _spaced_world() -> tuple[ScoringModel, list[Lead], list[Event]]:
    """Numbers written with the white space as_number strips around them (" 7.5 " is 7.5),
    and texts that are no number for it ("7 .5")."""
    from leadscore.model import parse_model

    people = [Lead(f"L{i}") for i in range(len(SPACED))]
    events = [Event(f"L{i}", "view", AS_OF_US - 1, {"n": text}) for i, text in enumerate(SPACED)]
    return parse_model(SPACED_MODEL), people, events


def test_duckdb_reads_numbers_with_white_space_as_python_does() -> None:
    model, people, events = _spaced_world()
    expected = python_scores(model, people, events, AS_OF_US)
    assert [expected[p.lead_id].total for p in people] == [3, 3, 9, 1, 4, 8, 0, 0, 0]
    assert_same(model, expected, duckdb_scores(duckdb_connection(), model, people, events, AS_OF_US), "duckdb")


@pytest.mark.postgres
def test_postgres_reads_numbers_with_white_space_as_python_does(pg: Any) -> None:
    from leadscore.sql.postgres import load_tables, score_in_database

    model, people, events = _spaced_world()
    try:
        load_tables(pg, model, people, events)
        rows = score_in_database(pg, model, AS_OF_US, leads="ls_input_leads", events="ls_input_events")
    finally:
        pg.rollback()
    assert_same(model, python_scores(model, people, events, AS_OF_US), rows, "postgres")
