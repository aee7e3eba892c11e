"""Time from an event accepted by ``leadscore serve`` to its webhook received.

A real server (``leadscore serve`` in its own process, dispatcher in its lifespan) and a
healthy local receiver (http.server on 127.0.0.1). Each request sends the two pricing-page
events that move a new lead into MQL, which fires a ``stage_entered: MQL`` webhook. The
latency of webhook n is ``received_n - sent_n``: from the moment the POST was *sent*
(so the ingestion itself is counted too), to the moment the receiver read the webhook.

    .venv/bin/python bench/webhook_latency.py                   # SQLite, 300 events at 20/s
    .venv/bin/python bench/webhook_latency.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Goal: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from serving import admin_key, percentile, served

MODEL = """
version: 1
name: webhook-bench
rules:
  - {{id: pricing, points: 30, when: {{event: page_view, where: {{url: {{contains: pricing}}}}}}, repeat: each}}
stages:
  - {{name: MQL, min_score: 50}}
  - {{name: New, min_score: 0}}
triggers:
  - id: mql-to-crm
    on: {{stage_entered: MQL}}
    do: [{{webhook: {{url: "http://127.0.0.1:{port}/hook", secret: "${{BENCH_SECRET}}"}}}}]
"""


def _receiver(received: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.setdefault(body["lead"]["lead_id"], time.time())
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--events", type=int, default=300, help="webhooks to measure")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    args = parser.parse_args()
    received: dict[str, float] = {}
    receiver = _receiver(received)
    work = Path(tempfile.mkdtemp(prefix="leadscore-webhook-bench-"))
    db = args.db or f"sqlite:///{work / 'bench.db'}"
    (work / "model.yaml").write_text(MODEL.format(port=receiver.server_address[1]))
    # harden (#8): the receiver is on loopback, which the webhook URL guard refuses unless allowed
    env = {**os.environ, "BENCH_SECRET": "bench", "LEADSCORE_WEBHOOK_ALLOW": "127.0.0.1"}
    key = admin_key(db, env=env)
    run = f"{time.time_ns()}"
    sent: dict[str, float] = {}
    try:
        with served(db, wait_s=60, extra=("--model", str(work / "model.yaml"), "--no-scheduler"), env=env) as (
                _, url), httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            start = time.monotonic()
            for n in range(args.events):
                due = start + n / args.rate
                time.sleep(max(0.0, due - time.monotonic()))
                lead_id = f"{run}-{n}"
                sent[lead_id] = time.time()
                response = client.post("/v1/events", json={"events": [
                    {"lead_id": lead_id, "type": "page_view", "properties": {"url": "/pricing"}}] * 2})
                response.raise_for_status()
            deadline = time.monotonic() + 30
            while len(received) < args.events and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.shutdown()
    latencies = [received[k] - sent[k] for k in sent if k in received]
    lost = len(sent) - len(latencies)
    print(json.dumps({
        "database": db.split(":")[0], "webhooks": len(sent), "received": len(latencies),
        "lost": lost, "rate_per_s": args.rate,
        "p50_s": round(percentile(latencies, 0.50), 4), "p95_s": round(percentile(latencies, 0.95), 4),
        "p99_s": round(percentile(latencies, 0.99), 4), "max_s": round(max(latencies), 4),
    }))


if __name__ == "__main__":
    main()
