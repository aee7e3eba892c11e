"""A real server (uvicorn subprocess) killed with SIGKILL during sustained ingestion:
every acknowledged event is stored and scored, and replaying them changes no score."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadscore.engine import Event, Lead, parse_timestamp, score_lead, to_micros
from leadscore.model import load_model
from live import free_port

LEADS = [f"L{i}" for i in range(6)]
MODEL = """
version: 1
name: crash-test
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each, max_times: 5}
  - {id: any-view, points: 1, when: {event: page_view}, repeat: each}
stages:
  - {name: Hot, min_score: 50}
  - {name: New, min_score: 0}
"""



def _serve(db: str, model: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve", "--db", db,
         "--model", str(model), "--port", str(port), "--no-scheduler", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start")


def _events(batch: int, size: int = 10) -> list[dict[str, Any]]:
    return [
        {"event_id": f"b{batch}-{j}", "lead_id": LEADS[(batch + j) % len(LEADS)], "type": "page_view",
         "timestamp": "2026-05-01T00:00:00Z", "properties": {"url": "/pricing" if j % 2 else "/blog"}}
        for j in range(size)
    ]


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    (tmp_path / "model.yaml").write_text(MODEL)
    key = subprocess.run(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "keys", "create",
         "--name", "crash", "--scope", "admin", "--db", db],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    server = _serve(db, tmp_path / "model.yaml", port)
    acked: list[dict[str, Any]] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as client:
            batch = worker
            while not stop.is_set():
                events = _events(batch)
                try:
                    response = client.post("/v1/events", json={"events": events})
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acked.extend(events)
                batch += 4

    senders = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in senders:
        thread.start()
    time.sleep(1.5)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    for thread in senders:
        thread.join()
    assert len(acked) > 50

    server = _serve(db, tmp_path / "model.yaml", port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            model = load_model(tmp_path / "model.yaml")
            scores = {}
            stored_ids: set[str] = set()
            for lead_id in LEADS:
                export = client.get(f"/v1/leads/{lead_id}/export").json()
                stored_ids |= {e["event_id"] for e in export["events"]}
                events = [Event.at(lead_id, e["type"], e["timestamp"], e["properties"], e["event_id"])
                          for e in export["events"]]
                lead = export["lead"]
                as_of = to_micros(parse_timestamp(lead["scored_at"]))
                expected = score_lead(model, Lead(lead_id, lead["attributes"]), events, as_of)
                assert (lead["score"], lead["stage"]) == (expected.score, expected.stage)
                scores[lead_id] = lead["score"]
            assert {e["event_id"] for e in acked} <= stored_ids
            for start in range(0, len(acked), 1000):
                response = client.post("/v1/events", json={"events": acked[start : start + 1000]})
                assert response.json()["accepted"] == 0
            for lead_id in LEADS:
                assert client.get(f"/v1/leads/{lead_id}").json()["score"] == scores[lead_id]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
