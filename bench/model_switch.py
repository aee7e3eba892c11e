"""Benchmark of a model change in the service: preparing the new version's scores in the
background, and the one switch transaction that applies them (the time ingestion waits).

    .venv/bin/python bench/model_switch.py --leads 20000
    .venv/bin/python bench/model_switch.py --leads 20000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Baseline in the same run: rescoring every lead in place, chunk by chunk, with the per-lead
path that model changes used before they became atomic (`rescore_pks`, cause "model").
Prints seconds and leads/s for each, and the switch transaction's share.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from leadscore.demo import write_world
from leadscore.service import rescore
from leadscore.service.importer import import_files
from leadscore.service.models import ModelCache, activate_document, ensure_model, starter_document
from leadscore.store.db import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-switch-"))
    world = write_world(folder / "world", args.leads, seed=42)
    store = Store.open(args.db or f"sqlite:///{folder / 'switch.db'}")
    now = time.time_ns() // 1000
    with store.write() as session:
        ensure_model(session, None, now)
    summary = import_files(store, world.files["leads"], world.files["events"], now)
    starter = starter_document()
    changed = starter.replace("points: 15", "points: 16", 1)
    assert changed != starter

    # baseline: every lead rescored in place by the new version, chunk by chunk
    with store.write() as session:
        version = activate_document(session, changed, "yaml", now + 1, inline_limit=0).id
        rescore.activate(session, version, now + 1)
    cache = ModelCache()
    started = time.perf_counter()
    while True:
        with store.write() as session:
            pks = rescore.stale_leads(session, version, args.chunk)
            if not pks:
                break
            rescore.rescore_pks(session, cache.get(session, version), pks, now + 2, "model")
    baseline = time.perf_counter() - started

    # the atomic change: prepare in the background, then one switch transaction
    with store.write() as session:
        activate_document(session, starter, "yaml", now + 3, inline_limit=0)
    switch_seconds: list[float] = []
    apply = rescore.apply_pending

    def timed_apply(*a: object, **k: object) -> list[int]:
        t = time.perf_counter()
        out = apply(*a, **k)  # type: ignore[arg-type]
        switch_seconds.append(time.perf_counter() - t)
        return out

    rescore.apply_pending = timed_apply  # type: ignore[assignment]
    started = time.perf_counter()
    result = rescore.rescore_stale(store, ModelCache(), lambda: now + 4, chunk=args.chunk)
    total = time.perf_counter() - started
    store.dispose()
    print(json.dumps({
        "database": (args.db or "sqlite").split(":")[0], "leads": summary.leads_read,
        "events": summary.events_read, "rescored": result.model,
        "baseline_in_place_s": round(baseline, 2),
        "atomic_total_s": round(total, 2),
        "atomic_switch_transaction_s": round(switch_seconds[0], 2),
        "ratio_atomic_vs_baseline": round(total / baseline, 2),
        "switch_ms_per_1000_leads": round(1000 * 1000 * switch_seconds[0] / max(result.model, 1), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
