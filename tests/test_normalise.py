"""Record normalisation (ingest/normalise.py): timestamps, ids and values as every door reads them."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.engine.timestamps import parse_timestamp, to_micros
from leadscore.ingest.normalise import RecordError, make_attributes, make_event, timestamp_us
from leadscore.store.raw import properties_json

_offsets = st.sampled_from(["Z", "+00:00", "", "+02:00", "-05:30", "+14:00", "z", " Z", "+0000"])


@settings(max_examples=300, deadline=None)
@given(st.datetimes(), _offsets, st.sampled_from(["", " ", "\t"]), st.sampled_from(["T", " "]))
def test_timestamp_us_is_the_micros_of_parse_timestamp(moment: Any, offset: str, pad: str, sep: str) -> None:
    """The fast path for common texts gives what the general one gives, errors included."""
    text = f"{pad}{moment.isoformat(sep=sep)}{offset}{pad}"
    try:
        expected: Any = to_micros(parse_timestamp(text))
    except (ValueError, OverflowError):
        expected = RecordError
    if expected is RecordError:
        with pytest.raises(RecordError):
            timestamp_us(text)
    else:
        assert timestamp_us(text) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("", "timestamp is empty"),
    ("  ", "timestamp is empty"),
    ("yesterday", "timestamp: 'yesterday' is not an ISO 8601 timestamp"),
    ("0001-01-01T00:00:00+01:00", "timestamp: "),  # before year 1 in UTC
])
def test_bad_timestamps_are_refused_with_the_field(value: str, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        make_event({"lead_id": "L1", "type": "t", "timestamp": value})
    assert str(caught.value).startswith(message) and caught.value.column == "timestamp"


def test_properties_come_from_the_object_and_from_extra_keys() -> None:
    event = make_event({"lead_id": " L1 ", "type": " pv ", "timestamp": "2026-01-01T00:00:00Z",
                        "properties": {"url": "/a", "n": 1, "gone": None}, "extra": "e\u0301"})
    assert (event.lead_id, event.type, event.properties) == ("L1", "pv", {"url": "/a", "n": 1, "extra": "é"})


_scalars = st.one_of(st.text(), st.integers(-10**20, 10**20), st.floats(), st.booleans(), st.none())


@settings(deadline=None)
@given(st.dictionaries(st.text(), _scalars, max_size=5), st.booleans())
def test_stored_properties_are_what_json_writes(properties: dict[str, Any], read_only: bool) -> None:
    """The text the service stores for an event's properties is json's compact text, byte for
    byte (NaN, infinities, quotes, non-ASCII, floats of 1e16 and more as repr writes them:
    sql/postgres.json_text_form reads them so, and read-only mappings included)."""
    given_properties = MappingProxyType(properties) if read_only else properties
    assert properties_json(given_properties) == json.dumps(properties, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(("record", "column", "detail"), [
    ({"lead_id": "L\x00", "type": "pv"}, "lead_id", "contains a NUL character"),
    ({"lead_id": "L1", "type": "p\x00v"}, "type", "contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "event_id": "\x00"}, "event_id", "contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "properties": {"url": "/\x00"}}, "properties.url", "contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "properties": {"a": {"b": ["\x00"]}}}, "properties.a", "contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "properties": {"u\x00": 1}}, "properties",
     "the name 'u\\x00' contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "url": "/\x00"}, "url", "contains a NUL character"),
    ({"lead_id": "L1", "type": "pv", "properties": {"n": float("inf")}}, "properties.n", "is not a finite number"),
    ({"lead_id": "L1", "type": "pv", "properties": {"n": [float("-inf")]}}, "properties.n", "holds a number"),
    ({"lead_id": "", "type": "pv"}, "lead_id", "is empty"),
    ({"lead_id": "L1", "type": "pv", "properties": 5}, "properties", "must be an object, got a number"),
])
def test_a_nul_or_a_number_that_is_not_finite_is_refused_with_its_column(
    record: dict[str, Any], column: str, detail: str
) -> None:
    record = {"timestamp": "2026-01-01T00:00:00Z", **record}
    with pytest.raises(RecordError) as caught:
        make_event(record)
    assert caught.value.column == column
    assert caught.value.detail.startswith(detail)
    assert str(caught.value).startswith(column)


def test_attributes_refuse_a_nul_and_infinity_but_a_nan_from_a_flat_file_is_missing() -> None:
    assert make_attributes({"lead_id": "L1", "n": float("nan"), "m": 1.5}) == {"n": None, "m": 1.5}
    for record, column in [({"t": "a\x00"}, "t"), ({"n": float("inf")}, "n"), ({"a\x00": 1}, "attributes")]:
        with pytest.raises(RecordError) as caught:
            make_attributes(record)
        assert caught.value.column == column


def test_a_csv_cell_longer_than_pythons_default_field_limit_is_read(tmp_path: Any) -> None:
    """A 200,000-character note is data (Python's csv module refuses cells over 131,072
    characters unless told otherwise, and the message named no column)."""
    import csv

    from leadscore.ingest.files import iter_events, iter_leads

    csv.field_size_limit(131_072)  # Python's default, whatever ran before in this process
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,note\nL1," + "x" * 200_000 + "\n")
    assert [len(lead.attributes["note"]) for _, lead in iter_leads(leads)] == [200_000]
    events = tmp_path / "events.csv"
    events.write_text('lead_id,type,timestamp,body\nL1,email,2026-01-01T00:00:00Z,"' + "é" * 150_000 + '"\n')
    assert [len(event.properties["body"]) for _, event in iter_events(events)] == [150_000]
