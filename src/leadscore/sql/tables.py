"""The input tables of a compiled model, built from engine objects (:class:`Lead`, :class:`Event`).

Used to load leads and events into a database for set-based scoring (PostgreSQL,
DuckDB) and by the equivalence tests. Every value is stored as its text form
(:func:`leadscore.engine.values.text_form`), NULL when missing; see
:mod:`leadscore.sql.compiler` for the shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadscore.engine.scoring import Event, Lead
from leadscore.engine.values import is_missing, text_form
from leadscore.sql.compiler import ModelColumns, attribute_column, property_column

TEXT, BIGINT = "text", "bigint"


def _text(value: Any) -> str | None:
    return None if is_missing(value) else text_form(value)


def leads_schema(columns: ModelColumns) -> list[tuple[str, str]]:
    """``(column, type)`` of the leads table for a model."""
    return [("lead_id", TEXT), ("created_us", BIGINT),
            *[(attribute_column(a), TEXT) for a in columns.attributes]]


def events_schema(columns: ModelColumns) -> list[tuple[str, str]]:
    """``(column, type)`` of the events table for a model."""
    return [("lead_id", TEXT), ("type", TEXT), ("ts_us", BIGINT), ("event_id", TEXT), ("seq", BIGINT),
            *[(property_column(p), TEXT) for p in columns.properties]]


def lead_rows(columns: ModelColumns, leads: Iterable[Lead]) -> list[tuple[Any, ...]]:
    """One row per lead, in :func:`leads_schema` order."""
    return [
        (lead.lead_id, lead.created_us(), *[_text(lead.attributes.get(a)) for a in columns.attributes])
        for lead in leads
    ]


def event_rows(columns: ModelColumns, events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """One row per event, in :func:`events_schema` order; ``seq`` is the input position."""
    return [
        (e.lead_id, e.type, e.ts, e.event_id, seq, *[_text(e.properties.get(p)) for p in columns.properties])
        for seq, e in enumerate(events)
    ]
