"""The background jobs of ``serve``, run by one process of the store at a time.

With ``serve --workers N`` every worker process serves requests, but the jobs that act on
the whole store run in one of them: the rescoring scheduler and the model-change
rescoring (:class:`~leadscore.service.worker.Worker`), the outbox dispatcher (webhooks,
e-mails) and the retention purge. The process that holds the store's
:class:`~leadscore.store.locks.JobLock` runs them; the others try to take it every
:data:`ELECTION_SECONDS`, so when the holder dies (even by SIGKILL: the lock dies with
it) another worker takes over within about that long. What each process does for itself
stays per process: writing its own key-usage counts, the model triggers of its requests.

A model change answered by a worker that does not run the jobs records its rescore job in
the store; the holder looks for a new running job every :data:`ELECTION_SECONDS` and
starts on it (within about a second; the holder's own changes start at once).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from leadscore.config import Settings
from leadscore.service.models import ModelCache
from leadscore.service.scoring import ScoringPolicy
from leadscore.service.worker import Worker
from leadscore.store.db import Store
from leadscore.store.locks import JobLock
from leadscore.store.raw import raw

log = logging.getLogger("leadscore.jobs")
ELECTION_SECONDS = 1.0


class BackgroundJobs:
    """Take the store's job lock when free and run the jobs while holding it."""

    def __init__(
        self, store: Store, settings: Settings, cache: ModelCache, policy: ScoringPolicy, *,
        dispatcher: bool = True, every: float = ELECTION_SECONDS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.cache = cache
        self.policy = policy
        self.every = every
        self._with_dispatcher = dispatcher
        self._lock = JobLock(store.engine)
        self._worker: Worker | None = None
        self._dispatcher: Any = None
        self._seen_job: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._change = threading.Lock()

    @property
    def leader(self) -> bool:
        """True while this process runs the background jobs."""
        return self._worker is not None

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def start(self) -> None:
        """Try the lock now (a single process starts its jobs before serving, as it always
        did), then keep trying in a thread."""
        self._round()
        self._thread = threading.Thread(target=self._loop, name="leadscore-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._change:
            self._drop()
            self._lock.release()

    def kick(self) -> None:
        """A model change was stored: rescore now when this process runs the jobs (else the
        holder finds the job within :data:`ELECTION_SECONDS`)."""
        worker = self._worker
        if worker is not None:
            worker.kick()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._round()
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("electing the process of the background jobs failed")

    def _round(self) -> None:
        with self._change:
            if self._stop.is_set():
                return
            if self._worker is None:
                if self._lock.try_acquire():
                    self._take()
            elif not self._lock.check():
                self._drop()
            else:
                self._watch_jobs()

    def _take(self) -> None:
        settings = self.settings
        log.info("process %d runs the background jobs (lock: %s)", os.getpid(), self._lock.where)
        worker = Worker(
            self.store, self.cache, self.policy, interval_s=settings.rescore_interval_seconds,
            chunk=settings.rescore_chunk, periodic=settings.scheduler,
        )
        worker.start()
        self._worker = worker
        if self._with_dispatcher:
            self._dispatcher = _start_dispatcher(self.store)

    def _drop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
            log.info("process %d no longer runs the background jobs", os.getpid())

    def _watch_jobs(self) -> None:
        """Start on a rescore job another process recorded (a model change it answered)."""
        with self.store.read() as session:
            row = raw(session).all("SELECT id FROM rescore_jobs WHERE status = 'running' "
                                   "ORDER BY id DESC LIMIT 1")
        job = int(row[0][0]) if row else None
        if job is not None and job != self._seen_job and self._worker is not None:
            self._worker.kick()
        self._seen_job = job


def _start_dispatcher(store: Store) -> Any:
    """The outbox dispatcher (docs/automation.md); none with LEADSCORE_DISPATCHER=0."""
    from leadscore.actions.config import DeliveryConfig
    from leadscore.actions.dispatcher import Dispatcher

    config = DeliveryConfig.from_env()
    if not config.enabled:
        return None
    dispatcher = Dispatcher(store, config)
    dispatcher.start()
    return dispatcher
