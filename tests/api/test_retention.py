"""Retention: events older than N days are purged (CLI, and the service's housekeeping);
current scores are kept until the lead is next rescored, which then counts only the
events still stored (docs/security.md, "Retention")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from leadscore.api import create_app
from leadscore.cli import app as cli_app
from leadscore.config import Settings
from leadscore.service.keys import create_key
from leadscore.service.retention import Housekeeper, purge_events
from leadscore.store.tables import events

MODEL = """
version: 1
name: retention-test
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 7}, repeat: each}
  - {id: webinar, points: 5, when: {event: webinar}}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "model.yaml").write_text(MODEL)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", model_file=tmp_path / "model.yaml",
                        scheduler=False)
    app = create_app(settings)
    with TestClient(app) as test_client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        test_client.headers.update({"Authorization": f"Bearer {token}"})
        batch = [
            {"event_id": "old-webinar", "lead_id": "L1", "type": "webinar", "timestamp": ago(40)},
            {"event_id": "old-pricing", "lead_id": "L1", "type": "page_view", "timestamp": ago(35),
             "properties": {"url": "/pricing"}},
            {"event_id": "new-pricing", "lead_id": "L1", "type": "page_view", "timestamp": ago(1),
             "properties": {"url": "/pricing"}},
        ]
        assert test_client.post("/v1/events", json={"events": batch}).status_code == 200
        yield test_client


def stored(client: TestClient) -> set[str]:
    with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        return set(session.execute(select(events.c.event_id)).scalars())


def test_purge_keeps_current_scores_until_the_next_rescoring(client: TestClient, tmp_path: Path) -> None:
    before = client.get("/v1/leads/L1").json()
    assert before["score"] == 20.0  # 15 (pricing, last 7 days) + 5 (webinar, ever)

    result = CliRunner().invoke(cli_app, ["purge-events", "--older-than-days", "30",
                                          "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 0, result.output
    assert "purged 2 event(s) older than 30 day(s)" in result.output
    assert stored(client) == {"new-pricing"}

    after = client.get("/v1/leads/L1").json()  # not rescored: the same score, stage, history
    assert (after["score"], after["stage"], after["history"]) == (before["score"], before["stage"], before["history"])
    assert [e["event_id"] for e in after["events"]] == ["new-pricing"]

    # the next rescoring (here: a new event) counts only the events still stored
    event = {"event_id": "newer", "lead_id": "L1", "type": "visit", "timestamp": ago(0.1)}
    assert client.post("/v1/events", json=event).status_code == 200
    assert client.get("/v1/leads/L1").json()["score"] == 15.0  # the purged webinar no longer counts

    [entry] = client.get("/v1/audit", params={"action": "events_purged"}).json()["entries"]
    assert (entry["actor"], entry["detail"]["events"], entry["detail"]["older_than_days"]) == ("cli", 2, 30)


def test_purge_longer_than_every_window_changes_no_score_on_rescoring(client: TestClient) -> None:
    batch = [{"event_id": f"L2-{days}", "lead_id": "L2", "type": "page_view", "timestamp": ago(days),
              "properties": {"url": "/pricing"}} for days in (20, 12, 1)]
    assert client.post("/v1/events", json={"events": batch}).status_code == 200
    assert client.get("/v1/leads/L2").json()["score"] == 15.0  # only the view within 7 days counts
    store = client.app.state.ctx.store  # type: ignore[attr-defined]
    assert purge_events(store, 10, time.time_ns() // 1000, chunk=1) == 4  # several transactions
    assert purge_events(store, 10, time.time_ns() // 1000) == 0  # nothing left
    event = {"event_id": "L2-now", "lead_id": "L2", "type": "visit", "timestamp": ago(0.1)}
    assert client.post("/v1/events", json=event).status_code == 200
    assert client.get("/v1/leads/L2").json()["score"] == 15.0  # rescored: the same


def test_the_service_purges_by_itself_when_retention_days_is_set(client: TestClient) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    keeper = Housekeeper(ctx.store, ctx.usage, retention_days=36)
    assert keeper.run_once()["purged"] == 1  # the 40-day-old webinar
    assert stored(client) == {"old-pricing", "new-pricing"}
    assert "purged" not in keeper.run_once()  # not due again before purge_seconds
    [entry] = client.get("/v1/audit", params={"action": "events_purged"}).json()["entries"]
    assert entry["actor"] == "scheduler"
    assert Housekeeper(ctx.store, ctx.usage, retention_days=None).run_once().get("purged") is None


def test_purge_refuses_a_window_that_is_not_positive(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["purge-events", "--older-than-days", "0",
                                          "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code != 0 and "more than 0" in str(result.exception)
    with pytest.raises(Exception, match="greater than 0"):
        Settings(retention_days=0)
