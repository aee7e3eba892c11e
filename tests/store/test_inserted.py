"""Raw.inserted (the keys of the rows an SQLite INSERT created, without RETURNING) gives
what ``RETURNING id, lead_id`` gives, in every case; and lock_leads with it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from leadscore.service.ingest import lock_leads
from leadscore.store.db import Store
from leadscore.store.raw import raw

NOW = 1_790_000_000_000_000
INSERT = ("INSERT INTO leads (lead_id, attributes, created_us, updated_us) VALUES {values} "
          "ON CONFLICT (lead_id) DO NOTHING")


def _insert(store: Store, ids: list[str], *, returning: bool, before: list[tuple[int, str]] = ()) -> Any:
    """(what the insert reported, the rows of the leads table afterwards)"""
    with store.write() as session:
        db = raw(session)
        for pk, lead_id in before:
            db.execute("INSERT INTO leads (id, lead_id, attributes, created_us, updated_us) VALUES (?, ?, ?, ?, ?)",
                       (pk, lead_id, "{}", NOW, NOW)).close()
        params: list[Any] = []
        for lead_id in ids:
            params += [lead_id, "{}", NOW, NOW]
        sql = INSERT.format(values=", ".join(["(?, ?, ?, ?)"] * len(ids)))
        if returning:
            got = [tuple(r) for r in db.all(sql + " RETURNING id, lead_id", params)]
        else:
            got = db.inserted("leads", "lead_id", sql, params, ids)
        table = [tuple(r) for r in db.all("SELECT id, lead_id FROM leads ORDER BY id")]
    return got, table


@pytest.mark.parametrize("before", [
    [],  # an empty table
    [(7, "L-old")],  # keys after a gap
    [(3, "b"), (9, "z")],  # a conflict in the middle: read back
    [(1, "a"), (2, "b"), (3, "c"), (4, "ü")],  # every one conflicts: nothing created
    [(2**63 - 3, "far")],  # near the largest key: RETURNING (None from inserted)
])
def test_inserted_is_returning(tmp_path: Any, before: list[tuple[int, str]]) -> None:
    ids = ["a", "b", "c", "ü"]
    results = []
    for returning in (True, False):
        store = Store.open(f"sqlite:///{tmp_path}/r{int(returning)}.db")
        results.append(_insert(store, ids, returning=returning, before=before))
        store.dispose()
    (returned, table_r), (inserted, table_i) = results
    if before and before[0][0] > 2**62:  # SQLite picks random keys: left to RETURNING
        assert inserted is None and table_i == before  # nothing run
        assert sorted(lead_id for _, lead_id in returned) == ids
    else:
        assert table_i == table_r
        assert sorted(inserted) == sorted(returned)


def test_lock_leads_creates_with_the_stored_keys(tmp_path: Any) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/l.db")
    with store.write() as session:
        session.execute(text("INSERT INTO leads (id, lead_id, attributes, created_us, updated_us) "
                             "VALUES (5, 'L2', '{}', 1, 1)"))
    ids = [f"L{i}" for i in range(450)] + ["L2", "é-ñ", ""]
    with store.write() as session:
        states, created = lock_leads(session, ids, NOW, {"L3": {"x": "y"}})
        stored = dict(session.execute(text("SELECT lead_id, id FROM leads")).all())
    assert created == set(ids) - {"L2"}
    assert {lead_id: s.pk for lead_id, s in states.items()} == stored
    assert states["L3"].attributes == {"x": "y"} and states["L2"].pk == 5 and states["L2"].created_us == 1
    store.dispose()
