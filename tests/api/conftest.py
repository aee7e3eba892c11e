"""API fixtures: an app on a fresh SQLite store, driven in-process, with a key per scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key

MODEL = """
version: 1
name: api-test
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, group: fit, points: 10, when: {attribute: title, contains: vp}}
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 7}, repeat: each}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "model.yaml").write_text(MODEL)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}", model_file=tmp_path / "model.yaml",
        scheduler=False, max_body_bytes=20_000,
    )
    app = create_app(settings)
    with TestClient(app) as test_client:
        with app.state.ctx.store.write() as session:
            for scope in ("admin", "ingest", "read"):
                _, token = create_key(session, scope, scope, 0)
                test_client.headers_for = getattr(test_client, "headers_for", {})  # type: ignore[attr-defined]
                test_client.headers_for[scope] = {"Authorization": f"Bearer {token}"}  # type: ignore[attr-defined]
        test_client.headers.update(test_client.headers_for["admin"])  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture
def admin_client_on_each_database(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with MODEL, once on SQLite and once on PostgreSQL, an admin key in its
    headers; a server error is an answer (500), not an exception."""
    (tmp_path / "model.yaml").write_text(MODEL)
    app = create_app(Settings(database_url=db_url, model_file=tmp_path / "model.yaml", scheduler=False))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        test_client.headers.update({"Authorization": f"Bearer {token}"})
        yield test_client
