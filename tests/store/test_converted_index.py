"""Migration 0013: ix_leads_converted holds the leads with a ``converted`` attribute
(SQLite), still read by the funnel's won leads; downgrade gives back 0007's condition."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import text

from leadscore.store.db import Store
from leadscore.store.migrate import alembic_config, upgrade_database

WON = ("SELECT id FROM leads WHERE lower(json_extract(leads.attributes, '$.\"converted\"')) "
       "IN ('true', '1', 'yes') ORDER BY id")


def _index_sql(store: Store) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_leads_converted'")).scalar())


def test_converted_index_condition_and_plan(tmp_path: Any) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/c.db")
    assert _index_sql(store).endswith("IS NOT NULL")
    with store.engine.begin() as conn:
        for i, value in enumerate(['"true"', '"TRUE"', '"false"', "1", "0", "true", "null", '"yes"', '"no"']):
            conn.execute(text("INSERT INTO leads (id, lead_id, attributes, created_us, updated_us) "
                              "VALUES (:i, :l, :a, 1, 1)"), {"i": i + 1, "l": f"L{i}", "a": f'{{"converted":{value}}}'})
        conn.execute(text("INSERT INTO leads (id, lead_id, attributes, created_us, updated_us) "
                          "VALUES (99, 'none', '{}', 1, 1)"))
        plan = " | ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + WON)))
        won = [r[0] for r in conn.execute(text(WON))]
        every = [r[0] for r in conn.execute(text(WON.replace("FROM leads", "FROM leads NOT INDEXED")))]
    assert "ix_leads_converted" in plan
    assert won == every == [1, 2, 4, 6, 8]  # "true", "TRUE", 1, true, "yes"
    with store.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0013@0007")
    assert _index_sql(store).endswith("IN ('true', '1', 'yes')")
    upgrade_database(store.engine)
    assert _index_sql(store).endswith("IS NOT NULL")
    store.dispose()
