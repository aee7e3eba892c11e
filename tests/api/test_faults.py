"""Faults: the database unreachable (PostgreSQL behind a TCP proxy that the test stops and
restarts; the real server is never touched) or locked (SQLite) -> 503 with Retry-After,
nothing half-written, and the service recovers by itself, without a restart."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key

MODEL = """
version: 1
name: faults-test
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the real server; ``stop`` drops the listener and every
    open connection (as a server crash or a network cut would), ``start`` listens again
    on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:  # stopped meanwhile
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _app(url: str, tmp_path: Path) -> Any:
    (tmp_path / "model.yaml").write_text(MODEL)
    return create_app(Settings(database_url=url, model_file=tmp_path / "model.yaml", scheduler=False))


def _batch(tag: str) -> dict[str, Any]:
    return {"events": [{"event_id": f"{tag}-{i}", "lead_id": f"L-{tag}-{i % 2}", "type": "page_view",
                        "properties": {"url": "/pricing"}} for i in range(4)]}


def _unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "unavailable"


@pytest.fixture
def pg_proxy(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    import psycopg

    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    parts = urlsplit(conninfo)
    schema = f"faults_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    via = postgres_url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
    try:
        yield f"{via}?options=-csearch_path%3D{schema}", proxy
    finally:
        proxy.stop()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
def test_postgresql_unreachable_then_back_without_restart(
    pg_proxy: tuple[str, TcpProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSCORE_DISPATCHER", "0")
    url, proxy = pg_proxy
    app = _app(url, tmp_path)
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        client.headers.update({"Authorization": f"Bearer {token}"})
        assert client.post("/v1/events", json=_batch("before")).status_code == 200
        assert client.get("/v1/leads/L-before-0").json()["score"] == 30.0

        proxy.stop()  # the database goes away (connections in the pool die with it)
        started = time.monotonic()
        _unavailable(client.post("/v1/events", json=_batch("during")))
        _unavailable(client.get("/v1/leads/L-before-0"))
        _unavailable(client.post("/v1/leads", json={"lead_id": "L-new", "attributes": {"a": 1}}))
        _unavailable(client.get("/health"))
        assert time.monotonic() - started < 10  # fails fast, no hanging requests

        proxy.start()  # back, on the same address: no restart of the service
        response = client.post("/v1/events", json=_batch("during"))  # the client's retry
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 4  # nothing of the failed attempt was stored
        for _ in range(20):  # every pooled connection works again
            assert client.get("/v1/leads/L-during-1").status_code == 200
        assert client.get("/v1/leads/L-before-0").json()["score"] == 30.0
        assert client.get("/health").status_code == 200


def test_sqlite_locked_then_free_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock longer than the busy timeout: writes get 503
    (reads keep working: WAL), and succeed once the lock is released."""
    monkeypatch.setenv("LEADSCORE_DISPATCHER", "0")
    monkeypatch.setattr("leadscore.store.db.SQLITE_BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "locked.db"
    app = _app(f"sqlite:///{path}", tmp_path)
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        client.headers.update({"Authorization": f"Bearer {token}"})
        assert client.post("/v1/events", json=_batch("before")).status_code == 200

        other = sqlite3.connect(path, isolation_level=None, timeout=5)
        other.execute("BEGIN EXCLUSIVE")  # e.g. a long import in another process
        try:
            _unavailable(client.post("/v1/events", json=_batch("during")))
            _unavailable(client.post("/v1/leads", json={"lead_id": "L-new", "attributes": {"a": 1}}))
            _unavailable(client.delete("/v1/leads/L-before-0"))
            assert client.get("/v1/leads/L-before-0").json()["score"] == 30.0  # reads go on
        finally:
            other.execute("ROLLBACK")
            other.close()

        response = client.post("/v1/events", json=_batch("during"))
        assert response.status_code == 200 and response.json()["accepted"] == 4
        assert client.get("/v1/leads/L-before-0").status_code == 200  # not erased by the failed call
        assert client.post("/v1/leads", json={"lead_id": "L-new", "attributes": {"a": 1}}).status_code == 201
