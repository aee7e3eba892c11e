"""Benchmark of ``leadscore import``: a demo world loaded into a fresh store.

    .venv/bin/python bench/import_speed.py --leads 100000 --world bench/data/world100k   # 2,012,112 events, SQLite
    .venv/bin/python bench/import_speed.py --leads 5000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints events/s for the whole import (read, normalise, store, score), by wall-clock time
and by CPU time: of this process, and of the processes it forked (a large import reads
the lead file and stores the events in a second process while this one reads and scores;
on a busy shared machine, this process's CPU time is the steadier measure of the critical
path). ``--world DIR`` reuses a world written before. ``--without-ids`` imports the event
file without its ``event_id`` column (written once beside it), so every row's id is
derived from what it says (:mod:`leadscore.ingest.ids`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from leadscore.demo import write_world
from leadscore.service.importer import import_files
from leadscore.service.models import ensure_model
from leadscore.store.db import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--world", type=Path, default=None,
                        help="a folder for the world: written there once (--leads, seed 42), then reused")
    parser.add_argument("--without-ids", action="store_true", help="import the events without their event_id column")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-import-"))
    place = args.world or folder / "world"
    if not (place / "events.csv").exists() or not (place / "leads.csv").exists():
        write_world(place, args.leads, seed=42)
    files = {"leads": place / "leads.csv", "events": place / "events.csv"}
    if args.without_ids:
        files["events"] = place / "events-without-ids.csv"
        if not files["events"].exists():
            import pyarrow as pa
            import pyarrow.csv as pacsv

            header = (place / "events.csv").open().readline().strip().replace('"', "").split(",")
            table = pacsv.read_csv(place / "events.csv", convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True))
            pacsv.write_csv(table.drop_columns(["event_id"]), files["events"])
    store = Store.open(args.db or f"sqlite:///{folder / 'import.db'}")
    now = time.time_ns() // 1000
    with store.write() as session:
        ensure_model(session, None, now)
    started, cpu = time.perf_counter(), time.process_time()
    summary = import_files(store, files["leads"], files["events"], now)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = children.ru_utime + children.ru_stime
    store.dispose()
    print(json.dumps({
        "database": (args.db or "sqlite").split(":")[0], "leads": summary.leads_read,
        "events": summary.events_read, "event_ids": "derived" if args.without_ids else "given",
        "seconds": round(seconds, 1),
        "events_per_s": round(summary.events_read / seconds),
        # CPU time of this process (all its threads): steadier than wall time on a shared machine
        "cpu_seconds": round(cpu, 1), "events_per_cpu_s": round(summary.events_read / cpu),
        "forked_cpu_seconds": round(child_cpu, 1), "load_average": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
