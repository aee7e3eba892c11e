"""SQLite: the WAL is copied into the database file by the store's background thread."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from leadscore.store import db
from leadscore.store.db import CHECKPOINT_FRAMES, Store


def _names_in_file(path: Path, copy: Path) -> int:
    """Rows of api_keys in the database file alone (its WAL left out); -1 while the file
    has no such table yet (or was copied in the middle of a checkpoint)."""
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM api_keys").fetchone()[0])
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "leadscore-wal-checkpoint"]


def test_writes_reach_the_database_file_without_a_checkpoint_by_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "CHECKPOINT_PENDING", 1)  # a checkpoint after every write
    path = tmp_path / "x.db"
    store = Store.open(f"sqlite:///{path}")
    with store.read() as session:
        assert session.execute(text("pragma wal_autocheckpoint")).scalar() == CHECKPOINT_FRAMES
    for n in range(3):  # a few pages of WAL: far below the connections' own threshold
        with store.write() as session:
            session.execute(text(
                "INSERT INTO api_keys (name, scope, key_hash, prefix, created_us) "
                "VALUES (:n, 'read', :h, 'p', 0)"), {"n": f"k{n}", "h": f"hash{n}"})
    deadline = time.monotonic() + 10
    while _names_in_file(path, tmp_path / "copy.db") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _names_in_file(path, tmp_path / "copy.db") == 3
    assert len(_checkpoint_threads()) >= 1
    store.dispose()
    assert all(t.ident != threading.get_ident() for t in _checkpoint_threads())


def test_dispose_ends_the_checkpoint_thread(tmp_path: Path) -> None:
    before = set(_checkpoint_threads())
    store = Store.open(f"sqlite:///{tmp_path / 'y.db'}")
    with store.write() as session:
        session.execute(text("SELECT 1"))
    assert set(_checkpoint_threads()) - before  # started by the write
    store.dispose()
    assert not set(_checkpoint_threads()) - before


def test_pages_not_yet_copied_are_read_from_the_wal_index(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'z.db'}")
    checkpointer = store._checkpointer
    assert checkpointer is not None
    for n in range(5):
        with store.write() as session:
            session.execute(text(
                "INSERT INTO api_keys (name, scope, key_hash, prefix, created_us) "
                "VALUES (:n, 'read', :h, 'p', 0)"), {"n": f"k{n}", "h": f"hash{n}"})
    pending = checkpointer.pending()
    busy, frames, copied = checkpointer.checkpoint()  # below the threshold: nothing ran before
    assert busy == 0 and pending == frames and copied == frames > 0
    assert checkpointer.pending() == 0
    store.dispose()
