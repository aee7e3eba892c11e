"""Overload: many more concurrent requests than database connections and threads never
deadlock (a read session is ended without waiting for a thread of the request pool)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key
from leadscore.store.db import Store

MODEL = """
version: 1
name: overload-test
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    monkeypatch.setenv("LEADSCORE_DISPATCHER", "0")
    (tmp_path / "model.yaml").write_text(MODEL)
    url = f"sqlite:///{tmp_path / 'overload.db'}"
    store = Store.open(url, pool_size=2)  # 4 connections for 40 request threads
    with store.write() as session:
        _, token = create_key(session, "load", "admin", 0)
    settings = Settings(database_url=url, model_file=tmp_path / "model.yaml", scheduler=False,
                        rate_limit_per_second=0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(settings, store=store), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvi.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    finally:
        uvi.should_exit = True
        thread.join(timeout=20)
        store.dispose()


def test_many_concurrent_reads_and_writes_all_complete(server: tuple[str, dict[str, str]]) -> None:
    base, headers = server
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        assert client.post("/v1/leads", json={"lead_id": "L0"}).status_code == 201

    def call(n: int) -> int:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            statuses = []
            for i in range(6):
                if (n + i) % 3 == 0:
                    body: Any = {"event_id": f"e-{n}-{i}", "lead_id": f"L{n % 7}", "type": "page_view",
                                 "properties": {"url": "/pricing"}}
                    statuses.append(client.post("/v1/events", json=body).status_code)
                else:
                    statuses.append(client.get(f"/v1/leads/L{(n + i) % 7}" if i % 2 else "/v1/leads").status_code)
            return max(s for s in statuses if s != 404) if any(s != 404 for s in statuses) else 200

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=120) as pool:
        results = list(pool.map(call, range(120)))
    assert set(results) == {200}
    assert time.monotonic() - started < 60


def test_every_sync_route_with_a_read_session_releases_it_in_its_own_thread(tmp_path: Path) -> None:
    """The deadlock fix works per router (``route_class=ReleasingRoute``): a router added
    without it would bring the deadlock back for its routes, so every sync route that takes a
    read session must be a ReleasingRoute."""
    import inspect

    from fastapi.routing import APIRoute

    from leadscore.api.deps import ReleasingRoute, read_session

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", scheduler=False))

    def uses_read_session(dependant: Any) -> bool:
        return any(d.call is read_session or uses_read_session(d) for d in dependant.dependencies)

    checked, missing = 0, []
    for top in app.routes:  # included routers flattened, as in test_security_scopes.py
        for context in top.effective_route_contexts() if hasattr(top, "effective_route_contexts") else [top]:
            route = getattr(context, "original_route", context)
            if isinstance(route, APIRoute) and uses_read_session(context.dependant):
                checked += 1
                wrapped = getattr(route.endpoint, "__wrapped__", route.endpoint)
                if not inspect.iscoroutinefunction(wrapped) and not isinstance(route, ReleasingRoute):
                    missing.append(f"{sorted(route.methods)} {route.path}")
    assert checked > 10
    assert missing == [], f"sync routes holding a read session without ReleasingRoute: {missing}"
