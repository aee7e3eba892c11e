"""Training and evaluating a predictive model from labelled leads: the service behind
``leadscore train`` and ``leadscore evaluate``.

Honest validation: a holdout (20 %) is set aside before anything is learned - the
latest leads by ``time_column`` when one is given (train on the past, test on the
future, as in real use), else a stratified random sample. Features, the leakage guard,
the choice of algorithm and the calibration all come from the other 80 % (with
cross-validation inside it); the holdout is scored once, by the model that is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from leadscore.errors import InputError
from leadscore.predict.data import LeadData, check_classes, require_column
from leadscore.predict.errors import TrainingDataError
from leadscore.predict.estimators import LeadScorer
from leadscore.predict.features import _moments, as_numbers
from leadscore.predict.metrics import (
    bootstrap,
    calibration_gap,
    gains_points,
    reliability,
    roc_points,
)
from leadscore.predict.predictor import Predictor, build_manifest, hash_ids

HOLDOUT = 0.2


@dataclass
class TrainOptions:
    """Everything ``leadscore train`` can be told (besides the files)."""

    target: str
    positive: str | None = None
    id_column: str = "lead_id"
    as_of_column: str | None = None
    as_of_offset: float = 0.0
    time_column: str | None = None
    exclude: Sequence[str] = ()
    allow: Sequence[str] = ()
    text_columns: Sequence[str] = ()
    rules_text: str | None = None
    rules_file: str | None = None
    algorithm: str = "auto"
    folds: int | None = None
    holdout: float = HOLDOUT
    n_boot: int = 200
    max_rounds: int = 2000
    n_jobs: int = 1
    seed: int = 0


@dataclass
class TrainResult:
    """The fitted model, its metrics (``metrics.json``) and the holdout predictions."""

    predictor: Predictor
    metrics: dict[str, Any]
    holdout_y: np.ndarray
    holdout_p: np.ndarray
    warnings: list[str] = field(default_factory=list)


def time_values(data: LeadData, column: str) -> np.ndarray:
    """A time column as sortable numbers (timestamps or plain numbers)."""
    require_column(data.leads, column, data.source, "the time column")
    values = data.leads[column]
    numbers = as_numbers(values)
    if numbers.notna().all():
        return numbers.to_numpy()
    moments = _moments(values).astype(float)
    bad = moments == float(np.iinfo(np.int64).min)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"{values.iloc[row]!r} is not a timestamp or a number (the time column orders the leads)",
            file=data.source, row=row + 1, column=column,
        )
    return moments


def split_holdout(y: np.ndarray, order_values: np.ndarray | None, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and holdout positions: the latest ``share`` in time, or a stratified sample."""
    positions = np.arange(len(y))
    if order_values is not None:
        order = np.argsort(order_values, kind="mergesort")
        cut = int(round(len(y) * (1 - share)))
        return np.sort(order[:cut]), np.sort(order[cut:])
    train, test = train_test_split(positions, test_size=share, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test)


def labelled(data: LeadData, y: np.ndarray, column: str, *,
             training: bool = True) -> tuple[LeadData, np.ndarray, list[str]]:
    """Drop leads without an outcome (with a warning) and check both outcomes are there
    (``training``: for training a model, else for measuring one: the refusal's words)."""
    warnings = []
    known = ~np.isnan(y)
    if not known.all():
        warnings.append(f"{int((~known).sum())} lead(s) have no value in '{column}' and were left out")
        data = data.subset(np.flatnonzero(known))
        y = y[known]
    check_classes(y, column, training=training)
    return data, y, warnings


def _evaluation(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    return {
        "leads": len(y),
        "conversions": int(y.sum()),
        "conversion_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
        "calibration_gap": calibration_gap(y, p),
        "metrics": bootstrap(y, p, p, n_boot=n_boot, seed=seed),
        "reliability": reliability(y, p),
        "roc_curve": roc_points(y, p),
        "gains": gains_points(y, p),
    }


def train(data: LeadData, y: np.ndarray, options: TrainOptions) -> TrainResult:
    """Split, fit, score the holdout; the returned predictor is the model evaluated."""
    data, y, warnings = labelled(data, y, options.target)
    order_values = time_values(data, options.time_column) if options.time_column else None
    train_rows, test_rows = split_holdout(y, order_values, options.holdout, options.seed)
    check_classes(y[train_rows], options.target, whole=y)
    if y[test_rows].min() == y[test_rows].max():
        raise TrainingDataError(
            f"the holdout (the {'latest' if order_values is not None else 'random'} {options.holdout:.0%} "
            f"of leads) has one outcome only; add labelled leads"
        )
    train_data = data.subset(train_rows)
    time_order = None
    if order_values is not None:
        time_order = np.argsort(order_values[train_rows], kind="mergesort")
    scorer = LeadScorer(
        algorithm=options.algorithm, exclude=(*options.exclude, options.target), allow=options.allow,
        text_columns=options.text_columns, as_of_column=options.as_of_column, rules=options.rules_text,
        time_order=time_order, folds=options.folds, max_rounds=options.max_rounds,
        n_jobs=options.n_jobs, random_state=options.seed,
    ).fit(train_data, y[train_rows])
    holdout_p = scorer.predict_proba(data.subset(test_rows))[:, 1]
    n_folds = options.folds or (3 if len(train_rows) > 50_000 else 5)
    target = {
        "column": options.target, "positive": options.positive,
        "leads": len(y), "conversions": int(y.sum()), "conversion_rate": float(y.mean()),
    }
    manifest = build_manifest(
        scorer, target=target, id_column=options.id_column, as_of_column=options.as_of_column,
        time_column=options.time_column, rules_file=options.rules_file, as_of_offset=options.as_of_offset,
    )
    predictor = Predictor(scorer, manifest, hash_ids(list(train_data.lead_ids)))
    plans = scorer.features_.columns_
    metrics = {
        "leadscore_version": manifest["leadscore_version"],
        "format_version": manifest["format_version"],
        "target": target,
        "validation": {
            "holdout": "latest leads by " + options.time_column if options.time_column else "stratified random sample",
            "holdout_share": options.holdout,
            "cross_validation": (
                f"{n_folds} forward-chaining folds in time order" if options.time_column
                else f"{n_folds}-fold stratified"
            ),
            "train_leads": len(train_rows),
            "holdout_leads": len(test_rows),
        },
        "algorithm": scorer.algorithm_,
        "candidate": scorer.candidate_,
        "cross_validation": scorer.cv_results_,
        "holdout": _evaluation(y[test_rows], holdout_p, options.n_boot, options.seed),
        "features": [s.name for s in scorer.features_.specs_],
        "columns": [{"column": p.name, "use": p.kind, **({"note": p.note} if p.note else {})} for p in plans],
        "leakage": [flag.to_dict() for flag in scorer.leakage_],
        "top_features": [{"feature": n, "importance": round(v, 4)} for n, v in scorer.feature_importance()[:15]],
        "calibration": {"method": "Platt (logistic on out-of-fold log-odds)",
                        "slope": scorer.calibration_[0], "intercept": scorer.calibration_[1]},
        "warnings": warnings,
    }
    return TrainResult(predictor, metrics, y[test_rows], holdout_p, warnings)


def evaluate(predictor: Predictor, data: LeadData, y: np.ndarray, *, target: str, n_boot: int = 200,
             seed: int = 0) -> dict[str, Any]:
    """Metrics of a saved model on new labelled leads (warns when they were used in training)."""
    data, y, warnings = labelled(data, y, target, training=False)
    p = predictor.probabilities(data)
    seen = predictor.seen_in_training(list(data.lead_ids))
    if seen:
        warnings.append(
            f"{seen} of these {len(y)} leads were used to train the model: its figures on them are optimistic"
        )
    return {
        "model": str(predictor.path) if predictor.path else None,
        "algorithm": predictor.manifest.get("algorithm"),
        "target": {"column": target, "leads": len(y), "conversions": int(y.sum())},
        "evaluation": _evaluation(y, p, n_boot, seed),
        "warnings": warnings,
    }


def save_training(result: TrainResult, out: str | Path, report_html: str) -> Path:
    """Write the model, ``metrics.json`` and ``report.html`` into ``out``."""
    import json

    directory = result.predictor.save(out)
    (directory / "metrics.json").write_text(json.dumps(_jsonable(result.metrics), indent=2) + "\n", encoding="utf-8")
    (directory / "report.html").write_text(report_html, encoding="utf-8")
    rules = result.predictor.scorer.rules
    if rules:
        (directory / "rules.yaml").write_text(rules, encoding="utf-8")
    return directory


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return None if np.isnan(number) else round(number, 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
