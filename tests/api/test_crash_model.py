"""A real server (uvicorn subprocess) killed with SIGKILL while it rescores every lead after
a model change: the store shows the old model's scores everywhere (never a mix), and the
restarted server finishes the change, after which every lead has the new model's score."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadscore.engine import Event, Lead, parse_timestamp, score_lead, to_micros
from leadscore.model import parse_model
from leadscore.service.models import active_version_id
from leadscore.store.db import Store
from leadscore.store.tables import leads, model_versions
from live import free_port

OLD = """
version: 1
name: old
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each, max_times: 5}
  - {id: any-view, points: 1, when: {event: page_view}, repeat: each}
stages:
  - {name: Hot, min_score: 40}
  - {name: New, min_score: 0}
"""
NEW = OLD.replace("name: old", "name: new").replace("points: 15", "points: 20")
LEADS = 2_000



def _serve(db: str, model: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEADSCORE_RESCORE_CHUNK": "10"}  # many small transactions to land in
    process = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve", "--db", db,
         "--model", str(model), "--port", str(port), "--no-scheduler", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    # generous: at load 14 on 2 cores, starting the server once took over 20 s
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before it answered")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start")


def _state(db: str) -> tuple[int | None, set[int], dict[str, Any]]:
    """Read directly from the store: (active version, versions leads were scored by, names)."""
    store = Store.open(db)
    try:
        with store.read() as session:
            active = active_version_id(session)
            used = {r[0] for r in session.execute(select(leads.c.model_version_id)).all()}
            names = dict(session.execute(select(model_versions.c.id, model_versions.c.name)).all())
        return active, used, names
    finally:
        store.dispose()


@pytest.mark.slow
def test_sigkill_during_model_rescoring_leaves_one_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'switch.db'}"
    (tmp_path / "model.yaml").write_text(OLD)
    key = subprocess.run(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "keys", "create",
         "--name", "switch", "--scope", "admin", "--db", db],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    server = _serve(db, tmp_path / "model.yaml", port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            events = [
                {"event_id": f"e{i}-{k}", "lead_id": f"L{i:05d}", "type": "page_view",
                 "timestamp": "2026-05-01T00:00:00Z", "properties": {"url": "/pricing" if k % 2 else "/blog"}}
                for i in range(LEADS) for k in range(i % 4 + 1)
            ]
            for start in range(0, len(events), 1000):
                assert client.post("/v1/events", json={"events": events[start : start + 1000]}).status_code == 200
            response = client.put("/v1/model", content=NEW, headers={"Content-Type": "application/yaml"})
            assert response.status_code == 202
            # the new version is stored but not active while it is being prepared
            assert client.get("/v1/model").json()["name"] == "old"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                progress = client.get("/v1/model/rescore").json()
                if progress["status"] != "running" or progress["done"] >= 100:
                    break
                time.sleep(0.01)
        assert progress["status"] == "running" and 0 < progress["done"] < LEADS, progress
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()

    active, used, names = _state(db)
    assert names[active] == "old" and {names[v] for v in used} == {"old"}

    server = _serve(db, tmp_path / "model.yaml", port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            deadline = time.monotonic() + 120
            while client.get("/v1/model/rescore").json()["status"] == "running":
                assert time.monotonic() < deadline, "the restarted server did not finish the change"
                time.sleep(0.1)
            assert client.get("/v1/model/rescore").json()["status"] == "done"
            assert client.get("/v1/model").json()["name"] == "new"
            model = parse_model(NEW)
            for lead_id in ("L00000", "L00003", f"L{LEADS - 1:05d}"):
                export = client.get(f"/v1/leads/{lead_id}/export").json()
                lead = export["lead"]
                evs = [Event.at(lead_id, e["type"], e["timestamp"], e["properties"], e["event_id"])
                       for e in export["events"]]
                as_of = to_micros(parse_timestamp(lead["scored_at"]))
                expected = score_lead(model, Lead(lead_id, lead["attributes"]), evs, as_of)
                assert (lead["score"], lead["stage"]) == (expected.score, expected.stage)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    active, used, names = _state(db)
    assert names[active] == "new" and {names[v] for v in used} == {"new"}
