"""Learn the points of an existing rule model from outcomes (``leadscore model learn``).

The rules stay the marketer's; only their ``points`` change:

1. the pure engine (:func:`~leadscore.engine.score_lead`) gives each lead each rule's
   contribution; divided by the rule's points this is the rule's *units* for the lead
   (1 when an attribute rule holds, the sum of the decay factors of the counted events
   for an event rule);
2. an L2-regularised logistic regression of the outcome on the units gives each rule a
   weight in log-odds per unit (the strength is chosen by cross-validation);
3. the weights are scaled to the model's range: the 99th percentile of the leads'
   weighted sums maps to ``score.max - score.min``; points are rounded (whole numbers,
   or one decimal below 1); a rule whose points round to 0 is commented out, and a rule
   that no lead triggers keeps its points (the data say nothing about it).

The model's groups, clipping and stages are kept, and new totals are computed exactly
as the engine does (sum per group, clip the group, sum, clip the total). The AUC after
learning is cross-validated (the points of each fold are learned without it), so it is
an honest comparison with the AUC of the current points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from leadscore.engine.scoring import Event, Lead, clip, score_lead
from leadscore.model.schema import ScoringModel
from leadscore.predict.errors import TrainingDataError
from leadscore.predict.metrics import roc_auc

STRENGTHS = (0.01, 0.1, 1.0, 10.0)


def rule_units(model: ScoringModel, leads: Sequence[Lead], events: dict[str, list[Event]],
               as_of_us: np.ndarray) -> np.ndarray:
    """Leads x rules: each rule's contribution divided by its points (engine semantics)."""
    index = {rule.id: j for j, rule in enumerate(model.rules)}
    points = np.array([rule.points for rule in model.rules])
    units = np.zeros((len(leads), len(model.rules)))
    for i, lead in enumerate(leads):
        result = score_lead(model, lead, events.get(lead.lead_id, ()), int(as_of_us[i]))
        for contribution in result.contributions:
            j = index[contribution.rule_id]
            units[i, j] = contribution.points / points[j]
    return units


def model_totals(model: ScoringModel, units: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Each lead's total for these points, as the engine computes it."""
    groups = model.group_names()
    rule_group = np.array([groups.index(rule.group) for rule in model.rules])
    contributions = units * points
    total = np.zeros(units.shape[0])
    for g, name in enumerate(groups):
        raw = contributions[:, rule_group == g].sum(axis=1)
        spec = model.groups.get(name)
        if spec is not None and (spec.min is not None or spec.max is not None):
            low = -np.inf if spec.min is None else spec.min
            high = np.inf if spec.max is None else spec.max
            raw = np.clip(raw, low, high)
        total += raw
    return np.clip(total, model.score.min, model.score.max)


def _round_points(value: float) -> float | None:
    if abs(value) >= 1:
        return float(round(value))
    tenth = round(value, 1)
    return float(tenth) if tenth != 0 else None


def _fit_points(model: ScoringModel, units: np.ndarray, y: np.ndarray, C: float) -> list[float | None]:
    used = units.std(axis=0) > 0
    weights = np.zeros(units.shape[1])
    if used.any():
        fitted = LogisticRegression(C=C, max_iter=2000).fit(units[:, used], y)
        weights[used] = fitted.coef_.ravel()
    linear = units @ weights
    high = np.quantile(linear, 0.99)
    low = min(0.0, float(np.quantile(linear, 0.01)))
    span = high - low
    scale = (model.score.max - model.score.min) / span if span > 1e-9 else 1.0
    return [(_round_points(w * scale) if used[j] else model.rules[j].points) for j, w in enumerate(weights)]


def _as_array(points: Sequence[float | None]) -> np.ndarray:
    return np.array([0.0 if p is None else p for p in points])


@dataclass
class LearnResult:
    """New points per rule (None: disabled), and AUCs before and after."""

    points: dict[str, float | None]
    old_points: dict[str, float]
    auc_before: float
    auc_after_cv: float
    auc_after: float
    strength: float
    leads: int
    conversions: int


def learn_points(model: ScoringModel, units: np.ndarray, y: np.ndarray, *, folds: int = 5,
                 seed: int = 0) -> LearnResult:
    """Fit the points (strength by cross-validated AUC of the resulting rule scores)."""
    y = np.asarray(y, dtype=float)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < folds * 2:
        raise TrainingDataError(
            f"{positives} converted and {negatives} other leads: learning points needs at least "
            f"{folds * 2} of each (the AUC after learning is cross-validated over {folds} folds)"
        )
    if not model.rules:
        raise TrainingDataError("the model has no rules to learn points for")
    old = np.array([rule.points for rule in model.rules])
    before = roc_auc(y, model_totals(model, units, old))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(units, y))
    best: tuple[float, float] | None = None
    for C in STRENGTHS:
        oof = np.zeros(len(y))
        for train, test in splits:
            points = _as_array(_fit_points(model, units[train], y[train], C))
            oof[test] = model_totals(model, units[test], points)
        auc = roc_auc(y, oof)
        if best is None or auc > best[0] + 1e-9:
            best = (auc, C)
    assert best is not None
    auc_cv, strength = best
    final = _fit_points(model, units, y, strength)
    after = roc_auc(y, model_totals(model, units, _as_array(final)))
    return LearnResult(
        {rule.id: p for rule, p in zip(model.rules, final, strict=True)},
        {rule.id: rule.points for rule in model.rules},
        before, auc_cv, after, strength, len(y), positives,
    )


def rule_scores(model: ScoringModel, leads: Sequence[Lead], events: dict[str, list[Event]],
                as_of_us: np.ndarray) -> np.ndarray:
    """Each lead's total with the model as written (the engine's exact numbers)."""
    return np.array([
        clip(score_lead(model, lead, events.get(lead.lead_id, ()), int(as_of_us[i])).total,
             model.score.min, model.score.max)
        for i, lead in enumerate(leads)
    ])
