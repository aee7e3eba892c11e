"""A real server (``leadscore serve`` subprocess) killed with SIGKILL between score
changes and their webhooks' delivery: after a restart every webhook is delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.actions.conftest import SECRET, Receiver, model_text, wait_for

from live import free_port

CLI = [sys.executable, "-c", "from leadscore.cli import main; main()"]



def _serve(db: str, model: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*CLI, "serve", "--db", db, "--model", str(model), "--port", str(port), "--no-scheduler",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    if not wait_for(lambda: _healthy(port), timeout=30, every=0.1):
        process.kill()
        raise AssertionError("the server did not start")
    return process


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_sigkill_between_score_change_and_delivery(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    hook_port = free_port()  # the receiver is down while the first server runs
    (tmp_path / "model.yaml").write_text(model_text(f"http://127.0.0.1:{hook_port}/hook"))
    env = {**os.environ, "LS_TEST_HOOK_SECRET": SECRET, "LEADSCORE_DISPATCH_POLL_SECONDS": "0.05",
           "LEADSCORE_WEBHOOK_BACKOFF_SECONDS": "0.1", "LEADSCORE_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
           "LEADSCORE_DISPATCH_LEASE_SECONDS": "2"}
    key = subprocess.run([*CLI, "keys", "create", "--name", "crash", "--scope", "admin", "--db", db],
                         capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    server = _serve(db, tmp_path / "model.yaml", port, env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            for i in range(10):
                response = client.post("/v1/events", json={"events": [
                    {"lead_id": f"L{i}", "type": "page_view", "properties": {"url": "/pricing"}}] * 2})
                assert response.json()["leads"][0]["stage"] == "MQL"
            time.sleep(0.3)  # delivery attempts are under way (and failing)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    receiver = Receiver(port=hook_port).start()
    server = _serve(db, tmp_path / "model.yaml", port, env)
    try:
        assert wait_for(lambda: len(receiver.unique) == 10, timeout=30)
        assert sorted(r.body["lead"]["lead_id"] for r in receiver.unique.values()) == sorted(
            f"L{i}" for i in range(10))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            assert wait_for(lambda: client.get("/v1/webhooks/outbox").json()["counts"] == {"delivered": 10})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        receiver.stop()
