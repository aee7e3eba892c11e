"""Scores from a set-based engine, rounded and written exactly as the python engine writes them.

The SQL engines return exact doubles; rounding happens here, in Python, the way
:func:`leadscore.engine.round_score` does it (2 decimals, halves away from zero, on the
exact binary value), but for whole columns at once. Output files are byte-identical to
the python engine's (:func:`leadscore.ingest.files.write_rows`).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.engine.scoring import round_score
from leadscore.ingest.files import CsvWriter, atomic_path, file_format

FloatArray = npt.NDArray[np.float64]


def round_scores(values: FloatArray) -> FloatArray:
    """``round_score`` of every value: exact, vectorised.

    ``x * 100`` is rounded once in floating point; only values whose scaled fraction lies
    within 1e-6 of one half could round the other way on the exact binary value, and
    those few go through :class:`~decimal.Decimal` like the python engine.
    """
    values = np.asarray(values, dtype=np.float64)
    scaled = values * 100.0
    magnitude = np.abs(scaled)
    cents = np.floor(magnitude + 0.5)
    fraction = magnitude - np.floor(magnitude)
    unsure = (np.abs(fraction - 0.5) < 1e-6) | (magnitude >= 2.0**30) | ~np.isfinite(values)
    out = np.copysign(cents, values) / 100.0
    # Decimal(-0.001) rounds to -0.00: keep the sign of the original value
    out = np.where(out == 0, np.copysign(0.0, values), out)
    for index in np.flatnonzero(unsure):
        out[index] = round_score(float(values[index]))
    return out


def format_2dp(rounded: FloatArray) -> pa.Array:
    """``f"{value:.2f}"`` for values already rounded to 2 decimals (``-0.00`` included)."""
    cents = np.rint(np.abs(rounded) * 100.0).astype(np.int64)
    units = pa.array(cents // 100).cast(pa.string())
    hundredths = pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), width=2, padding="0")
    signs = pa.array(np.where(np.signbit(rounded), "-", ""))
    return pc.binary_join_element_wise(signs, units, ".", hundredths, "")


@dataclass
class ScoredTable:
    """Rounded results in leads order: ``lead_id``, ``score``, ``stage``, ``score_<g>``, ``grade_<g>``."""

    table: pa.Table
    float_columns: tuple[str, ...]
    stats: dict[str, int] = field(default_factory=dict)
    # writes the CSV of the output columns to a path itself (an engine that can: DuckDB)
    csv_file: Callable[[Path], None] | None = None

    @classmethod
    def from_exact(cls, table: pa.Table, columns: Sequence[str], float_columns: Sequence[str]) -> ScoredTable:
        arrays = []
        for name in columns:
            column = table.column(name)
            if name in float_columns:
                exact = column.to_numpy(zero_copy_only=False).astype(np.float64)
                arrays.append(pa.array(round_scores(exact), type=pa.float64()))
            else:
                arrays.append(column.cast(pa.string()))
        return cls(pa.Table.from_arrays(arrays, names=list(columns)), tuple(float_columns))

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()


_NEEDS_QUOTES = '[,"\\r\\n]'
_FORMULA_START = "^[=+\\-@\\t\\r]"  # rows that may need safe_cell (see ingest.files.safe_cell)
SPECIAL_CELL = f"{_NEEDS_QUOTES}|{_FORMULA_START}"  # a text cell matching it needs quoting or formula neutralising


def _special(text: pa.Array, *, few: bool) -> npt.NDArray[np.bool_]:
    """Rows whose cell needs quoting or formula neutralising. A column of ``few`` distinct
    values (stages, grades: names from the model) is tested once per value."""
    if few:
        encoded = pc.dictionary_encode(text)
        marks = pc.match_substring_regex(encoded.dictionary, SPECIAL_CELL)
        if not pc.any(marks).as_py():
            return np.zeros(len(text), dtype=bool)
        return np.asarray(marks.to_numpy(zero_copy_only=False))[np.asarray(encoded.indices)]
    return np.asarray(pc.match_substring_regex(text, SPECIAL_CELL).to_numpy(zero_copy_only=False))


def _joined_lines(lines: pa.Array) -> str:
    """Every line followed by a newline, as one text: the values buffer of the Arrow
    array itself (no Python string per row)."""
    if len(lines) == 0:
        return ""
    newline = pa.scalar("\n", pa.large_string())
    ended = pc.binary_join_element_wise(lines.cast(pa.large_string()), newline, pa.scalar("", pa.large_string()))
    offsets = np.frombuffer(ended.buffers()[1], dtype=np.int64)[ended.offset: ended.offset + len(ended) + 1]
    data = ended.buffers()[2]
    return memoryview(data)[int(offsets[0]): int(offsets[-1])].tobytes().decode("utf-8")


def _csv_text(scored: ScoredTable, columns: Sequence[str]) -> str:
    """The CSV the python engine's ``write_csv`` writes, built column-wise."""
    cells: list[pa.Array] = []
    special = np.zeros(scored.table.num_rows, dtype=bool)
    for name in columns:
        column = scored.table.column(name).combine_chunks()
        if name in scored.float_columns:
            cells.append(format_2dp(column.to_numpy(zero_copy_only=False)))
        else:
            text = pc.fill_null(column, "")
            special |= _special(text, few=name.startswith(("stage", "grade_")))
            cells.append(text)
    lines = pc.binary_join_element_wise(*cells, ",")
    buffer = io.StringIO()
    writer = CsvWriter(buffer)  # quotes and neutralises formula cells like write_csv
    writer.writerow(columns)
    if not special.any():
        return buffer.getvalue() + _joined_lines(lines)
    texts = lines.to_pylist()
    rows = scored.table.select(list(columns)).to_pylist()
    for index, line in enumerate(texts):
        if special[index]:
            row = rows[index]
            writer.writerow([
                "" if row[c] is None else f"{row[c]:.2f}" if c in scored.float_columns else row[c]
                for c in columns
            ])
        else:
            buffer.write(line + "\n")
    return buffer.getvalue()


def write_scored(output: str | Path | None, scored: ScoredTable, columns: Sequence[str],
                 stdout: TextIO | None = None) -> None:
    """Write like :func:`leadscore.ingest.files.write_rows` (stdout CSV when no output)."""
    if output is None:
        (stdout or sys.stdout).write(_csv_text(scored, columns))
        return
    fmt = file_format(output)
    with atomic_path(output) as tmp:
        if fmt == "csv" and scored.csv_file is not None and list(columns) == scored.table.column_names:
            scored.csv_file(tmp)
        elif fmt == "csv":
            tmp.write_text(_csv_text(scored, columns), encoding="utf-8", newline="")
        elif fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as handle:
                for row in scored.table.select(list(columns)).to_pylist():
                    handle.write(json.dumps(row, ensure_ascii=False))
                    handle.write("\n")
        else:
            import pyarrow.parquet as pq

            pq.write_table(scored.table.select(list(columns)), tmp)


def exact_decimal(value: float) -> Decimal:
    """The exact binary value (for tests and diagnostics)."""
    return Decimal(value)
