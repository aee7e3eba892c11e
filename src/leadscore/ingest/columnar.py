"""A fast path for large event files: Arrow reads the columns, Python builds only the
events a model can look at.

Same meaning as the row reader in :mod:`leadscore.ingest.files` (which stays the
reference, and which this module falls back to whenever Arrow refuses the file, so that
every error still names the file, row and column).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.engine.scoring import Event
from leadscore.ingest.ids import DERIVED_PREFIX, IdDeriver
from leadscore.ingest.normalise import ID_LENGTH, RecordError, clean_value, nfc

_OFFSET = r"(Z|z|[+-]\d\d(:?\d\d)?)$"


def _read_csv_table(path: Path) -> pa.Table | None:
    """All columns as text (empty cell = null); None when Arrow refuses the file."""
    import pyarrow.csv as pacsv

    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        try:
            header = [h.strip() for h in next(csv.reader(handle))]
        except (StopIteration, csv.Error, UnicodeDecodeError):
            return None
    if len(set(header)) != len(header) or not all(header):
        return None
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None


def _timestamps(column: pa.ChunkedArray) -> np.ndarray | None:
    """Epoch microseconds of a text or timestamp column; None when any value needs the
    careful per-row parser (unusual formats, or an error to report)."""
    if column.null_count:
        return None
    if pa.types.is_timestamp(column.type):
        if column.type.unit == "ns":  # floored to the microsecond, as the row reader and send do
            return np.asarray(column.cast(pa.int64())) // 1000
        aware = column.type.tz is not None
        target = pa.timestamp("us", "UTC") if aware else pa.timestamp("us")
        return np.asarray(pc.cast(column, target).cast(pa.int64()))
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return None
    column = column.combine_chunks()
    with_offset = np.asarray(pc.match_substring_regex(column, _OFFSET))
    out = np.empty(len(column), dtype=np.int64)
    try:
        if with_offset.any():
            part = pc.cast(pc.filter(column, with_offset), pa.timestamp("us", "UTC"))
            out[with_offset] = np.asarray(part.cast(pa.int64()))
        naive = ~with_offset
        if naive.any():
            part = pc.cast(pc.filter(column, naive), pa.timestamp("us"))
            out[naive] = np.asarray(part.cast(pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return out


def _clean_ids(ids: Any) -> bool:
    """Event ids the columnar path takes as they are: text, and every id given is clean
    (:func:`_clean_text`; anything else goes to the row reader, which cleans or rejects it
    row by row). A missing id is fine."""
    return pa.types.is_string(ids.type) and _clean_text(ids, missing=True)


def _clean_text(column: Any, *, missing: bool = False) -> bool:
    """True when every value is non-empty ASCII text without outer white space or NUL: the
    common case, where the row reader's normalisation (strip, NFC) changes nothing.
    Missing values (nulls) are refused unless ``missing``."""
    if (column.null_count and not missing) or not (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    if not pc.all(pc.string_is_ascii(column)).as_py() or pc.any(pc.match_substring(column, "\x00")).as_py():
        return False
    trimmed = pc.utf8_trim_whitespace(column)
    return bool(pc.all(pc.equal(trimmed, column)).as_py()) and bool(
        pc.all(pc.greater(pc.utf8_length(column), 0)).as_py()
    )


def _too_long(table: pa.Table, names: list[str]) -> bool:
    """Whether a lead_id, type or event_id is longer than the store holds."""
    for name in ("lead_id", "type", "event_id"):
        if name in names:
            longest = pc.max(pc.utf8_length(table.column(name))).as_py()
            if longest is not None and longest > ID_LENGTH:
                return True
    return False


def _first_occurrences(event_ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True for rows whose event_id is missing or seen for the first time (file order)."""
    ids = event_ids.combine_chunks() if isinstance(event_ids, pa.ChunkedArray) else event_ids
    # pc.unique, not pc.count_distinct: 8x faster on 2M ids (measured, pyarrow 2026-12)
    if len(pc.unique(ids)) == len(ids) - ids.null_count + (1 if ids.null_count else 0):
        return np.ones(len(ids), dtype=bool)  # no duplicates: the common case
    codes = ids.dictionary_encode().indices  # null ids: null codes
    valid = np.asarray(codes.is_valid())
    keep = ~valid
    first = np.unique(np.asarray(codes.fill_null(0))[valid], return_index=True)[1]
    keep[np.flatnonzero(valid)[first]] = True
    return keep


def read_events_table(
    table: pa.Table,
    path: str,
    known_leads: Mapping[str, Any] | None,
    keep_types: Iterable[str] | None,
    keep_properties: Iterable[str] | None,
    stats: Any,
    derive_ids: bool = False,
) -> dict[str, list[Event]] | None:
    """Build events grouped by lead from a flat table; None when the row reader must decide
    (a value to refuse, or a form this path does not handle): it then names the row.
    ``derive_ids``: as :func:`leadscore.ingest.files.read_events` (no filters then)."""
    names = table.column_names
    if "properties" in names or any(c not in names for c in ("lead_id", "type", "timestamp")):
        return None
    has_ids = "event_id" in names
    if not _clean_text(table.column("lead_id")) or not _clean_text(table.column("type")):
        return None
    if has_ids:
        ids = table.column("event_id")
        if not _clean_ids(ids):
            return None
    ts = _timestamps(table.column("timestamp"))
    if ts is None:
        return None
    if derive_ids and _too_long(table, names):
        return None  # the row reader names the row
    rows = table.num_rows
    first = _first_occurrences(table.column("event_id")) if has_ids else np.ones(rows, dtype=bool)
    keep = first.copy()
    stats.rows += rows
    stats.duplicates += int(rows - first.sum())
    if known_leads is not None:
        known = np.asarray(pc.is_in(table.column("lead_id"), value_set=pa.array(list(known_leads), pa.string())))
        unknown = first & ~known
        stats.unknown_lead_events += int(unknown.sum())
        stats.unknown_leads.update(pc.unique(pc.filter(table.column("lead_id"), unknown)).to_pylist())
        keep &= known
    if keep_types is not None:
        wanted = np.asarray(pc.is_in(table.column("type"), value_set=pa.array(sorted(set(keep_types)), pa.string())))
        stats.skipped_types += int((keep & ~wanted).sum())
        keep &= wanted
    kept = table.filter(pa.array(keep))
    lead_ids = kept.column("lead_id").to_pylist()
    kinds = kept.column("type").to_pylist()
    event_ids = kept.column("event_id").to_pylist() if has_ids else [None] * kept.num_rows
    times = ts[keep].tolist()
    props = [p for p in names if p not in ("lead_id", "type", "timestamp", "event_id")]
    if any("\x00" in p or nfc(p) != p for p in props):
        return None  # the row reader names the column, or writes the name in NFC
    if keep_properties is not None:
        wanted_props = set(keep_properties)
        props = [p for p in props if p in wanted_props]
    # properties column by column, touching only the cells that hold a value
    properties_of: list[dict[str, Any]] = [{} for _ in range(kept.num_rows)]
    for name in props:
        column = kept.column(name)
        valid = column.is_valid()
        present = np.flatnonzero(np.asarray(valid))
        values = pc.filter(column, valid).to_pylist()
        plain = pa.types.is_string(column.type) and pc.all(pc.string_is_ascii(column)).as_py() is not False
        if plain and pc.any(pc.match_substring(column, "\x00")).as_py():
            return None  # the row reader names the row of the text with a NUL
        for index, value in zip(present.tolist(), values, strict=True):
            if not plain:  # numbers, NaN, nested or non-ASCII text: normalise like the row reader
                try:
                    value = clean_value(value, name)
                except RecordError:
                    return None  # the row reader names the row
                if value is None:
                    continue
            properties_of[index][name] = value
    by_lead: dict[str, list[Event]] = {}
    derive = IdDeriver() if derive_ids else None
    seen: set[str] = set()  # with derive: every id so far (a given id may equal a derived one)
    for lead_id, kind, ts_us, event_id, properties in zip(
        lead_ids, kinds, times, event_ids, properties_of, strict=True
    ):
        event = Event(lead_id, kind, ts_us, properties, event_id)
        if derive is not None:
            if event_id is None:
                event = derive(event)
            if event.event_id in seen:
                stats.duplicates += 1
                continue
            seen.add(event.event_id)  # type: ignore[arg-type]
        bucket = by_lead.get(lead_id)
        if bucket is None:
            by_lead[lead_id] = [event]
        else:
            bucket.append(event)
    return by_lead


def read_events_fast(
    path: Path,
    known_leads: Mapping[str, Any] | None,
    keep_types: Iterable[str] | None,
    keep_properties: Iterable[str] | None,
    stats: Any,
    progress: Callable[[int], None] | None = None,
    *,
    derive_ids: bool = False,
) -> dict[str, list[Event]] | None:
    """Read a CSV or Parquet event file column-wise; None to fall back to the row reader."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _read_csv_table(path)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception:  # noqa: BLE001 - the row reader reports the problem
            return None
    else:
        return None
    if table is None or table.num_rows == 0:
        return None
    result = read_events_table(table, str(path), known_leads, keep_types, keep_properties, stats, derive_ids)
    if result is not None and progress is not None:
        progress(table.num_rows)
    return result


_CONTROL = r"[\x00-\x1f]"
DERIVE_ROWS = 1_000_000  # rows whose canonical texts are built at once (_derived_ids)
_PLAIN_NAME = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]+')


@dataclass
class EventColumns:
    """An event file as columns, for bulk loading (``leadscore import``): the first copy of
    each event_id (a row without one gets the id :mod:`leadscore.ingest.ids` derives), in
    file order, with each row's properties already as JSON text (what
    :func:`leadscore.store.raw.properties_json` gives for the row reader's properties)."""

    lead_id: pa.Array  # text
    type: pa.Array  # text
    ts: np.ndarray  # epoch microseconds
    event_id: pa.Array  # text or null
    properties: pa.Array  # JSON text of an object
    rows: int  # data rows read, duplicates included


class LateRow(Exception):
    """A row of an event file stamped after the latest moment the reader was given
    (:func:`read_event_columns`' ``latest_us``): the first such row's ``index`` among the
    file's records (0: the first data row; Arrow skips blank lines, the row reader numbers
    them) and its timestamp, for the caller to word and to name the file's row."""

    def __init__(self, index: int, ts_us: int) -> None:
        super().__init__(index, ts_us)
        self.index, self.ts_us = index, ts_us


def read_event_columns(path: Path, *, latest_us: int | None = None) -> EventColumns | None:
    """A CSV event file as :class:`EventColumns`, when its values need no normalisation
    (ASCII text without outer white space or control characters, timestamps Arrow
    parses); None otherwise: the caller then uses :func:`leadscore.ingest.read_events`,
    which normalises every value and names the row of any error. ``latest_us``: a row
    stamped after it (any row, a repeated event_id's included) raises :class:`LateRow`,
    once every value is known to be one this path takes (a value the row reader would
    refuse in an earlier row is its error)."""
    if path.suffix.lower() != ".csv":
        return None
    table = _read_csv_table(path)
    if table is None or table.num_rows == 0:
        return None
    names = table.column_names
    if "properties" in names or any(c not in names for c in ("lead_id", "type", "timestamp")):
        return None
    props = [p for p in names if p not in ("lead_id", "type", "timestamp", "event_id")]
    if not all(_PLAIN_NAME.fullmatch(p) for p in props):
        return None
    if not _clean_text(table.column("lead_id")) or not _clean_text(table.column("type")):
        return None
    if _too_long(table, names):
        return None  # the row reader names the row
    rows = table.num_rows
    if "event_id" in names:
        ids = table.column("event_id")
        if not _clean_ids(ids):
            return None
    ts = _timestamps(table.column("timestamp"))
    if ts is None:
        return None
    members = {}  # ',"name":"value"' or null, per property column
    for name in props:
        column = table.column(name).combine_chunks()
        if not pa.types.is_string(column.type) or not pc.all(pc.string_is_ascii(column)).as_py():
            return None
        if column.null_count == len(column):
            continue
        members[name] = pc.binary_join_element_wise(f',"{name}":"', _escaped(column), '"', "")
    properties = _object_text(list(members.values()), rows)
    if not pc.all(pc.ascii_is_printable(properties)).as_py() and pc.any(
            pc.match_substring_regex(properties, _CONTROL)).as_py():
        return None  # the row reader's JSON escapes control characters
    event_id = (table.column("event_id").combine_chunks() if "event_id" in names
                else pa.nulls(rows, pa.string()))
    if event_id.null_count:
        derived = _derived_ids(table, ts, event_id, [members[name] for name in sorted(members)])
        if derived is None:
            return None
        event_id = derived
    if latest_us is not None and int(ts.max()) > latest_us:  # one pass over the column
        index = int(np.argmax(ts > latest_us))  # the first late row (only on the way to an error)
        raise LateRow(index, int(ts[index]))
    # the first copy of each id wins, derived ids included (a given id may be one of them)
    first = _first_occurrences(event_id) if "event_id" in names else np.ones(rows, dtype=bool)
    keep = pa.array(first)
    table = table.select(["lead_id", "type"]).filter(keep)
    return EventColumns(
        table.column("lead_id").combine_chunks(), table.column("type").combine_chunks(), ts[first],
        event_id.filter(keep), pc.filter(properties, keep), rows,
    )


def _object_text(members: list[pa.Array], rows: int) -> pa.Array:
    """JSON objects of ``members`` (``,"name":"value"`` or null, per row)."""
    if not members:
        return pa.repeat(pa.scalar("{}", pa.string()), rows)
    # the members joined (a missing value adds nothing: the separator is empty), without the
    # first one's comma, in braces
    text = pc.binary_join_element_wise(*members, "", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(text, 1), "}", "")


def _escaped(column: pa.Array) -> pa.Array:
    """ASCII text with JSON's escapes of a backslash and a quote (the inside of a JSON string)."""
    if pc.any(pc.match_substring(column, "\\")).as_py():
        column = pc.replace_substring(column, "\\", "\\\\")
    if pc.any(pc.match_substring(column, '"')).as_py():
        column = pc.replace_substring(column, '"', '\\"')
    return column


def _json_text(column: pa.Array) -> pa.Array | None:
    """JSON strings of clean ASCII text (None when one holds a control character: the row
    reader handles those)."""
    if pc.any(pc.match_substring_regex(column, _CONTROL)).as_py():
        return None
    return pc.binary_join_element_wise('"', _escaped(column), '"', "")


def _derived_ids(table: pa.Table, ts: np.ndarray, event_id: pa.Array, sorted_members: list[pa.Array]) -> pa.Array | None:
    """``event_id`` with its missing ids derived (:mod:`leadscore.ingest.ids`) from each row's
    canonical text, built column-wise as :func:`leadscore.ingest.ids.content_text` builds it
    (property names sorted), ``DERIVE_ROWS`` rows at a time (an Arrow text array holds at
    most 2 GiB); None when the row reader must do it."""
    blake2b = hashlib.blake2b
    parts: list[bytes] = []
    for start in range(0, len(event_id), DERIVE_ROWS):
        length = min(DERIVE_ROWS, len(event_id) - start)
        missing = event_id.slice(start, length).is_null()
        lead = _json_text(pc.filter(table.column("lead_id").slice(start, length).combine_chunks(), missing))
        kind = _json_text(pc.filter(table.column("type").slice(start, length).combine_chunks(), missing))
        if lead is None or kind is None:
            return None
        stamps = pa.array(ts[start:start + length][np.asarray(missing)]).cast(pa.string())
        properties = pc.filter(_object_text([m.slice(start, length) for m in sorted_members], length), missing)
        texts = pc.binary_join_element_wise("[", lead, ",", kind, ",", stamps, ",", properties, "]", "")
        parts.append(b"".join([blake2b(text, digest_size=16).digest()
                               for text in texts.cast(pa.binary()).to_pylist()]))
    digests = b"".join(parts)
    hexes = digests.hex()
    ids = [hexes[start:start + 32] for start in range(0, len(hexes), 32)]
    # identical rows: the second, third, ... get :2, :3, ... (found by sorting 8 bytes of
    # each digest; only the rows whose 8 bytes repeat are counted, by their 16)
    keys = np.frombuffer(digests, dtype=np.uint64)[::2]
    ordered = np.sort(keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        occurrences: dict[bytes, int] = {}
        for index in np.flatnonzero(np.isin(keys, repeated)).tolist():
            key = digests[16 * index:16 * index + 16]
            occurrence = occurrences[key] = occurrences.get(key, 0) + 1
            if occurrence > 1:
                ids[index] = f"{ids[index]}:{occurrence}"
    prefixed = pc.binary_join_element_wise(DERIVED_PREFIX, pa.array(ids, pa.string()), "")
    return pc.replace_with_mask(event_id, event_id.is_null(), prefixed)


__all__ = ["EventColumns", "LateRow", "read_event_columns", "read_events_fast", "read_events_table"]
