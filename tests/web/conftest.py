"""Dashboard fixtures: an app on a fresh SQLite store with a few leads (one Vietnamese),
events and outcomes, and a signed-in test client per scope."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.engine import iso, to_micros
from leadscore.service.keys import create_key

MODEL = """
version: 1
name: web-test
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, label: "VP title", group: fit, points: 10, when: {attribute: job_title, contains: vp}}
  - {id: pricing, label: "Pricing page", points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 30}, repeat: each}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""

LEADS = [
    ("L1", {"name": "Nguyễn Thị Minh Khai", "job_title": "VP Sales", "company": "Công ty Hưng Thịnh"}),
    ("L2", {"name": "Ada Lovelace", "job_title": "Engineer", "company": "Analytical"}),
    ("L3", {"name": "Björn Schneider", "job_title": "VP Marketing", "company": "Silverlink"}),
]


def ago(days: float) -> str:
    return iso(to_micros(datetime.now(UTC) - timedelta(days=days)))


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "model.yaml").write_text(MODEL)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", model_file=tmp_path / "model.yaml",
                        scheduler=False)
    app = create_app(settings)
    with TestClient(app) as client:
        tokens = {}
        with app.state.ctx.store.write() as session:
            for scope in ("admin", "read", "ingest"):
                tokens[scope] = create_key(session, scope, scope, 0)[1]
        api = {"Authorization": f"Bearer {tokens['admin']}"}
        for lead_id, attributes in LEADS:
            assert client.post("/v1/leads", json={"lead_id": lead_id, "attributes": attributes}, headers=api).is_success
        events = [{"event_id": f"e{i}", "lead_id": lead, "type": "page_view", "timestamp": ago(days),
                   "properties": {"url": "/pricing"}}
                  for i, (lead, days) in enumerate([("L1", 2), ("L1", 1), ("L3", 3)])]
        assert client.post("/v1/events", json={"events": events}, headers=api).is_success
        for body in ({"lead_id": "L1", "outcome": "opportunity", "at": ago(0.5)},
                     {"lead_id": "L1", "outcome": "won", "at": ago(0.1)}):
            assert client.post("/v1/outcomes", json=body, headers=api).status_code == 201
        client.tokens = tokens  # type: ignore[attr-defined]
        yield client


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


SignIn = Callable[[str], TestClient]


@pytest.fixture
def sign_in(app_client: TestClient) -> SignIn:
    """Sign the client in with the key of a scope (through the form, as a person would)."""

    def go(scope: str) -> TestClient:
        page = app_client.get("/signin")
        response = app_client.post("/signin", data={"key": app_client.tokens[scope],  # type: ignore[attr-defined]
                                                    "csrf_token": csrf_of(page.text), "next": "/"},
                                   follow_redirects=False)
        assert response.status_code == 303, response.text
        return app_client

    return go
