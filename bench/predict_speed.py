"""Predictive scoring on the demo world: speed, and trained model vs the starter rule model.

1. writes (or reuses) a demo world of --leads leads (100,000 by default: about 2M events);
2. times `leadscore train` on it (as-of = created_at + --offset days, target from outcomes.csv);
3. times `leadscore predict` on all leads, and with --explain on --explain-leads of them;
4. on the training run's holdout leads (never seen in training), compares the starter rule
   model, the starter model with points learned on (a sample of) the training leads, and
   the trained predictive model: ROC-AUC with bootstrap 95 % intervals.

Wall-clock and CPU seconds are both printed: on a shared machine wall time depends on load.

    .venv/bin/python bench/predict_speed.py [--leads 100000] [--world DIR] [--offset 14]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from leadscore.cli import main as cli
from leadscore.cli.model import starter_text
from leadscore.demo import write_world
from leadscore.model import parse_model
from leadscore.predict.compare import ScoredModel, compare, score_with
from leadscore.predict.data import engine_inputs, join_outcomes, load_data, target_vector
from leadscore.predict.learn import learn_points, rule_units
from leadscore.predict.metrics import bootstrap
from leadscore.predict.predictor import Predictor
from leadscore.predict.training import split_holdout


def timed(label: str, action: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        action()
    except SystemExit as exc:
        if exc.code:
            raise
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--offset", type=float, default=14.0, help="as-of = created_at + this many days")
    parser.add_argument("--world", type=Path, default=None, help="reuse/keep the world here")
    parser.add_argument("--explain-leads", type=int, default=10_000)
    parser.add_argument("--learn-leads", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    world = args.world or Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
    if not (world / "events.csv").exists():
        summary = write_world(world, args.leads, seed=args.seed)
        print(f"demo world: {summary.n_leads} leads, {summary.n_events} events, {summary.n_converted} converted -> {world}")
    events_rows = sum(1 for _ in (world / "events.csv").open("rb")) - 1
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; {events_rows} events")
    model_dir = world / "model"
    common = ["--leads", str(world / "leads.csv"), "--events", str(world / "events.csv")]
    asof = ["--as-of-column", "created_at", "--as-of-offset", str(args.offset)]
    figures: dict[str, object] = {"leads": args.leads, "events": events_rows}
    figures["train"] = timed("train", lambda: cli(["train", *common, "--outcomes", str(world / "outcomes.csv"),
                                                    "--target", "converted", *asof, "--out", str(model_dir), "-q"]))
    figures["predict"] = timed("predict (all leads)", lambda: cli(["predict", "--model", str(model_dir), *common,
                                                                   "--output", str(world / "predictions.csv"), "-q"]))
    sample = world / "leads_sample.csv"
    with (world / "leads.csv").open(encoding="utf-8") as source, sample.open("w", encoding="utf-8") as target:
        for index, line in enumerate(source):
            if index > args.explain_leads:
                break
            target.write(line)
    figures["predict_explain"] = timed(
        f"predict --explain ({args.explain_leads} leads)",
        lambda: cli(["predict", "--model", str(model_dir), "--leads", str(sample), "--events", str(world / "events.csv"),
                     "--output", str(world / "explained.csv"), "--explain", "-q"]),
    )
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    print(f"trained {metrics['candidate']}: holdout AUC {metrics['holdout']['metrics']['roc_auc']['value']:.3f}, "
          f"calibration gap {metrics['holdout']['calibration_gap']:+.4f}")

    # the same split as `leadscore train` (stratified 20 %, seed 0) gives the holdout leads
    data = load_data(world / "leads.csv", events_path=world / "events.csv", as_of_column="created_at",
                     offset_days=args.offset)
    data.leads = join_outcomes(data.leads, world / "outcomes.csv", "converted")
    y = target_vector(data.leads["converted"], None, column="converted")
    train_rows, test_rows = split_holdout(y, None, 0.2, 0)
    holdout = data.subset(test_rows)
    starter = parse_model(starter_text())
    start = time.perf_counter()
    rule = score_with(starter, holdout, "starter rules")
    print(f"starter rules scored {len(test_rows)} holdout leads with the engine in {time.perf_counter() - start:.1f} s")
    learn_rows = np.random.default_rng(0).permutation(train_rows)[: args.learn_leads]
    learn_data = data.subset(np.sort(learn_rows))
    leads, events = engine_inputs(learn_data)
    assert learn_data.as_of_us is not None
    learned = learn_points(starter, rule_units(starter, leads, events, learn_data.as_of_us), y[np.sort(learn_rows)])
    points = {k: v for k, v in learned.points.items() if v is not None}
    learned_model = starter.model_copy(update={"rules": [r.model_copy(update={"points": points[r.id]})
                                                         for r in starter.rules if r.id in points]})
    relearned = score_with(learned_model, holdout, "starter, learned points")
    predictor = Predictor.load(model_dir)
    predictive = score_with(predictor, holdout, "trained (predictive)")
    rows: list[ScoredModel] = [rule, relearned, predictive]
    print(f"\nholdout: {len(test_rows)} leads, {int(y[test_rows].sum())} converted (as-of = created_at + {args.offset:g} days)")
    figures["holdout_auc"] = {}
    for model in rows:
        b = bootstrap(y[test_rows], model.score, None)
        a = b["roc_auc"]
        figures["holdout_auc"][model.name] = a  # type: ignore[index]
        print(f"  {model.name:28s} AUC {a['value']:.3f} [{a['low']:.3f}, {a['high']:.3f}]  lift top 10 % {b['lift_top10']['value']:.2f}")
    for challenger in (relearned, predictive):
        result = compare(rule, challenger, y[test_rows], capacity=len(test_rows) // 10)
        print(f"  starter vs {challenger.name}: {result['verdict']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
