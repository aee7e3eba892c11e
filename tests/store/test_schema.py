"""The migrations build exactly the tables of the ORM, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from leadscore.errors import UsageError
from leadscore.store.db import Store, normalise_url
from leadscore.store.migrate import current_revision, head_revision, upgrade_database
from leadscore.store.tables import Base, ModelVersionRow


def test_migrations_match_the_tables(store: Store) -> None:
    assert current_revision(store.engine) == head_revision()
    assert "0001" not in head_revision().split(",")  # every feature branch starts from 0001
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert set(inspect(store.engine).get_table_names()) >= {
        "leads", "events", "score_history", "stage_transitions", "model_versions",
        "rescore_jobs", "api_keys", "alembic_version",
    }


def test_upgrade_twice_is_a_no_op(store: Store) -> None:
    upgrade_database(store.engine)
    assert current_revision(store.engine) == head_revision()


def test_sqlite_pragmas(tmp_path: object) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/x.db")
    with store.read() as session:
        assert session.execute(text("pragma journal_mode")).scalar() == "wal"
        assert session.execute(text("pragma foreign_keys")).scalar() == 1
        assert session.execute(text("pragma synchronous")).scalar() == 1  # NORMAL
        assert session.execute(text("pragma busy_timeout")).scalar() == 30000
    store.dispose()


def test_only_one_active_model_version(store: Store) -> None:
    with pytest.raises(IntegrityError), store.write() as session:
        for name in ("a", "b"):
            session.add(ModelVersionRow(name=name, document="", format="yaml", checksum="x",
                                        created_us=0, active=True))
        session.flush()


def test_a_failed_write_stores_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as session:
        session.add(ModelVersionRow(name="a", document="", format="yaml", checksum="x",
                                    created_us=0, active=False))
        session.flush()
        raise RuntimeError("boom")
    with store.read() as session:
        assert session.execute(text("select count(*) from model_versions")).scalar() == 0


def test_urls() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(UsageError, match="unsupported database 'mysql'"):
        normalise_url("mysql://u@h/db")
