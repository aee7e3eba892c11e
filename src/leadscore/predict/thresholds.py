"""Recommend MQL and SQL cut-offs on a model's score from labelled leads.

A cut-off ``t`` sends every lead with ``score >= t`` on. For each candidate cut (every
distinct score) we count the leads above it, the conversions among them, precision
(conversions / leads above) and recall (share of all conversions above).

* **SQL** (sales-qualified: sales calls them) - the cut with the most conversions (the
  lowest one) that respects every constraint given: ``capacity`` (at most N leads
  above), ``min_precision``; with ``value_per_conversion`` and ``cost_per_contact`` the
  cut with the highest expected profit ``value x conversions - cost x leads`` within
  those constraints. With no option at all: the lowest cut whose precision is at least
  twice the overall conversion rate (lift >= 2), else (no cut reaches it, as at a rate of
  50 % or more) the lowest cut of the best precision, which the rule then says.
* **MQL** (marketing-qualified: worth nurturing) - the highest cut that still captures
  ``mql_recall`` (80 %) of all conversions, and always below the SQL cut (a note says so
  when the SQL cut already captures that much: MQL then holds the leads just below it).

The scale is the model's own score: the rule model's points (0-100 by default) for a
rule model, 100 x probability for a predictive model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from leadscore.errors import UsageError


@dataclass(frozen=True)
class Cut:
    """One recommended cut-off and what it gives on the labelled leads."""

    stage: str
    min_score: float
    leads: int
    share: float
    conversions: int
    precision: float
    recall: float
    expected_conversions: float | None = None
    profit: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    sql: Cut
    mql: Cut
    rule: str  # how the SQL cut was chosen
    leads: int
    conversions: int
    notes: tuple[str, ...] = ()  # what a user should know before using the cuts


def cut_table(y: np.ndarray, score: np.ndarray, probability: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per distinct score (falling): leads and conversions at or above it."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    hits = np.cumsum(y[order])
    expected = np.cumsum(probability[order]) if probability is not None else None
    last = np.r_[s[1:] != s[:-1], True]
    table = {"score": s[last], "leads": np.arange(1, len(s) + 1)[last], "conversions": hits[last]}
    if expected is not None:
        table["expected"] = expected[last]
    return table


def _cut(table: dict[str, np.ndarray], i: int, stage: str, total: int, conversions: int,
         value: float | None, cost: float | None) -> Cut:
    leads = int(table["leads"][i])
    hits = int(table["conversions"][i])
    profit = None if value is None or cost is None else value * hits - cost * leads
    expected = float(table["expected"][i]) if "expected" in table else None
    return Cut(stage, float(table["score"][i]), leads, leads / total, hits, hits / leads,
               hits / conversions if conversions else 0.0, expected, profit)


def recommend(
    y: np.ndarray,
    score: np.ndarray,
    probability: np.ndarray | None = None,
    *,
    capacity: int | None = None,
    min_precision: float | None = None,
    value_per_conversion: float | None = None,
    cost_per_contact: float | None = None,
    mql_recall: float = 0.8,
) -> Recommendation:
    """SQL and MQL cuts (see the module text for the rules)."""
    if (value_per_conversion is None) != (cost_per_contact is None):
        raise UsageError("--value-per-conversion and --cost-per-contact go together; give both")
    if capacity is not None and capacity < 1:
        raise UsageError(f"--capacity must be at least 1, got {capacity}")
    if min_precision is not None and not 0 < min_precision <= 1:
        raise UsageError(f"--min-precision is a share between 0 and 1, got {min_precision}")
    if not 0 < mql_recall <= 1:
        raise UsageError(f"--mql-recall is a share between 0 and 1, got {mql_recall}")
    y = np.asarray(y, dtype=float)
    table = cut_table(y, score, probability)
    total, conversions = len(y), int(y.sum())
    precision = table["conversions"] / table["leads"]
    ok = np.ones(len(table["score"]), dtype=bool)
    reasons = []
    if capacity is not None:
        ok &= table["leads"] <= capacity
        reasons.append(f"at most {capacity} leads")
    if min_precision is not None:
        ok &= precision >= min_precision
        reasons.append(f"precision >= {min_precision:.0%}")
    if value_per_conversion is not None and cost_per_contact is not None:
        profit = value_per_conversion * table["conversions"] - cost_per_contact * table["leads"]
        candidates = np.flatnonzero(ok)
        if len(candidates) == 0:
            raise UsageError(f"no cut-off satisfies {' and '.join(reasons)} on these leads")
        i = int(candidates[np.argmax(profit[candidates])])
        rule = "highest expected profit" + (f" with {' and '.join(reasons)}" if reasons else "")
    else:
        if not reasons:
            base = conversions / total
            ok &= precision >= min(1.0, 2 * base)
            reasons.append(f"precision >= 2 x the conversion rate ({min(1.0, 2 * base):.0%})")
        candidates = np.flatnonzero(ok)
        if len(candidates) == 0 and (capacity is not None or min_precision is not None):
            raise UsageError(f"no cut-off satisfies {' and '.join(reasons)} on these leads")
        if len(candidates) == 0:
            # no cut doubles the rate (at a rate of 50 % or more none can): the cut with the
            # best precision, the lowest of those (the most conversions), said so
            best = precision.max()
            i = int(np.flatnonzero(precision >= best - 1e-12)[-1])
            rule = (f"the best precision, {best:.0%} (no cut reaches 2 x the conversion rate, "
                    f"{min(1.0, 2 * conversions / total):.0%}, on these leads)")
        else:
            i = int(candidates[-1])
            rule = "most conversions with " + " and ".join(reasons)
    sql = _cut(table, i, "SQL", total, conversions, value_per_conversion, cost_per_contact)
    recall = table["conversions"] / max(conversions, 1)
    reaching = np.flatnonzero(recall >= mql_recall)
    j = int(reaching[0]) if len(reaching) else len(table["score"]) - 1
    j = max(j, i)  # the MQL cut is never above the SQL cut ...
    if j == i and i + 1 < len(table["score"]):
        j = i + 1  # ... and strictly below it, so that both stages can be written
    mql = _cut(table, j, "MQL", total, conversions, value_per_conversion, cost_per_contact)
    notes = []
    if sql.recall >= mql_recall:
        notes.append(f"the SQL cut already keeps {sql.recall:.0%} of the conversions (--mql-recall "
                     f"{mql_recall:.0%}), so the MQL stage holds only the leads just below it; a narrower "
                     "SQL (--capacity, --min-precision) or a higher --mql-recall gives MQL a role")
    return Recommendation(sql, mql, rule, total, conversions, tuple(notes))
