"""Timestamps as integer microseconds since the Unix epoch (UTC): exact arithmetic.

``age_days(e) = (as_of - e.timestamp) / 86400 s`` is computed as
``(as_of_us - ts_us) / 86_400_000_000``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

MICROS_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_YEAR_1000_US = -30_610_224_000_000_000  # 1000-01-01T00:00:00Z
_YEAR_10000_US = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z (past datetime's range)
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
_fromordinal = date.fromordinal
_fromisoformat = datetime.fromisoformat
# "HH:MM:" of each minute of a day, and "SS" of each second of a minute (iso's common case)
_MINUTES = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}" for second in range(60))


def parse_timestamp(value: str | datetime | date) -> datetime:
    """Parse ISO 8601 (``Z`` or an offset allowed; no offset means UTC) into an aware datetime.

    Raises ValueError with a readable message when the text is not a timestamp.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty timestamp")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 timestamp (expected e.g. 2025-03-01T14:30:00Z)"
            ) from None
    else:
        raise ValueError(f"expected an ISO 8601 timestamp, got {type(value).__name__} {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def micros_of(value: str | datetime | date) -> int:
    """``to_micros(parse_timestamp(value))``: the common texts (``Z``, ``+00:00`` or no
    offset) without the conversion to UTC, whose result they already are (perf, issue #3:
    every event of a request, every lead scored); any other value, and any error, take
    the general path (same result, same error)."""
    if value.__class__ is str:
        found = utc_micros(value.strip())  # type: ignore[union-attr]
        if found is not None:
            return found
    return to_micros(parse_timestamp(value))


def utc_micros(text: str) -> int | None:
    """``micros_of(text)`` of a text without spaces around it and with ``Z``, ``+00:00`` or
    no offset (perf, issue #3: the timestamp of nearly every event sent); None for any other
    text, which then takes :func:`micros_of` (its result or its error)."""
    try:
        moment = _fromisoformat(text)
    except ValueError:
        return None
    zone = moment.tzinfo
    if zone is UTC:
        return (moment - _EPOCH) // _ONE_US
    if zone is None:
        return (moment - _NAIVE_EPOCH) // _ONE_US
    return None


def to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (a timedelta divided by one
    microsecond is the exact integer count)."""
    return (moment - _EPOCH) // _ONE_US  # type: ignore[no-any-return]


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def iso(micros: int) -> str:
    """ISO 8601 text with ``Z`` for epoch microseconds (trailing zeros of the fraction
    dropped, no fraction for a whole second)."""
    if _YEAR_1000_US <= micros < _YEAR_10000_US:
        # the date's own ISO text, then the time of day from tables: 3x faster than
        # isoformat of a datetime (perf, issue #3: every event of an explanation, every
        # created lead), the same text
        seconds, fraction = divmod(micros, 1_000_000)
        days, seconds = divmod(seconds, 86_400)
        minutes, seconds = divmod(seconds, 60)
        text = f"{_fromordinal(_EPOCH_ORDINAL + days).isoformat()}T{_MINUTES[minutes]}{_SECONDS[seconds]}"
        return f"{text}Z" if not fraction else f"{text}{f'.{fraction:06d}'.rstrip('0')}Z"
    # past year 9999 or before year 1: datetime's OverflowError; years 1-999 with four
    # digits (0001-01-01T00:00:00Z, which parse_timestamp reads back; strftime's %Y wrote 1)
    text = (_NAIVE_EPOCH + timedelta(microseconds=micros)).isoformat()
    return (text.rstrip("0") if micros % 1_000_000 else text) + "Z"
