"""Database engines and sessions: SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=NORMAL``, a busy timeout and foreign keys on.
``synchronous=NORMAL`` in WAL mode: a committed transaction survives the process being
killed (it is in the WAL file, which the next connection reads); only a crash of the
operating system or a power loss may lose the last transactions committed before it.

The WAL is copied into the database file (a checkpoint) by a background thread of the
store, after a write that leaves :data:`CHECKPOINT_PENDING` pages or more of WAL not yet
copied, at most every :data:`CHECKPOINT_EVERY` seconds (perf, issue #3: run by the
connection that commits, as SQLite does by default every 1,000 pages, a checkpoint took
a third of the commit of a batch of events, two fsyncs included, on the request's path).
The pages not yet copied are read from the header of the WAL index (the ``-shm`` file,
https://www.sqlite.org/walformat.html: ``mxFrame`` minus ``nBackfill``). A passive checkpoint blocks neither readers nor writers. The connections still
checkpoint by themselves past :data:`CHECKPOINT_FRAMES` pages of WAL, a backstop that
keeps the WAL bounded when the thread cannot keep up (or in another process).
Write transactions start with ``BEGIN IMMEDIATE`` so that two writers queue on the
database lock instead of failing when a reader upgrades to a writer; read sessions
start with a plain (deferred) ``BEGIN`` and never block writers (WAL). Before it, a
writer takes this process's write lock and then ``flock`` on ``<db>-writer.lock``
(:class:`~leadscore.store.locks.WriterLock`): the writers of several processes
(``serve --workers N``) queue in the kernel, not in SQLite's busy handler's sleeps.
Each process runs its own checkpoint thread; passive checkpoints of two processes do not
conflict (SQLite lets one run and the other return busy, which the next write retries).

Functions here never commit on their own: :meth:`Store.write` and :meth:`Store.read`
are the one place a transaction begins and ends.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from leadscore.errors import UsageError
from leadscore.store.event_cache import EVENT_CACHE, EventCache
from leadscore.store.locks import WriterLock, sqlite_file
from leadscore.store.raw import json_text

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_OPTION = "leadscore_read"
CHECKPOINT_FRAMES = 4000  # pages of WAL past which a committing connection checkpoints
CHECKPOINT_EVERY = 0.1  # seconds: the background checkpoints are at least this far apart
# pages of WAL not yet copied that call for a background checkpoint. 8,000 (a checkpoint
# every ~10 batches of 1,000 events, each page copied once for all of them) cut the
# checkpoint thread's CPU time on batches by more than half, but single events at 200
# requests/s then had a p99 of 12-20 ms against 7-8 ms (a large checkpoint's fsync; runs
# of 2026-12-03 on a loaded machine): kept at 1,000
CHECKPOINT_PENDING = 1000
CHECKPOINT_IDLE = 30.0  # seconds without writes after which the checkpoint thread ends
WIPE_WAL = "leadscore_wipe_wal"  # Session.info key: after this commit, empty the WAL (erasure)
WIPE_SECONDS = 5.0  # how long an emptying of the WAL retries while readers keep it busy

log = logging.getLogger(__name__)


def normalise_url(url: str) -> URL:
    """A SQLAlchemy URL; ``postgresql://`` means psycopg 3. Unknown databases are refused."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises ArgumentError with a terse text
        raise UsageError(
            f"not a database URL: {url!r} (use sqlite:///leadscore.db or "
            "postgresql+psycopg://user@host/dbname)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(
            f"unsupported database '{parsed.get_backend_name()}' in {url!r}; use sqlite or postgresql"
        )
    return parsed


def _unicode_lower(value: Any) -> Any:
    return value.lower() if value.__class__ is str else value


def _plain_number(value: Any) -> Any:
    """The number a text stands for (the model language's: ``" 1.5e3 "``), else NULL."""
    from leadscore.engine.values import as_number

    return as_number(value) if value.__class__ is str else None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    # lower() of SQLite folds A-Z only; PostgreSQL's folds every letter (Vietnamese too):
    # ls_lower is Python's, for the queries that must agree on both (service/leads.py)
    dbapi_connection.create_function("ls_lower", 1, _unicode_lower, deterministic=True)
    dbapi_connection.create_function("ls_number", 1, _plain_number, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
    cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_FRAMES}")  # the backstop (see above)
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url`` with the pragmas and pool this project relies on."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().resolve().parent
            if not folder.exists():
                raise UsageError(f"the folder of the database file does not exist: {folder}")
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=pool_size,
            # the connection returned last is taken first (perf, issue #3): each connection has
            # its own page cache, which SQLite empties at the start of a transaction when
            # another connection wrote since this one's last; taken in turn (first in, first
            # out), the next batch's connection was seldom the one that wrote the last, and
            # read again every page it touched
            pool_use_lifo=True,
            hide_parameters=True,  # harden (#8): errors and logs never show a statement's values (personal data)
            json_serializer=json_text,  # as the driver-level statements write JSON (store/raw.py)
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
                         hide_parameters=True,  # harden (#8): no personal data in errors and logs
                         json_serializer=json_text)  # floats exact on jsonb (store/raw.py)


def check_reachable(engine: Engine) -> None:
    """Connect once: a database that cannot be reached or opened, or a PostgreSQL
    ``search_path`` that names no existing schema, raises :class:`UsageError` with one line
    that says which database and why (not the driver's traceback from the migrations)."""
    from sqlalchemy.exc import DBAPIError

    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            if connection.dialect.name != "postgresql":
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
                return
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar()
            path = connection.exec_driver_sql("SHOW search_path").scalar()
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        raise UsageError(f"cannot open the database {where}: {reason}") from None
    if schema is None:
        names = [name.strip().strip('"') for name in str(path).split(",") if "$user" not in name]
        create = f"CREATE SCHEMA {names[0]};" if len(names) == 1 else "CREATE SCHEMA ...;"
        raise UsageError(
            f"the database {where} has no schema to create leadscore's tables in: its search_path "
            f"({path}) names no schema that exists; create it first ({create}) or name another in "
            "the URL (?options=-csearch_path%3Dname)"
        )


def is_sqlite(bind: Engine | Session | Any) -> bool:
    """True when the engine or session talks to SQLite."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return bool(engine.dialect.name == "sqlite")


class _Checkpointer:
    """Passive WAL checkpoints in a background thread, after writes (see the module's text).

    The thread starts at the first write and ends after :data:`CHECKPOINT_IDLE` seconds
    without one (a later write starts it again), or when the store is disposed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._index = Path(engine.url.database or "").resolve().with_name(
            Path(engine.url.database or "").name + "-shm")
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def poke(self) -> None:
        """A write was committed: checkpoint soon."""
        self._wake.set()
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="leadscore-wal-checkpoint", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def pause(self) -> None:
        """End the thread (after its checkpoint, if one runs); the next write starts it again."""
        self.close()
        with self._lock:
            self._closed = False
            self._thread = None

    def _run(self) -> None:
        while True:
            if not self._wake.wait(CHECKPOINT_IDLE):
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return
            if self._closed:
                return
            self._wake.clear()
            try:
                if self.pending() >= CHECKPOINT_PENDING:
                    self.checkpoint()
            except Exception:  # noqa: BLE001 - the connections' own checkpoints bound the WAL
                log.warning("WAL checkpoint failed", exc_info=True)
            # at most one look at the WAL index per CHECKPOINT_EVERY, also when no checkpoint
            # was due: the writes of that time set the event without waking this thread (a
            # wake-up per write cost ~4% of a request's CPU under load)
            time.sleep(CHECKPOINT_EVERY)

    def pending(self) -> int:
        """Pages in the WAL not yet copied into the database file, from the WAL index's
        header (native byte order: ``mxFrame`` at byte 16, ``nBackfill`` at byte 96); a
        large number when it cannot be read (then a checkpoint tells)."""
        try:
            with open(self._index, "rb") as index:
                header = index.read(100)
            frames = int.from_bytes(header[16:20], sys.byteorder)
            copied = int.from_bytes(header[96:100], sys.byteorder)
        except (OSError, ValueError):
            return CHECKPOINT_PENDING
        if len(header) < 100:
            return CHECKPOINT_PENDING
        return max(0, frames - copied)

    def wipe(self) -> bool:
        """Copy the whole WAL into the database file and truncate the WAL to zero bytes
        (``wal_checkpoint(TRUNCATE)``): after an erasure, the older images of the erased
        rows' pages, which the WAL keeps until its frames are reused, are gone, and the
        database file holds the pages ``secure_delete`` overwrote. Readers of an older
        snapshot make it busy: it retries for :data:`WIPE_SECONDS`, then logs and leaves the
        WAL to the next wipe or to reuse. True when done."""
        deadline = time.monotonic() + WIPE_SECONDS
        with self._cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout=50")
            try:
                while True:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    busy = (cursor.fetchone() or (1,))[0]
                    if not busy or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            finally:  # the pooled connection keeps the store's own timeout
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if busy:
            log.warning("the WAL could not be emptied after an erasure within %.0f s (readers); "
                        "the next erasure tries again", WIPE_SECONDS)
        return not busy

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: ``(busy, frames in the WAL, frames copied)``."""
        with self._cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            row = cursor.fetchone()
        busy, frames, copied = row or (0, 0, 0)
        return int(busy), int(frames), int(copied)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A driver cursor on a connection of the pool, both closed (returned) afterwards."""
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            connection.close()


def in_memory(engine: Engine) -> bool:
    """An SQLite database in one process's memory (``:memory:``, no file, or a URI with
    ``mode=memory``, in the path or the query): no WAL, and nothing another process sees."""
    url = engine.url
    return engine.dialect.name == "sqlite" and (
        url.database in (None, "", ":memory:") or "mode=memory" in url.render_as_string(hide_password=True))


class WriterBusy(RuntimeError):
    """``Store.write(wait=False)`` found the write lock taken."""


class Store:
    """An engine plus the two kinds of transaction the service uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time: queue this process's writers on a lock (fair,
        # no polling) rather than on SQLite's busy handler, which sleeps in steps.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        # ... and the writers of every process of the file on a lock file (store/locks.py)
        database = sqlite_file(engine)
        self._writers = WriterLock(database) if database is not None else None
        self._checkpointer = _Checkpointer(engine) if database is not None else None  # a file has a WAL
        self._write = sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # the events of the leads this process touched lately (None: no cache)
        self.event_cache: EventCache | None = EventCache()
        self._read = sessionmaker(
            engine.execution_options(**{READ_OPTION: True}), expire_on_commit=False, autoflush=False
        )

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, pool_size: int = 10) -> Store:
        """Connect and (by default) bring the schema up to date."""
        from leadscore.store.migrate import upgrade_database

        store = cls(create_db_engine(url, pool_size=pool_size))
        try:
            check_reachable(store.engine)
        except BaseException:
            store.engine.dispose()
            raise
        if upgrade:
            upgrade_database(store.engine)
        return store

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    @contextmanager
    def write(self, *, wait: bool = True) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on an exception.

        ``wait=False`` (SQLite) raises :class:`WriterBusy` at once, before anything is
        done, when another thread of this process, or another process, is writing."""
        if self._write_lock is None:
            with self._transaction() as session:
                yield session
            return
        if not self._write_lock.acquire(blocking=wait):
            raise WriterBusy("another writer holds the database")
        try:
            if self._writers is not None and not self._writers.acquire(
                    wait=wait, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                raise WriterBusy("another process writes to the database")
            try:
                with self._transaction() as session:
                    yield session
                if session.info.get(WIPE_WAL) and self._checkpointer is not None:
                    self._checkpointer.wipe()  # still this process's (and the file's) only writer
            finally:
                if self._writers is not None:
                    self._writers.release()
        finally:
            self._write_lock.release()
        if self._checkpointer is not None:
            self._checkpointer.poke()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A write session in a transaction, with the store's event cache; what the
        transaction staged in the cache is stored once it has committed."""
        with self._write() as session:
            cache = session.info[EVENT_CACHE] = self.event_cache
            with session.begin():
                yield session
            if cache is not None:
                cache.commit(session)

    def before_fork(self) -> None:
        """Leave this process with no SQLite connection and no thread using one: call it
        right before ``os.fork()``. A forked process inherits SQLite's in-process record of
        the connections and locks of the database file, not the locks themselves (POSIX
        locks belong to a process): its own connections may then skip taking or releasing
        locks, and the other processes' transactions fail (``locking protocol``) or worse
        (https://www.sqlite.org/howtocorrupt.html, section 2.6). The pool opens new
        connections as needed afterwards."""
        if self._checkpointer is not None:
            self._checkpointer.pause()
        self.engine.dispose()

    @property
    def serial_writes(self) -> bool:
        """True when this process's writers queue on one lock (SQLite)."""
        return self._write_lock is not None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (never blocks writers)."""
        with self._read() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writers is not None:
            self._writers.close()
        self.engine.dispose()
