"""Metrics of a scored, labelled set of leads, with bootstrap 95 % intervals.

* ROC-AUC: the chance that a converted lead scores above a non-converted one (ties half);
* PR-AUC: average precision;
* log loss and Brier score: of the probabilities (only for models that give probabilities);
* lift and capture at the top 10 % / 20 %: the conversion rate among the best-scored
  10 % divided by the overall rate, and the share of all conversions found there.
  Ties at the cut are shared in proportion (so a coarse rule score is not flattered
  by the order of the file);
* calibration: mean predicted probability minus observed conversion rate, and a
  reliability curve (10 bins of equal size).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata

TOP_SHARES = (0.1, 0.2)
_EPS = 1e-15


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from ranks (ties count half); NaN when one class is absent."""
    y = np.asarray(y, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as average precision (ties broken pessimistically by grouping)."""
    y = np.asarray(y, dtype=float)
    total = y.sum()
    if total == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    sorted_scores = score[order]
    hits = np.cumsum(y[order])
    seen = np.arange(1, len(y) + 1)
    last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # last row of each tie group
    precision = hits[last] / seen[last]
    recall_steps = np.diff(np.r_[0.0, hits[last]]) / total
    return float(np.sum(precision * recall_steps))


def log_loss(y: np.ndarray, probability: np.ndarray) -> float:
    p = np.clip(probability, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean((probability - y) ** 2))


def captured_at(y: np.ndarray, score: np.ndarray, share: float) -> float:
    """Expected conversions among the best ``share`` of leads (ties at the cut shared)."""
    order = np.argsort(-score, kind="mergesort")
    return _captured_sorted(y[order], score[order], share)


def _captured_sorted(yy: np.ndarray, s: np.ndarray, share: float) -> float:
    n = len(yy)
    k = share * n
    if k <= 0:
        return 0.0
    cut = s[min(int(np.ceil(k)) - 1, n - 1)]
    above = s > cut
    tied = s == cut
    take = k - int(above.sum())
    tied_count = int(tied.sum())
    return float(yy[above].sum() + (yy[tied].sum() * take / tied_count if tied_count else 0.0))


def capture(y: np.ndarray, score: np.ndarray, share: float) -> float:
    """Share of all conversions found in the best ``share`` of leads."""
    total = float(np.sum(y))
    return captured_at(y, score, share) / total if total else float("nan")


def lift(y: np.ndarray, score: np.ndarray, share: float) -> float:
    """Conversion rate in the best ``share`` of leads / overall rate."""
    return capture(y, score, share) / share


def point_metrics(y: np.ndarray, score: np.ndarray, probability: np.ndarray | None) -> dict[str, float]:
    """Every metric once (``probability`` None: rank metrics only)."""
    out = {"roc_auc": roc_auc(y, score), "pr_auc": average_precision(y, score)}
    if probability is not None:
        out["log_loss"] = log_loss(y, probability)
        out["brier"] = brier(y, probability)
    order = np.argsort(-score, kind="mergesort")
    total = float(np.sum(y))
    for share in TOP_SHARES:
        pct = round(share * 100)
        found = _captured_sorted(y[order], score[order], share) / total if total else float("nan")
        out[f"lift_top{pct}"] = found / share
        out[f"capture_top{pct}"] = found
    return out


def bootstrap(
    y: np.ndarray,
    score: np.ndarray,
    probability: np.ndarray | None,
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Each metric with its bootstrap 95 % interval: ``{name: {value, low, high}}``."""
    y = np.asarray(y, dtype=float)
    values = point_metrics(y, score, probability)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in values}
    n = len(y)
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        yy = y[rows]
        if yy.min() == yy.max():
            continue
        sample = point_metrics(yy, score[rows], None if probability is None else probability[rows])
        for name, value in sample.items():
            draws[name].append(value)
    return {name: _interval(value, draws[name]) for name, value in values.items()}


def _interval(value: float, draws: list[float]) -> dict[str, float]:
    if not draws:
        return {"value": value, "low": float("nan"), "high": float("nan")}
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return {"value": value, "low": float(low), "high": float(high)}


def paired_difference(
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """metric(B) - metric(A) on the same bootstrap samples, with its 95 % interval."""
    y = np.asarray(y, dtype=float)
    value = metric(y, score_b) - metric(y, score_a)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        draws.append(metric(y[rows], score_b[rows]) - metric(y[rows], score_a[rows]))
    return _interval(value, draws)


def reliability(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed conversion in ``bins`` groups of equal size."""
    order = np.argsort(probability, kind="mergesort")
    out = []
    for chunk in np.array_split(order, bins):
        if len(chunk) == 0:
            continue
        out.append(
            {
                "predicted": float(probability[chunk].mean()),
                "observed": float(np.mean(y[chunk])),
                "leads": len(chunk),
            }
        )
    return out


def calibration_gap(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean predicted probability minus the observed conversion rate."""
    return float(np.mean(probability) - np.mean(y))


def roc_points(y: np.ndarray, score: np.ndarray, points: int = 60) -> list[tuple[float, float]]:
    """(false-positive rate, true-positive rate) pairs for a chart."""
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    tp = np.cumsum(y[order])
    fp = np.cumsum(~y[order])
    last = np.r_[s[1:] != s[:-1], True]
    tpr = np.r_[0.0, tp[last] / max(1, tp[-1])]
    fpr = np.r_[0.0, fp[last] / max(1, fp[-1])]
    pick = np.unique(np.linspace(0, len(tpr) - 1, min(points, len(tpr))).astype(int))
    return [(float(fpr[i]), float(tpr[i])) for i in pick]


def gains_points(y: np.ndarray, score: np.ndarray, steps: int = 20) -> list[tuple[float, float]]:
    """(share of leads contacted, share of conversions captured), best-scored first."""
    return [(0.0, 0.0)] + [(k / steps, capture(y, score, k / steps)) for k in range(1, steps + 1)]


def summary_line(metrics: dict[str, Any]) -> str:
    """``AUC 0.901 [0.886, 0.915]`` for a printout."""
    auc = metrics["roc_auc"]
    return f"AUC {auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]"
