"""Alembic environment: runs on the connection handed over by ``upgrade_database``,
or on ``sqlalchemy.url`` when alembic is run by hand (``alembic -x url=...``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from leadscore.store import (
    tables_analytics,  # noqa: F401 - the outcomes table joins Base.metadata
    tables_automation,  # noqa: F401 - its tables join Base.metadata
)
from leadscore.store.db import create_db_engine
from leadscore.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///leadscore.db upgrade head")
    engine = create_db_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
