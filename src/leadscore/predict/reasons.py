"""Reasons in plain words: each prediction's top positive and negative factors.

The numbers are exact per-row contributions to the calibrated log-odds: LightGBM's own
``pred_contrib`` (SHAP values of the trees), or, for logistic regression, each
coefficient times the lead's value minus the average lead's. Features that describe the
same thing (one attribute; the 7/30/90-day counts and recency of one event type) are
added up into one factor and worded from the feature that weighs most for that lead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leadscore.predict.features import MISSING, OTHER, EventCount, FeatureSpec

MIN_EFFECT = 0.01  # log-odds; smaller contributions are not worth a reason

# event type -> (what the lead did, the noun for recency); a table, not an if chain
EVENT_WORDS: dict[str, tuple[str, str]] = {
    "page_view": ("Viewed a page", "page view"),
    "email_open": ("Opened an e-mail", "e-mail opened"),
    "email_click": ("Clicked a link in an e-mail", "e-mail click"),
    "form_submit": ("Submitted a form", "form submitted"),
    "form_submission": ("Submitted a form", "form submitted"),
    "download": ("Downloaded content", "download"),
    "webinar_registered": ("Registered for a webinar", "webinar registration"),
    "webinar_attended": ("Attended a webinar", "webinar attended"),
    "demo_request": ("Requested a demo", "demo request"),
    "demo_requested": ("Requested a demo", "demo request"),
    "trial_started": ("Started a trial", "trial start"),
    "meeting_booked": ("Booked a meeting", "meeting booked"),
    "unsubscribe": ("Unsubscribed", "unsubscribe"),
    "support_ticket": ("Opened a support ticket", "support ticket"),
    "chat": ("Chatted with us", "chat"),
}


@dataclass(frozen=True)
class Reason:
    """One factor of a prediction: the words, and its effect on the log-odds."""

    text: str
    effect: float

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.text, "effect": round(self.effect, 3)}


def _times(count: float) -> str:
    n = int(round(count))
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _event_count(kind: str, count: float, days: str) -> str:
    verb, noun = EVENT_WORDS.get(kind, (f"'{kind}' event", kind))
    if count == 0:
        return f"No {noun} in the last {days} days"
    if kind in EVENT_WORDS:
        return f"{verb} {_times(count)} in the last {days} days"
    return f"{int(count)} '{kind}' event{'s' if count != 1 else ''} in the last {days} days"


def _recency(kind: str, days: float) -> str:
    noun = EVENT_WORDS.get(kind, ("", f"'{kind}' event"))[1] if kind else "activity"
    if math.isnan(days):
        return f"No {noun} yet"
    return f"Last {noun} {_days(days)}"


def _days(days: float) -> str:
    whole = int(math.floor(days))
    return "today" if whole == 0 else "1 day ago" if whole == 1 else f"{whole} days ago"


def _rule_count(count: EventCount, value: float) -> str:
    window = f" in the last {_number(count.within_days)} days" if count.within_days is not None else ""
    if value == 0:
        return f"{count.label}: not{window or ' yet'}"
    return f"{count.label} {_times(value)}{window}"


def describe(spec: FeatureSpec, value: float, raw: Any, rules: dict[str, EventCount]) -> str:
    """One feature of one lead in plain words."""
    kind = spec.source[0]
    if kind == "attribute":
        column = spec.source[1]
        if spec.kind == "category":
            level = spec.levels[int(value)] if not math.isnan(value) else MISSING
            if level == MISSING:
                return f"{column}: not given"
            shown = raw if level == OTHER and raw is not None else level
            return f"{column}: {shown}"
        return f"{column}: not given" if math.isnan(value) else f"{column}: {_number(value)}"
    if kind == "word":
        word = spec.source[2]
        return f"{spec.source[1]} mentions '{word}'" if value else f"{spec.source[1]} does not mention '{word}'"
    if kind == "age":
        return f"{spec.source[1]}: not given" if math.isnan(value) else f"{spec.source[1]}: {_days(value)}"
    if kind == "lead_age":
        return "Lead age unknown" if math.isnan(value) else f"Lead created {_days(value)}"
    if kind == "event":
        return _event_count(spec.source[1], value, spec.source[2])
    if kind == "event_value":
        _, event_type, prop, text, days = spec.source
        verb, noun = EVENT_WORDS.get(event_type, (f"Had a '{event_type}' event", f"'{event_type}' event"))
        if value == 0:
            return f"No {noun} with {prop} {text} in the last {days} days"
        return f"{verb} ({prop} {text}) {_times(value)} in the last {days} days"
    if kind == "event_sum":
        _, event_type, prop, days = spec.source
        return f"{event_type} {prop} in the last {days} days: {_number(value)}"
    if kind == "recency":
        return _recency(spec.source[1], value)
    if kind == "active_days":
        days = spec.source[1]
        if value == 0:
            return f"Not active in the last {days} days"
        return f"Active on {int(value)} day{'s' if value != 1 else ''} in the last {days} days"
    if kind == "rule":
        return _rule_count(rules[spec.source[1]], value)
    return spec.name  # pragma: no cover - every source kind is listed above


def _objects(values: Any) -> np.ndarray:
    """Values as a 1-d object array (lists stay single values)."""
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def top_reasons(
    specs: Sequence[FeatureSpec],
    matrix: np.ndarray,
    contributions: np.ndarray,
    leads: pd.DataFrame | Mapping[str, Sequence[Any]],
    rule_counts: Sequence[EventCount],
    *,
    top: int = 3,
) -> list[tuple[list[Reason], list[Reason]]]:
    """For each lead, its ``top`` positive and ``top`` negative reasons, strongest first.

    ``leads`` holds the raw attribute values (a table, or a mapping of column to values),
    used to word a pooled category level by the lead's own value.
    """
    groups = sorted({s.group for s in specs})
    group_index = {g: i for i, g in enumerate(groups)}
    owner = np.array([group_index[s.group] for s in specs])
    membership = np.zeros((len(specs), len(groups)))
    membership[np.arange(len(specs)), owner] = 1.0
    grouped = contributions @ membership
    rules = {c.key: c for c in rule_counts}
    out: list[tuple[list[Reason], list[Reason]]] = []
    k = min(top, len(groups))
    if k == 0:
        return [([], []) for _ in range(len(matrix))]
    order_up = np.argsort(-grouped, axis=1)[:, :k]
    order_down = np.argsort(grouped, axis=1)[:, :k]
    columns = {s.source[1] for s in specs if s.source[0] == "attribute" and s.kind == "category"}
    raw_values = {c: _objects(leads[c]) for c in columns if c in leads}
    members = [np.flatnonzero(owner == g) for g in range(len(groups))]
    for row in range(len(matrix)):
        pair: tuple[list[Reason], list[Reason]] = ([], [])
        for sign, picks, bucket in ((1, order_up[row], pair[0]), (-1, order_down[row], pair[1])):
            for g in picks:
                effect = float(grouped[row, g])
                if sign * effect < MIN_EFFECT:
                    break
                candidates = members[g]
                j = int(candidates[np.argmax(np.abs(contributions[row, candidates]))]) if len(candidates) > 1 else int(candidates[0])
                spec = specs[j]
                raw = raw_values[spec.source[1]][row] if spec.source[0] == "attribute" and spec.source[1] in raw_values else None
                bucket.append(Reason(describe(spec, float(matrix[row, j]), raw, rules), effect))
        out.append(pair)
    return out
