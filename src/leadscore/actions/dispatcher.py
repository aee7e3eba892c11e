"""The background dispatcher: claims due outbox rows and delivers them on a small thread
pool, so that a slow or failing endpoint never holds up ingestion (which only writes
rows) or other deliveries for longer than a worker's timeout.

Several dispatchers (threads or processes) may run against one database: a row is
claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and a lease (both databases), so
each attempt is made by one of them; a dispatcher killed mid-delivery leaves a lease
that expires, and the row is sent again (at-least-once, same ``Idempotency-Key``).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from leadscore.actions import outbox
from leadscore.actions.config import DeliveryConfig
from leadscore.actions.delivery import send_email, send_webhook
from leadscore.actions.emails import refusal
from leadscore.store.db import Store

log = logging.getLogger("leadscore.dispatcher")
MICROS = 1_000_000


def now_us() -> int:
    return time.time_ns() // 1000


class Dispatcher:
    """Deliver the outbox in the background: ``start()``, ``wake()``, ``stop()``."""

    def __init__(self, store: Store, config: DeliveryConfig | None = None) -> None:
        self.store = store
        self.config = config or DeliveryConfig.from_env()
        self._client = httpx.Client(follow_redirects=False, timeout=5.0)
        self._pool = ThreadPoolExecutor(max_workers=self.config.workers,
                                        thread_name_prefix="leadscore-delivery")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._free = threading.Semaphore(self.config.workers)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        outbox.on_enqueued(self.wake)
        self._thread = threading.Thread(target=self._loop, name="leadscore-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        outbox.remove_enqueued_hook(self.wake)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                claimed = self._claim_and_submit()
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("claiming outbox rows failed")
                claimed = 0
            if claimed == 0:
                self._wake.wait(self.config.poll_seconds)

    def _claim_and_submit(self) -> int:
        free = 0
        while self._free.acquire(blocking=False):
            free += 1
        if free == 0:
            self._free.acquire()  # wait for one worker
            free = 1
        rows: list[Any] = []
        try:
            now = now_us()
            with self.store.read() as session:
                due = outbox.any_due(session, now)
            if due:
                with self.store.write() as session:
                    rows = outbox.claim(session, now, min(free, self.config.batch),
                                        int(self.config.lease_seconds * MICROS))
        finally:
            for _ in range(free - len(rows)):
                self._free.release()
        for row in rows:
            self._pool.submit(self._deliver_and_release, row)
        return len(rows)

    def _deliver_and_release(self, row: Any) -> None:
        try:
            self.deliver(row)
        except Exception:  # noqa: BLE001
            log.exception("delivering outbox row %s failed", row.id)
        finally:
            self._free.release()

    def deliver(self, row: Any) -> str:
        """Make one attempt at ``row`` and record it; returns the row's new status."""
        if row.kind == "webhook":
            attempt = send_webhook(row, self._client)
        else:
            attempt = send_email(row, self.config, self._refusal)
        with self.store.write() as session:
            status = outbox.record_attempt(
                session, row, attempt, now_us(),
                base_s=self.config.backoff_seconds, cap_s=self.config.backoff_max_seconds,
            )
        if not attempt.ok:  # no error text: it can hold an address or a receiver's echo
            log.info("outbox row %s (%s): attempt %d failed (%s)", row.id, row.kind,
                     row.attempts + 1, _kind_of(attempt))
        return status

    def _refusal(self, row: Any) -> str | None:
        with self.store.read() as session:
            return refusal(session, row)

    def run_once(self, limit: int = 100) -> int:
        """Claim and deliver due rows in this thread (for ``webhooks dispatch --once`` and tests)."""
        with self.store.write() as session:
            rows = outbox.claim(session, now_us(), limit, int(self.config.lease_seconds * MICROS))
        for row in rows:
            self.deliver(row)
        return len(rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


def _kind_of(attempt: Any) -> str:
    """What failed, without personal data: the HTTP/SMTP status or the error's first word."""
    if attempt.skipped:
        return "skipped"
    if attempt.status_code is not None:
        return f"status {attempt.status_code}"
    first = (attempt.error or "error").split(":", 1)[0].split(" ", 1)[0]
    return first if first.isidentifier() else "error"
