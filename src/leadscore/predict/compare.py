"""Champion and challenger: two models (rule or predictive) on the same labelled leads.

Each model scores every lead (a rule model with the pure engine at each lead's as-of
moment, a predictive model with its calibrated probability). Reported per model:
ROC-AUC with a bootstrap 95 % interval, lift in the top 10 %, and conversions captured
when only ``capacity`` leads can be contacted. The verdict rests on the paired bootstrap
interval of the AUC difference (B - A, same resamples for both): B wins when the whole
interval is above 0, A wins when it is below, otherwise there is no clear difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leadscore.model.loading import load_model
from leadscore.model.schema import ScoringModel
from leadscore.predict.data import LeadData, engine_inputs
from leadscore.predict.learn import rule_scores
from leadscore.predict.metrics import bootstrap, captured_at, paired_difference, roc_auc
from leadscore.predict.predictor import Predictor, probability_to_score


@dataclass
class ScoredModel:
    """A model's scores on the leads (0-100 scale for both kinds)."""

    name: str
    kind: str  # rule | predictive
    score: np.ndarray
    probability: np.ndarray | None = None
    note: str | None = None


def is_predictive(path: str | Path) -> bool:
    return Path(path).is_dir()


def load_any(path: str | Path) -> ScoringModel | Predictor:
    """A rule model file or a predictive model directory."""
    return Predictor.load(path) if is_predictive(path) else load_model(path)


def score_with(model: ScoringModel | Predictor, data: LeadData, name: str) -> ScoredModel:
    """Score the leads with a rule model (engine) or a predictive model."""
    if isinstance(model, Predictor):
        probability = model.probabilities(data)
        seen = model.seen_in_training(list(data.lead_ids))
        note = f"{seen} of these leads were used to train it: its figures are optimistic" if seen else None
        return ScoredModel(name, "predictive", probability_to_score(probability), probability, note)
    assert data.as_of_us is not None
    leads, events = engine_inputs(data)
    return ScoredModel(name, "rule", rule_scores(model, leads, events, data.as_of_us))


def compare(a: ScoredModel, b: ScoredModel, y: np.ndarray, *, capacity: int, n_boot: int = 500,
            seed: int = 0) -> dict[str, Any]:
    """Metrics of both models and the verdict (see the module text)."""
    y = np.asarray(y, dtype=float)
    share = capacity / len(y)
    rows = {}
    for label, model in (("A", a), ("B", b)):
        metrics = bootstrap(y, model.score, None, n_boot=n_boot, seed=seed)
        rows[label] = {
            "name": model.name,
            "kind": model.kind,
            "roc_auc": metrics["roc_auc"],
            "lift_top10": metrics["lift_top10"]["value"],
            "capture_top10": metrics["capture_top10"]["value"],
            "conversions_at_capacity": captured_at(y, model.score, share),
            "note": model.note,
        }
    diff = paired_difference(y, a.score, b.score, roc_auc, n_boot=n_boot, seed=seed)
    if diff["low"] > 0:
        verdict = f"B ({b.name}) ranks leads better: AUC +{diff['value']:.3f} (95 % interval {diff['low']:+.3f} to {diff['high']:+.3f})"
        winner = "B"
    elif diff["high"] < 0:
        verdict = f"A ({a.name}) ranks leads better: AUC {-diff['value']:+.3f} over B (95 % interval {-diff['high']:+.3f} to {-diff['low']:+.3f})"
        winner = "A"
    else:
        verdict = (f"no clear difference: AUC B - A = {diff['value']:+.3f} "
                   f"(95 % interval {diff['low']:+.3f} to {diff['high']:+.3f} includes 0)")
        winner = None
    return {
        "leads": len(y), "conversions": int(y.sum()), "capacity": capacity,
        "models": rows,
        "auc_difference": diff, "winner": winner, "verdict": verdict,
    }
