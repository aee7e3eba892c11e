"""One lead's prediction without pandas: the service's fast path.

:meth:`LeadFeatures.transform <leadscore.predict.features.LeadFeatures.transform>` builds
whole columns with pandas, which costs ~100 ms of fixed overhead per call: fine for a file
of 100k leads, far too slow for the service, which scores one lead at a time. This module
computes the *same* feature row for one :class:`~leadscore.engine.scoring.Lead` and its
:class:`~leadscore.engine.scoring.Event` list with plain Python and numpy, feeds it to the
fitted estimator, and words the reasons with the same code as the batch path.

Every value rule of the batch path is mirrored here (and tested equal to it to 1e-9 in
``tests/predict/test_rowpath.py``):

* a number is an int or float, or a text matching pandas' ``to_numeric`` (``" 12 "``,
  ``"1e3"``, ``".5"``); booleans, non-finite values and other texts are missing;
* a category is the engine's text form of the value (``true``, ``50``, ``12.5``), kept level,
  ``(other)`` or ``(missing)``;
* a timestamp is ISO 8601 (``Z``/offset, or none meaning UTC; ``2024``, ``2024-05`` too);
* events count only when they belong to the lead and are at or before its as-of moment;
  a repeated ``event_id`` counts once; a property value matches a kept value by text form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from leadscore.engine.scoring import Event, Lead
from leadscore.engine.timestamps import MICROS_PER_DAY, to_micros
from leadscore.engine.values import test_value as value_holds
from leadscore.engine.values import text_form
from leadscore.errors import InputError
from leadscore.predict.features import MISSING, OTHER, WORD, EventCount, FeatureSpec

if TYPE_CHECKING:  # pragma: no cover
    from leadscore.predict.predictor import Predictor

_NUMBER = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_YEAR_MONTH = re.compile(r"^([0-9]{4})(?:-([0-9]{2}))?$")
_FRACTION = re.compile(r"(\.[0-9]{6})[0-9]+")
_NAN = float("nan")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def number(value: Any) -> float:
    """The number a value is for a feature (NaN when it is none), as ``as_numbers`` reads it."""
    if value is None or isinstance(value, bool):
        return _NAN
    if isinstance(value, (int, float, np.integer, np.floating)):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.match(text):
            return _NAN
        out = float(text)
    else:
        return _NAN
    return out if math.isfinite(out) else _NAN


def category_text(value: Any) -> str | None:
    """The text a category value is compared as (None when missing)."""
    return None if _missing(value) else text_form(value)


def moment_us(value: Any) -> int | None:
    """Epoch microseconds of an ISO 8601 text (None when it is not one), as pandas parses it."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return to_micros(moment)
    if not isinstance(value, str):
        return None
    text = value.strip()
    partial = _YEAR_MONTH.match(text)
    try:
        if partial:
            moment = datetime(int(partial.group(1)), int(partial.group(2) or 1), 1, tzinfo=UTC)
        else:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_micros(moment)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class RowPredictor:
    """Predict one lead at a time, exactly as :meth:`Predictor.predict` would for it alone."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        scorer = predictor.scorer
        self.features = scorer.features_
        self.specs: list[FeatureSpec] = list(self.features.specs_)
        self.rules: dict[str, EventCount] = {c.key: c for c in self.features.event_counts_}
        self.uses_events = bool(self.features.uses_events_)
        self.calibration = scorer.calibration_
        self.model = scorer.model_
        self.category_columns = {s.source[1] for s in self.specs if s.source[0] == "attribute" and s.kind == "category"}
        self.level_index = [
            {level: i for i, level in enumerate(s.levels[:-2])} if s.kind == "category" else {} for s in self.specs
        ]

    # ---- the as-of moment -----------------------------------------------------------

    def as_of_us(self, lead: Lead, as_of: datetime | None) -> int:
        """The lead's as-of moment: ``as_of``, else its as-of column (plus offset), else now."""
        column = self.predictor.as_of_column
        raw = lead.attributes.get(column) if column else None
        if as_of is None and column is not None and raw:
            moment = moment_us(raw)
            if moment is None:
                raise InputError(
                    f"{raw!r} is not an ISO 8601 timestamp (expected e.g. 2025-03-01T14:30:00Z)", column=column
                )
            offset = self.predictor.as_of_offset_days
            return moment + int(round(offset * 86_400_000_000)) if offset else moment
        return to_micros(as_of if as_of is not None else datetime.now(UTC))

    # ---- features -------------------------------------------------------------------

    def row(self, lead: Lead, events: Sequence[Event], as_of_us: int) -> np.ndarray:
        """The lead's feature row (shape ``(1, n_features)``)."""
        attributes = lead.attributes
        out = np.full((1, len(self.specs)), np.nan)
        values = out[0]
        counted = self._counted(lead, events, as_of_us) if self.uses_events else []
        ages = [(as_of_us - e.ts) / MICROS_PER_DAY for e in counted]
        present = self._properties(events) if self.uses_events else set()
        codes_of: dict[str, dict[Any, int]] = {}
        words: dict[str, set[str]] = {}
        for j, spec in enumerate(self.specs):
            source = spec.source
            kind = source[0]
            if kind == "attribute":
                value = attributes.get(source[1])
                if spec.kind == "category":
                    text = category_text(value)
                    levels = self.level_index[j]
                    values[j] = len(levels) + 1 if text is None else levels.get(text, len(levels))
                else:
                    values[j] = number(value)
            elif kind == "word":
                if source[1] not in words:
                    text = attributes.get(source[1])
                    words[source[1]] = set(WORD.findall(text.lower())) if isinstance(text, str) else set()
                values[j] = float(source[2] in words[source[1]])
            elif kind in ("age", "lead_age"):
                moment = moment_us(attributes.get(source[1] if kind == "age" else "created_at"))
                values[j] = _NAN if moment is None else (as_of_us - moment) / MICROS_PER_DAY
            elif kind == "event":
                days = float(source[2])
                values[j] = sum(1 for e, age in zip(counted, ages, strict=True) if e.type == source[1] and age <= days)
            elif kind == "recency":
                picked = [age for e, age in zip(counted, ages, strict=True) if not source[1] or e.type == source[1]]
                values[j] = min(picked) if picked else _NAN
            elif kind == "event_value":
                prop = source[2]
                if prop not in codes_of:
                    codes_of[prop] = self._codes(prop, events)
                values[j] = self._value_count(source[1], prop, source[3], float(source[4]), codes_of[prop], counted,
                                              ages, present)
            elif kind == "event_sum":
                days = float(source[3])
                total = 0.0
                for e, age in zip(counted, ages, strict=True):
                    if e.type == source[1] and age <= days:
                        amount = number(e.properties.get(source[2]))
                        total += 0.0 if math.isnan(amount) else amount
                values[j] = total
            elif kind == "active_days":
                days = float(source[1])
                values[j] = len({e.ts // MICROS_PER_DAY for e, age in zip(counted, ages, strict=True) if age <= days})
            elif kind == "rule":
                values[j] = self._rule_count(self.rules[source[1]], counted, ages, present)
        return out

    @staticmethod
    def _counted(lead: Lead, events: Sequence[Event], as_of_us: int) -> list[Event]:
        kept: list[Event] = []
        seen: set[str] = set()
        for event in events:
            if event.lead_id != lead.lead_id or event.ts > as_of_us:
                continue
            if event.event_id is not None:
                if event.event_id in seen:
                    continue
                seen.add(event.event_id)
            kept.append(event)
        return kept

    @staticmethod
    def _properties(events: Sequence[Event]) -> set[str]:
        """Properties any given event has (the batch table has a column for each)."""
        names: set[str] = set()
        for event in events:
            names.update(event.properties)
        return names

    @staticmethod
    def _codes(prop: str, events: Sequence[Event]) -> dict[Any, int]:
        """The batch path numbers the distinct values of a property over all given events, in order."""
        codes: dict[Any, int] = {}
        for event in events:
            raw = event.properties.get(prop)
            if not _missing(raw):
                codes.setdefault(_hashable(raw), len(codes))
        return codes

    @staticmethod
    def _value_count(kind: str, prop: str, value: str, days: float, codes: dict[Any, int],
                     counted: list[Event], ages: list[float], present: set[str]) -> int:
        if prop not in present:
            return 0
        # a kept value's text picks the last distinct value with that text form
        wanted = -2
        for raw, code in codes.items():
            if text_form(raw) == value:
                wanted = code
        total = 0
        for e, age in zip(counted, ages, strict=True):
            raw = e.properties.get(prop)
            if e.type == kind and age <= days and not _missing(raw) and codes[_hashable(raw)] == wanted:
                total += 1
        return total

    @staticmethod
    def _rule_count(count: EventCount, counted: list[Event], ages: list[float], present: set[str]) -> int:
        total = 0
        for e, age in zip(counted, ages, strict=True):
            if e.type not in count.types:
                continue
            if count.within_days is not None and age > count.within_days:
                continue
            ok = True
            for prop, op, operand in count.where:
                value = list(operand) if isinstance(operand, tuple) else operand
                if prop not in present:
                    ok = op == "exists" and value is False
                else:
                    raw = e.properties.get(prop)
                    ok = value_holds({} if _missing(raw) else {prop: raw}, prop, op, value)
                if not ok:
                    break
            total += ok
        return total

    # ---- the model ------------------------------------------------------------------

    def decision(self, matrix: np.ndarray) -> float:
        """Calibrated log-odds of one feature row."""
        a, b = self.calibration
        return float(a * self.model.decision(matrix, threads=1)[0] + b)

    def predict(self, lead: Lead, events: Sequence[Event] = (), as_of: datetime | None = None, *,
                explain: bool = True, top: int = 3) -> Any:
        """The :class:`~leadscore.predict.predictor.Prediction` of one lead."""
        from leadscore.predict.predictor import Prediction, probability_to_score
        from leadscore.predict.reasons import top_reasons

        moment = self.as_of_us(lead, as_of)
        matrix = self.row(lead, events, moment)
        if explain:
            a, b = self.calibration
            contrib, base = self.model.contributions(matrix, threads=1)
            contrib = contrib * a
            z = float(contrib.sum(axis=1)[0] + a * base + b)
            raw: Mapping[str, Sequence[Any]] = {c: [lead.attributes.get(c)] for c in self.category_columns}
            positive, negative = top_reasons(self.specs, matrix, contrib, raw, list(self.rules.values()), top=top)[0]
        else:
            z = self.decision(matrix)
            positive, negative = [], []
        probability = 1.0 / (1.0 + math.exp(-min(35.0, max(-35.0, z))))
        score = float(probability_to_score(np.array([probability]))[0])
        return Prediction(str(lead.lead_id), probability, score, positive, negative)


__all__ = ["MISSING", "OTHER", "RowPredictor", "category_text", "moment_us", "number"]
