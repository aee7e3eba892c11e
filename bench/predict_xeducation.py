"""Predictive scoring on the real X Education leads (shared/data/xeducation/Leads.csv).

Prints the holdout results of `leadscore train` with and without the post-contact
columns (filled in by the sales team after contact, so they leak the outcome), beside a
plain logistic regression baseline fitted on the same training leads and scored on the
same holdout. Nothing is tuned on the holdout.

    .venv/bin/python bench/predict_xeducation.py [--data PATH] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from leadscore.predict.data import load_data, target_vector
from leadscore.predict.metrics import bootstrap, calibration_gap
from leadscore.predict.training import TrainOptions, split_holdout, time_values, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xeducation" / "Leads.csv"
POST_CONTACT = (
    "Tags", "Lead Quality", "Lead Profile", "Asymmetrique Activity Index", "Asymmetrique Profile Index",
    "Asymmetrique Activity Score", "Asymmetrique Profile Score", "Last Notable Activity",
)
IDS = ("Prospect ID", "Lead Number")


def baseline(frame: pd.DataFrame, y: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray,
             drop: tuple[str, ...]) -> np.ndarray:
    """Plain logistic regression: one-hot categories (missing as a level), median-imputed numbers."""
    X = frame.drop(columns=["lead_id", "Converted", *IDS[1:], *drop], errors="ignore")
    numeric = [c for c in X.columns if pd.to_numeric(X[c], errors="coerce").notna().sum() == X[c].notna().sum()]
    parts = []
    for column in numeric:
        values = pd.to_numeric(X[column], errors="coerce")
        parts.append(values.fillna(values.iloc[train_rows].median()).rename(column))
    categorical = [c for c in X.columns if c not in numeric]
    dummies = pd.get_dummies(X[categorical].fillna("(missing)").astype(str), dtype=float)
    design = pd.concat([*parts, dummies], axis=1).to_numpy(dtype=float)
    scaler = StandardScaler().fit(design[train_rows])
    model = LogisticRegression(max_iter=5000).fit(scaler.transform(design[train_rows]), y[train_rows])
    return model.predict_proba(scaler.transform(design[test_rows]))[:, 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 1
    data = load_data(args.data, id_column="Prospect ID")
    y = target_vector(data.leads["Converted"], None, column="Converted")
    runs = [
        ("all columns, leakage guard on (default)", {}, None),
        ("all columns, guard overridden (--allow Tags)", {"allow": ("Tags",)}, None),
        ("without post-contact columns", {"exclude": POST_CONTACT}, None),
        ("without post-contact columns, time split (Lead Number order)", {"exclude": POST_CONTACT}, "Lead Number"),
    ]
    results = []
    print(f"X Education: {len(y)} leads, {int(y.sum())} converted ({y.mean():.1%})\n")
    for name, extra, time_column in runs:
        start = time.perf_counter()
        options = TrainOptions(target="Converted", id_column="Prospect ID", time_column=time_column, **extra)
        result = train(data, y, options)
        seconds = time.perf_counter() - start
        m = result.metrics
        holdout = m["holdout"]["metrics"]
        order = time_values(data, time_column) if time_column else None
        train_rows, test_rows = split_holdout(y, order, options.holdout, options.seed)
        # the baseline sees the same columns: minus the excluded ones and those the guard dropped
        guarded = tuple(f["column"] for f in m["leakage"] if not f["kept"])
        drop = (POST_CONTACT if "exclude" in extra else ()) + guarded
        base_p = baseline(data.leads, y, train_rows, test_rows, drop)
        base = bootstrap(y[test_rows], base_p, base_p)
        row = {
            "run": name,
            "algorithm": m["candidate"],
            "cv_auc": m["cross_validation"][m["candidate"]]["roc_auc"],
            "holdout_auc": holdout["roc_auc"],
            "holdout_pr_auc": holdout["pr_auc"]["value"],
            "holdout_log_loss": holdout["log_loss"]["value"],
            "holdout_brier": holdout["brier"]["value"],
            "lift_top10": holdout["lift_top10"]["value"],
            "capture_top20": holdout["capture_top20"]["value"],
            "calibration_gap": m["holdout"]["calibration_gap"],
            "flagged": [f["column"] for f in m["leakage"]],
            "baseline_auc": base["roc_auc"],
            "baseline_calibration_gap": calibration_gap(y[test_rows], base_p),
            "seconds": seconds,
        }
        results.append(row)
        auc, bauc = row["holdout_auc"], row["baseline_auc"]
        print(f"{name}")
        print(f"  leadscore ({row['algorithm']}): holdout AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]"
              f"  (cross-validated {row['cv_auc']:.3f}), PR-AUC {row['holdout_pr_auc']:.3f},"
              f" log loss {row['holdout_log_loss']:.3f}, Brier {row['holdout_brier']:.3f}")
        print(f"  calibration: mean predicted - observed = {row['calibration_gap']:+.4f};"
              f" lift top 10 % {row['lift_top10']:.2f}; top 20 % captures {row['capture_top20']:.1%}")
        print(f"  plain logistic baseline: holdout AUC {bauc['value']:.3f} [{bauc['low']:.3f}, {bauc['high']:.3f}]")
        print(f"  leakage guard flagged: {', '.join(row['flagged']) or 'nothing'}; {seconds:.1f} s\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
