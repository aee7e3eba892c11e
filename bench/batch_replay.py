"""The batches of ``api_ingest.py`` replayed in one process, without HTTP: events/s of the
service's own work (parse, store, score, record, commit), steadier than the server bench
and fit for ``valgrind --tool=callgrind`` (instructions are repeatable on a noisy machine).

    .venv/bin/python bench/batch_replay.py 12            # batches 3-12 timed (1-2 warm up)
    .venv/bin/python bench/batch_replay.py 12 --profile  # cProfile of the timed batches

Callgrind, instructions of batches 3-12: run it with 12 and with 2 batches under
``valgrind --tool=callgrind --callgrind-out-file=/dev/null`` and subtract.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_ingest import _world_batches  # noqa: E402
from leadscore.api.bodies import event_records  # noqa: E402
from leadscore.service.ingest import ingest_events  # noqa: E402
from leadscore.service.models import ModelCache, active_model, ensure_model  # noqa: E402
from leadscore.service.scoring import ScoringPolicy, collector_paused  # noqa: E402
from leadscore.store.db import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("batches", type=int, nargs="?", default=12)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    bodies, _ = _world_batches(20_000, args.batches)
    store = Store.open(f"sqlite:///{tempfile.mkdtemp(prefix='leadscore-replay-')}/replay.db")
    with store.write() as session:
        ensure_model(session, None, time.time_ns() // 1000)
    cache, policy = ModelCache(), ScoringPolicy()
    gc.freeze()  # as `serve` does after start-up

    def one(body: str) -> bytes:
        records, _ = event_records(json.loads(body))
        now = time.time_ns() // 1000
        with store.write() as session, collector_paused():
            result = ingest_events(session, active_model(session, cache), records, now, policy=policy)
            return result.public_json().encode()

    for body in bodies[:2]:
        one(body)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies[2:]:
        one(body)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    events = sum(body.count('"event_id"') for body in bodies[2:])
    print(json.dumps({"events": events, "seconds": round(wall, 3), "events_per_s": round(events / wall),
                      "events_per_cpu_s": round(events / cpu)}))
    store.dispose()


if __name__ == "__main__":
    main()
