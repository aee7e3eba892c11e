"""Reading leads and events from files, and writing scored rows, by file extension.

Formats: ``.csv`` (UTF-8, header row; an empty cell is a missing value), ``.jsonl`` /
``.ndjson`` (one JSON object per line) and ``.parquet``. Every problem is reported
as an :class:`~leadscore.errors.InputError` naming the file, the row (1-based data
row; for JSONL the line) and the column. Writers are atomic: the output file appears
complete or not at all.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

from leadscore.engine.scoring import Event, Lead
from leadscore.errors import InputError
from leadscore.ingest.normalise import (
    RecordError,
    check_event_lengths,
    check_stored_length,
    id_text,
    json_constant,
    make_attributes,
    make_event,
    unstorable,
)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
Progress = Callable[[int], None]  # called with the number of rows read so far
NO_EVENTS = "no events in the file (only a header?)"  # score, import and send refuse such a file


_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def separator_hint(columns: Sequence[str]) -> str:
    """A hint for a message about missing columns when the header is one column holding
    another separator (a spreadsheet saved in a locale whose list separator is ``;``);
    else ``""``."""
    if len(columns) != 1:
        return ""
    found = [name for mark, name in _SEPARATORS.items() if mark in columns[0]]
    if not found:
        return ""
    return (f"; the header seems to be separated by {found[0]}, and leadscore reads CSV files "
            "separated by commas: save the file as 'CSV UTF-8 (comma delimited)', or use .jsonl "
            "or .parquet")


def file_format(path: str | Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the extension, else an InputError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"unknown file type '{suffix or '(none)'}'; use .csv, .jsonl, .ndjson or .parquet",
            file=str(path),
        )
    return FORMATS[suffix]


def _first_bad_utf8_line(path: Path) -> tuple[int, int]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return 0, 0  # pragma: no cover


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8, naming the first bad line."""
    import codecs

    incremental = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                incremental.decode(chunk)
            incremental.decode(b"", final=True)
        except UnicodeDecodeError:
            line, column = _first_bad_utf8_line(path)
            raise InputError(
                f"line {line}, character {column}: the file is not UTF-8 text; "
                "save or export it as UTF-8",
                file=str(path),
            ) from None


def _open_existing(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("the file is empty (expected a header row and data)", file=str(path))


def iter_records(path: str | Path, progress: Progress | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, record)`` from any supported file; errors name file and row."""
    path = Path(path)
    fmt = file_format(path)
    _open_existing(path)
    if fmt == "csv":
        yield from _iter_csv(path, progress)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path, progress)
    else:
        yield from _iter_parquet(path, progress)


CSV_FIELD_LIMIT = 2**31 - 1  # characters in one cell (Python's csv refuses more than 131,072)


def _iter_csv(path: Path, progress: Progress | None) -> Iterator[tuple[int, dict[str, Any]]]:
    _check_utf8(path)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        # a long cell (notes, a pasted e-mail) is data, not a malformed file: Arrow's reader
        # and the JSON lines reader take it, so does this one (the service's own limits on
        # values apply to what is sent to it)
        csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("the file is empty (expected a header row)", file=str(path)) from None
        except csv.Error as exc:
            raise InputError(f"malformed header: {exc}", file=str(path), row=0) from None
        header = [h.strip() for h in header]
        if not any(header):
            raise InputError("the header row is empty", file=str(path), row=0)
        for index, name in enumerate(header):
            if not name:
                raise InputError(f"header column {index + 1} has no name", file=str(path), row=0)
            if name in header[:index]:
                raise InputError(f"column '{name}' appears twice in the header", file=str(path), row=0)
        width = len(header)
        row = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError(
                    f"malformed CSV (line {reader.line_num}): {exc}", file=str(path), row=row + 1
                ) from None
            row += 1
            if not cells:
                continue  # a blank line
            if len(cells) != width:
                raise InputError(
                    f"has {len(cells)} fields but the header has {width} (line {reader.line_num}); "
                    "check for an unquoted comma or a missing field",
                    file=str(path),
                    row=row,
                )
            yield row, {name: (cell if cell != "" else None) for name, cell in zip(header, cells, strict=True)}
            if progress is not None and row % 10_000 == 0:
                progress(row)
        if progress is not None:
            progress(row)


def _iter_jsonl(path: Path, progress: Progress | None) -> Iterator[tuple[int, dict[str, Any]]]:
    _check_utf8(path)
    with path.open("r", encoding="utf-8-sig") as handle:
        row = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_constant=json_constant)
            except json.JSONDecodeError as exc:
                # the place on this line (a line cut short: its end, not "line 2, column 1")
                at = exc.colno if exc.lineno == 1 else len(line.rstrip("\r\n")) + 1
                ended = ", where the line ends" if at > len(line.rstrip("\r\n")) else ""
                raise InputError(
                    f"not valid JSON: {exc.msg} (character {at}{ended})", file=str(path), row=line_number
                ) from None
            if not isinstance(record, dict):
                raise InputError(
                    f"expected a JSON object per line, got {type(record).__name__}",
                    file=str(path),
                    row=line_number,
                )
            if "\\ud" in line or "\\uD" in line:  # maybe half of a surrogate pair
                found = next(unstorable(record), None)
                if found is not None:
                    raise InputError(found.detail, file=str(path), row=line_number, column=found.column or None)
            row += 1
            yield line_number, record
            if progress is not None and row % 10_000 == 0:
                progress(row)
        if progress is not None:
            progress(row)


def _iter_parquet(path: Path, progress: Progress | None) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise InputError(f"not a readable Parquet file: {exc}", file=str(path)) from None
    row = 0
    for batch in parquet.iter_batches(batch_size=65_536):
        for record in batch.to_pylist():
            row += 1
            yield row, record
        if progress is not None:
            progress(row)


def read_leads(path: str | Path, progress: Progress | None = None) -> list[Lead]:
    """Read leads: a ``lead_id`` column plus attributes. Duplicate lead ids are refused."""
    return [lead for _, lead in iter_leads(path, progress)]


def iter_leads(path: str | Path, progress: Progress | None = None, *,
               stored: bool = False) -> Iterator[tuple[int, Lead]]:
    """``(row, lead)`` of a lead file, in order (:func:`read_leads`; ``leadscore send``
    keeps the rows, to name them in the service's refusals). ``stored``: for the store
    (``import``, ``send``), a lead_id longer than it holds is refused."""
    first_row: dict[str, int] = {}
    for row, record in iter_records(path, progress):
        if not first_row and "lead_id" not in record:
            columns = ", ".join(list(record)[:8])
            raise InputError(
                f"no 'lead_id' column (found: {columns}){separator_hint(list(record))}",
                file=str(path), row=row, column="lead_id",
            )
        try:
            lead_id = id_text(record.get("lead_id"), "lead_id")
            attributes = make_attributes(record)
            if stored:
                check_stored_length(lead_id, "lead_id")
        except RecordError as exc:
            raise InputError(str(exc), file=str(path), row=row, column=exc.column) from None
        assert lead_id is not None
        if lead_id in first_row:
            raise InputError(
                f"lead_id '{lead_id}' appears again (first at row {first_row[lead_id]}); "
                "each lead must appear once",
                file=str(path),
                row=row,
                column="lead_id",
            )
        first_row[lead_id] = row
        yield row, Lead(lead_id, attributes)
    if not first_row:
        raise InputError("no leads in the file (only a header?)", file=str(path))


def iter_events(path: str | Path, progress: Progress | None = None, *,
                stored: bool = False) -> Iterator[tuple[int, Event]]:
    """``(row, event)`` of an event file, in order, every row normalised (the row reader of
    :func:`read_events`; ``leadscore send`` keeps the rows, to name them in the service's
    refusals). A missing column or a bad row raises, naming file, row and column.
    ``stored``: for the store (``import``, ``send``), ids and types longer than it holds
    are refused."""
    checked_columns = False
    for row, record in iter_records(path, progress):
        if not checked_columns:
            missing = [c for c in ("lead_id", "type", "timestamp") if c not in record]
            if missing:
                raise InputError(
                    f"missing column(s) {', '.join(missing)} (events need lead_id, type, timestamp)"
                    f"{separator_hint(list(record))}",
                    file=str(path),
                    row=row,
                    column=missing[0],
                )
            checked_columns = True
        try:
            event = make_event(record)
            if stored:
                check_event_lengths(event)
        except RecordError as exc:
            raise InputError(str(exc), file=str(path), row=row, column=exc.column) from None
        yield row, event


class EventStats:
    """Counts gathered while reading events."""

    def __init__(self) -> None:
        self.rows = 0
        self.duplicates = 0
        self.unknown_lead_events = 0
        self.unknown_leads: set[str] = set()
        self.skipped_types = 0


def read_events(
    path: str | Path,
    known_leads: Mapping[str, Any] | None = None,
    *,
    keep_types: Iterable[str] | None = None,
    keep_properties: Iterable[str] | None = None,
    progress: Progress | None = None,
    derive_ids: bool = False,
) -> tuple[dict[str, list[Event]], EventStats]:
    """Read events grouped by lead in file order; duplicate ``event_id``s dropped (first wins).

    ``keep_types``/``keep_properties``, when given, keep only what a model can look at
    (every row is still validated and counted). Events of leads not in ``known_leads``
    are counted in the stats and dropped. ``derive_ids`` (for storing: ``import``): a row
    without an ``event_id`` gets the one :mod:`leadscore.ingest.ids` derives from what it
    says, and ids or types longer than the store holds are refused (not with the filters,
    whose dropped rows would change the counts of identical rows).
    """
    from leadscore.ingest.columnar import read_events_fast
    from leadscore.ingest.ids import IdDeriver

    if derive_ids and (known_leads is not None or keep_types is not None or keep_properties is not None):
        raise ValueError("derive_ids reads every row as it is: no known_leads, keep_types or keep_properties")
    fast_stats = EventStats()
    fast = read_events_fast(Path(path), known_leads, keep_types, keep_properties, fast_stats, progress,
                            derive_ids=derive_ids)
    if fast is not None and fast_stats.rows:
        return fast, fast_stats
    stats = EventStats()
    by_lead: dict[str, list[Event]] = {}
    seen_ids: set[str] = set()
    types = set(keep_types) if keep_types is not None else None
    props = set(keep_properties) if keep_properties is not None else None
    derive = IdDeriver() if derive_ids else None
    for _, event in iter_events(path, progress, stored=derive_ids):
        stats.rows += 1
        if derive is not None:
            event = derive(event)
        if event.event_id is not None:
            if event.event_id in seen_ids:
                stats.duplicates += 1
                continue
            seen_ids.add(event.event_id)
        if known_leads is not None and event.lead_id not in known_leads:
            stats.unknown_lead_events += 1
            stats.unknown_leads.add(event.lead_id)
            continue
        if types is not None and event.type not in types:
            stats.skipped_types += 1
            continue
        if props is not None:
            event = Event(
                event.lead_id,
                event.type,
                event.ts,
                {k: v for k, v in event.properties.items() if k in props},
                event.event_id,
            )
        by_lead.setdefault(event.lead_id, []).append(event)
    if stats.rows == 0:
        raise InputError(NO_EVENTS, file=str(path))
    return by_lead, stats


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place only on success."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise InputError("the output folder does not exist", file=str(directory))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV/formula injection): text that
    starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``,
    except a plain number such as ``-3.5`` (a value, not a formula)."""
    if text and text[0] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_row(values: Iterable[Any]) -> list[Any]:
    """``values`` with every text cell passed through :func:`safe_cell` (numbers as they are)."""
    return [safe_cell(v) if isinstance(v, str) else v for v in values]


class CsvWriter:
    """``csv.writer`` with ``\\n`` line ends that never breaks a row: a cell holding a
    carriage return is quoted too (the csv module quotes only the line terminator's
    characters), and every text cell goes through :func:`safe_cell`."""

    def __init__(self, handle: TextIO) -> None:
        self._plain = csv.writer(handle, lineterminator="\n")
        self._quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, values: Iterable[Any]) -> None:
        row = safe_row(values)
        if any(isinstance(v, str) and "\r" in v for v in row):
            self._quoted.writerow(row)
        else:
            self._plain.writerow(row)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dict, list)):
        return safe_cell(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return safe_cell(str(value))


def write_csv(handle: TextIO, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as CSV (floats with 2 decimals, None empty, JSON for nested values; text
    that a spreadsheet would run as a formula is neutralised: :func:`safe_cell`)."""
    writer = CsvWriter(handle)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])


def write_rows(
    path: str | Path,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    types: Mapping[str, str] | None = None,
) -> None:
    """Write rows to ``path`` by extension, atomically. ``types`` maps columns to
    ``float``/``str``/``json`` so that Parquet gets proper column types."""
    fmt = file_format(path)
    types = types or {}
    with atomic_path(path) as tmp:
        if fmt == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                write_csv(handle, columns, rows)
        elif fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
                    handle.write("\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow_types = {"float": pa.float64(), "str": pa.string(), "json": pa.string(), "int": pa.int64()}
            arrays = []
            for column in columns:
                kind = types.get(column, "str")
                values = [row.get(column) for row in rows]
                if kind == "json":
                    values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
                arrays.append(pa.array(values, type=arrow_types[kind]))
            pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), tmp)
