"""Time in the demo world: epoch seconds (int64), seasonality and office hours.

* leads arrive less often at weekends, in August and in late December, a little more
  each month (growth), with a few campaign spikes;
* people act mostly on weekdays in office hours of their own time zone;
* activity decays after a lead is created (truncated exponential), with a uniform
  background of returning visits.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from leadscore.demo.texts import IntArray

DAY = 86_400
HOUR = 3_600
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (sub-seconds dropped)."""
    return int(moment.timestamp() // 1)


def months_before(end: datetime, months: int) -> datetime:
    """``end`` minus ``months`` calendar months (day clamped to the month's length)."""
    index = end.year * 12 + (end.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    first_next = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    last_day = (first_next - datetime(year, month, 1, tzinfo=UTC)).days
    return end.replace(year=year, month=month, day=min(end.day, last_day))


def weekday(days: IntArray) -> IntArray:
    """Monday = 0 ... Sunday = 6 of epoch day numbers (1970-01-01 was a Thursday)."""
    result: IntArray = (days + 3) % 7
    return result


def creation_day_weights(rng: np.random.Generator, first_day: int, n_days: int) -> FloatArray:
    """Relative number of new leads on each day: week, holidays, growth, campaign spikes."""
    days = np.arange(first_day, first_day + n_days, dtype=np.int64)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    dom = (dates - months).astype(np.int64) + 1
    weights = np.array([1.0, 1.06, 1.06, 1.0, 0.88, 0.3, 0.24])[weekday(days)]
    month_factor = np.array([1.05, 1.05, 1.08, 1.0, 1.0, 0.95, 0.88, 0.68, 1.08, 1.12, 1.1, 0.95])
    weights = weights * month_factor[month - 1]
    weights = np.where((month == 12) & (dom >= 20), weights * 0.35, weights)
    weights = np.where((month == 1) & (dom <= 2), weights * 0.4, weights)
    weights = weights * (0.85 + 0.3 * np.arange(n_days) / max(n_days, 1))
    weights = weights * rng.lognormal(0.0, 0.15, n_days)
    spikes = rng.integers(0, n_days, max(1, n_days // 60))
    weights[spikes] *= 2.5
    normalised: FloatArray = weights / weights.sum()
    return normalised


def creation_days(rng: np.random.Generator, n: int, start: int, end: int) -> IntArray:
    """Sorted epoch day numbers on which ``n`` leads are created within [start, end)."""
    first_day = start // DAY
    n_days = max(1, (end - 1) // DAY - first_day + 1)
    weights = creation_day_weights(rng, first_day, n_days)
    picked = rng.choice(n_days, size=n, p=weights)
    result: IntArray = np.sort(picked).astype(np.int64) + first_day
    return result


def time_of_day(rng: np.random.Generator, n: int) -> IntArray:
    """Local second of the day: mostly office hours, some evenings and nights."""
    office = np.clip(rng.normal(13.3 * HOUR, 2.6 * HOUR, n), 7 * HOUR, 21.5 * HOUR)
    anytime = rng.uniform(0, DAY, n)
    result: IntArray = np.where(rng.random(n) < 0.74, office, anytime).astype(np.int64)
    return result


def working_time(
    rng: np.random.Generator, ts: IntArray, tz: IntArray, lo: IntArray, hi: IntArray
) -> IntArray:
    """Move moments to office hours (local time ``tz`` seconds east of UTC), most weekend
    ones to Friday or Monday; a moment that would leave [lo, hi] stays as it was."""
    n = len(ts)
    day = (ts + tz) // DAY
    wd = weekday(day)
    flip = rng.random(n) < 0.5
    shift = np.where(wd == 5, np.where(flip, -1, 2), np.where(wd == 6, np.where(flip, -2, 1), 0))
    shift = np.where(rng.random(n) < 0.65, shift, 0)
    moved = (day + shift) * DAY + time_of_day(rng, n) - tz
    result: IntArray = np.where((moved >= lo) & (moved <= hi), moved, ts)
    return result


def decaying(
    rng: np.random.Generator, lo: IntArray, hi: IntArray, tau_s: FloatArray, background: FloatArray | float
) -> IntArray:
    """Moments in [lo, hi]: exponential decay from ``lo`` with scale ``tau_s`` (truncated at
    ``hi``), or with probability ``background`` uniform over the whole span."""
    n = len(lo)
    span = np.maximum(hi - lo, 0).astype(np.float64)
    u = rng.random(n)
    tail = -np.expm1(-span / tau_s)
    offset = -tau_s * np.log1p(-u * tail)
    offset = np.where(rng.random(n) < background, u * span, offset)
    result: IntArray = lo + np.minimum(offset, span).astype(np.int64)
    return result


def around(
    rng: np.random.Generator, center: IntArray, sd_s: float, lo: IntArray, hi: IntArray, shift_s: float = 0.0
) -> IntArray:
    """Moments near ``center`` (normal, ``shift_s`` earlier or later); outside [lo, hi]
    they fall back to a uniform moment in [lo, hi]."""
    n = len(center)
    moment = center + (rng.normal(shift_s, sd_s, n)).astype(np.int64)
    fallback = lo + (rng.random(n) * np.maximum(hi - lo, 0)).astype(np.int64)
    result: IntArray = np.where((moment >= lo) & (moment <= hi), moment, fallback)
    return result
