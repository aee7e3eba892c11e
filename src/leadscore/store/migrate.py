"""Bring a database's schema to the newest Alembic revisions (run at every start-up).

Features add their own revisions branching from ``0001`` (one head per branch), so the
schema is "current" when the database holds exactly the set of heads of the scripts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

SCRIPT_LOCATION = Path(__file__).parent / "alembic"
_ADVISORY_LOCK = 7_461_001  # serialises concurrent start-ups on PostgreSQL


def alembic_config() -> Config:
    """The Alembic configuration of the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """Every head of the packaged migrations (one per feature branch)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revision() -> str | None:
    """The heads as one text (``"0001"``; several heads are joined by ``,`` in sorted order)."""
    heads = sorted(head_revisions())
    return ",".join(heads) if heads else None


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def current_revision(engine: Engine) -> str | None:
    """The database's revisions, in the form of :func:`head_revision`."""
    heads = sorted(current_revisions(engine))
    return ",".join(heads) if heads else None


def upgrade_database(engine: Engine) -> None:
    """Upgrade to every head; a no-op (one small query) when the schema is already current."""
    heads = head_revisions()
    if current_revisions(engine) == heads:
        return
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            if frozenset(MigrationContext.configure(conn).get_current_heads()) == heads:
                return
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")
