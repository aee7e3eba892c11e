"""A trained predictive model as the CLI and the service use it, and its directory on disk.

A model directory holds:

* ``manifest.json`` - ``format: leadscore-predictive-model``, ``format_version`` (this
  code reads only :data:`FORMAT_VERSION`), the leadscore and library versions, the
  target, the id and as-of columns, the algorithm and the features;
* ``model.joblib`` - the fitted :class:`~leadscore.predict.estimators.LeadScorer` and
  hashed ids of the training leads (so ``compare`` can warn about in-sample figures);
* ``metrics.json`` and ``report.html`` - written by ``leadscore train``;
* ``rules.yaml`` - the rule model whose event conditions are features (when one was used).

The service loads a directory once with :meth:`Predictor.load` and calls
:meth:`Predictor.predict_lead` per lead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

import leadscore
from leadscore.engine.scoring import Event, Lead
from leadscore.predict.data import LeadData, as_of_moments, events_frame, leads_frame
from leadscore.predict.errors import ModelDirError
from leadscore.predict.estimators import LeadScorer
from leadscore.predict.reasons import Reason, top_reasons

FORMAT = "leadscore-predictive-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


def hash_ids(ids: Sequence[Any]) -> np.ndarray:
    """64-bit hashes of lead ids (enough to tell whether a lead was seen in training)."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little") for i in ids],
        dtype=np.uint64,
    )


def probability_to_score(probability: np.ndarray) -> np.ndarray:
    """The 0-100 predictive score: 100 x the calibrated probability, 2 decimals."""
    return np.round(100.0 * probability, 2)


@dataclass
class Prediction:
    """One lead's prediction (what the service returns)."""

    lead_id: str
    probability: float
    score: float
    positive: list[Reason] = field(default_factory=list)
    negative: list[Reason] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "probability": round(self.probability, 4),
            "score": self.score,
            "factors": {
                "positive": [r.to_dict() for r in self.positive],
                "negative": [r.to_dict() for r in self.negative],
            },
        }


class Predictor:
    """A fitted :class:`LeadScorer` with what it needs to read new leads."""

    def __init__(self, scorer: LeadScorer, manifest: dict[str, Any], train_ids: np.ndarray | None = None,
                 path: Path | None = None) -> None:
        self.scorer = scorer
        self.manifest = manifest
        self.train_ids = train_ids if train_ids is not None else np.zeros(0, dtype=np.uint64)
        self.path = path
        self._rows: Any = None  # the per-row path, built on first use

    # ---- what the model expects -----------------------------------------------------

    @property
    def id_column(self) -> str:
        return str(self.manifest.get("id_column") or "lead_id")

    @property
    def as_of_column(self) -> str | None:
        value = self.manifest.get("as_of_column")
        return str(value) if value else None

    @property
    def as_of_offset_days(self) -> float:
        return float(self.manifest.get("as_of_offset_days") or 0.0)

    @property
    def uses_events(self) -> bool:
        return bool(self.scorer.features_.uses_events_)

    @property
    def target(self) -> dict[str, Any]:
        return dict(self.manifest.get("target") or {})

    # ---- predicting -------------------------------------------------------------------

    def probabilities(self, data: LeadData) -> np.ndarray:
        """Calibrated conversion probability of each lead."""
        return np.asarray(self.scorer.predict_proba(data)[:, 1])

    def predict(self, data: LeadData, *, explain: bool = False, top: int = 3) -> list[Prediction]:
        """Predictions for every lead of ``data`` (with reasons when ``explain``)."""
        if explain:
            matrix, contrib, base = self.scorer.contributions(data)
            probability = 1.0 / (1.0 + np.exp(-np.clip(contrib.sum(axis=1) + base, -35, 35)))
            reasons = top_reasons(
                self.scorer.features_.specs_, matrix, contrib, data.leads,
                self.scorer.features_.event_counts_, top=top,
            )
        else:
            probability = self.probabilities(data)
            reasons = [([], []) for _ in range(len(data))]
        scores = probability_to_score(probability)
        ids = data.lead_ids
        return [
            Prediction(str(ids[i]), float(probability[i]), float(scores[i]), reasons[i][0], reasons[i][1])
            for i in range(len(data))
        ]

    def predict_lead(self, lead: Lead, events: Sequence[Event] = (), as_of: datetime | None = None,
                     *, explain: bool = True, top: int = 3) -> Prediction:
        """Predict one lead from the engine's :class:`Lead` and :class:`Event` objects.

        ``as_of`` defaults to the lead's as-of column (plus the model's offset) when the model
        was trained with one, else to now; only events at or before it count. Uses the
        pandas-free per-row path (:mod:`leadscore.predict.rowpath`, a few ms), which gives
        what :meth:`predict_lead_table` gives.
        """
        if self._rows is None:
            from leadscore.predict.rowpath import RowPredictor

            self._rows = RowPredictor(self)
        result: Prediction = self._rows.predict(lead, events, as_of, explain=explain, top=top)
        return result

    def predict_lead_table(self, lead: Lead, events: Sequence[Event] = (), as_of: datetime | None = None,
                           *, explain: bool = True, top: int = 3) -> Prediction:
        """:meth:`predict_lead` through the batch (pandas) path: the reference it is tested against."""
        leads = leads_frame([lead])
        use_column = as_of is None and self.as_of_column is not None and bool(lead.attributes.get(self.as_of_column))
        column = self.as_of_column if use_column else None
        moment = as_of if as_of is not None else (None if use_column else datetime.now(UTC))
        moments = as_of_moments(leads, as_of_column=column, as_of=moment, file=None,
                                offset_days=self.as_of_offset_days if column else 0.0)
        frame = events_frame(list(events)) if self.uses_events else None
        data = LeadData(leads, frame, moments)
        return self.predict(data, explain=explain, top=top)[0]

    def seen_in_training(self, ids: Sequence[Any]) -> int:
        """How many of these lead ids were used to train the model."""
        if len(self.train_ids) == 0:
            return 0
        return int(np.isin(hash_ids(ids), self.train_ids).sum())

    # ---- disk -------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``manifest.json`` and ``model.joblib`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump({"scorer": self.scorer, "train_ids": self.train_ids}, directory / MODEL_FILE, compress=3)
        (directory / MANIFEST).write_text(json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.path = directory
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        """Load a model directory; refuse one of another format version with a clear line."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not directory.is_dir():
            raise ModelDirError(f"{directory}: not a directory; give the folder written by `leadscore train --out`")
        if not manifest_path.exists():
            raise ModelDirError(
                f"{directory}: not a leadscore model directory (no {MANIFEST}); "
                "train one with `leadscore train ... --out DIR`"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelDirError(f"{manifest_path}: damaged manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelDirError(f"{manifest_path}: not a leadscore predictive model manifest")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            made_by = manifest.get("leadscore_version", "?")
            raise ModelDirError(
                f"{directory}: model format version {version} (saved by leadscore {made_by}); "
                f"leadscore {leadscore.__version__} reads format version {FORMAT_VERSION} only: "
                "retrain it with `leadscore train`"
            )
        try:
            payload = joblib.load(directory / MODEL_FILE)
        except Exception as exc:  # noqa: BLE001 - unpickling raises many types
            raise ModelDirError(
                f"{directory / MODEL_FILE}: cannot load the model ({type(exc).__name__}: {exc}); retrain it"
            ) from None
        return cls(payload["scorer"], manifest, payload.get("train_ids"), directory)


def build_manifest(scorer: LeadScorer, *, target: dict[str, Any], id_column: str, as_of_column: str | None,
                   time_column: str | None, rules_file: str | None, as_of_offset: float = 0.0) -> dict[str, Any]:
    """The manifest of a freshly trained model."""
    import lightgbm
    import sklearn

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "leadscore_version": leadscore.__version__,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "libraries": {"scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__,
                      "numpy": np.__version__, "pandas": pd.__version__},
        "algorithm": scorer.algorithm_,
        "candidate": scorer.candidate_,
        "target": target,
        "id_column": id_column,
        "as_of_column": as_of_column,
        "as_of_offset_days": as_of_offset,
        "time_column": time_column,
        "uses_events": bool(scorer.features_.uses_events_),
        "rules": rules_file,
        "features": [s.name for s in scorer.features_.specs_],
        "score": "100 x calibrated probability of conversion",
    }
