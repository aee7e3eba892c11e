"""Benchmark of a model change in the service: preparing the new version's scores in the
background, and the one switch transaction that applies them (the time ingestion waits).

    .venv/bin/python bench/model_switch.py --leads 20000
    .venv/bin/python bench/model_switch.py --leads 20000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Same store, same run, alternating (``--repeat`` rounds): a model change lead by lead
(``rescore_stale(set_based=False)``: per-lead preparation and the per-lead switch, the path
before set-based rescoring) and one set-based where the database allows it (PostgreSQL: the
switch always, the preparation from ``--set-based-min`` leads, default
``rescore.SET_BASED_MIN_LEADS``; elsewhere the two are the same path). Each change rescored
every lead; each prints its total, the switch transaction's part, the preparation's, and
this process's CPU seconds (PostgreSQL's are not in it). ``--in-place`` adds the older baseline: every lead
rescored in place, chunk by chunk (``rescore_pks``, cause "model").

``--due-sizes 100,1000,5000`` (PostgreSQL): for time-driven rescoring, which touches only the
leads that are due, scoring that many leads (no writes) lead by lead (``load_events`` +
``score_states``) against set-based (``score_set_based`` + ``changes_of``), alternating.
"""

from __future__ import annotations

import argparse
import json
import os
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
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--in-place", action="store_true")
    parser.add_argument("--due-sizes", default="")
    parser.add_argument("--skip-switch", action="store_true")
    parser.add_argument("--set-based-min", type=int, default=None,
                        help="prepare set-based from this many leads (default rescore.SET_BASED_MIN_LEADS)")
    parser.add_argument("--variants", default="per_lead,set_based",
                        help="of per_lead, set_based, switch_only (set-based switch, per-lead preparation)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-switch-"))
    world = write_world(folder / "world", args.leads, seed=42)
    store = Store.open(args.db or f"sqlite:///{folder / 'switch.db'}")
    now = time.time_ns() // 1000
    with store.write() as session:
        ensure_model(session, None, now)
    started = time.perf_counter()
    summary = import_files(store, world.files["leads"], world.files["events"], now)
    import_s = time.perf_counter() - started
    starter = starter_document()
    out: dict[str, object] = {
        "database": (args.db or "sqlite").split(":")[0], "leads": summary.leads_read,
        "events": summary.events_read, "import_s": round(import_s, 2), "load_before": os.getloadavg(),
    }
    clock = [now + 1]

    def tick() -> int:
        clock[0] += 1
        return clock[0]

    if args.in_place:
        changed = starter.replace("points: 15", "points: 14", 1)
        with store.write() as session:
            version = activate_document(session, changed, "yaml", tick(), inline_limit=0).id
            rescore.activate(session, version, tick())
        cache = ModelCache()
        started = time.perf_counter()
        while True:
            with store.write() as session:
                pks = rescore.stale_leads(session, version, args.chunk)
                if not pks:
                    break
                rescore.rescore_pks(session, cache.get(session, version), pks, tick(), "model")
        out["baseline_in_place_s"] = round(time.perf_counter() - started, 2)

    switch_seconds: list[float] = []
    apply = rescore.apply_pending

    def timed_apply(*a: object, **k: object) -> list[int]:
        t = time.perf_counter()
        result = apply(*a, **k)  # type: ignore[arg-type]
        switch_seconds.append(time.perf_counter() - t)
        return result

    rescore.apply_pending = timed_apply  # type: ignore[assignment]
    if args.set_based_min is not None:
        rescore.SET_BASED_MIN_LEADS = args.set_based_min
    out["set_based_min_leads"] = rescore.SET_BASED_MIN_LEADS
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    points = 16
    min_leads = rescore.SET_BASED_MIN_LEADS
    for _ in range(0 if args.skip_switch else args.repeat):
        for name in variants:
            points += 1  # a new version each time: every lead is rescored
            with store.write() as session:
                activate_document(session, starter.replace("points: 15", f"points: {points}", 1), "yaml", tick(),
                                  inline_limit=0)
            rescore.SET_BASED_MIN_LEADS = 2**62 if name == "switch_only" else min_leads
            started, cpu = time.perf_counter(), time.process_time()
            result = rescore.rescore_stale(store, ModelCache(), tick, chunk=args.chunk,
                                           set_based=name != "per_lead")
            total = time.perf_counter() - started
            assert result.model == summary.leads_read, result
            runs[name].append({"total_s": round(total, 2), "switch_s": round(switch_seconds[-1], 2),
                               "prepare_s": round(total - switch_seconds[-1], 2),
                               "python_cpu_s": round(time.process_time() - cpu, 2), "load": os.getloadavg()[0]})
    rescore.apply_pending = apply  # type: ignore[assignment]
    if not args.skip_switch:
        best = {name: min(r["total_s"] for r in rs) for name, rs in runs.items()}
        out.update({"runs": runs, "best_total_s": best})
        if "per_lead" in best:
            out.update({f"ratio_{name}_vs_per_lead": round(best[name] / best["per_lead"], 2)
                        for name in best if name != "per_lead"})
    if args.due_sizes:
        out["due"] = _due(store, [int(n) for n in args.due_sizes.split(",")], args.repeat, tick())
    store.dispose()
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


def _due(store: Store, sizes: list[int], repeat: int, now: int) -> dict[str, dict[str, float]]:
    """Seconds to score ``n`` leads (fastest of ``repeat``), per lead and set-based."""
    from leadscore.service.models import active_model
    from leadscore.service.scoring import load_events, load_states, score_states
    from leadscore.store.raw import raw

    out: dict[str, dict[str, float]] = {}
    for n in sizes:
        times: dict[str, list[float]] = {"per_lead": [], "set_based": []}
        for _ in range(repeat):
            for name in times:
                with store.write() as session:
                    model = active_model(session, ModelCache())
                    pks = [r[0] for r in raw(session).all("SELECT id FROM leads ORDER BY random() LIMIT ?", [n])]
                    started = time.perf_counter()
                    states = load_states(session, pks)
                    if name == "per_lead":
                        events = load_events(session, {s.pk: s.lead_id for s in states}, model.event_types)
                        score_states(model, states, events, now, "time")
                    else:
                        scored = rescore.score_set_based(session, model, states, now)
                        assert scored is not None
                        rescore.changes_of(model, states, scored, now, "time", policy=rescore.ScoringPolicy(),
                                           detail=None)
                    times[name].append(time.perf_counter() - started)
        out[str(n)] = {name: round(min(t), 3) for name, t in times.items()}
    return out


if __name__ == "__main__":
    main()
