"""The fast paths of reading events (issue #3) give what the general paths give: the same
events (ids, types, timestamps, properties), the same timestamp texts, the same errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from leadscore.engine import timestamps
from leadscore.engine.timestamps import (
    from_micros,
    iso,
    micros_of,
    parse_timestamp,
    to_micros,
    utc_micros,
)
from leadscore.ingest.normalise import RecordError, make_event, plain_event

_NOW = 1_790_000_000_123_456


def _general(record: Any, default_ts: int | None) -> Any:
    try:
        return make_event(record, default_ts=default_ts)
    except RecordError as exc:
        return ("error", str(exc), exc.column)


def _same(record: Any, default_ts: int | None = _NOW) -> None:
    """plain_event gives make_event's event, or None (and make_event then decides)."""
    expected = _general(record, default_ts)
    fast = plain_event(record, default_ts)
    if fast is not None:
        assert fast == expected
        assert list(fast.properties.items()) == list(expected.properties.items())  # order too
        assert [type(v) for v in fast.properties.values()] == [type(v) for v in expected.properties.values()]


_ids = st.one_of(st.text(max_size=6), st.sampled_from(["L1", " L1 ", "", "  ", "e\u0301", "\u00e9", "L\t"]),
                 st.integers(-5, 10**20), st.floats(allow_nan=True), st.none(), st.booleans())
_stamps = st.one_of(
    st.none(), st.just(""), st.just(" "), st.integers(),
    st.builds(lambda m, o, p: f"{p}{m.isoformat()}{o}{p}", st.datetimes(),
              st.sampled_from(["Z", "+00:00", "", "+02:00", "-05:30", "z"]), st.sampled_from(["", " "])),
    st.text(max_size=25),
)
_values = st.one_of(st.text(max_size=5), st.sampled_from(["e\u0301", "\u00e9", "x"]), st.integers(-10**30, 10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
_names = st.one_of(st.text(max_size=4), st.sampled_from(["url", "e\u0301", "\u00e9", " url"]))
_records = st.fixed_dictionaries(
    {"lead_id": _ids, "type": st.one_of(st.text(max_size=5), st.sampled_from(["pv", " pv ", "", "t\u0301"]),
                                        st.integers(), st.none())},
    optional={"timestamp": _stamps, "event_id": _ids,
              "properties": st.one_of(st.none(), st.dictionaries(_names, _values, max_size=4),
                                      st.just('{"a": 1}'), st.lists(st.integers(), max_size=1)),
              "extra": _values},
)


@settings(max_examples=600, deadline=None)
@given(_records, st.sampled_from([_NOW, None]))
@example({"lead_id": "L1", "type": "pv", "timestamp": "2026-10-30T13:47:27Z", "event_id": "E1",
          "properties": {"url": "/a", "n": 1, "f": 1.5, "big": 10**40, "b": True, "gone": None,
                         "nan": math.nan, "inf": math.inf}}, _NOW)
def test_plain_event_is_make_event(record: dict[str, Any], default_ts: int | None) -> None:
    _same(record, default_ts)


@pytest.mark.parametrize("record", [
    {"lead_id": "L1", "type": "pv", "timestamp": "2026-10-30T13:47:27Z", "event_id": "E1",
     "properties": {"url": "/a", "seconds": 50}},
    {"lead_id": " L1 ", "type": " pv ", "timestamp": "2026-10-30T13:47:27.5+00:00", "event_id": "  "},
    {"lead_id": "L1", "type": "pv", "timestamp": "2026-10-30T13:47:27", "properties": None},
    {"lead_id": "L1", "type": "pv", "timestamp": ""},
    {"lead_id": "L1", "type": "pv"},
    {"lead_id": "L1", "type": "pv", "timestamp": "9999-12-31T23:59:59.999999Z"},
    {"lead_id": "L1", "type": "pv", "timestamp": "0001-01-01T00:00:00Z"},
])
def test_the_common_records_take_the_fast_path(record: dict[str, Any]) -> None:
    assert plain_event(record, _NOW) is not None
    _same(record)


@pytest.mark.parametrize("record", [
    {"lead_id": "L\u00e9", "type": "pv"},  # non-ASCII: NFC by the general path
    {"lead_id": "L1", "type": "t\u0301"},
    {"lead_id": "L1", "type": "pv", "properties": {"e\u0301": 1}},
    {"lead_id": "L1", "type": "pv", "properties": {"u": "e\u0301"}},
    {"lead_id": "L1", "type": "pv", "properties": {"u": [1, 2]}},
    {"lead_id": "L1", "type": "pv", "properties": '{"u": 1}'},
    {"lead_id": "L1", "type": "pv", "extra": 1},
    {"lead_id": 12, "type": "pv"},
    {"lead_id": "L1", "type": "pv", "event_id": 7},
    {"lead_id": "", "type": "pv"},
    {"lead_id": "L1", "type": "  "},
    {"lead_id": "L1", "type": "pv", "timestamp": " 2026-10-30T13:47:27Z"},
    {"lead_id": "L1", "type": "pv", "timestamp": "2026-10-30T13:47:27+02:00"},
    {"lead_id": "L1", "type": "pv", "timestamp": "yesterday"},
    {"lead_id": "L1", "type": "pv", "timestamp": 1},
    # a NUL character or a number that is not finite: refused by the general path
    {"lead_id": "L\x00", "type": "pv"},
    {"lead_id": "L1", "type": "p\x00v"},
    {"lead_id": "L1", "type": "pv", "event_id": "E\x00"},
    {"lead_id": "L1", "type": "pv", "properties": {"u": "a\x00"}},
    {"lead_id": "L1", "type": "pv", "properties": {"u\x00": 1}},
    {"lead_id": "L1", "type": "pv", "properties": {"n": math.inf}},
    {"lead_id": "L1", "type": "pv", "properties": {"n": -math.inf}},
    {"lead_id": "L1", "type": "pv", "properties": {"n": math.nan}},
])
def test_other_records_take_the_general_path(record: dict[str, Any]) -> None:
    assert plain_event(record, _NOW) is None
    assert plain_event({"lead_id": "L1", "type": "pv"}, None) is None  # no default moment


@settings(max_examples=500, deadline=None)
@given(st.datetimes(), st.sampled_from(["Z", "+00:00", "", "+02:00", "z", " "]))
def test_utc_micros_is_micros_of(moment: datetime, offset: str) -> None:
    text = moment.isoformat() + offset
    found = utc_micros(text)
    if found is not None:
        assert found == micros_of(text) == to_micros(parse_timestamp(text))


def _old_iso(micros: int) -> str:
    """iso before its fast path (the isoformat of a datetime)."""
    text = (datetime(1970, 1, 1) + timedelta(microseconds=micros)).isoformat()
    return (text.rstrip("0") if micros % 1_000_000 else text) + "Z"


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.integers(timestamps._YEAR_1000_US, timestamps._YEAR_10000_US - 1),
                 st.integers(-10**11, 10**11).map(lambda s: s * 1_000_000),
                 st.integers(-10**14, 10**14).map(lambda s: s * 1_000)))
@example(timestamps._YEAR_1000_US)
@example(timestamps._YEAR_10000_US - 1)
@example(0)
@example(-1)
def test_iso_is_the_text_of_isoformat(micros: int) -> None:
    try:
        moment = from_micros(micros)
    except (ValueError, OverflowError):
        with pytest.raises((ValueError, OverflowError)):
            iso(micros)
        return
    if micros >= timestamps._YEAR_1000_US:
        assert iso(micros) == _old_iso(micros)
    assert to_micros(moment) == micros
    assert iso(micros) == f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else "") + "Z"
    assert micros_of(iso(micros)) == micros  # read back, years 1-999 included


def test_iso_out_of_range_is_refused_as_before() -> None:
    with pytest.raises(OverflowError):
        iso(timestamps._YEAR_10000_US)
    assert to_micros(datetime(1, 1, 1, tzinfo=UTC)) == -62_135_596_800_000_000


_CELL = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["L1", 'L"2', "L\\3", "L 4"]), st.sampled_from(["view", "a,b"]),
                          st.integers(0, 3), _CELL, _CELL), min_size=1, max_size=12),
       st.sampled_from([1_000_000, 1, 3]))
def test_the_column_path_derives_the_ids_send_derives(rows: list[tuple[str, str, int, str, str]],
                                                       slice_rows: int) -> None:
    """Event ids of id-less rows, derived column-wise by `import`'s Arrow path (in slices of
    ``slice_rows``), are those `send` derives row by row (quotes, backslashes, commas, empty
    cells, repeated rows)."""
    from unittest import mock

    from leadscore.ingest import columnar

    with mock.patch.object(columnar, "DERIVE_ROWS", slice_rows):
        _column_ids_are_sends(rows)


def _column_ids_are_sends(rows: list[tuple[str, str, int, str, str]]) -> None:
    import csv
    import tempfile
    from pathlib import Path

    from leadscore.client.send import event_rows, scan_events
    from leadscore.ingest.columnar import read_event_columns

    assume(any(row[3] for row in rows) and any(row[4] for row in rows))  # an empty column: the row reader
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["lead_id", "type", "timestamp", "zeta", "alpha"])  # not in sorted order
            for lead, kind, day, zeta, alpha in rows:
                writer.writerow([lead, kind, f"2026-01-0{day + 1}T00:00:00Z", zeta, alpha])
        columns = read_event_columns(path)
        expected = [row.body["event_id"] for row in event_rows(path, scan_events(path).repeated)]
        assert columns is not None and columns.event_id.to_pylist() == expected


def test_a_given_id_equal_to_a_derived_one_is_a_copy_on_every_path(tmp_path: Any) -> None:
    """The first copy of an id wins in file order, whether it was given or derived."""
    from leadscore.client.send import event_rows
    from leadscore.ingest.columnar import read_event_columns
    from leadscore.ingest.files import read_events

    probe = tmp_path / "probe.csv"
    probe.write_text("event_id,lead_id,type,timestamp\n,L2,pv,2026-01-01T00:00:00Z\n")
    (derived,) = [row.body["event_id"] for row in event_rows(probe)]
    path = tmp_path / "events.csv"
    path.write_text("event_id,lead_id,type,timestamp\n,L2,pv,2026-01-01T00:00:00Z\n"
                    f"{derived},L1,form,2026-01-02T00:00:00Z\n")
    columns = read_event_columns(path)
    assert columns is not None and columns.rows == 2
    assert (columns.event_id.to_pylist(), columns.lead_id.to_pylist()) == ([derived], ["L2"])
    lines = tmp_path / "events.jsonl"  # the row reader
    lines.write_text('{"lead_id": "L2", "type": "pv", "timestamp": "2026-01-01T00:00:00Z"}\n'
                     f'{{"event_id": "{derived}", "lead_id": "L1", "type": "form", "timestamp": "2026-01-02T00:00:00Z"}}\n')
    for source in (path, lines):  # Arrow's table path, the row reader
        by_lead, stats = read_events(source, derive_ids=True)
        assert ({k: [e.event_id for e in v] for k, v in by_lead.items()}, stats.duplicates) == (
            {"L2": [derived]}, 1), source
