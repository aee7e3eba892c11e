"""Privacy: erasure leaves no trace in any table (nor in the SQLite file), the subject export
holds every table about the lead, the audit log records who did what (a lead only as a
hash), and personal data never reaches the logs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from leadscore.actions.config import DeliveryConfig
from leadscore.actions.dispatcher import Dispatcher
from leadscore.api import create_app
from leadscore.config import Settings
from leadscore.service.keys import create_key
from leadscore.service.leads import OWN_SECTIONS, lead_tables
from leadscore.store.tables import Base, rescore_jobs
from leadscore.store.tables_rescore import pending_scores

LEAD = "L-privacy-7f3a"
EMAIL = "jane.doe.privacy@example.org"
PHONE = "+49 151 23456789"
NAME = "Jane Privacydoe"
SECRETS = (LEAD, EMAIL, PHONE, NAME)
# tables that the scenario below fills for the lead (a later table is still checked after
# the erasure, generically, but need not be filled here)
FILLED = {"events", "score_history", "stage_transitions", "outcomes", "segment_members", "lead_tags",
          "lead_owners", "rules_fired", "automation_log", "outbox", "deliveries", "pending_scores"}
FAST = DeliveryConfig(poll_seconds=0.05, workers=2, lease_seconds=10, backoff_seconds=0.05,
                      backoff_max_seconds=0.2, smtp_host="127.0.0.1", smtp_port=9, smtp_timeout_seconds=1)


class EchoReceiver:
    """A webhook receiver that fails with 500 and echoes the body (as careless receivers do)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"cannot store " + body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def model(url: str) -> str:
    return f"""
version: 1
name: privacy-test
groups: {{fit: {{grades: {{A: 20, B: 0}}}}}}
rules:
  - {{id: vp, group: fit, points: 20, when: {{attribute: title, contains: vp}}}}
  - {{id: pricing, points: 30, when: {{event: page_view, where: {{url: {{contains: pricing}}}}}}, repeat: each}}
stages:
  - {{name: SQL, min_score: 200}}
  - {{name: MQL, min_score: 50}}
  - {{name: New, min_score: 0}}
segments:
  - {{name: hot, min_score: 50}}
  - {{name: vp-on-pricing, grades: {{fit: A}}, rule_fired: pricing, active_within_days: 30}}
email:
  from: leadscore@example.com
  templates:
    welcome: {{subject: "Hello {{{{ lead.name }}}}", body: "Dear {{{{ lead.name }}}}, score {{{{ change.new.score }}}}."}}
    alert: {{subject: "{{{{ lead.name }}}} is hot", body: "{{{{ lead.email }}}} {{{{ lead.phone }}}}"}}
triggers:
  - id: route
    on: {{stage_entered: MQL}}
    do:
      - webhook: {{url: "{url}", timeout_seconds: 2, max_attempts: 1}}
      - assign_owner: {{round_robin: [rep1@example.com]}}
      - tag: {{add: [mql]}}
  - id: nurture
    on: {{segment_entered: hot}}
    do: [{{email: {{template: welcome, to: lead}}}}]
  - id: priced
    on: {{rule_fired: pricing}}
    do: [{{tag: {{add: [pricing]}}}}]
  - id: alert
    on: {{score_above: 70}}
    do: [{{email: {{template: alert, to: owner}}}}]
"""


@pytest.fixture
def receiver() -> Iterator[EchoReceiver]:
    r = EchoReceiver()
    yield r
    r.stop()


@pytest.fixture
def app_client(tmp_path: Path, receiver: EchoReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LEADSCORE_DISPATCHER", "0")  # delivered below, in the test's thread
    (tmp_path / "model.yaml").write_text(model(receiver.url))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'privacy.db'}", model_file=tmp_path / "model.yaml",
                        scheduler=False, webhook_allow="127.0.0.1")
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "privacy-admin", "admin", 0)
        client.headers.update({"Authorization": f"Bearer {token}"})
        yield client


def _populate(client: TestClient) -> None:
    """The lead leaves rows in every table that can hold something about a lead."""
    attributes = {"title": "VP Sales", "email": EMAIL, "phone": PHONE, "name": NAME, "consent_email": True}
    for lead_id in (LEAD, "L-other"):
        assert client.post("/v1/leads", json={"lead_id": lead_id, "attributes": attributes}).status_code == 201
        for i in range(2):
            body = {"event_id": f"{lead_id}-{i}", "lead_id": lead_id, "type": "page_view",
                    "properties": {"url": "/pricing", "referrer_email": EMAIL}}
            assert client.post("/v1/events", json=body).status_code in (200, 201, 202)
        response = client.post("/v1/outcomes", json={"lead_id": lead_id, "outcome": "opportunity"})
        assert response.status_code == 201, response.text
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    Dispatcher(ctx.store, FAST).run_once()  # webhook (500) and e-mails (no SMTP server): deliveries
    with ctx.store.write() as session:
        pk = session.execute(text("select id from leads where lead_id = :l"), {"l": LEAD}).scalar_one()
        job = session.execute(rescore_jobs.insert().values(
            model_version_id=1, status="superseded", total=1, done=0, started_us=0)).inserted_primary_key[0]
        session.execute(pending_scores.insert().values(job_id=job, lead_pk=pk, change=json.dumps({"lead_id": LEAD})))


def _lead_pk(client: TestClient) -> int:
    with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        return int(session.execute(text("select id from leads where lead_id = :l"), {"l": LEAD}).scalar_one())


def _rows_about(client: TestClient, pk: int) -> dict[str, int]:
    counts = {}
    with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        for table in lead_tables():
            conditions = [table.c.lead_pk == pk] if "lead_pk" in table.c else []
            if "lead_id" in table.c:
                conditions.append(table.c.lead_id == LEAD)
            from sqlalchemy import or_

            counts[table.name] = int(session.execute(
                select(func.count()).select_from(table).where(or_(*conditions))).scalar_one())
    return counts


def _traces(client: TestClient, pk: int, needles: tuple[str, ...]) -> list[str]:
    """Every cell of every table of the store that holds one of ``needles``, or every row
    with the erased lead's ``lead_pk``."""
    found = []
    with client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                if "lead_pk" in table.c and row["lead_pk"] == pk:
                    found.append(f"{table.name}: a row with lead_pk {pk}")
                cells = json.dumps({k: v for k, v in row.items()}, default=str, ensure_ascii=False)
                found += [f"{table.name}: {needle!r}" for needle in needles if needle in cells]
    return found


def test_erasure_leaves_no_trace_in_any_table(app_client: TestClient, tmp_path: Path) -> None:
    _populate(app_client)
    pk = _lead_pk(app_client)
    before = _rows_about(app_client, pk)
    assert {name for name, n in before.items() if n} >= FILLED, before
    assert _traces(app_client, pk, SECRETS)  # the check below can see them
    wal = tmp_path / "privacy.db-wal"
    assert LEAD.encode() in (tmp_path / "privacy.db").read_bytes() + wal.read_bytes()  # so can the scan

    assert app_client.delete(f"/v1/leads/{LEAD}").status_code == 204

    assert app_client.get(f"/v1/leads/{LEAD}").status_code == 404
    assert _traces(app_client, pk, (LEAD,)) == []
    # the other lead (same e-mail on purpose) keeps everything
    others = [t for t in _traces(app_client, -1, (EMAIL,))]
    assert others and all("lead_pk" not in t for t in others)
    # nor in the database file: SQLite overwrote the deleted cells (secure_delete); nor in
    # the WAL, which held older images of those pages and is emptied after an erasure
    assert app_client.delete("/v1/leads/L-other").status_code == 204
    raw = (tmp_path / "privacy.db").read_bytes() + wal.read_bytes()
    for needle in SECRETS:
        assert needle.encode() not in raw, needle
    # the audit log says an erasure happened, naming the lead only by its hash
    audit = app_client.get("/v1/audit", params={"action": "lead_erased", "lead_id": LEAD}).json()
    [entry] = audit["entries"]
    assert entry["subject"].startswith("lead:") and LEAD not in json.dumps(entry)
    assert entry["actor"].endswith("(privacy-admin)")
    assert entry["detail"]["rows"]["events"] == 2 and entry["detail"]["rows"]["outbox"] >= 2


def test_every_table_about_a_lead_is_erased_and_exported() -> None:
    """A table with a lead_pk or lead_id column is erased and exported without being listed
    anywhere: a table added later cannot be forgotten."""
    names = {t.name for t in lead_tables()}
    assert names >= FILLED
    with_lead_columns = {t.name for t in Base.metadata.sorted_tables
                         if ("lead_pk" in t.c or "lead_id" in t.c) and t.name != "leads"}
    assert names == with_lead_columns


def test_subject_export_holds_every_table_about_the_lead(app_client: TestClient) -> None:
    _populate(app_client)
    pk = _lead_pk(app_client)
    before = _rows_about(app_client, pk)
    response = app_client.get(f"/v1/leads/{LEAD}/export")
    assert response.status_code == 200
    export = response.json()
    assert export["lead"]["attributes"]["email"] == EMAIL
    for table, count in before.items():
        section = export[OWN_SECTIONS[table]] if table in OWN_SECTIONS else export["records"][table]
        assert len(section) == count, table
    assert {m["segment"] for m in export["records"]["segment_members"]} == {"hot", "vp-on-pricing"}
    assert export["records"]["lead_owners"][0]["owner"] == "rep1@example.com"
    assert {r["kind"] for r in export["records"]["outbox"]} == {"webhook", "email_lead", "email"}
    assert all("lead_pk" not in r for rows in export["records"].values() for r in rows)
    # the export itself is audited, and listed in the next export
    assert [e["action"] for e in export["audit"]] == ["lead_exported"]
    assert [e["action"] for e in app_client.get(f"/v1/leads/{LEAD}/export").json()["audit"]] == [
        "lead_exported", "lead_exported"]


def test_subject_export_leaves_out_the_operators_internals(app_client: TestClient, receiver: EchoReceiver) -> None:
    """Messages and deliveries are exported by what concerns the person (what was sent about
    them, when, how it went), not by the webhook URL template, signing secret, the CRM's
    error text, idempotency keys or leases."""
    _populate(app_client)
    export = app_client.get(f"/v1/leads/{LEAD}/export").json()
    outbox, deliveries = export["records"]["outbox"], export["records"]["deliveries"]
    assert outbox and deliveries
    text = json.dumps({"outbox": outbox, "deliveries": deliveries})
    for internal in (receiver.url, "cannot store", "secret", "idempotency", "lease", "last_error",
                     "timeout_seconds", "consent_attribute"):
        assert internal not in text, internal
    assert {tuple(sorted(r)) for r in deliveries} == {
        ("at", "attempt", "id", "ok", "outbox_id", "status_code")}
    by_kind = {r["kind"]: r for r in outbox}
    assert set(by_kind) == {"webhook", "email_lead", "email"}
    sent = by_kind["webhook"]["payload"]  # the body sent about the person
    assert sent["lead"]["lead_id"] == LEAD and sent["lead"]["attributes"]["email"] == EMAIL
    assert by_kind["email_lead"]["to"] == EMAIL  # their own address
    assert "to" not in by_kind["email"]  # a rep's address is not theirs
    assert NAME in by_kind["email_lead"]["payload"]["subject"]
    assert EMAIL in by_kind["email"]["payload"]["body"]
    for row in outbox:
        assert {"id", "trigger_id", "status", "attempts", "created_at", "finished_at"} <= set(row)


def test_audit_log_records_model_keys_and_key_use(app_client: TestClient) -> None:
    created = app_client.post("/v1/keys", json={"name": "crm-sync", "scope": "ingest"}).json()
    ingest = {"Authorization": f"Bearer {created['key']}"}
    for i in range(3):
        assert app_client.post("/v1/leads", json={"lead_id": f"L{i}"}, headers=ingest).status_code == 201
    assert app_client.delete(f"/v1/keys/{created['id']}").status_code == 200
    assert app_client.put("/v1/model", content=model("http://127.0.0.1:9/x").replace("privacy-test", "v2"),
                          headers={"Content-Type": "application/yaml"}).status_code == 202
    body = app_client.get("/v1/audit").json()
    actions = [(e["action"], e["subject"]) for e in body["entries"]]
    key = f"key {created['id']}"
    assert actions[:3] == [("model_activated", "model version 2"), ("key_revoked", key), ("key_created", key)]
    assert ("model_activated", "model version 1") in actions  # at start-up
    by_action = {e["action"]: e for e in reversed(body["entries"])}
    assert by_action["key_created"]["actor"].endswith("(privacy-admin)")
    assert by_action["key_created"]["detail"]["scope"] == "ingest"
    assert created["key"] not in json.dumps(body)  # never the key itself
    usage = {u["name"]: u for u in body["key_usage"]}
    assert usage["crm-sync"]["requests"] == 3 and usage["crm-sync"]["revoked"]
    assert usage["crm-sync"]["last_used_at"] >= usage["crm-sync"]["first_used_at"]
    assert usage["privacy-admin"]["requests"] >= 3  # counted, not logged per request
    with app_client.app.state.ctx.store.read() as session:  # type: ignore[attr-defined]
        rows = session.execute(text("select count(*) from audit_log")).scalar_one()
    assert rows == len(body["entries"]) < 10
    page = app_client.get("/v1/audit", params={"limit": 2}).json()
    rest = app_client.get("/v1/audit", params={"before": page["next_before"], "limit": 100}).json()
    assert [e["id"] for e in page["entries"] + rest["entries"]] == [e["id"] for e in body["entries"]]
    assert app_client.get("/v1/audit", params={"action": "nope"}).status_code == 422


def test_personal_data_never_reaches_the_logs(app_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _populate(app_client)  # ingest, triggers, a failing webhook that echoes the body, failing e-mails
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.store.write() as session:  # retried rows fail again
        session.execute(text("update outbox set status = 'pending', next_attempt_us = 0, max_attempts = 5"))
    Dispatcher(ctx.store, FAST).run_once()
    # bad input holding personal data
    bad = {"lead_id": LEAD, "attributes": {"email": EMAIL, "x" * 300: NAME}}
    assert app_client.post("/v1/leads", json=bad).status_code == 422
    assert app_client.post("/v1/events", json={"lead_id": LEAD, "type": 5, "email": EMAIL}).status_code == 422
    # a database failure in the middle of a write holding personal data
    with ctx.store.write() as session:
        session.execute(text("alter table events rename to events_away"))
    event = {"event_id": "E-log", "lead_id": LEAD, "type": "page_view", "properties": {"email": EMAIL, "name": NAME}}
    response = app_client.post("/v1/events", json=event)
    # (a missing table is not a database to wait for: 500, without Retry-After)
    assert response.status_code == 500 and "Retry-After" not in response.headers
    with ctx.store.write() as session:
        session.execute(text("alter table events_away rename to events"))

    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "failed (status 500)" in logged  # the failures were logged ...
    assert "database error (OperationalError: no such table" in logged
    for needle in (EMAIL, PHONE, NAME, "rep1@example.com"):  # ... without personal data
        assert needle not in logged, needle


def test_dashboard_exports_and_erasures_are_audited_with_the_signed_in_key(app_client: TestClient) -> None:
    import re

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found
        return found.group(1)

    assert app_client.post("/v1/leads", json={"lead_id": LEAD, "attributes": {"email": EMAIL}}).status_code == 201
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.store.write() as session:
        _, token = create_key(session, "anna", "admin", 0)
    api = dict(app_client.headers)
    browser = TestClient(app_client.app)
    page = browser.get("/signin")
    signed = browser.post("/signin", data={"key": token, "csrf_token": csrf(page.text), "next": "/"},
                          follow_redirects=False)
    assert signed.status_code == 303
    assert browser.get(f"/leads/{LEAD}/export").json()["lead"]["attributes"]["email"] == EMAIL
    form = browser.get(f"/leads/{LEAD}/erase")
    erased = browser.post(f"/leads/{LEAD}/erase", data={"confirm": LEAD, "csrf_token": csrf(form.text)},
                          follow_redirects=False)
    assert erased.status_code == 303
    entries = app_client.get("/v1/audit", params={"lead_id": LEAD}, headers=api).json()["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("lead_erased", "dashboard, key 2 (anna)"), ("lead_exported", "dashboard, key 2 (anna)")]
