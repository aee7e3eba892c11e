"""Locks between the processes of one store (``leadscore serve --workers N``).

:class:`JobLock` elects the one process that runs the background jobs (rescoring, the
dispatcher, retention). It is released by the operating system or the database when its
holder dies, even by SIGKILL:

- SQLite: ``flock`` on a lock file beside the database file (``<db>-jobs.lock``); the
  kernel drops the lock when the holder's last descriptor closes, that is when it exits.
  The holder writes its pid into the file (for operators; nothing reads it back).
- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its
  own; the server drops it when that session ends (the holder exits and its socket
  closes). The lock's key is derived from the schema (``current_schema()``), so that
  stores in different schemas of one database elect separately.

:class:`WriterLock` (SQLite only) queues the writers of every process on the database:
``flock`` on ``<db>-writer.lock``, taken before ``BEGIN IMMEDIATE``. Without it a
writer of another process found SQLite's lock taken and waited in SQLite's busy
handler, which sleeps in steps of up to 100 ms (and, on the event loop, blocked every
request of that process); a waiter on ``flock`` is woken by the kernel when the lock
is released. Processes that do not take it (another tool on the file) still queue on
SQLite's own lock and busy timeout: this lock is for fairness and latency, SQLite's lock
keeps the data correct.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)
JOBS_LOCK_KEY = 7_461_003  # first half of the PostgreSQL advisory lock's key (the second: the schema)


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine; None for PostgreSQL and in-memory databases."""
    from leadscore.store.db import in_memory

    if engine.dialect.name != "sqlite" or in_memory(engine):
        return None
    database = engine.url.database or ""
    if database.startswith("file:"):  # a URI: file:path?query
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database).expanduser().resolve()


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class JobLock:
    """The lock of the process that runs the background jobs of a store.

    ``try_acquire()`` never waits; ``check()`` tells whether it is still held (a
    PostgreSQL session can be lost: the server restarted); ``release()`` lets it go.
    In-memory SQLite (one process) always holds it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file = sqlite_file(engine)
        self._fd: int | None = None
        self._connection: Any = None
        self.held = False

    @property
    def where(self) -> str:
        """What is locked, for messages."""
        if self._file is not None:
            return str(self._lock_path)
        return "PostgreSQL advisory lock" if self.engine.dialect.name == "postgresql" else "in memory"

    @property
    def _lock_path(self) -> Path:
        assert self._file is not None
        return self._file.with_name(self._file.name + "-jobs.lock")

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            self.held = self._try_postgresql()
        elif self._file is None:
            self.held = True
        else:
            self.held = self._try_file()
        return self.held

    def _try_file(self) -> bool:
        if self._fd is None:
            self._fd = _open_lock_file(self._lock_path)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def _try_postgresql(self) -> bool:
        try:
            if self._connection is None:
                self._connection = self.engine.raw_connection()
                self._connection.driver_connection.autocommit = True
            connection = self._connection.driver_connection
            got, schema = connection.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(current_schema())), current_schema()",
                (JOBS_LOCK_KEY,)).fetchone()
            if got:  # who holds it, for operators: pg_stat_activity.application_name
                connection.execute("SELECT set_config('application_name', %s, false)",
                                   (f"leadscore-jobs {os.getpid()} {schema}"[:63],))
            return bool(got)
        except Exception as exc:  # noqa: BLE001 - the database is away: not held, try later
            log.warning("could not take the background jobs' lock (%s)", type(exc).__name__)
            self._drop_connection()
            return False

    def check(self) -> bool:
        """Whether the lock is still held (a round trip on PostgreSQL)."""
        if not self.held or self.engine.dialect.name != "postgresql":
            return self.held
        try:
            self._connection.driver_connection.execute("SELECT 1").fetchone()
        except Exception as exc:  # noqa: BLE001 - the session, and with it the lock, is gone
            log.warning("lost the background jobs' lock: its database session ended (%s)",
                        type(exc).__name__)
            self._drop_connection()
            self.held = False
        return self.held

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if self.held:
                    os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
        if self.held and self._connection is not None:  # at once, not when the server sees the session end
            with contextlib.suppress(Exception):
                self._connection.driver_connection.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (JOBS_LOCK_KEY,))
        self._drop_connection()  # ending the session releases the advisory lock anyway
        self.held = False

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()  # closed, not returned to the pool (and its lock with it)
            self._connection = None


class WriterLock:
    """``flock`` on ``<db>-writer.lock``: the writers of every process of a SQLite file
    queue here before ``BEGIN IMMEDIATE`` (see the module's text). Each process opens the
    file once (the lock belongs to an open file description, so one descriptor per
    process, used under the process's own thread lock)."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-writer.lock")
        self._fd: int | None = None
        self._pid = 0
        self._open = threading.Lock()

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            with self._open:
                if self._fd is None or self._pid != os.getpid():
                    self._fd, self._pid = _open_lock_file(self.path), os.getpid()
        return self._fd

    def acquire(self, *, wait: bool, timeout: float) -> bool:
        """Take the lock; ``wait=False`` returns False at once when it is taken. A waiting
        writer gives up after ``timeout`` seconds with the error SQLite's own busy timeout
        gives (``database is locked``), which the API answers with 503 and Retry-After: a
        process that holds the file's writer lock for long (a large ``leadscore import``)
        must not leave requests waiting forever."""
        descriptor = self._descriptor()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not wait:
                return False
        # flock has no timeout of its own: poll, from 0.5 ms up to 5 ms between tries (a
        # queue of other processes' writers moves on within milliseconds)
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked: another process held {self.path.name} for "
                        f"{timeout:g} s") from None
                pause = min(pause * 2, 0.005)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
