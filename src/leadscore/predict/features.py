"""Features of a lead: its attributes and, point-in-time, aggregates of its events.

:class:`LeadFeatures` is a scikit-learn style transformer over :class:`LeadData`:

* **attributes** - numbers stay numbers (missing stays missing: the models see it),
  categories keep their frequent levels and pool the rare ones into ``(other)``, a
  missing category is its own level ``(missing)``; free text (many distinct long values)
  is ignored unless named in ``text_columns`` (then: one yes/no feature per frequent word);
  ID-like columns (unique per row, or named like an id) are never used; other
  timestamps become "days before the as-of moment";
* **events** (only those at or before each lead's as-of moment; a duplicate ``event_id``
  counts once) - per event type: counts over 7/30/90 days and days since the last one;
  days since any activity, distinct active days in 30 and 90 days;
* **rule conditions** (with ``rules``, a scoring-model document) - for every event
  condition of the model, the number of matching events within its ``within_days``.

Adding events after a lead's as-of moment never changes its features: every event
aggregate is computed after dropping them, and the vocabularies (event types, levels,
words) are fixed by ``fit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.engine.timestamps import MICROS_PER_DAY
from leadscore.engine.values import test_value as value_holds
from leadscore.engine.values import text_form
from leadscore.model.loading import parse_model
from leadscore.model.schema import ScoringModel, did_you_mean, time_conditions
from leadscore.predict.data import NAT, LeadData

OTHER = "(other)"
MISSING = "(missing)"
ID_NAME = re.compile(r"(?i)(^|[^a-z])(id|uuid|guid|key|number|no)$|^(id|uuid|guid)[^a-z]")
DATE_LIKE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class ColumnPlan:
    """How one lead attribute becomes features (decided by ``fit``)."""

    name: str
    kind: str  # numeric | category | text | datetime | id | constant | excluded
    levels: tuple[str, ...] = ()  # category: kept levels (then OTHER, MISSING)
    words: tuple[str, ...] = ()  # text: the words that get a feature
    note: str = ""  # why a column is not used


@dataclass(frozen=True)
class EventCount:
    """A rule model's event condition: count the matching events within ``within_days``."""

    key: str
    label: str
    types: tuple[str, ...]
    where: tuple[tuple[str, str, Any], ...]  # (property, operator, operand)
    within_days: float | None


@dataclass(frozen=True)
class FeatureSpec:
    """One output column: its name, whether it is a category code, and where it comes from."""

    name: str
    kind: str  # numeric | category
    source: tuple[str, ...]  # ("attribute", col) | ("word", col, w) | ("age", col) | ("event", type, days) ...
    levels: tuple[str, ...] = ()
    group: str = ""  # features of one group are explained together (same attribute, event type, ...)


@dataclass
class _Events:
    """Events of the leads that count (at or before as-of), as arrays."""

    lead: np.ndarray  # position of the lead
    age: np.ndarray  # days before the lead's as-of
    day: np.ndarray  # UTC day number of the event
    type: np.ndarray  # event type (object)
    frame: pd.DataFrame = field(repr=False)  # all events (for properties) ...
    rows: np.ndarray = field(repr=False)  # ... and the positions of the ones that count


def _text_values(values: pd.Series) -> pd.Series:
    """Values as text (the engine's text form: ``true``, ``50``), missing as NaN."""
    if isinstance(values.dtype, pd.StringDtype):
        return values
    return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else text_form(v)).astype("str")


def as_numbers(values: pd.Series) -> pd.Series:
    """Numbers of a column (texts that parse as numbers count, others are NaN)."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
    else:
        texts = _text_values(values).str.strip()
        numbers = pd.to_numeric(texts, errors="coerce").astype(float)
    return numbers.where(np.isfinite(numbers.to_numpy()), np.nan)


def looks_like_id(name: str, values: pd.Series) -> bool:
    """Named like an identifier, or a text (without spaces) or whole-number column with a
    distinct value per row."""
    if ID_NAME.search(name.strip()):
        return True
    present = values.dropna()
    if len(present) < 20 or present.nunique() < len(values):
        return False
    numbers = as_numbers(present)
    if numbers.notna().all():
        return bool(np.all(np.mod(numbers.to_numpy(), 1) == 0))
    texts = present.astype(str).iloc[:500]
    return bool(texts.str.contains(r"\s").mean() < 0.5)  # words with spaces are free text, not ids


def column_kind(name: str, values: pd.Series) -> tuple[str, str]:
    """The kind of an attribute column and, for unused kinds, why."""
    present = values.dropna()
    if len(present) == 0 or present.astype(str).nunique() <= 1:
        return "constant", "has a single value"
    if looks_like_id(name, values):
        return "id", "looks like an identifier (named like an id, or unique per lead)"
    if pd.api.types.is_bool_dtype(values):
        return "category", ""
    numbers = as_numbers(present)
    if numbers.notna().all():
        return "numeric", ""
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime", ""
    texts = present.astype(str)
    sample = texts.iloc[:200]
    if sample.map(lambda t: bool(DATE_LIKE.match(t))).mean() > 0.9:
        parsed = pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce")
        if parsed.notna().mean() > 0.95:
            return "datetime", ""
    distinct = texts.nunique()
    if distinct > 50 and (distinct > 0.5 * len(texts) or texts.str.len().mean() > 40):
        return "text", "free text (many distinct values); name it with --text to use its words"
    return "category", ""


def _levels(values: pd.Series, *, max_levels: int, min_count: int) -> tuple[str, ...]:
    counts = _text_values(values).dropna().value_counts()
    kept = counts[counts >= min_count].index[:max_levels]
    return tuple(str(level) for level in kept)


def _category_codes(values: pd.Series, levels: Sequence[str]) -> np.ndarray:
    """Codes 0..L-1 for the kept levels, L for OTHER, L+1 for MISSING."""
    texts = _text_values(values)
    codes = pd.Index(list(levels), dtype=object).get_indexer(texts.astype(object)).astype(float)
    codes[codes < 0] = len(levels)
    codes[texts.isna().to_numpy()] = len(levels) + 1
    return codes


def _words_of(values: pd.Series) -> list[set[str]]:
    return [set(WORD.findall(v.lower())) if isinstance(v, str) else set() for v in values]


def rule_event_counts(model: ScoringModel) -> list[EventCount]:
    """Every distinct event condition of a rule model, labelled by its rule."""
    found: list[EventCount] = []
    seen: set[tuple[Any, ...]] = set()
    for rule in model.rules:
        conditions = time_conditions(rule.when)
        for index, condition in enumerate(conditions):
            where = tuple((prop, f.op, f.value if not isinstance(f.value, list) else tuple(f.value))
                          for prop, f in sorted((condition.where or {}).items()))
            signature = (condition.types, where, condition.within_days)
            if signature in seen:
                continue
            seen.add(signature)
            key = rule.id if len(conditions) == 1 else f"{rule.id}.{index + 1}"
            label = rule.label or rule.id.replace("-", " ").replace("_", " ").capitalize()
            found.append(EventCount(key, label, condition.types, where, condition.within_days))
    return found


class LeadFeatures(TransformerMixin, BaseEstimator):
    """Turn :class:`LeadData` into a numeric matrix (category features as integer codes).

    Parameters
    ----------
    exclude : column names never used.
    text_columns : free-text columns to use (one yes/no feature per frequent word).
    as_of_column : the column holding each lead's as-of moment (not itself a feature).
    rules : a scoring-model document (YAML text); its event conditions become counts.
    windows : day windows of the event counts.
    max_event_types : at most this many event types (the most frequent) get features.
    max_levels, min_level_count : levels kept per category (rarer ones are pooled).
    max_words : words kept per text column.
    max_values : frequent values kept per event property (``url=/pricing`` counts over 90 days).

    Examples
    --------
    >>> import pandas as pd
    >>> from leadscore.predict.data import LeadData
    >>> data = LeadData(pd.DataFrame({"lead_id": ["a", "b", "c"], "size": ["10", "200", None]}))
    >>> LeadFeatures().fit(data).transform(data)[:, 0].tolist()
    [10.0, 200.0, nan]
    """

    def __init__(
        self,
        exclude: Sequence[str] = (),
        text_columns: Sequence[str] = (),
        as_of_column: str | None = None,
        rules: str | None = None,
        windows: Sequence[int] = (7, 30, 90),
        max_event_types: int = 20,
        max_levels: int = 30,
        min_level_count: int = 10,
        max_words: int = 20,
        max_values: int = 8,
    ) -> None:
        self.exclude = exclude
        self.text_columns = text_columns
        self.as_of_column = as_of_column
        self.rules = rules
        self.windows = windows
        self.max_event_types = max_event_types
        self.max_levels = max_levels
        self.min_level_count = min_level_count
        self.max_words = max_words
        self.max_values = max_values

    # ---- fit ---------------------------------------------------------------------

    def fit(self, X: LeadData, y: Any = None) -> LeadFeatures:
        leads = X.leads
        excluded = set(self.exclude)
        plans: list[ColumnPlan] = []
        min_count = max(self.min_level_count, int(0.002 * len(leads)))
        for name in leads.columns:
            if name == "lead_id" or name == self.as_of_column:
                continue
            values = leads[name]
            if name in excluded:
                plans.append(ColumnPlan(name, "excluded", note="excluded"))
                continue
            kind, note = column_kind(name, values)
            if kind == "text" and name in self.text_columns:
                words = self._frequent_words(values)
                plans.append(ColumnPlan(name, "text", words=words))
            elif kind == "category":
                plans.append(ColumnPlan(name, kind, levels=_levels(values, max_levels=self.max_levels, min_count=min_count)))
            elif kind == "datetime" and X.as_of_us is None:
                plans.append(ColumnPlan(name, "unused", note="a timestamp, and no as-of moment to measure it from"))
            else:
                plans.append(ColumnPlan(name, kind, note=note))
        self.columns_ = plans
        self.event_types_: list[str] = []
        self.event_counts_: list[EventCount] = []
        self.event_values_: list[tuple[str, str, str]] = []  # (type, property, value): counts
        self.event_sums_: list[tuple[str, str]] = []  # (type, numeric property): sums
        self.uses_events_ = X.events is not None and X.as_of_us is not None
        if self.uses_events_:
            events = _events_before_as_of(X)
            counts = pd.Series(events.type).value_counts()
            self.event_types_ = [str(t) for t in counts.index[: self.max_event_types]]
            self._fit_properties(events)
            if self.rules:
                self.event_counts_ = rule_event_counts(parse_model(self.rules, source="--rules"))
        self.has_lead_age_ = (
            self.uses_events_ and "created_at" in leads.columns and self.as_of_column != "created_at"
        )
        self.specs_ = self._specs()
        self.feature_names_out_ = np.array([s.name for s in self.specs_], dtype=object)
        self.n_features_out_ = len(self.specs_)
        return self

    def _fit_properties(self, events: _Events) -> None:
        """Frequent property values (``url=/pricing``) and numeric properties, per event type."""
        frame = events.frame
        properties = [c for c in frame.columns if c not in ("lead_id", "type", "ts", "event_id")]
        for kind in self.event_types_:
            rows = frame.iloc[events.rows[events.type == kind]]
            floor = max(20, int(0.002 * len(rows)))
            for prop in properties:
                values = rows[prop].dropna()
                if len(values) < floor:
                    continue
                numbers = as_numbers(values)
                if numbers.notna().all():
                    self.event_sums_.append((kind, prop))
                    continue
                counts = _text_values(values).value_counts()
                kept = counts[counts >= floor].index[: self.max_values]
                self.event_values_ += [(kind, prop, str(value)) for value in kept]

    def _frequent_words(self, values: pd.Series) -> tuple[str, ...]:
        counts: dict[str, int] = {}
        for words in _words_of(values):
            for word in words:
                counts[word] = counts.get(word, 0) + 1
        floor = max(10, int(0.01 * len(values)))
        ranked = sorted((w for w, c in counts.items() if c >= floor), key=lambda w: (-counts[w], w))
        return tuple(ranked[: self.max_words])

    def _specs(self) -> list[FeatureSpec]:
        specs: list[FeatureSpec] = []
        for plan in self.columns_:
            group = f"attribute:{plan.name}"
            if plan.kind == "numeric":
                specs.append(FeatureSpec(plan.name, "numeric", ("attribute", plan.name), group=group))
            elif plan.kind == "category":
                specs.append(FeatureSpec(plan.name, "category", ("attribute", plan.name), (*plan.levels, OTHER, MISSING), group))
            elif plan.kind == "text":
                specs += [FeatureSpec(f"{plan.name} has '{w}'", "numeric", ("word", plan.name, w), group=f"{group}:{w}") for w in plan.words]
            elif plan.kind == "datetime":
                specs.append(FeatureSpec(f"{plan.name} (days before)", "numeric", ("age", plan.name), group=group))
        if self.has_lead_age_:
            specs.append(FeatureSpec("lead age (days)", "numeric", ("lead_age",), group="lead_age"))
        for kind in self.event_types_:
            for days in self.windows:
                specs.append(FeatureSpec(f"{kind} in {days}d", "numeric", ("event", kind, str(days)), group=f"event:{kind}"))
            specs.append(FeatureSpec(f"days since {kind}", "numeric", ("recency", kind), group=f"event:{kind}"))
        for kind, prop, value in self.event_values_:
            specs.append(FeatureSpec(f"{kind} {prop}={value} in 90d", "numeric", ("event_value", kind, prop, value, "90"),
                                     group=f"event_value:{kind}:{prop}:{value}"))
        for kind, prop in self.event_sums_:
            specs.append(FeatureSpec(f"{kind} {prop} (sum) in 30d", "numeric", ("event_sum", kind, prop, "30"),
                                     group=f"event_sum:{kind}:{prop}"))
        if self.uses_events_:
            specs.append(FeatureSpec("days since any event", "numeric", ("recency", ""), group="activity"))
            for days in (30, 90):
                specs.append(FeatureSpec(f"active days in {days}d", "numeric", ("active_days", str(days)), group="activity"))
        for count in self.event_counts_:
            specs.append(FeatureSpec(f"rule {count.key}", "numeric", ("rule", count.key), group=f"rule:{count.key}"))
        return specs

    # ---- transform ---------------------------------------------------------------

    def transform(self, X: LeadData) -> np.ndarray:
        check_is_fitted(self, "specs_")
        n = len(X.leads)
        out = np.full((n, len(self.specs_)), np.nan)
        col = 0
        for plan in self.columns_:
            values = X.leads[plan.name] if plan.name in X.leads.columns else pd.Series([None] * n, dtype=object)
            if plan.kind == "numeric":
                out[:, col] = as_numbers(values).to_numpy()
                col += 1
            elif plan.kind == "category":
                out[:, col] = _category_codes(values, plan.levels)
                col += 1
            elif plan.kind == "text" and plan.words:
                words = _words_of(values)
                for word in plan.words:
                    out[:, col] = [word in w for w in words]
                    col += 1
            elif plan.kind == "datetime":
                moments = _moments(values)
                age = np.full(n, np.nan)
                if X.as_of_us is not None:
                    age = np.where(moments == NAT, np.nan, (X.as_of_us - moments) / MICROS_PER_DAY)
                out[:, col] = age
                col += 1
        if self.has_lead_age_:
            assert X.as_of_us is not None
            created = _moments(X.leads["created_at"]) if "created_at" in X.leads.columns else np.full(n, NAT)
            out[:, col] = np.where(created == NAT, np.nan, (X.as_of_us - created) / MICROS_PER_DAY)
            col += 1
        if self.uses_events_:
            col = self._event_features(X, out, col)
        assert col == len(self.specs_)
        return out

    def _event_features(self, X: LeadData, out: np.ndarray, col: int) -> int:
        n = len(X.leads)
        if X.events is None or X.as_of_us is None:
            events = _Events(np.zeros(0, int), np.zeros(0), np.zeros(0, int), np.zeros(0, dtype=object),
                             pd.DataFrame(), np.zeros(0, int))
        else:
            events = _events_before_as_of(X)
        by_type = {kind: events.type == kind for kind in self.event_types_}
        for kind in self.event_types_:
            mask = by_type[kind]
            for days in self.windows:
                within = mask & (events.age <= days)
                out[:, col] = np.bincount(events.lead[within], minlength=n)
                col += 1
            out[:, col] = _min_by_lead(events.lead[mask], events.age[mask], n)
            col += 1
        codes_of: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        for kind, prop, value in self.event_values_:
            if prop not in events.frame.columns:
                out[:, col] = 0
                col += 1
                continue
            if prop not in codes_of:
                codes, uniques = _property_codes(events, prop)
                codes_of[prop] = (codes, {text_form(u): i for i, u in enumerate(uniques)})
            codes, lookup = codes_of[prop]
            hit = by_type[kind] & (events.age <= 90) & (codes == lookup.get(value, -2))
            out[:, col] = np.bincount(events.lead[hit], minlength=n)
            col += 1
        for kind, prop in self.event_sums_:
            mask = by_type[kind] & (events.age <= 30)
            if prop in events.frame.columns and mask.any():
                picked = np.flatnonzero(mask)
                amounts = np.nan_to_num(as_numbers(events.frame[prop].iloc[events.rows[picked]]).to_numpy())
                out[:, col] = np.bincount(events.lead[picked], weights=amounts, minlength=n)
            else:
                out[:, col] = 0
            col += 1
        out[:, col] = _min_by_lead(events.lead, events.age, n)
        col += 1
        for days in (30, 90):
            within = events.age <= days
            pairs = np.unique(events.lead[within].astype(np.int64) * 1_000_000 + events.day[within])
            out[:, col] = np.bincount((pairs // 1_000_000).astype(np.int64), minlength=n)
            col += 1
        for count in self.event_counts_:
            mask = _matching(events, count)
            out[:, col] = np.bincount(events.lead[mask], minlength=n)
            col += 1
        return col

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "specs_")
        return self.feature_names_out_

    def event_properties(self) -> set[str]:
        """The event properties the fitted features look at (the rest need not be read)."""
        check_is_fitted(self, "specs_")
        used = {prop for _, prop, _ in self.event_values_} | {prop for _, prop in self.event_sums_}
        for count in self.event_counts_:
            used |= {prop for prop, _, _ in count.where}
        return used

    def input_warnings(self, leads: pd.DataFrame) -> list[str]:
        """What a user should hear about new leads before trusting their predictions: a
        column the model uses that the file lacks (a renamed header scores every lead as if
        the value were not given), and texts in a column the model reads as numbers."""
        check_is_fitted(self, "specs_")
        used = [plan for plan in self.columns_
                if plan.kind in ("numeric", "category", "datetime") or (plan.kind == "text" and plan.words)]
        present = [str(c) for c in leads.columns]
        warnings = []
        for plan in used:
            if plan.name not in leads.columns:
                hint = did_you_mean(plan.name, present)
                warnings.append(f"the leads have no column '{plan.name}', which the model uses{hint}: "
                                "every lead is predicted as if it were not given")
            elif plan.kind == "numeric" and not pd.api.types.is_numeric_dtype(leads[plan.name]):
                texts = _text_values(leads[plan.name]).str.strip()
                bad = texts.notna() & (texts != "") & as_numbers(leads[plan.name]).isna()
                if bad.any():
                    first = int(np.argmax(bad.to_numpy()))
                    warnings.append(
                        f"column '{plan.name}': {int(bad.sum())} value(s) are not numbers (first: "
                        f"{texts.iloc[first]!r}, row {first + 1}), which the model reads as numbers: "
                        "they count as not given")
        return warnings

    @property
    def category_indices_(self) -> list[int]:
        """Positions of the category features."""
        return [i for i, s in enumerate(self.specs_) if s.kind == "category"]


def _moments(values: pd.Series) -> np.ndarray:
    """Epoch microseconds of timestamps; what does not parse is NAT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values.astype(object), utc=True, format="ISO8601", errors="coerce")
    return parsed.dt.as_unit("us").astype("int64").to_numpy()


def _min_by_lead(lead: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    best = np.full(n, np.inf)
    np.minimum.at(best, lead, value)
    best[np.isinf(best)] = np.nan
    return best


def _events_before_as_of(X: LeadData) -> _Events:
    """Events of known leads at or before each lead's as-of, duplicates (event_id) once."""
    assert X.events is not None and X.as_of_us is not None
    frame = X.events
    lead_codes, lead_ids = pd.factorize(frame["lead_id"])  # look up each distinct id once
    found = pd.Index(X.leads["lead_id"]).get_indexer(pd.Index(np.asarray(lead_ids, dtype=object)))
    position = np.where(lead_codes >= 0, found[lead_codes] if len(found) else -1, -1)
    known = position >= 0
    ts = frame["ts"].to_numpy()
    as_of = np.where(known, X.as_of_us[np.where(known, position, 0)], NAT)
    rows = np.flatnonzero(known & (ts <= as_of))
    ids = frame["event_id"]
    if len(rows) and ids.notna().any():
        kept_ids = ids.iloc[rows]
        duplicate = kept_ids.duplicated(keep="first").to_numpy() & kept_ids.notna().to_numpy()
        rows = rows[~duplicate]
    type_codes, uniques = pd.factorize(frame["type"])
    names = np.asarray(uniques, dtype=object)
    kinds = names[type_codes[rows]] if len(names) else np.zeros(0, dtype=object)
    age = (as_of[rows] - ts[rows]) / MICROS_PER_DAY
    day = np.floor_divide(ts[rows], MICROS_PER_DAY)
    return _Events(position[rows], age, day, kinds, frame, rows)


def _property_codes(events: _Events, prop: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a property's values for the counted events (-1: missing) and the distinct values."""
    codes, uniques = pd.factorize(events.frame[prop], use_na_sentinel=True)
    return codes[events.rows], np.asarray(uniques, dtype=object)


def _matching(events: _Events, count: EventCount) -> np.ndarray:
    """Which events match a rule condition (types, where filters, within_days)."""
    mask = np.isin(events.type, list(count.types))
    if count.within_days is not None:
        mask &= events.age <= count.within_days
    for prop, op, operand in count.where:
        if not mask.any():
            break
        value = list(operand) if isinstance(operand, tuple) else operand
        if prop not in events.frame.columns:
            mask &= op == "exists" and value is False
            continue
        codes, uniques = _property_codes(events, prop)
        passed = np.array([value_holds({prop: u}, prop, op, value) for u in uniques] + [value_holds({}, prop, op, value)])
        mask &= passed[codes]  # code -1 (missing) picks the last entry
    return mask
