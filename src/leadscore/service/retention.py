"""Retention: purging events older than N days, and the housekeeping thread of the service.

Semantics (docs/security.md, "Retention"): an event is purged when its own timestamp
(``timestamp`` of the event, not when it was received) is more than N days before the
moment of the purge. Purging rescores nothing: every lead keeps its current score, stage
and history until it is next rescored (a new event or attribute change, the scheduler's
time-driven rescoring, a model change); that rescoring computes from the events still
stored. When N is longer than the longest ``within_days`` window of the model (and no rule
counts events without a window), that rescoring gives the same score: the purged events
were outside every window already.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select

from leadscore.engine.timestamps import MICROS_PER_DAY, iso
from leadscore.service import audit
from leadscore.store.db import Store
from leadscore.store.tables import events

log = logging.getLogger("leadscore.retention")
PURGE_CHUNK = 5000  # events deleted per transaction (short write locks)


def purge_events(
    store: Store, older_than_days: float, now_us: int, *, chunk: int = PURGE_CHUNK,
    actor: str | None = None, audit_empty: bool = True,
) -> int:
    """Delete events stamped before ``now - older_than_days``; returns how many went.

    Deletes in transactions of ``chunk`` events so that writers are never held up for
    long; the audit log gets one ``events_purged`` row (also when nothing was purged,
    unless ``audit_empty`` is false)."""
    if older_than_days <= 0:
        raise ValueError(f"older_than_days must be more than 0, got {older_than_days:g}")
    cutoff = now_us - int(older_than_days * MICROS_PER_DAY)
    total = 0
    while True:
        with store.write() as session:
            ids = list(session.execute(
                select(events.c.id).where(events.c.ts_us < cutoff).order_by(events.c.id).limit(chunk)
            ).scalars())
            if ids:
                session.execute(delete(events).where(events.c.id.in_(ids)))
            total += len(ids)
        if len(ids) < chunk:
            break
    if total or audit_empty:
        with store.write() as session:
            audit.record(session, "events_purged", now_us, actor=actor,
                         detail={"older_than_days": older_than_days, "before": iso(cutoff),
                                 "events": total})
    return total


class Housekeeper:
    """A daemon thread of the service: writes key usage every ``flush_seconds`` and purges
    old events every ``purge_seconds`` when ``retention_days`` is set (and ``purge_when()``:
    with several worker processes, in the one that runs the background jobs)."""

    def __init__(
        self, store: Store, usage: audit.KeyUsage, *, retention_days: float | None,
        flush_seconds: float = 10.0, purge_seconds: float = 3600.0,
        clock: Callable[[], int] | None = None, purge_when: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.usage = usage
        self.retention_days = retention_days
        self.flush_seconds = flush_seconds
        self.purge_seconds = purge_seconds
        self.clock = clock or (lambda: time.time_ns() // 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0
        # serve --workers N: only the process that runs the background jobs purges
        self.purge_when = purge_when or (lambda: True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leadscore-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._flush()  # the last counts

    def run_once(self) -> dict[str, Any]:
        """One round: flush key usage; purge when due. Returns what was done."""
        done: dict[str, Any] = {"usage": self._flush()}
        if self.retention_days and time.monotonic() >= self._next_purge and self.purge_when():
            self._next_purge = time.monotonic() + self.purge_seconds
            try:
                done["purged"] = purge_events(self.store, self.retention_days, self.clock(),
                                              actor="scheduler", audit_empty=False)
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("purging old events failed")
        return done

    def _flush(self) -> int:
        try:
            return self.usage.flush(self.store.write)
        except Exception as exc:  # noqa: BLE001 - counts are kept for the next round
            log.warning("writing API key usage failed (%s); will retry", type(exc).__name__)
            return 0

    def _loop(self) -> None:
        self.run_once()
        while not self._stop.wait(self.flush_seconds):
            self.run_once()
