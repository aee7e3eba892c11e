"""Time `leadscore score` on the demo world and measure the starter model's ROC-AUC.

    .venv/bin/python bench/score_files.py [--leads 100000] [--engine python] [--seed 42]

Generates the demo world under bench/data/ (cached; git-ignored), writes the starter
model, runs the real `leadscore score` command in its own process, and prints
wall time, leads/s, events/s, peak memory, and the ROC-AUC of the score against the
world's outcomes (converted). Goal (issue 2): 100k leads and ~2M events in < 60 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXE = Path(sys.executable).with_name("leadscore")


def ensure_world(leads: int, seed: int, fmt: str) -> Path:
    out = HERE / "data" / f"world-{leads}-{seed}-{fmt}"
    if not (out / "world.json").exists():
        subprocess.run(
            [str(EXE), "demo-data", "--leads", str(leads), "--seed", str(seed), "--out", str(out),
             "--format", fmt], check=True,
        )
    return out


def roc_auc(scores: list[float], labels: list[bool]) -> float:
    """ROC-AUC by ranks (ties get their average rank), no dependency."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engine", default="python")
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = parser.parse_args()

    world = ensure_world(args.leads, args.seed, args.format)
    meta = json.loads((world / "world.json").read_text())
    model = world / "starter.yaml"
    subprocess.run([str(EXE), "init", str(model), "--force"], check=True, capture_output=True)
    out = world / f"scored-{args.engine}.csv"
    ext = args.format
    command = [
        str(EXE), "score", "--engine", args.engine, "--model", str(model),
        "--leads", str(world / f"leads.{ext}"), "--events", str(world / f"events.{ext}"),
        "--as-of", meta["as_of"], "--output", str(out), "--quiet",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    with out.open(encoding="utf-8") as handle:
        scores = {row["lead_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    outcomes_path = world / f"outcomes.{ext}"
    if ext == "csv":
        with outcomes_path.open(encoding="utf-8") as handle:
            converted = {row["lead_id"]: row["converted"] == "true" for row in csv.DictReader(handle)}
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(outcomes_path).to_pydict()
        converted = dict(zip(table["lead_id"], (bool(v) for v in table["converted"]), strict=True))
    ids = list(scores)
    auc = roc_auc([scores[i] for i in ids], [converted[i] for i in ids])

    print(f"engine            {args.engine}")
    print(f"leads             {meta['leads']:,}")
    print(f"events            {meta['events']:,}")
    print(f"wall time         {wall:.1f} s   (goal < 60 s)")
    print(f"leads/s           {meta['leads'] / wall:,.0f}")
    print(f"events/s          {meta['events'] / wall:,.0f}")
    print(f"peak memory       {peak_mb:,.0f} MB")
    print(f"starter ROC-AUC   {auc:.3f}   (score vs converted, as of {meta['as_of']})")


if __name__ == "__main__":
    main()
