"""Streaming a world to files: one chunk of leads at a time, atomically.

Each file is written under a temporary name in the target directory and moved into
place (``os.replace``) only when every file is complete, so a crash never leaves a
half-written ``events.csv`` behind; ``world.json`` is written last.

Parquet files hold their timestamps (``events.timestamp``, ``leads.created_at``,
``outcomes.converted_at``/``opportunity_at``) as native ``TIMESTAMP`` columns (UTC,
microseconds), so that readers need not parse 20M texts; CSV files hold ISO 8601 text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.demo.signals import EVENTS_SCHEMA
from leadscore.demo.world import (
    DEFAULT_END,
    GENERATOR_VERSION,
    LEADS_SCHEMA,
    OUTCOMES_SCHEMA,
    iter_chunks,
    make_spec,
)
from leadscore.errors import UsageError

Format = Literal["csv", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "parquet")
TABLES: tuple[str, ...] = ("leads", "events", "outcomes")


TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": ("created_at",),
    "events": ("timestamp",),
    "outcomes": ("converted_at", "opportunity_at"),
}
NATIVE_TIMESTAMP = pa.timestamp("us", tz="UTC")


def parquet_schema(name: str, schema: pa.Schema) -> pa.Schema:
    """The Parquet schema of table ``name``: its ISO 8601 text columns as native timestamps."""
    for column in TIMESTAMP_COLUMNS.get(name, ()):
        index = schema.get_field_index(column)
        schema = schema.set(index, schema.field(index).with_type(NATIVE_TIMESTAMP))
    return schema


def parquet_table(name: str, table: pa.Table) -> pa.Table:
    """``table`` (as :func:`~leadscore.demo.generate_world` builds it) in its Parquet form:
    the ``...Z`` text of each timestamp column parsed to microseconds, UTC."""
    for column in TIMESTAMP_COLUMNS.get(name, ()):
        index = table.schema.get_field_index(column)
        values = pc.strptime(table.column(index), format="%Y-%m-%dT%H:%M:%SZ", unit="us")
        table = table.set_column(index, pa.field(column, NATIVE_TIMESTAMP), values.cast(NATIVE_TIMESTAMP))
    return table


@dataclass(frozen=True)
class WorldSummary:
    """What :func:`write_world` wrote."""

    out_dir: Path
    files: dict[str, Path]  # "leads", "events", "outcomes", "world" -> path
    seed: int
    months: int
    fmt: str
    as_of: datetime
    n_leads: int
    n_events: int
    n_opportunities: int
    n_converted: int

    @property
    def conversion_rate(self) -> float:
        """Share of leads that converted."""
        return self.n_converted / self.n_leads if self.n_leads else 0.0

    @property
    def opportunity_rate(self) -> float:
        """Share of leads that became an opportunity."""
        return self.n_opportunities / self.n_leads if self.n_leads else 0.0


class _TableFile:
    """One output table, streamed to a temporary file in the target directory."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path = path
        self.name = path.stem
        self.parquet = fmt == "parquet"
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.sink = pa.OSFile(str(self.tmp), "wb")
        self.writer: pq.ParquetWriter | pacsv.CSVWriter
        if fmt == "parquet":
            self.writer = pq.ParquetWriter(self.sink, parquet_schema(self.name, schema), compression="zstd")
        else:
            self.writer = pacsv.CSVWriter(self.sink, schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
        self.closed = False

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(parquet_table(self.name, table) if self.parquet else table)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            finally:
                self.sink.close()

    def commit(self) -> None:
        """Flush to disk and move into place."""
        self.close()
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        try:
            self.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class _Outputs:
    """The three table files; discarded together unless all of them are committed."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        self.files: dict[str, _TableFile] = {}
        schemas = {"leads": LEADS_SCHEMA, "events": EVENTS_SCHEMA, "outcomes": OUTCOMES_SCHEMA}
        try:
            for name in TABLES:
                self.files[name] = _TableFile(out_dir / f"{name}.{fmt}", schemas[name], fmt)
        except BaseException:
            self.discard()
            raise

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.discard()

    def discard(self) -> None:
        for file in self.files.values():
            file.discard()

    def commit(self) -> None:
        for file in self.files.values():
            file.close()
        for file in self.files.values():
            file.commit()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_world(
    out_dir: str | os.PathLike[str],
    n_leads: int,
    seed: int,
    end: datetime = DEFAULT_END,
    months: int = 12,
    fmt: str = "csv",
) -> WorldSummary:
    """Generate a world and stream it to ``out_dir`` as ``leads``, ``events`` and
    ``outcomes`` (``fmt``: ``csv`` or ``parquet``) plus ``world.json``.

    Memory stays flat whatever ``n_leads`` is; the rows equal those of
    :func:`~leadscore.demo.generate_world` with the same arguments, and the same
    arguments give byte-identical files.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    spec = make_spec(n_leads, seed, end, months)
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--out {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {directory}: cannot create the directory: {exc.strerror}") from None
    n_events = n_opportunities = n_converted = 0
    with _Outputs(directory, fmt) as outputs:
        for chunk in iter_chunks(spec):
            outputs.files["leads"].write(chunk.leads)
            outputs.files["events"].write(chunk.events)
            outputs.files["outcomes"].write(chunk.outcomes)
            n_events += chunk.events.num_rows
            n_opportunities += chunk.n_opportunities
            n_converted += chunk.n_converted
        outputs.commit()
    world = {
        "seed": seed,
        "leads": n_leads,
        "events": n_events,
        "as_of": _iso_z(spec.as_of),
        "months": months,
        "format": fmt,
        "generator_version": GENERATOR_VERSION,
    }
    world_path = directory / "world.json"
    _write_text_atomically(world_path, json.dumps(world, indent=2) + "\n")
    files = {name: directory / f"{name}.{fmt}" for name in TABLES}
    files["world"] = world_path
    return WorldSummary(
        out_dir=directory,
        files=files,
        seed=seed,
        months=months,
        fmt=fmt,
        as_of=spec.as_of,
        n_leads=n_leads,
        n_events=n_events,
        n_opportunities=n_opportunities,
        n_converted=n_converted,
    )
