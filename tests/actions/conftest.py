"""Automation fixtures: a store per database (each PostgreSQL test in its own schema),
a real HTTP receiver on loopback that can fail, stall or be down, and helpers."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from leadscore.actions import install, uninstall
from leadscore.actions.config import DeliveryConfig
from leadscore.actions.webhooks import verify
from leadscore.service.ingest import ingest_events, upsert_lead
from leadscore.service.models import ActiveModel, ModelCache, activate_document, active_model
from leadscore.store.db import Store

SECRET = "s3cret-for-tests"
os.environ.setdefault("LS_TEST_HOOK_SECRET", SECRET)
# the receivers listen on loopback, which the webhook URL guard refuses unless allowed
os.environ.setdefault("LEADSCORE_WEBHOOK_ALLOW", "127.0.0.1,::1,localhost")

# Backoff scaled down so that outages of a few seconds are retried quickly in tests
FAST = DeliveryConfig(poll_seconds=0.05, workers=4, lease_seconds=10, backoff_seconds=0.05,
                      backoff_max_seconds=0.4, smtp_timeout_seconds=5)


def count_rows(world: Any, table: Any, **where: Any) -> int:
    """Rows of an automation table in a test world's store, filtered by column equality."""
    from sqlalchemy import func, select

    with world.store.read() as session:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return int(session.execute(query).scalar_one())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auto.db'}"


@pytest.fixture(autouse=True)
def _actions_installed() -> Iterator[None]:
    install()
    yield
    uninstall()


@dataclass
class Received:
    key: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 with an idempotency check (``unique``)."""

    port: int = 0
    fail_first: int = 0
    delay: float = 0.0
    slow_first: int = 0  # with delay: only the first N calls are slow (0: every call)
    status: int = 200
    calls: int = 0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def unique(self) -> dict[str, Received]:
        with self._lock:
            out: dict[str, Received] = {}
            for r in self.received:
                out.setdefault(r.key, r)
            return out

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.calls += 1
                    failing = receiver.calls <= receiver.fail_first
                    slow = not receiver.slow_first or receiver.calls <= receiver.slow_first
                if receiver.delay and slow:
                    time.sleep(receiver.delay)
                if failing or receiver.status >= 300:
                    self.send_response(503 if failing else receiver.status)
                    self.end_headers()
                    return
                signature = self.headers.get("X-Leadscore-Signature", "")
                ok = not signature or verify(SECRET, raw, signature, now=int(time.time()))
                if not ok:
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append(Received(
                        self.headers["Idempotency-Key"], json.loads(raw), raw,
                        dict(self.headers), time.time()))
                self.send_response(204)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def model_text(url: str, extra: str = "") -> str:
    return f"""
version: 1
name: automation-test
groups: {{fit: {{grades: {{A: 20, B: 0}}}}}}
rules:
  - {{id: vp, group: fit, points: 20, when: {{attribute: title, contains: vp}}}}
  - {{id: pricing, points: 30, when: {{event: page_view, where: {{url: {{contains: pricing}}}}}}, repeat: each}}
stages:
  - {{name: SQL, min_score: 80}}
  - {{name: MQL, min_score: 50}}
  - {{name: New, min_score: 0}}
triggers:
  - id: mql-to-crm
    on: {{stage_entered: MQL}}
    do:
      - webhook: {{url: "{url}", secret: "${{LS_TEST_HOOK_SECRET}}", timeout_seconds: 2, max_attempts: 50}}
{extra}
"""


@dataclass
class World:
    """A store with an active model, and helpers that go through the service."""

    store: Store
    model: ActiveModel
    clock: Callable[[], int] = lambda: time.time_ns() // 1000

    def events(self, records: list[dict[str, Any]]) -> None:
        with self.store.write() as session:
            ingest_events(session, active_model(session, ModelCache()), records, self.clock())

    def pricing(self, lead_id: str, n: int = 2, tag: str = "") -> None:
        self.events([{"event_id": f"{lead_id}-{tag}{i}", "lead_id": lead_id, "type": "page_view",
                      "properties": {"url": "/pricing"}} for i in range(n)])

    def lead(self, lead_id: str, attributes: dict[str, Any]) -> None:
        with self.store.write() as session:
            upsert_lead(session, active_model(session, ModelCache()), lead_id, attributes, self.clock())


def open_world(url: str, document: str) -> World:
    store = Store.open(url)
    with store.write() as session:
        row = activate_document(session, document, "yaml", time.time_ns() // 1000)
        model = ModelCache().get(session, row.id)
    return World(store, model)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
