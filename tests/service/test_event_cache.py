"""The event cache (store/event_cache.py) never changes a score: batches sent through two
stores on one database (two worker processes, each with its own cache) score every lead as
a store without a cache does, whatever erasures, purges, re-created ids and other writers
happen in between; the database counts every deletion and update of events."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from leadscore.engine import iso, parse_timestamp, to_micros
from leadscore.service.ingest import ingest_events
from leadscore.service.leads import erase_lead
from leadscore.service.models import ModelCache, active_model, ensure_model
from leadscore.service.retention import purge_events
from leadscore.store.db import Store

DAY = 86_400_000_000
NOW = to_micros(parse_timestamp("2026-05-01T12:00:00Z"))
TYPES = ("page_view", "page_view", "email_open", "email_click", "download", "webinar_attended", "noise")


def _records(rng: random.Random, n: int, ids: list[int], leads: int = 6) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        record: dict[str, Any] = {
            "lead_id": f"L{rng.randrange(leads)}", "type": rng.choice(TYPES),
            "timestamp": iso(NOW - rng.randrange(1, 40 * 24) * 3_600_000_000),
            "properties": {"url": rng.choice(["/pricing", "/blog", "/demo"])},
        }
        if rng.random() < 0.85:  # most events have an id; some repeat an earlier one
            ids[0] += 1
            record["event_id"] = f"E{rng.randrange(ids[0]) if rng.random() < 0.1 else ids[0]}"
        out.append(record)
    return out


def _scores(store: Store) -> dict[str, Any]:
    with store.read() as session:
        rows = session.execute(text("SELECT lead_id, score, stage, groups FROM leads")).all()
    return {r[0]: (r[1], r[2], r[3] if isinstance(r[3], dict) else json.loads(r[3])) for r in rows}


def _changes(store: Store) -> int:
    with store.read() as session:
        return int(session.execute(text("SELECT changes FROM event_changes WHERE id = 1")).scalar_one())


def test_two_cached_workers_score_as_a_store_without_a_cache(db_url: str, tmp_path: Path) -> None:
    workers = [Store.open(db_url), Store.open(db_url)]
    twin = Store.open(f"sqlite:///{tmp_path / 'twin.db'}")
    twin.event_cache = None  # the reference: every lead's events read back every time
    try:
        for store in (workers[0], twin):
            with store.write() as session:
                ensure_model(session, None, NOW - DAY)
        models = {id(s): ModelCache() for s in (*workers, twin)}
        rng = random.Random(7)
        ids = [0]
        hits = 0
        for step in range(80):
            worker = workers[rng.randrange(2)]
            roll = rng.random()
            if roll < 0.08:  # erasure: the lead's events go; the id may come back later
                lead_id = f"L{rng.randrange(6)}"
                for store in (worker, twin):
                    with store.write() as session:
                        if session.execute(text("SELECT 1 FROM leads WHERE lead_id = :i"), {"i": lead_id}).first():
                            erase_lead(session, lead_id, NOW)
            elif roll < 0.14:  # retention: old events go, the leads keep their scores
                days = rng.randrange(5, 35)
                for store in (worker, twin):
                    purge_events(store, days, NOW)
            else:
                records = _records(rng, rng.randrange(1, 25), ids)
                before = len(worker.event_cache or ())
                for store in (worker, twin):
                    with store.write() as session:
                        ingest_events(session, active_model(session, models[id(store)]), records, NOW)
                hits += before > 0
            assert _scores(worker) == _scores(twin), f"step {step}"
        assert hits > 30  # the caches were used, not dropped every time
        assert len(workers[0].event_cache or ()) and len(workers[1].event_cache or ())
    finally:
        for store in (*workers, twin):
            store.dispose()


def test_the_database_counts_every_deletion_and_update_of_events(store: Store) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW - DAY)
    models = ModelCache()
    records = [{"event_id": f"E{i}", "lead_id": f"L{i % 2}", "type": "page_view",
                "timestamp": iso(NOW - (30 - i) * DAY)} for i in range(6)]
    with store.write() as session:
        ingest_events(session, active_model(session, models), records, NOW)
    counted = _changes(store)
    with store.write() as session:
        ingest_events(session, active_model(session, models), [{**records[0], "event_id": "E9"}], NOW)
    assert _changes(store) == counted  # inserts are not counted
    purge_events(store, 28, NOW)  # E0, E1
    assert _changes(store) > counted
    counted = _changes(store)
    with store.write() as session:
        erase_lead(session, "L1", NOW)  # its events go by the foreign key's cascade
    assert _changes(store) > counted
    counted = _changes(store)
    with store.write() as session:
        session.execute(text("UPDATE events SET type = 'download' WHERE event_id = 'E2'"))
    assert _changes(store) > counted


def test_a_rolled_back_batch_leaves_nothing_in_the_cache(store: Store) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW - DAY)
    models = ModelCache()
    first = [{"event_id": "E1", "lead_id": "L1", "type": "page_view", "timestamp": iso(NOW - DAY)}]
    with store.write() as session:
        ingest_events(session, active_model(session, models), first, NOW)
    cache = store.event_cache
    assert cache is not None and len(cache) == 1
    held = cache.get({pk: ("L1", 1) for pk in range(1, 100)})
    assert [e.event_id for events in held.values() for e in events] == ["E1"]
    with pytest.raises(RuntimeError), store.write() as session:
        ingest_events(session, active_model(session, models), [{**first[0], "event_id": "E2"}], NOW)
        raise RuntimeError("the batch fails after scoring")
    held = cache.get({pk: ("L1", 1) for pk in range(1, 100)})
    assert [e.event_id for events in held.values() for e in events] == ["E1"]  # not E2
    with store.write() as session:
        result = ingest_events(session, active_model(session, models), [{**first[0], "event_id": "E3"}], NOW)
    assert result.accepted == 1
    held = cache.get({pk: ("L1", 2) for pk in range(1, 100)})
    assert [e.event_id for events in held.values() for e in events] == ["E1", "E3"]


@pytest.mark.parametrize("events", [0, 1000])
def test_the_server_setting_sizes_or_turns_off_the_cache(tmp_path: Path, events: int) -> None:
    from fastapi.testclient import TestClient

    from leadscore.api import create_app
    from leadscore.config import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", scheduler=False,
                              event_cache_events=events))
    with TestClient(app):
        cache = app.state.ctx.store.event_cache
        assert (cache.limit if cache is not None else 0) == events


def test_the_least_recently_used_leads_go_first_beyond_the_limit(store: Store) -> None:
    from leadscore.store.event_cache import Entry, EventCache

    cache = EventCache(limit=7)
    types = frozenset({"page_view"})
    cache.valid_for(0, types)
    with store.write() as session:
        cache.stage(session, 0, types, {pk: Entry(f"L{pk}", 3, ("e",) * 3) for pk in (1, 2)})
        cache.commit(session)
        assert set(cache.get({1: ("L1", 3)})) == {1}  # lead 1 used: lead 2 is now the oldest
        cache.stage(session, 0, types, {3: Entry("L3", 3, ("e",) * 3)})
        cache.commit(session)
        assert set(cache.get({pk: (f"L{pk}", 3) for pk in (1, 2, 3)})) == {1, 3}
        cache.stage(session, 0, types, {4: Entry("L4", 8, ("e",) * 8)})  # larger than the whole cache
        cache.commit(session)
        assert set(cache.get({pk: (f"L{pk}", 3 if pk < 4 else 8) for pk in (1, 2, 3, 4)})) == {1, 3}
        cache.stage(session, 0, types, {5: Entry("L5", 1, ("e",))})
        cache.valid_for(1, types)  # a deletion seen: emptied, and what was staged before is dropped
        cache.commit(session)
        assert len(cache) == 0


def test_concurrent_cached_workers_score_as_an_uncached_rescoring(db_url: str) -> None:
    """Two workers send batches for the same three leads at the same time (threads; on
    PostgreSQL their transactions truly overlap) while one of them purges old events; then
    every lead is scored once more by each worker, and once more by a store without a
    cache: the same scores, and no error. (An entry that ignored the other worker's events
    fails it; a purge's exact interleavings are the sequential test's.)"""
    import threading

    workers = [Store.open(db_url), Store.open(db_url)]
    plain = Store.open(db_url)
    plain.event_cache = None
    try:
        with workers[0].write() as session:
            ensure_model(session, None, NOW - DAY)
        failures: list[BaseException] = []

        def run(store: Store, seed: int) -> None:
            rng, ids, models = random.Random(seed), [seed * 1_000_000], ModelCache()
            try:
                for _ in range(60):
                    if seed == 2 and rng.random() < 0.3:
                        purge_events(store, rng.randrange(5, 35), NOW)
                        continue
                    records = _records(rng, rng.randrange(1, 4 if seed == 2 else 12), ids, leads=3)
                    with store.write() as session:
                        ingest_events(session, active_model(session, models), records, NOW)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(store, seed)) for seed, store in enumerate(workers, start=1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        leads = sorted(_scores(plain))
        assert len(leads) == 3
        touch = {"type": "noise", "timestamp": iso(NOW - DAY)}  # an event no rule reads: a rescoring
        scored = []
        for n, store in enumerate((*workers, plain)):
            with store.write() as session:
                ingest_events(session, active_model(session, ModelCache()),
                              [{**touch, "lead_id": lead, "event_id": f"touch-{n}-{lead}"} for lead in leads], NOW)
            scored.append(_scores(store))
        assert scored[0] == scored[2] and scored[1] == scored[2]
    finally:
        for store in (*workers, plain):
            store.dispose()
