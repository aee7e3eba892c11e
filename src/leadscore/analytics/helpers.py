"""Pure helpers of the funnel analytics: rates, medians, months, Lead Velocity Rate.

No I/O here: :mod:`leadscore.analytics.funnel` feeds them what the store aggregates.

>>> lead_velocity_rate(this_month=120, last_month=100)
20.0
>>> median([3.0, 1.0, 2.0])
2.0
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

DAY_US = 86_400 * 1_000_000


def rate(part: int | float, whole: int | float) -> float | None:
    """``part / whole`` rounded to 4 decimals; None when there is nothing to divide by."""
    if not whole:
        return None
    return round(part / whole, 4)


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal (``-`` when unknown)."""
    return "-" if value is None else f"{value * 100:.1f} %"


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def lead_velocity_rate(this_month: int, last_month: int) -> float | None:
    """(qualified this month - last month) / last month, in %, rounded to 1 decimal."""
    if not last_month:
        return None
    return round((this_month - last_month) / last_month * 100, 1)


def month_of(us: int) -> str:
    """``YYYY-MM`` (UTC) of a moment in microseconds."""
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive (``YYYY-MM``)."""
    out: list[str] = []
    month = last
    while month >= first:
        out.append(month)
        month = previous_month(month)
    return out[::-1]


def fill_months(counts: Mapping[str, int], first: str | None = None, last: str | None = None) -> dict[str, int]:
    """Monthly counts with the empty months in between set to 0."""
    if not counts and (first is None or last is None):
        return {}
    first = first or min(counts)
    last = last or max(counts)
    return {m: int(counts.get(m, 0)) for m in month_range(first, last)}


def velocity_series(monthly: Mapping[str, int]) -> list[dict[str, object]]:
    """Per month: qualified leads and the LVR against the month before."""
    months = list(monthly)
    return [
        {"month": m, "qualified": monthly[m],
         "lvr": lead_velocity_rate(monthly[m], monthly[months[i - 1]]) if i else None}
        for i, m in enumerate(months)
    ]


def stage_counts_over_time(
    moves: Iterable[tuple[str, str | None, str | None, int]], months: Sequence[str],
) -> dict[str, list[int]]:
    """How many leads were in each stage at the end of each month.

    ``moves`` are ``(month, from_stage, to_stage, leads)`` rows of stage transitions;
    a lead enters ``to_stage`` and leaves ``from_stage``.

    >>> stage_counts_over_time([("2026-01", None, "MQL", 3), ("2026-02", "MQL", "SQL", 1)],
    ...                        ["2026-01", "2026-02"])
    {'MQL': [3, 2], 'SQL': [0, 1]}
    """
    delta: dict[str, dict[str, int]] = {}
    for month, source, target, n in moves:
        if target is not None:
            delta.setdefault(target, {}).setdefault(month, 0)
            delta[target][month] += n
        if source is not None:
            delta.setdefault(source, {}).setdefault(month, 0)
            delta[source][month] -= n
    out: dict[str, list[int]] = {}
    for stage in sorted(delta):
        running = sum(n for m, n in delta[stage].items() if months and m < months[0])
        series = []
        for month in months:
            running += delta[stage].get(month, 0)
            series.append(running)
        out[stage] = series
    return out


def band_edges(low: float, high: float, bands: int) -> list[tuple[float, float]]:
    width = (high - low) / bands
    return [(round(low + i * width, 2), round(low + (i + 1) * width, 2)) for i in range(bands)]


def band_index(score: float, low: float, high: float, bands: int) -> int:
    """The band of a score: ``bands`` equal bands from ``low`` to ``high`` (clamped)."""
    width = (high - low) / bands
    if width <= 0:
        return 0
    return min(bands - 1, max(0, int((score - low) // width)))
