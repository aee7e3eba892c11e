"""Triggers -> transactional outbox -> dispatcher -> a real HTTP receiver on loopback."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from tests.actions.conftest import (
    FAST,
    SECRET,
    Receiver,
    count_rows,
    model_text,
    open_world,
    wait_for,
)

from leadscore.actions import outbox
from leadscore.actions.dispatcher import Dispatcher
from leadscore.actions.outbox import backoff_us
from leadscore.actions.webhooks import DeliveryError, set_url_guard, sign, verify
from leadscore.service.leads import erase_lead
from leadscore.store.tables_automation import deliveries
from leadscore.store.tables_automation import outbox as outbox_table


def _count(world, table=outbox_table, **where) -> int:  # type: ignore[no-untyped-def]
    return count_rows(world, table, **where)


def test_stage_entered_writes_an_outbox_row_in_the_scoring_transaction(db_url, receiver) -> None:
    world = open_world(db_url, model_text(receiver.url))
    with pytest.raises(RuntimeError), world.store.write() as session:  # noqa: PT012
        from leadscore.service.ingest import ingest_events

        ingest_events(session, world.model, [{"lead_id": "L0", "type": "page_view",
                                              "properties": {"url": "/pricing"}}] * 2,
                      time.time_ns() // 1000)
        assert session.execute(select(func.count()).select_from(outbox_table)).scalar_one() == 1
        raise RuntimeError("rolled back")
    assert _count(world) == 0  # rolled back with the score change
    world.pricing("L1", n=1, tag="a")  # 30 points: New
    world.pricing("L1", n=1, tag="b")  # 60 points: New -> MQL
    world.pricing("L2", n=1)  # 30 points: stays New
    assert _count(world, status="pending") == 1
    dispatcher = Dispatcher(world.store, FAST)
    assert dispatcher.run_once() == 1
    dispatcher.close()
    [got] = receiver.received
    assert got.body["trigger"] == "mql-to-crm"
    assert got.body["lead"]["lead_id"] == "L1"
    assert got.body["old"] == {"score": 30.0, "stage": "New", "grades": {"fit": "B"}}
    assert got.body["new"] == {"score": 60.0, "stage": "MQL", "grades": {"fit": "B"}}
    assert got.body["cause"] == "event"
    assert got.body["model_version"] == world.model.version_id
    assert got.body["id"] == got.key == got.headers["Idempotency-Key"]
    assert verify(SECRET, got.raw, got.headers["X-Leadscore-Signature"], now=int(time.time()))
    assert _count(world, status="delivered") == 1
    with world.store.read() as session:
        [attempt] = outbox.list_deliveries(session)
    assert attempt["ok"] and attempt["status_code"] == 204 and attempt["latency_ms"] > 0
    world.store.dispose()


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    header = sign("k", b'{"a":1}', 1700000000)
    import hashlib
    import hmac

    expected = hmac.new(b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("k", b'{"a":1}', header, now=1700000100)
    assert not verify("k", b'{"a":2}', header, now=1700000100)
    assert not verify("k", b'{"a":1}', header, now=1700009999)  # too old: a replay


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_us(n, 1.0, 60.0, rng) / 1e6 for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        full = min(60.0, 2 ** (n - 1))
        assert full / 2 <= delay <= full


def test_failing_receiver_is_retried_then_delivered_once(sqlite_url) -> None:
    receiver = Receiver(fail_first=3).start()
    world = open_world(sqlite_url, model_text(receiver.url))
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.start()
    try:
        world.pricing("L1")
        assert wait_for(lambda: len(receiver.unique) == 1)
        assert wait_for(lambda: _count(world, status="delivered") == 1)
    finally:
        dispatcher.stop()
        receiver.stop()
    assert receiver.calls == 4
    assert _count(world, deliveries, ok=False) == 3
    assert _count(world, deliveries, ok=True) == 1
    world.store.dispose()


def test_receiver_down_then_up_gets_every_webhook_once(db_url) -> None:
    """An outage of ~2 s (backoff scaled down to 50 ms .. 0.4 s through DeliveryConfig)."""
    receiver = Receiver().start()
    port = receiver.port
    receiver.stop()  # down
    world = open_world(db_url, model_text(f"http://127.0.0.1:{port}/hook"))
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.start()
    try:
        for i in range(12):
            world.pricing(f"L{i}")
        time.sleep(2)
        assert _count(world, deliveries, ok=False) >= 12
        up = Receiver(port=port).start()
        assert wait_for(lambda: _count(world, status="delivered") == 12, timeout=20)
    finally:
        dispatcher.stop()
    assert sorted(r.body["lead"]["lead_id"] for r in up.unique.values()) == sorted(
        f"L{i}" for i in range(12))
    assert len(up.unique) == 12
    up.stop()
    world.store.dispose()


def test_slow_receiver_never_slows_ingestion(sqlite_url) -> None:
    receiver = Receiver(delay=1.0).start()
    world = open_world(sqlite_url, model_text(receiver.url))
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.start()
    try:
        started = time.perf_counter()
        for i in range(6):
            world.pricing(f"L{i}")
        ingest_seconds = time.perf_counter() - started
        assert wait_for(lambda: len(receiver.unique) == 6, timeout=20)
    finally:
        dispatcher.stop()
        receiver.stop()
    assert ingest_seconds < 1.0  # 6 ingestions while each delivery takes 1 s
    world.store.dispose()


def test_dead_letter_after_max_attempts_then_retry(sqlite_url) -> None:
    receiver = Receiver(status=500).start()
    text = model_text(receiver.url).replace("max_attempts: 50", "max_attempts: 3")
    world = open_world(sqlite_url, text)
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.start()
    try:
        world.pricing("L1")
        assert wait_for(lambda: _count(world, status="dead") == 1)
        assert receiver.calls == 3
        receiver.status = 200
        with world.store.write() as session:
            assert outbox.requeue(session, None, time.time_ns() // 1000, statuses=("dead",)) == 1
        assert wait_for(lambda: _count(world, status="delivered") == 1)
    finally:
        dispatcher.stop()
        receiver.stop()
    assert len(receiver.unique) == 1
    world.store.dispose()


def test_url_guard_hook_refuses_targets(sqlite_url, receiver) -> None:
    def guard(url: str) -> None:
        if "127.0.0.1" in url:
            raise DeliveryError(f"refused target {url}")

    world = open_world(sqlite_url, model_text(receiver.url).replace("max_attempts: 50", "max_attempts: 1"))
    set_url_guard(guard)
    try:
        world.pricing("L1")
        dispatcher = Dispatcher(world.store, FAST)
        dispatcher.run_once()
        dispatcher.close()
    finally:
        set_url_guard(None)
    assert receiver.calls == 0
    with world.store.read() as session:
        [row] = outbox.list_rows(session)
    assert row["status"] == "dead" and "refused target" in row["last_error"]
    world.store.dispose()


def test_missing_secret_variable_is_an_error_not_an_unsigned_post(sqlite_url, receiver) -> None:
    text = model_text(receiver.url).replace("LS_TEST_HOOK_SECRET", "LS_TEST_NOT_SET").replace(
        "max_attempts: 50", "max_attempts: 1")
    world = open_world(sqlite_url, text)
    world.pricing("L1")
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.run_once()
    dispatcher.close()
    assert receiver.calls == 0
    with world.store.read() as session:
        [row] = outbox.list_rows(session)
    assert row["last_error"] == "environment variable LS_TEST_NOT_SET is not set"
    world.store.dispose()


@pytest.mark.postgres
def test_two_dispatchers_never_send_a_row_twice(postgres_url, db_url, receiver) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row claiming across processes is a PostgreSQL matter here")
    world = open_world(db_url, model_text(receiver.url))
    for i in range(30):
        world.pricing(f"L{i}")
    first, second = Dispatcher(world.store, FAST), Dispatcher(world.store, FAST)
    first.start()
    second.start()
    try:
        assert wait_for(lambda: _count(world, status="delivered") == 30)
    finally:
        first.stop()
        second.stop()
    assert len(receiver.received) == 30 == len(receiver.unique)
    world.store.dispose()


def test_erasure_removes_outbox_rows_and_deliveries(sqlite_url, receiver) -> None:
    world = open_world(sqlite_url, model_text(receiver.url))
    world.pricing("L1")
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.run_once()
    dispatcher.close()
    world.pricing("L2")
    with world.store.write() as session:
        erase_lead(session, "L1")
    assert _count(world, deliveries) == 0
    assert _count(world) == 1
    world.store.dispose()


SEMANTICS = """
  - id: left-mql
    on: {stage_left: MQL}
    do: [{tag: {add: [left-mql]}}]
  - id: below-40
    on: {score_below: 40}
    do: [{tag: {add: [below-40]}}]
  - id: above-40
    on: {score_above: 40}
    do: [{tag: {add: [above-40]}}]
  - id: first-vp
    on: {rule_fired: vp}
    do: [{tag: {add: [vp-once]}}]
"""


def test_trigger_events_fire_on_crossings_and_first_firing(sqlite_url, receiver) -> None:
    from leadscore.actions.owners import tags_of
    from leadscore.store.tables_automation import automation_log

    world = open_world(sqlite_url, model_text(receiver.url, SEMANTICS))
    world.lead("L1", {"title": "VP"})  # 20: vp fires for the first time
    world.pricing("L1", n=1)  # 50: MQL, crosses 40 upward
    world.lead("L1", {"title": "none"})  # 30: leaves MQL, crosses 40 downward
    world.lead("L1", {"title": "VP again"})  # 50: vp gives points again, not for the first time
    with world.store.read() as session:
        pk = session.execute(select(automation_log.c.lead_pk)).scalars().first()
        fired = session.execute(
            select(automation_log.c.trigger_id).where(automation_log.c.action == "trigger")
            .order_by(automation_log.c.id)).scalars().all()
        assert tags_of(session, pk) == ["above-40", "below-40", "left-mql", "vp-once"]
    assert fired == ["first-vp", "mql-to-crm", "above-40", "left-mql", "below-40",
                     "mql-to-crm", "above-40"]
    world.store.dispose()


def test_receiver_slower_than_the_timeout_is_retried_and_deduplicated(sqlite_url) -> None:
    """The first two calls outlast the 0.3 s timeout (the receiver still processes them):
    the webhook is sent again, and the receiver's idempotency check sees it once."""
    receiver = Receiver(delay=0.6, slow_first=2).start()
    text = model_text(receiver.url).replace("timeout_seconds: 2", "timeout_seconds: 0.3")
    world = open_world(sqlite_url, text)
    dispatcher = Dispatcher(world.store, FAST)
    dispatcher.start()
    try:
        world.pricing("L1")
        assert wait_for(lambda: _count(world, status="delivered") == 1)
        time.sleep(0.7)  # let the slow calls finish on the receiver's side
    finally:
        dispatcher.stop()
        receiver.stop()
    assert receiver.calls == 3
    assert len(receiver.received) == 3 and len(receiver.unique) == 1
    with world.store.read() as session:
        errors = [d["error"] for d in outbox.list_deliveries(session, failed=True)]
    assert len(errors) == 2 and all("Timeout" in e for e in errors)
    world.store.dispose()
