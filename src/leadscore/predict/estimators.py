"""The predictive lead scorer: features, leakage guard, model choice, calibration.

:class:`LeadScorer` follows the scikit-learn conventions (``__init__`` stores
parameters, ``fit`` returns ``self``, learned state ends in ``_``); its ``X`` is a
:class:`~leadscore.predict.data.LeadData` (leads, events and as-of moments), since a
lead's features come from two tables.

``fit`` does, on the leads it is given and nothing else:

1. decide the features (:class:`~leadscore.predict.features.LeadFeatures`) and run the
   leakage guard (:mod:`~leadscore.predict.leakage`); flagged columns are dropped
   unless allowed;
2. cross-validate the candidates - L2-regularised logistic regression
   (C=1 on standardised features) and LightGBM gradient boosting - with stratified folds, or forward-chaining folds in
   time order when ``time_column`` is given; the best mean fold ROC-AUC wins;
3. calibrate: a logistic (Platt) map from the winner's out-of-fold log-odds to the
   observed outcome;
4. refit the winner on all the leads (LightGBM with the median early-stopping rounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from leadscore.predict.data import LeadData
from leadscore.predict.features import FeatureSpec, LeadFeatures
from leadscore.predict.leakage import LEAK_AUC, scan
from leadscore.predict.metrics import log_loss, roc_auc

ALGORITHMS = ("auto", "logistic", "lightgbm")
LINEAR_CV_ROWS = 30_000


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


class LinearDesign:
    """Numbers (imputed, clipped, scaled, with a missing flag) and one-hot categories."""

    def fit(self, X: np.ndarray, specs: Sequence[FeatureSpec]) -> LinearDesign:
        self.blocks_: list[tuple[int, str, dict[str, Any]]] = []
        for j, spec in enumerate(specs):
            column = X[:, j]
            if spec.kind == "category":
                self.blocks_.append((j, "onehot", {"levels": len(spec.levels)}))
                continue
            present = column[~np.isnan(column)]
            if len(present) == 0:
                continue
            low, high = np.percentile(present, [1, 99])
            log = bool(low >= 0 and high > 0 and np.mean(present) > 0 and np.median(present) < np.mean(present) / 2)
            clipped = np.clip(present, low, high)
            values = np.log1p(clipped) if log else clipped
            params = {"low": low, "high": high, "log": log, "median": float(np.median(clipped)),
                      "mean": float(values.mean()), "std": float(values.std()) or 1.0,
                      "flag": bool(np.isnan(column).any())}
            self.blocks_.append((j, "number", params))
        return self

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (dense) design matrix and, per design column, the feature it belongs to."""
        n = X.shape[0]
        parts: list[np.ndarray] = []
        owners: list[int] = []
        for j, kind, p in self.blocks_:
            column = X[:, j]
            if kind == "onehot":
                codes = np.clip(np.nan_to_num(column, nan=p["levels"] - 1).astype(int), 0, p["levels"] - 1)
                onehot = np.zeros((n, p["levels"]))
                onehot[np.arange(n), codes] = 1.0
                parts.append(onehot)
                owners += [j] * p["levels"]
                continue
            missing = np.isnan(column)
            value = np.clip(np.where(missing, p["median"], column), p["low"], p["high"])
            if p["log"]:
                value = np.log1p(value)
            parts.append(((value - p["mean"]) / p["std"]).reshape(-1, 1))
            owners.append(j)
            if p["flag"]:
                parts.append(missing.astype(float).reshape(-1, 1))
                owners.append(j)
        design = np.hstack(parts) if parts else np.zeros((n, 0))
        return design, np.array(owners, dtype=int)


class LogisticModel:
    """L2-regularised logistic regression on :class:`LinearDesign`."""

    name = "logistic"

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray, specs: Sequence[FeatureSpec], **_: Any) -> LogisticModel:
        self.design_ = LinearDesign().fit(X, specs)
        design, self.owners_ = self.design_.transform(X)
        # one BLAS thread: on a busy machine more threads spin and run several times slower
        with threadpool_limits(limits=1, user_api="blas"):
            self.model_ = LogisticRegression(C=self.C, max_iter=2000, solver="lbfgs").fit(design, y)
        self.mean_ = design.mean(axis=0)
        self.n_features_ = X.shape[1]
        return self

    def decision(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        design, _ = self.design_.transform(X)
        return np.asarray(self.model_.decision_function(design), dtype=float)

    def contributions(self, X: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, float]:
        """Per feature: coefficient x (value - training mean), summed over its design columns."""
        design, owners = self.design_.transform(X)
        coef = self.model_.coef_.ravel()
        centred = (design - self.mean_) * coef
        out = np.zeros((X.shape[0], self.n_features_))
        np.add.at(out.T, owners, centred.T)
        base = float(self.model_.intercept_[0] + self.mean_ @ coef)
        return out, base


class BoostedModel:
    """LightGBM gradient boosting; category features use LightGBM's own splits."""

    name = "lightgbm"

    def __init__(self, rounds: int = 2000, learning_rate: float = 0.05, num_leaves: int = 15,
                 n_jobs: int = 2, seed: int = 0) -> None:
        self.rounds = rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.n_jobs = n_jobs
        self.seed = seed

    def params(self) -> dict[str, Any]:
        return {
            "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
            "lambda_l2": 1.0, "cat_smooth": 10.0, "min_data_per_group": 50, "max_cat_to_onehot": 8,
            "verbose": -1, "num_threads": self.n_jobs, "seed": self.seed, "deterministic": True,
            "force_col_wise": True,
        }

    def fit(self, X: np.ndarray, y: np.ndarray, specs: Sequence[FeatureSpec], *,
            valid: tuple[np.ndarray, np.ndarray] | None = None) -> BoostedModel:
        categorical = [i for i, s in enumerate(specs) if s.kind == "category"]
        train = lgb.Dataset(X, y, categorical_feature=categorical, free_raw_data=True)
        callbacks: list[Any] = []
        sets = []
        if valid is not None:
            sets = [lgb.Dataset(valid[0], valid[1], reference=train, categorical_feature=categorical)]
            callbacks = [lgb.early_stopping(50, verbose=False)]
        self.booster_ = lgb.train(self.params(), train, num_boost_round=self.rounds, valid_sets=sets, callbacks=callbacks)
        self.best_rounds_ = self.booster_.best_iteration or self.rounds
        return self

    def _threads(self, threads: int | None) -> int:
        # LightGBM predicts on every core unless told: its OpenMP threads spin-wait, which on a
        # busy machine makes one row take ~12 ms instead of 0.1 ms
        return threads if threads is not None else max(1, int(getattr(self, "n_jobs", 1)))

    def decision(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        return np.asarray(self.booster_.predict(X, raw_score=True, num_iteration=self.best_rounds_,
                                                num_threads=self._threads(threads)), dtype=float)

    def contributions(self, X: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, float]:
        """LightGBM's exact per-row contributions (SHAP values of the trees, log-odds)."""
        contrib = np.asarray(self.booster_.predict(X, pred_contrib=True, num_iteration=self.best_rounds_,
                                                   num_threads=self._threads(threads)))
        return contrib[:, :-1], float(contrib[0, -1]) if len(contrib) else 0.0


@dataclass(frozen=True)
class Candidate:
    name: str
    algorithm: str
    params: dict[str, Any]


def candidates(algorithm: str, *, rounds: int, n_jobs: int, seed: int) -> list[Candidate]:
    out = []
    if algorithm in ("auto", "logistic"):
        out.append(Candidate("logistic", "logistic", {"C": 1.0}))
    if algorithm in ("auto", "lightgbm"):
        out.append(Candidate("lightgbm", "lightgbm", {"rounds": rounds, "n_jobs": n_jobs, "seed": seed}))
    return out


def _build(candidate: Candidate, **overrides: Any) -> LogisticModel | BoostedModel:
    params = {**candidate.params, **overrides}
    if candidate.algorithm == "logistic":
        return LogisticModel(**params)
    return BoostedModel(**params)


def cv_folds(y: np.ndarray, order: np.ndarray | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds, or forward-chaining folds when ``order`` (time order) is given."""
    if order is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(train, test) for train, test in splitter.split(np.zeros(len(y)), y)]
    blocks = np.array_split(order, folds + 1)
    return [(np.concatenate(blocks[: k + 1]), blocks[k + 1]) for k in range(folds)]


class LeadScorer(ClassifierMixin, BaseEstimator):
    """Predict the probability that a lead converts.

    Parameters
    ----------
    algorithm : "auto" (chosen by cross-validation), "logistic" or "lightgbm".
    exclude : columns never used; allow : flagged columns kept anyway.
    text_columns : free-text columns whose words become features.
    as_of_column : the column with each lead's as-of moment.
    rules : a scoring-model document (YAML text) whose event conditions become counts.
    time_order : positions of the leads in time order (then folds go forward in time).
    folds : cross-validation folds (default: 5, or 3 above 50,000 leads). leak_auc : the leakage guard's AUC threshold.
    max_rounds : LightGBM's most boosting rounds. n_jobs : LightGBM threads.
    random_state : seed of folds and LightGBM.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from leadscore.predict.data import LeadData
    >>> rng = np.random.default_rng(0)
    >>> visits = rng.poisson(3, 400)
    >>> leads = pd.DataFrame({"lead_id": [str(i) for i in range(400)], "visits": visits})
    >>> y = (rng.random(400) < 0.1 + 0.1 * visits).astype(float)
    >>> scorer = LeadScorer(algorithm="logistic", folds=3).fit(LeadData(leads), y)
    >>> bool(scorer.predict_proba(LeadData(leads))[:, 1].max() <= 1)
    True
    """

    def __init__(
        self,
        algorithm: str = "auto",
        exclude: Sequence[str] = (),
        allow: Sequence[str] = (),
        text_columns: Sequence[str] = (),
        as_of_column: str | None = None,
        rules: str | None = None,
        time_order: np.ndarray | None = None,
        folds: int | None = None,
        leak_auc: float = LEAK_AUC,
        max_rounds: int = 2000,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.algorithm = algorithm
        self.exclude = exclude
        self.allow = allow
        self.text_columns = text_columns
        self.as_of_column = as_of_column
        self.rules = rules
        self.time_order = time_order
        self.folds = folds
        self.leak_auc = leak_auc
        self.max_rounds = max_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: LeadData, y: np.ndarray) -> LeadScorer:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm={self.algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
        y = np.asarray(y, dtype=float)
        self.classes_ = np.array([0, 1])
        feature_args: dict[str, Any] = {
            "text_columns": tuple(self.text_columns), "as_of_column": self.as_of_column, "rules": self.rules,
        }
        attributes_only = LeadData(X.leads, None, X.as_of_us, X.source)  # the guard looks at columns only
        first = LeadFeatures(exclude=tuple(self.exclude), **feature_args).fit(attributes_only)
        self.leakage_ = scan(X, y, first.columns_, allow=self.allow, threshold=self.leak_auc)
        dropped = [f.column for f in self.leakage_ if not f.kept]
        self.features_ = LeadFeatures(exclude=(*self.exclude, *dropped), **feature_args).fit(X)
        matrix = self.features_.transform(X)
        specs = self.features_.specs_
        folds = self.folds if self.folds is not None else (3 if len(y) > 50_000 else 5)
        splits = cv_folds(y, self.time_order, folds, self.random_state)
        rng = np.random.default_rng(self.random_state)
        self.cv_results_: dict[str, dict[str, float]] = {}
        oof_by: dict[str, np.ndarray] = {}
        rounds_by: dict[str, list[int]] = {}
        for candidate in candidates(self.algorithm, rounds=self.max_rounds, n_jobs=self.n_jobs, seed=self.random_state):
            oof = np.full(len(y), np.nan)
            aucs, losses, rounds = [], [], []
            for train, test in splits:
                model = _build(candidate)
                if isinstance(model, BoostedModel):
                    model.fit(matrix[train], y[train], specs, valid=(matrix[test], y[test]))
                    rounds.append(model.best_rounds_)
                else:
                    # a linear model with a few hundred weights needs no more than LINEAR_CV_ROWS to be judged
                    rows = train if len(train) <= LINEAR_CV_ROWS else np.sort(rng.choice(train, LINEAR_CV_ROWS, replace=False))
                    model.fit(matrix[rows], y[rows], specs)
                oof[test] = model.decision(matrix[test])
                aucs.append(roc_auc(y[test], oof[test]))
                losses.append(log_loss(y[test], _sigmoid(oof[test])))
            self.cv_results_[candidate.name] = {
                "roc_auc": float(np.mean(aucs)), "roc_auc_std": float(np.std(aucs)), "log_loss": float(np.mean(losses)),
            }
            oof_by[candidate.name] = oof
            rounds_by[candidate.name] = rounds
        best = max(self.cv_results_, key=lambda name: self.cv_results_[name]["roc_auc"])
        chosen = next(c for c in candidates(self.algorithm, rounds=self.max_rounds, n_jobs=self.n_jobs, seed=self.random_state) if c.name == best)
        self.candidate_ = best
        self.algorithm_ = chosen.algorithm
        oof = oof_by[best]
        seen = ~np.isnan(oof)
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof[seen].reshape(-1, 1), y[seen])
        self.calibration_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        if chosen.algorithm == "lightgbm":
            final_rounds = max(10, int(np.median(rounds_by[best]) * 1.1))
            self.model_: LogisticModel | BoostedModel = _build(chosen, rounds=final_rounds).fit(matrix, y, specs)
        else:
            self.model_ = _build(chosen).fit(matrix, y, specs)
        sample = matrix[np.random.default_rng(self.random_state).permutation(len(y))[:3000]]
        contrib, _ = self.model_.contributions(sample)
        self.importance_ = np.abs(contrib * self.calibration_[0]).mean(axis=0)
        self.n_train_ = len(y)
        self.base_rate_ = float(y.mean())
        return self

    def decision_function(self, X: LeadData) -> np.ndarray:
        """Calibrated log-odds of conversion."""
        check_is_fitted(self, "model_")
        a, b = self.calibration_
        return a * self.model_.decision(self.features_.transform(X)) + b

    def predict_proba(self, X: LeadData) -> np.ndarray:
        p = _sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: LeadData) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def contributions(self, X: LeadData, matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(feature matrix, per-feature contributions to the calibrated log-odds, base log-odds)."""
        check_is_fitted(self, "model_")
        matrix = self.features_.transform(X) if matrix is None else matrix
        a, b = self.calibration_
        contrib, base = self.model_.contributions(matrix)
        return matrix, contrib * a, a * base + b

    def feature_importance(self) -> list[tuple[str, float]]:
        """Features by mean absolute contribution (calibrated log-odds), largest first."""
        check_is_fitted(self, "model_")
        names = [s.name for s in self.features_.specs_]
        return sorted(zip(names, map(float, self.importance_), strict=True), key=lambda t: -t[1])
