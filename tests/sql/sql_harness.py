"""Shared by the SQL engine tests: the python engine's answer, and the comparison to 1e-9."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb

from leadscore.engine import Event, Lead, LeadScore, score_lead
from leadscore.model import ScoringModel
from leadscore.sql import compile_model, model_columns
from leadscore.sql.dialects import PYTHON_REGEX_FUNCTION
from leadscore.sql.tables import event_rows, events_schema, lead_rows, leads_schema

TOLERANCE = 1e-9


def events_by_lead(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each lead's events, duplicates of an event_id dropped globally (the first in input
    order wins, across leads), as the readers do."""
    seen: set[str] = set()
    by_lead: dict[str, list[Event]] = {}
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        by_lead.setdefault(event.lead_id, []).append(event)
    return by_lead


def python_scores(model: ScoringModel, leads: Sequence[Lead], events: Sequence[Event], as_of_us: int
                  ) -> dict[str, LeadScore]:
    """The oracle: the engine on each lead's events (:func:`events_by_lead`)."""
    by_lead = events_by_lead(events)
    return {lead.lead_id: score_lead(model, lead, by_lead.get(lead.lead_id, ()), as_of_us) for lead in leads}


def assert_same(model: ScoringModel, expected: Mapping[str, LeadScore], rows: Iterable[Mapping[str, Any]],
                engine: str) -> None:
    """Score, group scores, grades and stage agree (numbers to 1e-9, exact values)."""
    got = {row["lead_id"]: row for row in rows}
    assert set(got) == set(expected), engine
    for lead_id, want in expected.items():
        row = got[lead_id]
        context = f"{engine}: lead {lead_id}: got {dict(row)}, python {want.total} {want.groups} {want.stage}"
        assert math.isclose(row["score"], want.total, rel_tol=0, abs_tol=TOLERANCE), context
        for name, value in want.groups.items():
            assert math.isclose(row[f"score_{name}"], value, rel_tol=0, abs_tol=TOLERANCE), context
        assert row["stage"] == want.stage, context
        for name, grade in want.grades.items():
            assert row[f"grade_{name}"] == grade, context


_DUCK_TYPES = {"text": "VARCHAR", "bigint": "BIGINT"}


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.create_function(PYTHON_REGEX_FUNCTION, lambda v, p: re.search(p, v) is not None,
                        ["VARCHAR", "VARCHAR"], "BOOLEAN")
    return con


def duckdb_scores(con: duckdb.DuckDBPyConnection, model: ScoringModel, leads: Sequence[Lead],
                  events: Sequence[Event], as_of_us: int) -> list[dict[str, Any]]:
    """The compiled query over in-memory tables of the documented shape."""
    columns = model_columns(model)
    for name, schema, rows in (("leads", leads_schema(columns), lead_rows(columns, leads)),
                               ("events", events_schema(columns), event_rows(columns, events))):
        con.execute(f"CREATE OR REPLACE TABLE {name} ("
                    + ", ".join(f'"{c}" {_DUCK_TYPES[t]}' for c, t in schema) + ")")
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES (" + ", ".join("?" * len(schema)) + ")", rows)
    query = compile_model(model, "duckdb", leads="leads", events="events", as_of_us=as_of_us)
    relation = con.sql(query.sql(dialect="duckdb"))
    names = relation.columns
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
