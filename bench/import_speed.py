"""Benchmark of ``leadscore import``: a demo world loaded into a fresh store.

    .venv/bin/python bench/import_speed.py --leads 115000        # ~2M events, SQLite
    .venv/bin/python bench/import_speed.py --leads 5000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints events/s for the whole import (read, normalise, store, score).
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-import-"))
    world = write_world(folder / "world", args.leads, seed=42)
    store = Store.open(args.db or f"sqlite:///{folder / 'import.db'}")
    now = time.time_ns() // 1000
    with store.write() as session:
        ensure_model(session, None, now)
    started = time.perf_counter()
    summary = import_files(store, world.files["leads"], world.files["events"], now)
    seconds = time.perf_counter() - started
    store.dispose()
    print(json.dumps({
        "database": (args.db or "sqlite").split(":")[0], "leads": summary.leads_read,
        "events": summary.events_read, "seconds": round(seconds, 1),
        "events_per_s": round(summary.events_read / seconds),
    }, indent=2))


if __name__ == "__main__":
    main()
