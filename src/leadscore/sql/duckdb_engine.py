"""The DuckDB engine: score files with one compiled query, in the process, in parallel.

``score_files_duckdb`` reads the leads and events files with DuckDB (Parquet is read
in place; CSV and JSONL are loaded once to keep their row order), stages them into the
table shape of :mod:`leadscore.sql.compiler`, checks every row the way the python
reader does, and runs the compiled model. Results come back exact and are rounded in
Python (:mod:`leadscore.sql.results`).

Bad input: when a check finds a problem (or DuckDB cannot read a file), the python
reader is run on that file to report the very same error (file, row, column).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from leadscore.engine.scoring import round_score
from leadscore.engine.timestamps import parse_timestamp, to_micros
from leadscore.errors import InputError
from leadscore.ingest.files import CsvWriter, file_format, read_events, read_leads
from leadscore.ingest.normalise import EVENT_FIELDS, make_attributes
from leadscore.ingest.normalise import nfc as nfc_text
from leadscore.model.schema import ScoringModel
from leadscore.sql.compiler import (
    ModelColumns,
    attribute_column,
    compile_model,
    model_columns,
    property_column,
)
from leadscore.sql.dialects import PYTHON_REGEX_FUNCTION
from leadscore.sql.results import SPECIAL_CELL, ScoredTable
from leadscore.sql.sources import (
    PYTHON_TIMESTAMP_FUNCTION,
    FileSource,
    csv_reader,
    fn,
    is_blank,
    json_path,
    json_text,
    lit,
    plain_ascii,
    table_function,
    typed_text,
)

Progress = Callable[[str, int, int | None], None]


def _python_search(value: str, pattern: str) -> bool:
    return re.search(pattern, value) is not None


def _python_timestamp(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return to_micros(parse_timestamp(text))
    except (ValueError, OverflowError):
        return None


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions compiled DuckDB queries may call (regex on non-ASCII text,
    timestamps in rare ISO 8601 shapes)."""
    con.create_function(PYTHON_REGEX_FUNCTION, _python_search, ["VARCHAR", "VARCHAR"], "BOOLEAN",
                        side_effects=False)
    con.create_function(PYTHON_TIMESTAMP_FUNCTION, _python_timestamp, ["VARCHAR"], "BIGINT",
                        side_effects=False, null_handling="special")  # type: ignore[call-overload]


DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB's own buffers; beyond it, staged rows spill to disk


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set up for scoring (UTC, leadscore's functions).

    ``memory_limit`` (default ``$LEADSCORE_DUCKDB_MEMORY``, else 2GB) caps DuckDB's
    buffers; what does not fit spills to a temporary folder removed with the connection."""
    import shutil
    import tempfile
    import weakref

    spill = tempfile.mkdtemp(prefix="leadscore-duckdb-")
    config: dict[str, Any] = {
        "memory_limit": memory_limit or os.environ.get("LEADSCORE_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT),
        "temp_directory": spill,
    }
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    weakref.finalize(con, shutil.rmtree, spill, ignore_errors=True)
    _run(con, "SET TimeZone = 'UTC'")
    _run(con, "SET enable_progress_bar = false")
    register_functions(con)
    return con


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """Run a statement; the result is complete when this returns."""
    return con.sql(sql)


def _sql(expression: exp.Expr) -> str:
    return expression.sql(dialect="duckdb")


# DuckDB's JSON reader takes a comma before a closing brace or bracket, which JSON (and the
# python reader) refuse; a line that may hold one is read again by the python reader (about
# 40 ns a line to look, here)
_TRAILING_COMMA = r"SELECT 1 FROM {table} WHERE regexp_matches(json, ',[ \t\n\r]*[}}\]]') LIMIT 1"


class _Reader:
    """Opens files as :class:`FileSource`s; problems are reported by the python reader."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def open(self, path: Path, name: str, python_check: Callable[[], Any]) -> FileSource:
        fmt = file_format(path)
        if not path.exists() or path.is_dir() or path.stat().st_size == 0:
            python_check()
        try:
            source = self._open(path, name, fmt)
        except (duckdb.Error, UnicodeDecodeError, csv.Error) as exc:
            python_check()
            raise InputError(f"DuckDB cannot read the file: {exc}; try --engine python", file=str(path)) from None
        if fmt == "jsonl" and _run(self.con, _TRAILING_COMMA.format(table=_sql(exp.to_identifier(name, quoted=True)))
                                   ).fetchall():
            python_check()  # names the row, unless every such comma was inside a text
        return source

    def _open(self, path: Path, name: str, fmt: str) -> FileSource:
        table = exp.to_identifier(name, quoted=True)
        if fmt == "parquet":
            reader = table_function("read_parquet", path, file_row_number=True)
            _run(self.con, _sql(exp.Create(this=exp.Table(this=table), kind="VIEW",
                                             expression=exp.select("*").from_(reader))))
            raw = [row[0] for row in _run(self.con, f"DESCRIBE {_sql(table)}").fetchall()]
            if any(nfc_text(name) != name for name in raw):  # names as the Python readers give them (NFC)
                if len({nfc_text(name) for name in raw}) != len(raw):
                    raise duckdb.InvalidInputException("two columns have one name in NFC")
                _run(self.con, _sql(exp.Create(this=exp.Table(this=table), kind="VIEW", replace=True,
                                                 expression=exp.select(*[
                                                     exp.alias_(exp.column(name, quoted=True), nfc_text(name), quoted=True)
                                                     for name in raw]).from_(reader))))
            position = "file_row_number"
        elif fmt == "csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), [])
            names = [nfc_text(h.strip()) for h in header]  # as the Python readers name them
            if not names or len(set(names)) != len(names) or not all(names):
                raise duckdb.InvalidInputException("bad header")
            self._load(table, exp.select("*").from_(csv_reader(path, names)))
            position = "rowid"
        else:
            reader = table_function("read_json_objects", path, format="newline_delimited")
            # the whole document in NFC, keys included, as the Python reader names them
            # (a key is a path below; about 10 ns a document when it is ASCII)
            document = fn("nfc_normalize", exp.cast(exp.column("json"), "VARCHAR"))
            self._load(table, exp.select(exp.alias_(document, "json")).from_(reader))
            position = "rowid"
        described = _run(self.con, f"DESCRIBE {_sql(table)}").fetchall()
        columns = {row[0]: str(row[1]) for row in described}
        return FileSource(path, fmt, name, columns, position)

    def _load(self, table: exp.Identifier, query: exp.Select) -> None:
        _run(self.con, _sql(exp.Create(this=exp.Table(this=table), kind="TABLE", expression=query,
                                         properties=exp.Properties(expressions=[exp.TemporaryProperty()]))))


def _position(source: FileSource) -> exp.Expr:
    return exp.column(source.position, table="s")


def _lead_text(source: FileSource, name: str, where: str) -> exp.Expr:
    """An attribute's text form; JSONL leads may nest attributes in an ``attributes`` object."""
    if source.fmt != "jsonl":
        return source.text(name, where)
    doc = source.json_document()
    nested_path = '$."attributes".' + json_path(name)[2:]
    nested = exp.and_(
        exp.EQ(this=fn("json_type", doc.copy(), lit('$."attributes"')), expression=lit("OBJECT")),
        fn("json_exists", doc.copy(), lit(nested_path)),
    )
    return exp.case().when(nested, json_text(doc, nested_path)).else_(source.text(name, where))


def _leads_view(con: duckdb.DuckDBPyConnection, source: FileSource, attributes: tuple[str, ...]) -> None:
    lead_id, bad_id = source.id_text("lead_id")
    created: exp.Expr
    present: exp.Expr
    blank: exp.Expr
    if source.fmt == "jsonl":
        created_text = _lead_text(source, "created_at", "created_at")
        created = fn(PYTHON_TIMESTAMP_FUNCTION, created_text.copy())
        present = exp.not_(exp.Is(this=created_text.copy(), expression=exp.null()))
        blank = is_blank(created_text)
    else:
        created, present, blank = source.timestamp("created_at")
    # two levels, so that each costly value is computed once and only tested above
    inner = exp.select(
        exp.alias_(lead_id, "lead_id"), exp.alias_(created, "created_raw"), exp.alias_(present, "created_present"),
        exp.alias_(blank, "created_blank"),
        *[exp.alias_(_lead_text(source, a, f"attribute '{a}'"), attribute_column(a), quoted=True)
          for a in attributes],
        exp.alias_(_position(source), "pos"), exp.alias_(bad_id, "bad_id"),
    ).from_(exp.to_table(source.relation, quoted=True).as_("s"))

    def col(name: str) -> exp.Expr:
        return exp.column(name, table="i", quoted=True)

    bad_created = exp.and_(col("created_present"), exp.not_(col("created_blank")),
                           exp.Is(this=col("created_raw"), expression=exp.null()))
    created_us = exp.case().when(col("created_blank"), exp.cast(exp.null(), "BIGINT")).else_(col("created_raw"))
    query = exp.select(
        col("lead_id"), exp.alias_(created_us, "created_us"), *[col(attribute_column(a)) for a in attributes],
        col("pos"),
        exp.alias_(exp.or_(col("bad_id"), exp.Is(this=col("lead_id"), expression=exp.null()), bad_created), "bad"),
    ).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("i"))))
    _run(con, _sql(exp.Create(this=exp.to_table("ls_in_leads"), kind="TABLE", expression=query,
                              properties=exp.Properties(expressions=[exp.TemporaryProperty()]))))


def _nested_property(source: FileSource, name: str, where: str) -> tuple[exp.Expr, exp.Expr]:
    """(a property from the ``properties`` object, a condition that holds when that object is bad)."""
    path = json_path(name)
    if source.fmt == "jsonl":
        doc = source.json_document()
        kind = fn("json_type", doc.copy(), lit('$."properties"'))
        as_text = fn("json_extract_string", doc.copy(), lit('$."properties"'))
        from_text = json_text(as_text.copy(), path)
        value = (
            exp.case()
            .when(exp.EQ(this=kind.copy(), expression=lit("OBJECT")), json_text(doc.copy(), '$."properties".' + path[2:]))
            .when(exp.EQ(this=kind.copy(), expression=lit("VARCHAR")), from_text)
            .else_(exp.cast(exp.null(), "VARCHAR"))
        )
        return value, _bad_json_object(kind, as_text)
    if "properties" not in source.columns:
        return exp.cast(exp.null(), "VARCHAR"), exp.false()
    column, kind_name = source.column("properties"), source.columns["properties"]
    upper = kind_name.upper()
    if upper == "VARCHAR" or upper == "JSON":
        kind = exp.case().when(exp.Is(this=column.copy(), expression=exp.null()), lit("NULL")).else_(lit("VARCHAR"))
        return json_text(column.copy(), path), _bad_json_object(kind, column.copy())
    if upper.startswith("STRUCT"):
        fields = dict(con_fields(kind_name))
        if name not in fields:
            return exp.cast(exp.null(), "VARCHAR"), exp.false()
        return typed_text(fn("struct_extract", column, lit(name)), fields[name], where), exp.false()
    if upper.startswith("MAP"):
        value_type = kind_name[kind_name.index(",") + 1: kind_name.rindex(")")].strip()
        element = exp.Bracket(this=column, expressions=[lit(name)])
        return typed_text(element, value_type, where), exp.false()
    return exp.cast(exp.null(), "VARCHAR"), exp.not_(exp.Is(this=column.copy(), expression=exp.null()))


def con_fields(struct_type: str) -> list[tuple[str, str]]:
    """Field names and types of a DuckDB ``STRUCT(a VARCHAR, "b c" INTEGER)`` type name."""
    inner = struct_type[struct_type.index("(") + 1: struct_type.rindex(")")]
    fields: list[tuple[str, str]] = []
    depth, start, parts = 0, 0, []
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(inner[start:index])
            start = index + 1
    parts.append(inner[start:])
    for part in parts:
        part = part.strip()
        if part.startswith('"'):
            end = part.index('"', 1)
            fields.append((part[1:end], part[end + 1:].strip()))
        else:
            name, _, kind = part.partition(" ")
            fields.append((name, kind.strip()))
    return fields


def _bad_json_object(kind: exp.Expr, text: exp.Expr) -> exp.Expr:
    """A ``properties`` value that is not an object nor a text holding one (nor blank)."""
    is_text = exp.EQ(this=kind.copy(), expression=lit("VARCHAR"))
    blank = exp.EQ(this=exp.Trim(this=text.copy()), expression=lit(""))
    valid_object = exp.and_(fn("json_valid", text.copy()),
                            exp.EQ(this=fn("json_type", text.copy()), expression=lit("OBJECT")))
    bad_text = exp.and_(is_text, exp.not_(blank), exp.not_(exp.Coalesce(this=valid_object, expressions=[exp.false()])))
    bad_kind = exp.not_(exp.In(this=exp.Coalesce(this=kind.copy(), expressions=[lit("NULL")]),
                               expressions=[lit("OBJECT"), lit("VARCHAR"), lit("NULL")]))
    return exp.or_(bad_text, bad_kind)


def _plain_id(raw: exp.Expr) -> exp.Expr:
    """``strip_text(raw) = raw``: ASCII with no outer white space (NULL: NULL)."""
    return plain_ascii(raw)


def _plain_text(raw: exp.Expr) -> exp.Expr:
    """``nfc(raw) = raw``: ASCII text (NULL: NULL)."""
    return exp.EQ(this=fn("strlen", raw.copy()), expression=exp.Length(this=raw.copy()))


def _events_table(con: duckdb.DuckDBPyConnection, source: FileSource, properties: tuple[str, ...],
                  types: tuple[str, ...], *, name: str = "ls_in_events",
                  plain: frozenset[str] = frozenset()) -> dict[str, exp.Expr]:
    """Every event row in the compiled query's shape, as a view: ``ls_in_events``.

    A view, not a table: materialising 20M rows cost more than reading the file again
    (DuckDB reads Parquet in place; CSV and JSONL are already loaded). Timestamps DuckDB
    cannot parse like Python go to Python's parser, only on those rows.

    Returns, for each text column that may need no cleaning, the condition under which a
    raw value is its own clean form (``plain_<column>`` columns of the view hold it per
    row). Once every row is known to be plain, the view ``name`` built with those columns
    in ``plain`` reads them as they are (no per-row cleaning; the type filter reaches the
    Parquet scan)."""
    lead_id, bad_lead = source.id_text("lead_id")
    event_id, bad_event_id = source.id_text("event_id")
    kind, bad_type = source.event_type()
    checks: dict[str, exp.Expr] = {}
    text_columns = source.fmt != "jsonl"

    def varchar(column: str) -> bool:
        return text_columns and source.columns.get(column, "").upper() == "VARCHAR"

    for column in ("lead_id", "event_id"):
        if varchar(column):
            checks[column] = _plain_id(source.column(column))
    if varchar("type"):
        checks["type"] = _plain_id(source.column("type"))
        # the model's own types are already clean: only other values need stripping
        clean_types = [lit(t) for t in types if t == nfc_text(t.strip())]
        if clean_types:
            raw_type = source.column("type")
            kind = exp.case().when(exp.In(this=raw_type, expressions=clean_types), raw_type.copy()).else_(kind)
            bad_type = exp.and_(exp.not_(exp.In(this=raw_type.copy(), expressions=[c.copy() for c in clean_types])),
                                bad_type)
    if "lead_id" in plain:
        lead_id = source.column("lead_id")
    if "event_id" in plain:
        event_id = source.column("event_id")
    if "type" in plain:
        kind = source.column("type")
    ts, present, _ = source.timestamp("timestamp", python=False)
    raw_ts = (source.column("timestamp") if source.fmt != "jsonl" else
              fn("json_extract_string", source.json_document(), lit('$."timestamp"')))
    ts_is_text = source.has("timestamp") and source.raw_type("timestamp").upper() in ("VARCHAR", "JSON")
    bad_nested: exp.Expr = exp.false()
    props = []
    nested_column = "properties" in source.columns or not text_columns
    for prop in properties:
        nested, bad_nested = _nested_property(source, prop, f"property '{prop}'")
        column = property_column(prop)
        if prop in EVENT_FIELDS:
            value: exp.Expr = nested
        elif column in plain:
            value = source.column(prop)
        else:
            value = exp.Coalesce(this=source.text(prop, f"property '{prop}'"), expressions=[nested])
            if varchar(prop) and not nested_column:
                checks[column] = _plain_text(source.column(prop))
        props.append(exp.alias_(value, column, quoted=True))
    if not properties:
        _, bad_nested = _nested_property(source, "-", "properties")
    # two levels, so that each costly value is computed once and only tested above
    inner = exp.select(
        exp.alias_(lead_id, "lead_id"), exp.alias_(kind, "type"), exp.alias_(ts, "ts_us"),
        exp.alias_(event_id, "event_id"), exp.alias_(_position(source), "seq"), *props,
        exp.alias_(exp.or_(bad_lead, bad_type, bad_event_id, bad_nested), "bad_raw"),
        exp.alias_(present, "ts_present"),
        exp.alias_(raw_ts if ts_is_text else exp.cast(exp.null(), "VARCHAR"), "ts_raw"),
        *[exp.alias_(check.copy(), f"plain_{column}", quoted=True) for column, check in checks.items()],
    ).from_(exp.to_table(source.relation, quoted=True).as_("s"))
    i = "i"
    bad = exp.or_(exp.column("bad_raw", table=i), exp.Is(this=exp.column("lead_id", table=i), expression=exp.null()))
    ts_us: exp.Expr = exp.column("ts_us", table=i)
    if ts_is_text:  # the rare shapes DuckDB does not parse like Python: Python's parser
        needs_python = exp.and_(exp.Is(this=ts_us.copy(), expression=exp.null()), exp.column("ts_present", table=i))
        ts_us = exp.case().when(needs_python, fn(PYTHON_TIMESTAMP_FUNCTION, exp.column("ts_raw", table=i))).else_(ts_us)
    names = ["lead_id", "type", "event_id", "seq", *[property_column(p) for p in properties],
             *[f"plain_{column}" for column in checks]]
    query = exp.select(
        *[exp.column(n, table=i, quoted=True) for n in names], exp.alias_(ts_us, "ts_us"), exp.alias_(bad, "bad"),
    ).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(i))))
    _run(con, _sql(exp.Create(this=exp.to_table(name), kind="VIEW", expression=query,
                              properties=exp.Properties(expressions=[exp.TemporaryProperty()]))))
    return checks


def _check_leads(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    count, bad, distinct = _run(con,
        "SELECT count(*), count(*) FILTER (WHERE bad), count(DISTINCT lead_id) FROM ls_in_leads"
    ).fetchall()[0]
    if count == 0 or bad or distinct != count:
        read_leads(path)  # raises the python reader's error
        raise InputError("the DuckDB engine rejects this file but the python engine does not; "
                         "use --engine python", file=str(path))
    return int(count)


_BAD_EVENTS = "SELECT count(*), count(*) FILTER (WHERE bad OR ts_us IS NULL){plain} FROM ls_in_events"
_EVENT_HASHES = "SELECT hash(event_id) AS h FROM {events} WHERE event_id IS NOT NULL"
# events sharing an event_id whose hash is shared: the first (lowest seq) counts
_FIRSTS = """
CREATE TEMP TABLE ls_firsts AS
SELECT event_id, min(seq) AS first_seq, count(*) AS copies FROM {events}
WHERE event_id IS NOT NULL AND hash(event_id) IN (SELECT h FROM ls_shared_hashes)
GROUP BY event_id HAVING count(*) > 1
"""
_DEDUPED = """
CREATE TEMP VIEW ls_in_events_once AS
SELECT e.* FROM {events} AS e LEFT JOIN ls_firsts AS f ON f.event_id = e.event_id
WHERE f.first_seq IS NULL OR e.seq = f.first_seq
"""
_UNKNOWN = """
SELECT count(*), count(DISTINCT e.lead_id) FROM ls_in_events_once AS e
WHERE NOT EXISTS (SELECT 1 FROM ls_in_leads AS l WHERE l.lead_id = e.lead_id)
"""


def _check_events(con: duckdb.DuckDBPyConnection, path: Path, checks: dict[str, exp.Expr] | None = None,
                  plain_view: Callable[[frozenset[str]], str] | None = None) -> dict[str, int]:
    """Validate every row, drop duplicate event ids, count what the summary reports; the
    events to score are then the view ``ls_in_events_once``.

    The same pass finds the text columns whose every value is already clean (``checks``);
    ``plain_view(columns)`` then makes a view that reads them as they are.

    Duplicates are found without a hash table of every id: the ids' 64-bit hashes are
    sorted in NumPy, and only ids whose hash occurs twice are grouped exactly."""
    import numpy as np

    names = list(checks or {})
    flags = "".join(f', bool_and(coalesce("plain_{n}", true))' for n in names)
    rows, bad, *plain_flags = _run(con, _BAD_EVENTS.format(plain=flags)).fetchall()[0]
    if rows == 0 or bad:
        read_events(path)  # raises the python reader's error
        raise InputError("the DuckDB engine rejects this file but the python engine does not; "
                         "use --engine python", file=str(path))
    plain = frozenset(n for n, flag in zip(names, plain_flags, strict=True) if flag)
    events = plain_view(plain) if plain and plain_view else "ls_in_events"
    hashes = _run(con, _EVENT_HASHES.format(events=events)).fetchnumpy()["h"]
    hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
    shared = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    if len(shared):
        con.register("ls_shared_hashes_arrow", {"h": shared})
        _run(con, "CREATE TEMP TABLE ls_shared_hashes AS SELECT CAST(h AS UBIGINT) AS h FROM ls_shared_hashes_arrow")
        con.unregister("ls_shared_hashes_arrow")
        _run(con, _FIRSTS.format(events=events))
        _run(con, _DEDUPED.format(events=events))
        duplicates = _run(con, "SELECT coalesce(sum(copies - 1), 0) FROM ls_firsts").fetchall()[0][0]
    else:  # no two ids share a hash: nothing to drop, no join to make
        _run(con, f"CREATE TEMP VIEW ls_in_events_once AS SELECT * FROM {events}")
        duplicates = 0
    unknown, unknown_leads = _run(con, _UNKNOWN).fetchall()[0]
    return {"events_read": int(rows), "duplicate_events": int(duplicates),
            "unknown_lead_events": int(unknown), "unknown_leads": int(unknown_leads)}



# ---- one pass over the events: the common case ----------------------------------------------


def _fast_view(con: duckdb.DuckDBPyConnection, source: FileSource, columns: ModelColumns) -> str | None:
    """The events as the compiled query reads them, every value as it is in the file, and
    ``ls_bad``: the row is not known to be clean (a type or property text that would need
    cleaning, no timestamp). None for a file shape this does not handle (ids that are not
    text, a ``properties`` column, a property named like an event field, JSONL): those
    take the general path."""
    if source.fmt == "jsonl" or "properties" in source.columns:
        return None
    if any(source.columns.get(c, "").upper() != "VARCHAR" for c in ("lead_id", "type", "event_id")):
        return None
    properties, types = columns.properties, columns.event_types
    if any(p in EVENT_FIELDS or source.columns.get(p, "VARCHAR").upper() != "VARCHAR" for p in properties):
        return None
    ts, present, _ = source.timestamp("timestamp", python=False)
    if source.has("timestamp") and source.raw_type("timestamp").upper() == "VARCHAR":
        # the rare shapes DuckDB does not parse like Python: Python's parser
        needs_python = exp.and_(exp.Is(this=ts.copy(), expression=exp.null()), present)
        ts = exp.case().when(needs_python, fn(PYTHON_TIMESTAMP_FUNCTION, source.column("timestamp"))).else_(ts)
    kind = source.column("type")
    props: list[exp.Expr] = []
    # a plain type (ASCII, no outer space) is its own clean form, and so are the model's
    # own (clean) types, tested first: cheaper, and most rows are of those; NULL is an error
    plain_type: exp.Expr = exp.Coalesce(this=plain_ascii(kind), expressions=[exp.false()])
    clean_types = [lit(t) for t in types if t and t == nfc_text(t.strip())]
    if clean_types:
        plain_type = exp.case().when(exp.In(this=kind.copy(), expressions=clean_types), exp.true()).else_(plain_type)
    odd: list[exp.Expr] = [exp.not_(plain_type)]
    for prop in properties:
        if prop not in source.columns:
            props.append(exp.alias_(exp.cast(exp.null(), "VARCHAR"), property_column(prop), quoted=True))
            continue
        value = source.column(prop)
        props.append(exp.alias_(value, property_column(prop), quoted=True))
        odd.append(exp.not_(exp.Coalesce(this=_plain_text(value), expressions=[exp.true()])))
    inner = exp.select(
        exp.alias_(source.column("lead_id"), "lead_id"), exp.alias_(kind.copy(), "type"), exp.alias_(ts, "ts_us"),
        *props, exp.alias_(exp.or_(*odd), "ls_odd"),
    ).from_(exp.to_table(source.relation, quoted=True).as_("s"))
    # two levels: ``ts_us`` (which may call Python) is computed once, then tested
    bad = exp.or_(exp.Is(this=exp.column("ts_us", table="i"), expression=exp.null()), exp.column("ls_odd", table="i"))
    query = exp.select(
        *[exp.column(n, table="i", quoted=True) for n in
          ("lead_id", "type", "ts_us", *[property_column(p) for p in properties])],
        exp.alias_(bad, "ls_bad"),
    ).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("i"))))
    _run(con, _sql(exp.Create(this=exp.to_table("ls_in_events_fast"), kind="VIEW", expression=query,
                              properties=exp.Properties(expressions=[exp.TemporaryProperty()]))))
    return "ls_in_events_fast"


def _ctes(query: exp.Select) -> dict[str, exp.CTE]:
    with_ = query.args.get("with_")
    return {cte.alias: cte for cte in (with_.expressions if with_ else [])}


def _fused_aggregate(query: exp.Select, view: str) -> exp.Select | None:
    """The compiled query's per-lead aggregates (``ls_agg``) over every event row of
    ``view`` in one pass, with the counts the input checks need: ``ls_n`` (events),
    ``ls_bad`` (rows not known to be clean). The compiled ``ls_events`` filter (types
    and time) moves into each aggregate's FILTER. None when the query has another shape."""
    ctes = _ctes(query)
    keep: exp.Expr = exp.true()
    aggregates: list[exp.Expr] = []
    if "ls_agg" in ctes:
        events, agg = ctes.get("ls_events"), ctes["ls_agg"].this
        if events is None or not isinstance(agg, exp.Select) or events.this.args.get("joins"):
            return None
        where = events.this.args.get("where")
        keep = where.this.copy() if where is not None else exp.true()
        for item in agg.expressions[1:]:
            if not isinstance(item, exp.Alias) or not isinstance(item.this, exp.Filter):
                return None
            filtered = item.this.copy()
            condition = filtered.expression.this
            filtered.expression.set("this", exp.and_(exp.column("ls_keep", table="e"), exp.Paren(this=condition)))
            aggregates.append(exp.alias_(filtered, item.alias, quoted=True))
    inner = exp.select(exp.Star(), exp.alias_(keep, "ls_keep")).from_(exp.to_table(view).as_("e"))
    return exp.select(
        exp.column("lead_id", table="e"), *aggregates,
        exp.alias_(exp.Count(this=exp.Star()), "ls_n"),
        exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()),
                              expression=exp.Where(this=exp.column("ls_bad", table="e"))), "ls_bad"),
    ).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("e")))).group_by(
        exp.column("lead_id", table="e"))


def _reading_aggregates(query: exp.Select, table: str) -> exp.Select:
    """``query`` with its per-lead aggregates read from ``table`` (made by :func:`_fused_aggregate`)."""
    query = query.copy()
    ctes = _ctes(query)
    if "ls_agg" not in ctes:
        return query
    agg = ctes["ls_agg"]
    names = [item.alias_or_name for item in agg.this.expressions]
    agg.set("this", exp.select(*[exp.column(n, quoted=True) for n in names]).from_(exp.to_table(table)))
    with_ = query.args["with_"]
    with_.set("expressions", [c for c in with_.expressions if c.alias != "ls_events"])
    return query


def _event_ids_distinct(con: duckdb.DuckDBPyConnection, source: FileSource) -> bool:
    """Every event id is plain text (its own clean form) and no two are the same: the
    ids' 64-bit hashes, sorted in NumPy, are all different (a shared hash: False, and the
    general path groups the ids exactly)."""
    import numpy as np

    raw = source.column("event_id")
    query = exp.select(exp.alias_(exp.case().when(plain_ascii(raw), fn("hash", raw.copy())), "h")).from_(
        exp.to_table(source.relation, quoted=True).as_("s")).where(exp.not_(exp.Is(this=raw.copy(), expression=exp.null())))
    hashes = _run(con, _sql(query)).fetchnumpy()["h"]
    if np.ma.is_masked(hashes):  # an id that needs cleaning
        return False
    hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
    return not bool(np.any(hashes[1:] == hashes[:-1]))


def _fast_events(con: duckdb.DuckDBPyConnection, source: FileSource, columns: ModelColumns,
                 query: exp.Select) -> tuple[exp.Select, dict[str, int]] | None:
    """Check and aggregate the events in one pass when every value is already clean and no
    event id repeats; returns the scoring query reading the aggregates, and the counts.
    None (nothing kept) when the general path must run: a value to clean, a duplicate, an
    error to report."""
    view = _fast_view(con, source, columns)
    aggregate = _fused_aggregate(query, view) if view else None
    if aggregate is None:
        return None
    _run(con, _sql(exp.Create(this=exp.to_table("ls_agg_fast"), kind="TABLE", expression=aggregate,
                              properties=exp.Properties(expressions=[exp.TemporaryProperty()]))))
    lead = exp.column("lead_id")
    odd_lead = exp.or_(exp.Is(this=lead, expression=exp.null()),
                       exp.not_(exp.Coalesce(this=plain_ascii(lead.copy()), expressions=[exp.false()])))
    rows, bad, odd = _run(con, _sql(exp.select(
        "coalesce(sum(ls_n), 0)", "coalesce(sum(ls_bad), 0)",
        exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=odd_lead)),
    ).from_("ls_agg_fast"))).fetchall()[0]
    if rows == 0 or bad or odd or not _event_ids_distinct(con, source):
        _run(con, "DROP TABLE ls_agg_fast")
        return None
    unknown, unknown_leads = _run(con, """
        SELECT coalesce(sum(a.ls_n), 0), count(*) FROM ls_agg_fast AS a
        WHERE NOT EXISTS (SELECT 1 FROM ls_in_leads AS l WHERE l.lead_id = a.lead_id)""").fetchall()[0]
    stats = {"events_read": int(rows), "duplicate_events": 0, "unknown_lead_events": int(unknown),
             "unknown_leads": int(unknown_leads)}
    return _reading_aggregates(query, "ls_agg_fast"), stats


def score_files_duckdb(
    model: ScoringModel,
    leads_path: str | Path,
    events_path: str | Path | None,
    as_of_us: int,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> tuple[ScoredTable, Callable[[list[int]], list[dict[str, Any]]]]:
    """Score the leads of a file; returns the rounded table (leads order) and a function
    giving the attributes of leads by position (for ``--top``)."""
    columns = model_columns(model)
    con = connect(threads or _threads(), memory_limit)
    reader = _Reader(con)
    leads_path = Path(leads_path)
    if progress:
        progress("reading leads", 0, None)
    leads = reader.open(leads_path, "ls_leads_file", lambda: read_leads(leads_path))
    _leads_view(con, leads, columns.attributes)
    n_leads = _check_leads(con, leads_path)
    stats = {"leads": n_leads, "events_read": 0, "duplicate_events": 0,
             "unknown_lead_events": 0, "unknown_leads": 0}
    events_table = "ls_no_events"
    query = None
    if events_path is not None:
        events_path = Path(events_path)
        if progress:
            progress("reading events", 0, None)
        events = reader.open(events_path, "ls_events_file", lambda: read_events(events_path))
        fast = _fast_events(con, events, columns, _compile(model, "ls_in_events_once", as_of_us))
        if fast is not None:
            query, found = fast
            stats.update(found)
        else:
            checks = _events_table(con, events, columns.properties, columns.event_types)

            def plain_view(plain: frozenset[str]) -> str:
                _events_table(con, events, columns.properties, columns.event_types, name="ls_in_events_plain",
                              plain=plain)
                return "ls_in_events_plain"

            stats.update(_check_events(con, events_path, checks, plain_view))
            events_table = "ls_in_events_once"
    else:
        names = ", ".join(f'CAST(NULL AS VARCHAR) AS "{property_column(p)}"' for p in columns.properties)
        _run(con, "CREATE TEMP VIEW ls_no_events AS SELECT CAST(NULL AS VARCHAR) AS lead_id, "
                    "CAST(NULL AS VARCHAR) AS type, CAST(NULL AS BIGINT) AS ts_us, "
                    "CAST(NULL AS VARCHAR) AS event_id, CAST(NULL AS BIGINT) AS seq"
                    + (", " + names if names else "") + " WHERE false")
    if progress:
        progress("scoring", 0, n_leads)
    if query is None:
        query = _compile(model, events_table, as_of_us)
    scored = _scored(con, model, query)
    scored.stats = stats

    def attributes(positions: list[int]) -> list[dict[str, Any]]:
        return _lead_attributes(con, leads, positions)

    return scored, attributes


# ---- results: rounded, and the CSV written by DuckDB ------------------------------------------

ROUND_FUNCTION = "leadscore_round_score"
FORMAT_FUNCTION = "leadscore_format_2dp"
CSV_LINE_FUNCTION = "leadscore_csv_line"
_EXACT_LIMIT = 2.0**30  # |x * 100| below it: rounding and formatting need no Python (see round_scores)


def _csv_line(cells: list[str | None]) -> str:
    buffer = io.StringIO()
    CsvWriter(buffer).writerow(["" if c is None else c for c in cells])
    return buffer.getvalue()[:-1]


def _register_output_functions(con: duckdb.DuckDBPyConnection) -> None:
    con.create_function(ROUND_FUNCTION, round_score, ["DOUBLE"], "DOUBLE", side_effects=False)
    con.create_function(FORMAT_FUNCTION, lambda value: f"{value:.2f}", ["DOUBLE"], "VARCHAR", side_effects=False)
    con.create_function(CSV_LINE_FUNCTION, _csv_line, ["VARCHAR[]"], "VARCHAR", side_effects=False)


def _double(value: float) -> str:
    return f"CAST({value!r} AS DOUBLE)"


def rounded_sql(value: str) -> str:
    """:func:`~leadscore.sql.results.round_scores` in SQL: the same IEEE operations, and the
    values whose exact binary value decides (scaled fraction within 1e-6 of one half, huge,
    not finite) through Python's ``round_score``."""
    magnitude = f"abs({value} * {_double(100.0)})"
    unsure = (f"abs(({magnitude} - floor({magnitude})) - {_double(0.5)}) < {_double(1e-6)} "
              f"OR {magnitude} >= {_double(_EXACT_LIMIT)} OR NOT isfinite({value})")
    cents = f"(floor({magnitude} + {_double(0.5)}) / {_double(100.0)})"
    return (f"CASE WHEN {value} IS NULL THEN NULL WHEN {unsure} THEN {ROUND_FUNCTION}({value}) "
            f"WHEN signbit({value}) THEN -{cents} ELSE {cents} END")


def text_2dp_sql(rounded: str) -> str:
    """``f"{value:.2f}"`` of a rounded value (``-0.00`` included), like :func:`format_2dp`."""
    cents = f"CAST(round(abs({rounded}) * {_double(100.0)}) AS BIGINT)"
    fast = (f"CASE WHEN signbit({rounded}) THEN '-' ELSE '' END || CAST({cents} // 100 AS VARCHAR) || '.' "
            f"|| lpad(CAST({cents} % 100 AS VARCHAR), 2, '0')")
    return (f"CASE WHEN {rounded} IS NULL THEN '' WHEN abs({rounded}) < {_double(_EXACT_LIMIT / 100)} "
            f"THEN {fast} ELSE {FORMAT_FUNCTION}({rounded}) END")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scored(con: duckdb.DuckDBPyConnection, model: ScoringModel, query: exp.Select) -> ScoredTable:
    """Run the scoring query into a table of rounded results and their CSV lines (leads
    order); the Arrow table of the results, and a writer of the CSV by DuckDB."""
    groups = model.group_names()
    floats = ["score", *[f"score_{g}" for g in groups]]
    output = ["lead_id", "score", "stage", *[f"score_{g}" for g in groups],
              *[f"grade_{g}" for g in model.graded_groups()]]
    texts = [c for c in output if c not in floats]
    _register_output_functions(con)
    rounded = {c: rounded_sql(f"q.{_quoted(c)}") for c in floats}
    inner = ", ".join([*(f"q.{_quoted(c)}" for c in texts), *(f"{rounded[c]} AS {_quoted(c)}" for c in floats)])
    # cells that need quoting or formula neutralising (see ingest.files.CsvWriter) go through
    # Python; stage and grade names come from the model: only tested when one could need it
    special_re = "'" + SPECIAL_CELL.replace("'", "''") + "'"
    names = [s.name for s in model.stages or []]
    names += [g for name in model.graded_groups() for g in (model.groups[name].grades or {})]
    tested = [c for c in texts if c == "lead_id" or any(re.search(SPECIAL_CELL, n) for n in names)]
    special = " OR ".join(f"coalesce(regexp_matches(r.{_quoted(c)}, {special_re}), false)" for c in tested) or "false"
    cells = [f"coalesce(r.{_quoted(c)}, '')" if c in texts else text_2dp_sql(f"r.{_quoted(c)}") for c in output]
    joined = " || ',' || ".join(cells)
    line = f"CASE WHEN {special} THEN {CSV_LINE_FUNCTION}([{', '.join(cells)}]) ELSE {joined} END"
    body = _sql(query)
    _run(con, f"CREATE TEMP TABLE ls_scored AS SELECT {', '.join('r.' + _quoted(c) for c in output)}, {line} AS ls_line "
              f"FROM (SELECT {inner}, q.pos FROM ({body}) AS q) AS r ORDER BY r.pos")
    table = _run(con, f"SELECT {', '.join(_quoted(c) for c in output)} FROM ls_scored").to_arrow_table()
    scored = ScoredTable(table, tuple(floats))
    header_line = _csv_line(list(output))
    if "\n" not in header_line and "\r" not in header_line:

        def write(path: Path) -> None:
            target = str(path).replace("'", "''")
            _run(con, f"COPY (SELECT ls_line AS {_quoted(header_line)} FROM ls_scored) TO '{target}' "
                      "(FORMAT csv, HEADER true, QUOTE '', ESCAPE '')")

        scored.csv_file = write
    return scored


def _compile(model: ScoringModel, events: str, as_of_us: int) -> exp.Select:
    return compile_model(model, "duckdb", leads="ls_in_leads", events=events, as_of_us=as_of_us,
                         carry=("pos",), dedupe=False, attribute_lookups=True)


def _lead_attributes(con: duckdb.DuckDBPyConnection, source: FileSource, positions: list[int]) -> list[dict[str, Any]]:
    """The attributes of leads by file position, as the python reader gives them."""
    if not positions:
        return []
    wanted = exp.In(this=exp.column(source.position, table="s"), expressions=[lit(p) for p in positions])
    query = exp.select(exp.Star(), exp.alias_(exp.column(source.position, table="s"), "ls_pos")).from_(
        exp.to_table(source.relation, quoted=True).as_("s")).where(wanted)
    relation = _run(con, _sql(query))
    names = list(relation.columns)
    found: dict[int, dict[str, Any]] = {}
    for row in relation.fetchall():
        record = dict(zip(names, row, strict=True))
        pos = int(record.pop("ls_pos"))
        record.pop(source.position, None)
        if source.fmt == "jsonl":
            record = dict(json.loads(record["json"]))
        found[pos] = make_attributes(record)
    return [found.get(p, {}) for p in positions]


def _threads() -> int:
    return max(1, os.cpu_count() or 1)
