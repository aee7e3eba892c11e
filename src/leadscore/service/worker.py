"""The background worker of ``serve``: an APScheduler 3 scheduler that, every tick,
finishes model-change rescoring and rescores the leads whose next change is due.

``kick()`` runs a tick now (after a model change). Ticks never overlap: one that
arrives while another runs makes the running one go round once more.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from leadscore.service.models import ModelCache
from leadscore.service.rescore import (
    RescoreSummary,
    fail_job,
    rescore_due,
    rescore_stale,
    running_job,
)
from leadscore.service.scoring import ScoringPolicy
from leadscore.store.db import Store

log = logging.getLogger("leadscore.worker")


def now_us() -> int:
    return time.time_ns() // 1000


class Worker:
    """Time-driven and model-change rescoring in the background."""

    def __init__(
        self, store: Store, cache: ModelCache, policy: ScoringPolicy, *, interval_s: float,
        chunk: int = 200, periodic: bool = True,
    ) -> None:
        self.store = store
        self.cache = cache
        self.policy = policy
        self.interval_s = interval_s
        self.chunk = chunk
        self.periodic = periodic
        self._scheduler = BackgroundScheduler(daemon=True)
        self._busy = threading.Lock()
        self._again = threading.Event()
        self._stopping = threading.Event()
        self.last: RescoreSummary | None = None

    def start(self) -> None:
        if self.periodic:
            self._scheduler.add_job(
                self.tick, "interval", seconds=self.interval_s, id="rescore",
                max_instances=1, coalesce=True, misfire_grace_time=None,
            )
        self._scheduler.start()
        self.kick()  # finish what a previous run left (model change, due leads)

    def stop(self) -> None:
        self._stopping.set()
        self._scheduler.shutdown(wait=True)

    def kick(self) -> None:
        """Run a tick as soon as possible."""
        if not self._stopping.is_set():
            self._scheduler.add_job(self.tick, id="kick", replace_existing=True)

    def tick(self) -> None:
        if not self._busy.acquire(blocking=False):
            self._again.set()
            return
        try:
            while True:
                self._again.clear()
                self._run_once()
                if not self._again.is_set() or self._stopping.is_set():
                    break
        finally:
            self._busy.release()

    def _run_once(self) -> None:
        summary = RescoreSummary()
        try:
            rescore_stale(
                self.store, self.cache, now_us, policy=self.policy, chunk=self.chunk,
                summary=summary, should_stop=self._stopping.is_set,
            )
            if self.periodic and not self._stopping.is_set():
                rescore_due(self.store, self.cache, now_us, policy=self.policy, chunk=self.chunk,
                            summary=summary)
        except Exception as exc:  # noqa: BLE001 - a background job must log, not die
            log.exception("rescoring failed")
            self._record_failure(exc)
        self.last = summary
        if summary.time or summary.model:
            log.info("rescored %d lead(s) (time: %d, model: %d; changed: %d)",
                     summary.time + summary.model, summary.time, summary.model, summary.changed)

    def _record_failure(self, exc: Exception) -> None:
        try:
            with self.store.write() as session:
                job: Any = running_job(session)
                if job is not None:
                    fail_job(session, job.id, f"{type(exc).__name__}: {exc}", now_us())
        except Exception:  # noqa: BLE001
            log.exception("could not record the failure")
