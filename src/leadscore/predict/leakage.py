"""The leakage guard: columns that know the outcome are not features.

A column is *flagged* (and excluded unless ``--allow``-ed) when

* on its own it separates converted from other leads too well: its cross-validated
  ROC-AUC (out-of-fold conversion rate of its value, numbers cut into 20 quantile bins,
  or the number itself) is at least ``threshold`` (0.9); real leads are rarely that
  predictable from one field before contact, so such a column was most likely filled
  in after the outcome (a CRM status, a sales tag);
* its name says it describes the outcome (``status``, ``stage``, ``converted``, ``won``,
  ``lost``, ``closed``, ``outcome``, ``disposition``, ``opportunity``, ``churn``);
* it holds timestamps after the lead's as-of moment (for more than 1 % of leads).

ID-like columns are never used at all (see :func:`~leadscore.predict.features.looks_like_id`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from leadscore.predict.data import NAT, LeadData
from leadscore.predict.features import ColumnPlan, _moments, _text_values, as_numbers
from leadscore.predict.metrics import roc_auc

LEAK_AUC = 0.9
POST_OUTCOME_WORDS = frozenset(
    {"converted", "conversion", "won", "lost", "closed", "churn", "churned", "outcome",
     "disposition", "opportunity", "stage", "status"}
)


@dataclass(frozen=True)
class LeakFlag:
    """A column the guard flagged; ``kept`` when the user allowed it anyway."""

    column: str
    reason: str
    auc: float | None = None
    kept: bool = False

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["auc"] = None if self.auc is None else round(self.auc, 4)
        return out

    def line(self) -> str:
        action = "kept (--allow)" if self.kept else f"excluded (--allow '{self.column}' keeps it)"
        return f"leakage: column '{self.column}' {self.reason}; {action}"


def name_tokens(name: str) -> set[str]:
    """Lower-case words of a column name (``LeadStatus`` -> {lead, status})."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return {t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t}


def encoded_auc(values: pd.Series, y: np.ndarray, *, folds: int = 5, seed: int = 0, numeric: bool = False) -> float:
    """Cross-validated AUC of one column used alone (out-of-fold conversion rate per value)."""
    if numeric:
        numbers = as_numbers(values)
        keys = pd.qcut(numbers, 20, labels=False, duplicates="drop").astype(float).fillna(-1).to_numpy()
    else:
        keys = pd.factorize(_text_values(values).fillna("\x00missing"))[0].astype(float)
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    prior = float(np.mean(y))
    encoded = np.empty(len(y))
    for k in range(folds):
        train = fold != k
        frame = pd.DataFrame({"key": keys[train], "y": y[train]})
        stats = frame.groupby("key")["y"].agg(["sum", "count"])
        rate = (stats["sum"] + 10 * prior) / (stats["count"] + 10)
        encoded[~train] = pd.Series(keys[~train]).map(rate).fillna(prior).to_numpy()
    auc = roc_auc(y, encoded)
    if numeric:
        numbers = as_numbers(values).to_numpy()
        filled = np.where(np.isnan(numbers), np.nanmin(numbers) - 1 if np.isfinite(numbers).any() else 0, numbers)
        raw = roc_auc(y, filled)
        auc = max(auc, raw, 1 - raw)
    return auc


def scan(
    data: LeadData,
    y: np.ndarray,
    plans: Sequence[ColumnPlan],
    *,
    allow: Sequence[str] = (),
    threshold: float = LEAK_AUC,
) -> list[LeakFlag]:
    """Flag the columns that look like they leak the outcome (see the module text)."""
    flags: list[LeakFlag] = []
    for plan in plans:
        if plan.kind not in ("numeric", "category", "datetime", "text"):
            continue
        values = data.leads[plan.name]
        reason, auc = None, None
        if plan.kind == "datetime" and data.as_of_us is not None:
            moments = _moments(values)
            after = (moments != NAT) & (moments > data.as_of_us)
            if after.mean() > 0.01:
                reason = f"holds timestamps after the as-of moment for {after.mean():.0%} of leads (post-outcome)"
        if reason is None and plan.kind in ("numeric", "category"):
            auc = encoded_auc(values, y, numeric=plan.kind == "numeric")
            if auc >= threshold:
                reason = f"predicts the outcome on its own (cross-validated AUC {auc:.3f} >= {threshold})"
        if reason is None:
            words = name_tokens(plan.name) & POST_OUTCOME_WORDS
            if words:
                reason = f"is named like a post-outcome field ('{sorted(words)[0]}')"
        if reason is not None:
            flags.append(LeakFlag(plan.name, reason, auc, kept=plan.name in allow))
    return flags
