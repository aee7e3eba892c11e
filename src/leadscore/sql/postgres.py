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
from leadscore.sql.compiler import compile_model, model_columns
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
