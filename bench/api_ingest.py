"""Benchmark of POST /v1/events against a real server (uvicorn in its own process).

1. single events at a steady rate (default 200 requests/s for 20 s) from a separate load
   process (http.client on 16 threads, open loop: request n is due at start + n/rate
   whatever the latency, and its latency is measured from that due moment, so queueing
   is counted): prints p50/p95/p99 latency and the achieved rate;
2. batches of 1,000 events: prints events/s. The batches are realistic: the most recent
   events of a demo world (``generate_world(--world-leads, seed=42)``) in timestamp order,
   1,000 per batch, as a collector (Segment, a queue consumer) would flush them; such a
   batch touches a few hundred leads (printed as ``leads_per_batch``), many of them
   several times. ``--spread`` sends the old synthetic batches instead (every event of a
   batch for a different lead out of 5,000). ``--clients N`` sends them from N clients at
   once (each waits for its answer before sending its next batch), ``--workers N`` runs
   ``serve --workers N`` (the server's CPU time is then not reported: it is spread over
   the worker processes). ``--preload`` first imports the rest of that world (its leads
   and every event before the batches' ones, ``leadscore import``), so the batches land
   in a store that holds the leads' history, as in production; without it the store
   starts empty (the goal's figure, the easy end: a lead's stored events are only those
   of the batches before).

    .venv/bin/python bench/api_ingest.py                       # SQLite
    .venv/bin/python bench/api_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

On PostgreSQL each run works in a schema of its own, dropped at the end (the batches'
event ids are the same in every run: in a shared schema a second run would only send
duplicates).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from serving import admin_key, cli, percentile, served, tree_cpu_seconds


def _event(i: int, leads: int) -> dict[str, Any]:
    kinds = ("page_view", "email_open", "download", "email_click")
    return {"event_id": f"bench-{i}", "lead_id": f"B{i % leads:06d}", "type": kinds[i % 4],
            "properties": {"url": "/pricing" if i % 3 == 0 else "/blog", "asset": "case-study-x",
                           "link": "demo"}}


def _steady(url: str, key: str, rate: float, seconds: float, start: int, out: Any) -> None:
    """Open-loop load: request n is due at begin + n/rate, sent by the first free one of 16
    threads; its latency is measured from the due moment (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    total = int(rate * seconds)
    begin = time.perf_counter() + 0.5
    counter = iter(range(total))
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def worker() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for n in counter:
            body = json.dumps(_event(start + n, 5000))
            due = begin + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                connection.request("POST", "/v1/events", body, headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                ok = False
            took = time.perf_counter() - due
            with lock:
                if not ok:
                    errors += 1
                latencies.append(took)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    out.put({"latencies": latencies, "errors": errors, "elapsed": elapsed})


def _world_batches(n_leads: int, batches: int, size: int = 1000) -> tuple[list[str], float]:
    """The last ``batches * size`` events of a demo world, in timestamp order, as bodies;
    and the mean number of distinct leads per batch."""
    from leadscore.demo import generate_world

    table = generate_world(n_leads, seed=42).events.sort_by([("timestamp", "ascending")])
    table = table.slice(max(0, table.num_rows - batches * size))
    names = [n for n in table.column_names if n not in ("event_id", "lead_id", "type", "timestamp")]
    rows = table.to_pylist()
    bodies, distinct = [], []
    for b in range(0, len(rows), size):
        events = []
        for row in rows[b : b + size]:
            props = {n: row[n] for n in names if row[n] is not None}
            events.append({"event_id": row["event_id"], "lead_id": row["lead_id"], "type": row["type"],
                           "timestamp": row["timestamp"], "properties": props})
        distinct.append(len({e["lead_id"] for e in events}))
        bodies.append(json.dumps({"events": events}))
    return bodies, sum(distinct) / max(1, len(distinct))


def _preload(db: str, folder: Path, n_leads: int, bodies: list[str]) -> dict[str, Any]:
    """Import the world's leads and its events but the batches' ones (``leadscore import``)."""
    import csv

    from leadscore.demo import write_world

    world = folder / "world"
    write_world(world, n_leads, seed=42)
    sent = {event["event_id"] for body in bodies for event in json.loads(body)["events"]}
    kept = 0
    with open(world / "events.csv", newline="", encoding="utf-8") as source, \
            open(folder / "history.csv", "w", newline="", encoding="utf-8") as target:
        reader = csv.reader(source)
        writer = csv.writer(target)
        header = next(reader)
        writer.writerow(header)
        at = header.index("event_id")
        for row in reader:
            if row[at] not in sent:
                writer.writerow(row)
                kept += 1
    started = time.perf_counter()
    cli("import", "--leads", str(world / "leads.csv"), "--events", str(folder / "history.csv"), "--db", db)
    return {"preloaded_events": kept, "preload_s": round(time.perf_counter() - started, 1)}


def _own_schema(url: str) -> tuple[str, str]:
    """A new empty schema for this run, and the URL that works in it."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{os.getpid()}_{int(time.time())}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}", schema


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 events")
    parser.add_argument("--world-leads", type=int, default=20_000,
                        help="leads of the demo world the batches are taken from")
    parser.add_argument("--spread", action="store_true",
                        help="synthetic batches: every event for another of 5,000 leads")
    parser.add_argument("--skip-single", action="store_true", help="only the batches")
    parser.add_argument("--clients", type=int, default=1,
                        help="clients sending the batches at once (each waits for its answer)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N")
    parser.add_argument("--preload", action="store_true",
                        help="import the world's leads and its events before the batches' first")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
    db = args.db or f"sqlite:///{folder / 'bench.db'}"
    schema = None
    if db.startswith("postgresql"):
        db, schema = _own_schema(db)
    bodies: list[str] = []
    per_batch = 1000.0
    if not args.spread:
        bodies, per_batch = _world_batches(args.world_leads, args.batches)
    preloaded: dict[str, Any] = {}
    if args.preload and not args.spread:
        preloaded = _preload(db, folder, args.world_leads, bodies)
    key = admin_key(db)
    try:
        with served(db, workers=args.workers) as (server, url):
            run = int(time.time())
            single: dict[str, Any] = {}
            if not args.skip_single:
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
                    "p50_ms": round(percentile(lat, 0.50) * 1000, 2), "p95_ms": round(percentile(lat, 0.95) * 1000, 2),
                    "p99_ms": round(percentile(lat, 0.99) * 1000, 2), "max_ms": round(max(lat) * 1000, 2),
                }
            if args.spread:
                base = run * 10**6 + 5 * 10**5
                bodies = [json.dumps({"events": [_event(base + b * 1000 + j, 5000) for j in range(1000)]})
                          for b in range(args.batches)]
                per_batch = 1000.0
            queue_of_bodies = iter(bodies)
            lock = threading.Lock()
            failures: list[str] = []

            def client_loop() -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
                    while not failures:
                        with lock:
                            body = next(queue_of_bodies, None)
                        if body is None:
                            return
                        response = client.post("/v1/events", content=body,
                                               headers={"Content-Type": "application/json"})
                        if response.status_code != 200:
                            failures.append(f"{response.status_code}: {response.text[:500]}")

            cpu_before = tree_cpu_seconds(server.pid)
            started = time.perf_counter()
            clients = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            batch_seconds = time.perf_counter() - started
            cpu_after = tree_cpu_seconds(server.pid)
            if failures:
                raise SystemExit(f"a batch was refused: {failures[0]}")
            events_sent = sum(body.count('"event_id"') for body in bodies)
            batches = {"events": events_sent, "batches": len(bodies),
                       "leads_per_batch": round(per_batch, 1), "clients": args.clients, "workers": args.workers,
                       "kind": "spread over 5,000 leads" if args.spread else f"demo world ({args.world_leads} leads)",
                       **preloaded,
                       "events_per_s": round(events_sent / batch_seconds)}
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                batches["events_per_server_cpu_s"] = round(events_sent / (cpu_after - cpu_before))
            print(json.dumps({"database": db.split(":")[0], "single_event": single,
                              "batches_of_1000": batches}, indent=2))
    finally:
        if schema is not None:
            _drop_schema(args.db, schema)


if __name__ == "__main__":
    main()
