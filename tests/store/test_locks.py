"""The locks between the processes of one store (``serve --workers N``): one holder of the
background jobs' lock at a time, handed on when released; a second process's writer on a
SQLite file waits for the first instead of writing beside it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from leadscore.store.db import Store, WriterBusy
from leadscore.store.locks import JobLock


def test_one_holder_of_the_jobs_lock_at_a_time(store: Store) -> None:
    other = Store.open(str(store.engine.url.render_as_string(hide_password=False)), upgrade=False)
    first, second = JobLock(store.engine), JobLock(other.engine)
    try:
        assert first.try_acquire() and first.check()
        assert not second.try_acquire()
        assert not second.try_acquire()  # still not, and trying again takes nothing
        first.release()
        assert second.try_acquire() and second.check()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        other.dispose()


def test_a_writer_of_another_process_waits_for_the_first(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/w.db"  # type: ignore[operator]
    first, second = Store.open(url), Store.open(url, upgrade=False)  # as two processes would
    try:
        with first.write() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            with pytest.raises(WriterBusy), second.write(wait=False):
                pass
        with second.write(wait=False) as session:  # free again
            session.execute(text("INSERT INTO t VALUES (1)"))
        with first.read() as session:
            assert session.execute(text("SELECT x FROM t")).scalar_one() == 1
    finally:
        first.dispose()
        second.dispose()


def test_a_writer_waits_no_longer_than_sqlites_busy_timeout(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that holds the writer lock for long (a large import) gives the other
    processes' writers SQLite's own 'database is locked' after the busy timeout (the API's
    503 with Retry-After), not a wait without end; nothing of theirs is written."""
    import sqlite3

    from leadscore.store import db

    url = f"sqlite:///{tmp_path}/w.db"  # type: ignore[operator]
    first, second = Store.open(url), Store.open(url, upgrade=False)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    try:
        with first.write() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        with (first.write(), pytest.raises(sqlite3.OperationalError, match="database is locked"),
              second.write() as session):
            session.execute(text("INSERT INTO t VALUES (1)"))
        with second.write() as session:  # free again: the lock was not left taken
            session.execute(text("INSERT INTO t VALUES (2)"))
        with first.read() as session:
            assert session.execute(text("SELECT x FROM t")).scalars().all() == [2]
    finally:
        first.dispose()
        second.dispose()
