"""The routes (/v1/segments, /v1/webhooks) in-process, and the CLI (webhooks, segments, audience)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.actions.conftest import Receiver, model_text, wait_for
from typer.testing import CliRunner

from leadscore.actions.audience import normalise_email, normalise_phone
from leadscore.api import create_app
from leadscore.cli import app as cli
from leadscore.config import Settings
from leadscore.service.keys import create_key

EXTRA = """segments:
  - {name: hot, min_score: 50}
  - {name: vps, attributes: [{attribute: title, contains: vp}]}
"""


@pytest.fixture
def api(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LEADSCORE_DISPATCH_POLL_SECONDS", "0.05")
    (tmp_path / "model.yaml").write_text(model_text(receiver.url, EXTRA))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}",
                        model_file=tmp_path / "model.yaml", scheduler=False)
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        client.headers.update({"Authorization": f"Bearer {token}"})
        yield client


def test_api_segments_and_deliveries(api: TestClient, receiver: Receiver) -> None:
    for i, title in enumerate(["VP Sales", "intern"]):
        api.post("/v1/leads", json={"lead_id": f"L{i}", "attributes": {"title": title}})
        api.post("/v1/events", json={"events": [
            {"lead_id": f"L{i}", "type": "page_view", "properties": {"url": "/pricing"}}] * 2})
    assert wait_for(lambda: len(receiver.unique) == 1)  # L1 entered MQL; L0 went to SQL (80) at once
    body = api.get("/v1/segments").json()
    assert [(s["name"], s["members"]) for s in body["segments"]] == [("hot", 2), ("vps", 1)]
    members = api.get("/v1/segments/vps/members").json()
    assert [m["lead_id"] for m in members["members"]] == ["L0"]
    response = api.get("/v1/segments/hot/members", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert [r["lead_id"] for r in csv.DictReader(response.text.splitlines())] == ["L0", "L1"]
    missing = api.get("/v1/segments/hto/members")
    assert missing.status_code == 404
    assert missing.json()["message"] == "no segment 'hto' in the active model - did you mean 'hot'?"
    assert wait_for(lambda: len(api.get("/v1/webhooks/deliveries").json()["deliveries"]) == 1)
    deliveries = api.get("/v1/webhooks/deliveries").json()["deliveries"]
    assert all(d["ok"] and d["status_code"] == 204 and d["latency_ms"] >= 0 for d in deliveries)
    outbox = api.get("/v1/webhooks/outbox").json()
    assert outbox["counts"] == {"delivered": 1}


def test_cli_segments_webhooks_and_audience(api: TestClient, tmp_path: Path, receiver: Receiver) -> None:
    db = f"sqlite:///{tmp_path / 'api.db'}"
    people = [
        ("A", {"email": "  John.Doe@GMail.com ", "phone": "+1 (650) 555-1234", "consent_ads": True}),
        ("B", {"email": "b@example.org", "phone": "0912 345 678", "consent_ads": "yes"}),
        ("C", {"email": "c@example.org", "consent_ads": False}),
    ]
    for lead_id, attributes in people:
        api.post("/v1/leads", json={"lead_id": lead_id, "attributes": attributes})
        api.post("/v1/events", json={"events": [
            {"lead_id": lead_id, "type": "page_view", "properties": {"url": "/pricing"}}] * 2})
    runner = CliRunner()
    result = runner.invoke(cli, ["segments", "list", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == 'hot\t3\t{"min_score": 50.0}'
    result = runner.invoke(cli, ["segments", "members", "hot", "--db", db])
    assert [r["lead_id"] for r in csv.DictReader(result.output.splitlines())] == ["A", "B", "C"]
    out = tmp_path / "audience.csv"
    result = runner.invoke(cli, ["audience", "export", "--segment", "hot", "--out", str(out),
                                 "--db", db, "--default-country-code", "84"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert rows == [
        {"email": sha("john.doe@gmail.com"), "phone": sha("16505551234")},
        {"email": sha("b@example.org"), "phone": sha("84912345678")},
    ]
    result = runner.invoke(cli, ["audience", "export", "--segment", "hot", "--out", str(out),
                                 "--db", db, "--platform", "google", "--consent-attribute", "consent_ads"])
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows == [{"email": sha("johndoe@gmail.com"), "phone": sha("+16505551234")},
                    {"email": sha("b@example.org"), "phone": ""}]
    assert wait_for(lambda: len(receiver.unique) == 3)
    result = runner.invoke(cli, ["webhooks", "list", "--db", db])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "id\tkind\tstatus\tattempts\ttrigger\tlead_id\ttarget\tlast_error" in lines  # stdout's first
    assert len([line for line in lines if "\twebhook\tdelivered\t1/50\tmql-to-crm\t" in line]) == 3
    first = next(line for line in lines if "\twebhook\t" in line).split("\t")[0]
    result = runner.invoke(cli, ["webhooks", "replay", first, "--db", db])
    assert result.exit_code == 0, result.output
    assert wait_for(lambda: len(receiver.received) == 4)
    assert len(receiver.unique) == 3  # the replay carries the same idempotency key
    result = runner.invoke(cli, ["webhooks", "retry", "--db", db])
    assert str(result.exception) == "give outbox ids or --all-dead"


@pytest.mark.parametrize(("raw", "meta", "google"), [
    ("+1 (650) 555-1234", "16505551234", "+16505551234"),
    ("0049 30 1234567", "49301234567", "+49301234567"),
    ("+84 912 345 678", "84912345678", "+84912345678"),
    ("555-1234", None, None),  # no country code and no default: left out
    ("", None, None),
])
def test_phone_normalisation(raw: str, meta: str | None, google: str | None) -> None:
    assert normalise_phone(raw, "meta") == meta
    assert normalise_phone(raw, "google") == google


def test_email_normalisation() -> None:
    assert normalise_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    assert normalise_email("Jane.Doe@googlemail.com", "google") == "janedoe@googlemail.com"
    assert normalise_email("Jane.Doe@gmail.com", "meta") == "jane.doe@gmail.com"
    assert normalise_email("not an address") is None
