"""Small statements whose SQL differs between SQLite and PostgreSQL: one table of differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def dialect_of(session: Session) -> str:
    return str(session.get_bind().dialect.name)


def insert_ignoring(session: Session, table: Table, conflict_columns: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the session's database."""
    insert = _INSERT[dialect_of(session)]
    statement: Any = insert(table)
    return statement.on_conflict_do_nothing(index_elements=list(conflict_columns))


def supports_row_locks(session: Session) -> bool:
    """PostgreSQL locks rows (``FOR UPDATE``); SQLite locks the whole database per writer."""
    return dialect_of(session) == "postgresql"
