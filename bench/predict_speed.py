"""Predictive scoring on the demo world: speed, and trained model vs the starter rule model.

1. writes (or reuses) a demo world of --leads leads (100,000 by default: about 2M events);
2. times `leadscore train` on it (as-of = created_at + --offset days, target from outcomes.csv);
3. times `leadscore predict` on all leads, and with --explain on --explain-leads of them;
4. on the training run's holdout leads (never seen in training), compares the starter rule
   model, the starter model with points learned on (a sample of) the training leads, and
   the trained predictive model: ROC-AUC with bootstrap 95 % intervals.

5. with --command-runs N: times the whole `leadscore predict` command (a fresh process:
   start-up and imports included), N times, alternating with the code under
   --baseline-src (e.g. an older checkout's src/) when given, and checks both write the
   same file; --only-command skips steps 3-4 (and 2 when the model exists: --reuse).

Wall-clock and CPU seconds are both printed: on a shared machine wall time depends on load.

    .venv/bin/python bench/predict_speed.py [--leads 100000] [--world DIR] [--offset 14]
    .venv/bin/python bench/predict_speed.py --world DIR --reuse --only-command --command-runs 5 \
        --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
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


def _run_command(world: Path, model_dir: Path, output: Path, src: Path | None) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one `leadscore predict` process."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, "-c", "import sys; from leadscore.cli import main; sys.exit(main())", "predict",
               "--model", str(model_dir), "--leads", str(world / "leads.csv"), "--events", str(world / "events.csv"),
               "--output", str(output), "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def command_runs(world: Path, model_dir: Path, runs: int, baseline: Path | None) -> dict[str, object]:
    """Median wall/CPU of the whole command, alternating with the baseline code when given."""
    variants = {"current": None} if baseline is None else {"baseline": baseline, "current": None}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    loads = []
    for run in range(runs):
        for name, src in variants.items():
            loads.append(os.getloadavg()[0])
            wall, cpu = _run_command(world, model_dir, world / f"predictions-{name}.csv", src)
            times[name].append((wall, cpu))
            print(f"  run {run + 1} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU (load {loads[-1]:.1f})", flush=True)
    out: dict[str, object] = {"runs": runs, "load_min": min(loads), "load_max": max(loads)}
    for name, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        out[name] = {"wall_median": round(wall, 2), "cpu_median": round(cpu, 2), "wall_min": round(min(v[0] for v in values), 2)}
        print(f"`leadscore predict` ({name}): median {wall:.2f} s wall, {cpu:.2f} s CPU; best {min(v[0] for v in values):.2f} s")
    if baseline is not None:
        same = (world / "predictions-baseline.csv").read_bytes() == (world / "predictions-current.csv").read_bytes()
        base, cur = out["baseline"], out["current"]
        assert isinstance(base, dict) and isinstance(cur, dict)
        out["ratio_wall"] = round(base["wall_median"] / cur["wall_median"], 2)
        out["ratio_cpu"] = round(base["cpu_median"] / cur["cpu_median"], 2)
        out["identical_output"] = same
        print(f"baseline / current: {out['ratio_wall']}x wall, {out['ratio_cpu']}x CPU; identical output: {same}; "
              f"load average {min(loads):.1f}-{max(loads):.1f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--offset", type=float, default=14.0, help="as-of = created_at + this many days")
    parser.add_argument("--world", type=Path, default=None, help="reuse/keep the world here")
    parser.add_argument("--explain-leads", type=int, default=10_000)
    parser.add_argument("--learn-leads", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep an existing DIR/model (no training)")
    parser.add_argument("--only-command", action="store_true", help="only time the whole `leadscore predict`")
    parser.add_argument("--command-runs", type=int, default=0)
    parser.add_argument("--baseline-src", type=Path, default=None)
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
    if not (args.reuse and (model_dir / "manifest.json").exists()):
        figures["train"] = timed("train", lambda: cli(["train", *common, "--outcomes", str(world / "outcomes.csv"),
                                                        "--target", "converted", *asof, "--out", str(model_dir), "-q"]))
    if args.command_runs:
        figures["command"] = command_runs(world, model_dir, args.command_runs, args.baseline_src)
    if args.only_command:
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
        return 0
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
