"""Benchmark of POST /v1/events against a real server (uvicorn in its own process).

1. single events at a steady rate (default 200 requests/s for 20 s) from a separate load
   process (httpx, open loop: requests are sent on schedule whatever the latency):
   prints p50/p95/p99 latency and the achieved rate;
2. batches of 1,000 events: prints events/s.

    .venv/bin/python bench/api_ingest.py                       # SQLite
    .venv/bin/python bench/api_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-c", "from leadscore.cli import main; main()", *args],
                          capture_output=True, text=True, check=True).stdout


def _event(i: int, leads: int) -> dict[str, Any]:
    kinds = ("page_view", "email_open", "download", "email_click")
    return {"event_id": f"bench-{i}", "lead_id": f"B{i % leads:06d}", "type": kinds[i % 4],
            "properties": {"url": "/pricing" if i % 3 == 0 else "/blog", "asset": "case-study-x",
                           "link": "demo"}}


def _steady(url: str, key: str, rate: float, seconds: float, start: int, out: Any) -> None:
    """Open-loop load: one request every 1/rate s, on 16 threads; latencies to ``out``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    total = int(rate * seconds)
    begin = time.perf_counter() + 0.5
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            for n in counter:
                due = begin + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent = time.perf_counter()
                response = client.post("/v1/events", json=_event(start + n, 5000))
                took = time.perf_counter() - due  # from the scheduled moment: no coordinated omission
                with lock:
                    if response.status_code != 200:
                        errors += 1
                    latencies.append(max(took, time.perf_counter() - sent))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    out.put({"latencies": latencies, "errors": errors, "elapsed": elapsed})


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 events")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
    db = args.db or f"sqlite:///{folder / 'bench.db'}"
    key = _cli("keys", "create", "--name", "bench", "--scope", "admin", "--db", db).strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve", "--db", db,
         "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        run = int(time.time())
        # warm-up, then the steady single-event load from a separate process
        queue: Any = multiprocessing.Queue()
        load = multiprocessing.Process(target=_steady, args=(url, key, args.rate, 2.0, run * 10**6, queue))
        load.start()
        queue.get()
        load.join()
        load = multiprocessing.Process(
            target=_steady, args=(url, key, args.rate, args.seconds, run * 10**6 + 10**5, queue))
        load.start()
        result = queue.get()
        load.join()
        lat = result["latencies"]
        single = {
            "requests": len(lat), "errors": result["errors"],
            "achieved_rate": round(len(lat) / result["elapsed"], 1),
            "p50_ms": round(_pct(lat, 0.50), 2), "p95_ms": round(_pct(lat, 0.95), 2),
            "p99_ms": round(_pct(lat, 0.99), 2), "max_ms": round(max(lat) * 1000, 2),
        }
        # batches of 1,000 events over 5,000 leads
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            base = run * 10**6 + 5 * 10**5
            bodies = [json.dumps({"events": [_event(base + b * 1000 + j, 5000) for j in range(1000)]})
                      for b in range(args.batches)]
            started = time.perf_counter()
            for body in bodies:
                response = client.post("/v1/events", content=body,
                                       headers={"Content-Type": "application/json"})
                assert response.status_code == 200, response.text
            batch_seconds = time.perf_counter() - started
        batches = {"events": args.batches * 1000,
                   "events_per_s": round(args.batches * 1000 / batch_seconds)}
        print(json.dumps({"database": db.split(":")[0], "single_event": single,
                          "batches_of_1000": batches}, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
