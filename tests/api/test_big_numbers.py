"""Floats of 1e16 and more (Python writes them with an exponent: ``1e+23``) come back from
the store as the same floats on SQLite and PostgreSQL: in the lead's attributes, its
events' properties, its explanation, and in what the rules compare. PostgreSQL's jsonb keeps
numbers as decimals and used to give ``1e+23`` back as the integer 10**23, which is not the
float 1e23: ``equals: 1.0e23`` held on SQLite and not on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key

MODEL = """
version: 1
name: big numbers
rules:
  - {id: exact, points: 10, when: {attribute: revenue, equals: 1.0e23}}
  - {id: above, points: 5, when: {attribute: reach, gt: 25000000000000000}}
  - {id: deal, points: 7, when: {event: deal, where: {amount: {equals: 1.0e20}}}}
stages:
  - {name: Hot, min_score: 20}
  - {name: New, min_score: 0}
"""

ATTRIBUTES: dict[str, Any] = {"revenue": 1e23, "reach": 2.5000000000000004e16, "tiny": 1e-7,
                              "huge": 1e300, "negative": -3e18, "text": "1e+23 \"as text\""}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "model.yaml").write_text(MODEL)
    app = create_app(Settings(database_url=db_url, model_file=tmp_path / "model.yaml", scheduler=False))
    with TestClient(app) as test_client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        test_client.headers.update({"Authorization": f"Bearer {token}"})
        yield test_client


def _same(got: Any, sent: Any) -> None:
    assert got == sent and type(got) is type(sent), (got, sent)


def test_big_floats_come_back_as_they_were_sent(client: TestClient) -> None:
    assert client.post("/v1/leads", json={"lead_id": "L1", "attributes": ATTRIBUTES}).status_code == 201
    posted = client.post("/v1/events", json={"event_id": "e1", "lead_id": "L1", "type": "deal",
                                             "properties": {"amount": 1e20, "count": 3}})
    assert posted.status_code == 200, posted.text
    lead = client.get("/v1/leads/L1").json()
    for name, value in ATTRIBUTES.items():
        _same(lead["attributes"][name], value)
    assert lead["score"] == 22 and lead["stage"] == "Hot"  # all three rules hold, on both databases
    explained = {rule["rule"]: rule for rule in lead["explain"]["rules"]}
    _same(explained["exact"]["attributes"]["revenue"], 1e23)
    (event,) = lead["events"]
    _same(event["properties"]["amount"], 1e20)
    exported = client.get("/v1/leads/L1/export").json()
    _same(exported["lead"]["attributes"]["revenue"], 1e23)
