"""Set-based scoring inside PostgreSQL: load the input tables, run the compiled model.

The service rescoring leads in its own database calls :func:`score_in_database` (or
compiles the query itself with :func:`leadscore.sql.compile_model` over views of the
documented shape). ``conn`` is a psycopg 3 connection; nothing here commits: the
caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlglot import exp

from leadscore.engine.scoring import Event, Lead
from leadscore.model.schema import ScoringModel
from leadscore.sql.compiler import compile_model, model_columns, property_column
from leadscore.sql.tables import event_rows, events_schema, lead_rows, leads_schema

_TYPES = {"text": "text", "bigint": "bigint"}


def _create(conn: Any, name: str, schema: list[tuple[str, str]], rows: Sequence[tuple[Any, ...]]) -> None:
    table = exp.to_identifier(name, quoted=True).sql("postgres")
    columns = ", ".join(f"{exp.to_identifier(c, quoted=True).sql('postgres')} {_TYPES[t]}" for c, t in schema)
    conn.execute(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP")
    if rows:
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def load_tables(conn: Any, model: ScoringModel, leads: Iterable[Lead], events: Iterable[Event], *,
                leads_table: str = "ls_input_leads", events_table: str = "ls_input_events") -> None:
    """Temporary tables (dropped at commit) of the documented shape for ``model``."""
    columns = model_columns(model)
    _create(conn, leads_table, leads_schema(columns), lead_rows(columns, leads))
    _create(conn, events_table, events_schema(columns), event_rows(columns, events))


def score_in_database(conn: Any, model: ScoringModel, as_of_us: int, *, leads: str, events: str,
                      dedupe: bool = True) -> list[dict[str, Any]]:
    """Score every lead of the ``leads`` table; exact (unrounded) numbers, one dict per lead."""
    query = compile_model(model, "postgres", leads=leads, events=events, as_of_us=as_of_us, dedupe=dedupe)
    with conn.cursor() as cursor:
        cursor.execute(query.sql(dialect="postgres"))
        names = [d.name for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def json_text_form(document: str, name: str) -> str:
    """SQL for ``text_form`` of ``document -> name`` (a ``json`` column written by Python's
    ``json``: numbers are ints or ``repr`` of floats), NULL when missing or null. Objects and
    arrays have no SQL text form (Python's ``str`` of them): see :func:`nested_values`."""
    key = "'" + name.replace("'", "''") + "'"
    text = f"({document} ->> {key})"
    return (
        f"CASE json_typeof({document} -> {key}) WHEN 'string' THEN {text} WHEN 'boolean' THEN {text} "
        f"WHEN 'number' THEN CASE WHEN {text} = '-0.0' THEN '0' "
        f"WHEN {text} ~ '^-?[0-9]{{1,15}}\\.0$' THEN left({text}, -2) ELSE {text} END END"
    )


def nested_values(document: str, names: Sequence[str]) -> str:
    """SQL that holds when one of the named values of ``document`` is an object or array."""
    tests = [f"json_typeof({document} -> '{n.replace(chr(39), chr(39) * 2)}') IN ('object', 'array')"
             for n in names]
    return " OR ".join(tests) if tests else "FALSE"


def store_events_view(columns: Any, leads_table: str, name: str) -> str:
    """``CREATE TEMPORARY VIEW name`` of the service's ``events`` in the compiled model's shape,
    for the leads of ``leads_table`` (which has ``pk`` and ``lead_id``); ``seq`` is the
    events' own key (their stored order), event ids are unique in the store."""
    props = ", ".join(
        f"{json_text_form('e.properties', p)} AS {exp.to_identifier(property_column(p), quoted=True).sql('postgres')}"
        for p in columns.properties
    )
    return (
        f"CREATE TEMPORARY VIEW {name} AS SELECT t.lead_id, e.type, e.ts_us, e.event_id, e.id AS seq"
        f"{', ' + props if props else ''} FROM events e JOIN {leads_table} t ON t.pk = e.lead_pk"
    )
