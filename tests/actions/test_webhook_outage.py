"""The receiver is down for a full 60 s, then up: every due webhook arrives exactly once.

Realistic backoff (1 s doubling up to 8 s, with jitter). A file of its own so that, under
`-n 2 --dist loadfile`, its minute of waiting runs beside the rest of the suite.
"""

from __future__ import annotations

import time

from tests.actions.conftest import Receiver, count_rows, model_text, open_world, wait_for

from leadscore.actions.config import DeliveryConfig
from leadscore.actions.dispatcher import Dispatcher
from leadscore.store.tables_automation import deliveries, outbox

OUTAGE_SECONDS = 60
PATIENT = DeliveryConfig(poll_seconds=0.2, workers=4, lease_seconds=30, backoff_seconds=1.0,
                         backoff_max_seconds=8.0, smtp_timeout_seconds=5)


def test_sixty_second_outage_loses_nothing_and_duplicates_nothing(sqlite_url) -> None:
    probe = Receiver().start()  # to learn a free port
    address = probe.port
    probe.stop()  # the CRM is down
    world = open_world(sqlite_url, model_text(f"http://127.0.0.1:{address}/hook"))
    dispatcher = Dispatcher(world.store, PATIENT)
    dispatcher.start()
    try:
        down_since = time.monotonic()
        for i in range(10):
            world.pricing(f"L{i}")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
        failed_attempts = count_rows(world, deliveries, ok=False)
        assert failed_attempts >= 10 * 3  # each was tried several times while down
        assert count_rows(world, outbox, status="delivered") == 0
        up = Receiver(port=address).start()
        assert wait_for(lambda: count_rows(world, outbox, status="delivered") == 10, timeout=40)
    finally:
        dispatcher.stop()
    assert len(up.unique) == 10  # exactly once per idempotency key
    assert sorted(r.body["lead"]["lead_id"] for r in up.unique.values()) == sorted(
        f"L{i}" for i in range(10))
    up.stop()
    world.store.dispose()
