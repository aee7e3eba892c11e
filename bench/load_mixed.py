"""Load test of the service: a steady mix of reads and writes on loopback, open loop.

The server (`leadscore serve`, its own process) starts on a store loaded with a demo world
(`--world-leads`, default 5,000 leads, about 100k events). Two load processes then send
`--rate` requests/s between them (default 500) for `--seconds` (default 60), each request
due at a fixed moment whatever the latency so far (latency is measured from that moment:
queueing counts), on 32 keep-alive connections per process. The mix, per 20 requests:

    10  POST /v1/events         one event for a known lead (read-your-writes response)
     2  POST /v1/leads          an attribute change of a known lead
     5  GET  /v1/leads/{id}     a lead with its explanation, events and history
     2  GET  /v1/leads          the best leads of a stage (filter + order + limit 50)
     1  GET  /v1/analytics

Prints, per kind and overall: requests, errors (anything but 2xx, or no answer), p50, p95,
p99 and max latency, and the achieved rate; also the CPU seconds the server and the load
processes used (a load process near a full core would make the generator the bottleneck)
and the load average before and after.

    .venv/bin/python bench/load_mixed.py                  # SQLite
    .venv/bin/python bench/load_mixed.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/load_mixed.py --workers 2        # serve --workers 2 (CPU: all its processes)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from serving import admin_key, cli, load_average, served, tree_cpu_seconds

MIX = ["event"] * 10 + ["lead"] * 2 + ["detail"] * 5 + ["list"] * 2 + ["summary"]


def _request(kind: str, n: int, lead_ids: list[str], tag: str) -> tuple[str, str, str | None]:
    lead = lead_ids[(n * 7919) % len(lead_ids)]
    if kind == "event":
        body = {"event_id": f"load-{tag}-{n}", "lead_id": lead, "type": "page_view",
                "properties": {"url": "/pricing" if n % 3 == 0 else "/blog"}}
        return "POST", "/v1/events", json.dumps(body)
    if kind == "lead":
        return "POST", "/v1/leads", json.dumps({"lead_id": lead, "attributes": {"load_touch": n % 5}})
    if kind == "detail":
        return "GET", f"/v1/leads/{lead}", None
    if kind == "list":
        return "GET", "/v1/leads?order=score&limit=50", None
    return "GET", "/v1/analytics", None


def _load(url: str, key: str, rate: float, seconds: float, offset: float, lead_ids: list[str],
          tag: str, out: Any) -> None:
    """One load process: request n (of this process) is due at begin + (n + offset) / rate."""
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    total = int(rate * seconds)
    begin = time.perf_counter() + 1.0
    counter = iter(range(total))
    results: list[tuple[str, float, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for n in counter:
            kind = MIX[n % len(MIX)]
            method, path, body = _request(kind, n, lead_ids, tag)
            due = begin + (n + offset) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                ok = False
            took = time.perf_counter() - due
            with lock:
                results.append((kind, took, ok))
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"results": results, "elapsed": time.perf_counter() - begin, "cpu_s": time.process_time()})


def _summary(latencies: list[float], errors: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else 0.0

    return {"requests": len(ordered), "errors": errors, "p50_ms": pct(0.5), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s in all")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--world-leads", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (server processes)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-load-"))
    db = args.db or f"sqlite:///{folder / 'load.db'}"
    cli("demo-data", "--leads", str(args.world_leads), "--seed", "42", "--out", str(folder / "world"))
    cli("import", "--leads", str(folder / "world" / "leads.csv"), "--events",
         str(folder / "world" / "events.csv"), "--db", db)
    key = admin_key(db, "load")
    with served(db, workers=args.workers) as (server, url):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
            lead_ids = [row["lead_id"] for row in client.get("/v1/leads?limit=1000").json()["leads"]]
        tag = str(int(time.time()))
        load_before = load_average()
        server_cpu = tree_cpu_seconds(server.pid)
        queue: Any = multiprocessing.Queue()
        per_process = args.rate / args.processes
        loads = [
            multiprocessing.Process(target=_load, args=(
                url, key, per_process, args.seconds, p / args.processes, lead_ids, f"{tag}-{p}", queue))
            for p in range(args.processes)
        ]
        for load in loads:
            load.start()
        outputs = [queue.get() for _ in loads]
        for load in loads:
            load.join()
        results = [r for out in outputs for r in out["results"]]
        elapsed = max(out["elapsed"] for out in outputs)
        server_after = tree_cpu_seconds(server.pid)
        report: dict[str, Any] = {
            "database": db.split(":")[0], "world_leads": args.world_leads, "workers": args.workers,
            "target_rate": args.rate, "seconds": args.seconds,
            "achieved_rate": round(len(results) / elapsed, 1),
            "server_cpu_s": round(server_after - server_cpu, 1)
            if server_after is not None and server_cpu is not None else None,
            "server_cpu_ms_per_request": round((server_after - server_cpu) * 1000 / len(results), 2)
            if server_after is not None and server_cpu is not None and results else None,
            "load_cpu_s": [round(out["cpu_s"], 1) for out in outputs],
            "load_average": {"before": load_before, "after": load_average()},
            "all": _summary([t for _, t, _ in results], sum(1 for *_, ok in results if not ok)),
        }
        for kind in dict.fromkeys(MIX):
            mine = [(t, ok) for k, t, ok in results if k == kind]
            report[kind] = _summary([t for t, _ in mine], sum(1 for _, ok in mine if not ok))
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
