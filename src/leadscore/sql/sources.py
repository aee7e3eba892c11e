"""Data files as DuckDB relations of the compiled model's input shape.

The python engine reads files with :mod:`leadscore.ingest` (every value through
``clean_value``, ids through ``id_text``, timestamps through ``parse_timestamp``).
This module writes the same rules as DuckDB expressions, per file format and column
type, so that a value reaches the compiled query as the same text form:

* CSV: every cell is text (read ``all_varchar``), an empty cell is missing;
* JSONL: each line is one JSON object (read whole, then typed by ``json_type``);
* Parquet: the Arrow type decides (booleans ``true``/``false``, whole doubles ``50``,
  nested values compact JSON).

Timestamps in the common ISO 8601 shapes are parsed by DuckDB; anything else (other
offsets, separators, long fractions) is handed to Python's own parser, row by row.
Whatever cannot be expressed exactly raises :class:`UnsupportedOnEngine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from leadscore.sql.dialects import UnsupportedOnEngine

UNICODE_SPACE = "".join(ch for ch in map(chr, range(0x3100)) if ch.isspace())  # str.strip()
# the ISO 8601 shapes DuckDB parses exactly like datetime.fromisoformat; others go to Python
ISO_FAST = (
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?"
)
PYTHON_TIMESTAMP_FUNCTION = "leadscore_timestamp_us"
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE")


def fn(name: str, *args: exp.Expr) -> exp.Expr:
    """A DuckDB function call, written as is."""
    return exp.Anonymous(this=name, expressions=list(args))


def lit(value: str | int) -> exp.Expr:
    return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)


def _null_text() -> exp.Expr:
    return exp.cast(exp.null(), exp.DataType.Type.VARCHAR)


def _is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.null())


def double_text(value: exp.Expr) -> exp.Expr:
    """``text_form`` of a DOUBLE: NaN is missing, whole numbers below 1e15 have no decimals,
    others Python's repr (which DuckDB's cast writes identically)."""
    whole = exp.and_(
        exp.EQ(this=value.copy(), expression=fn("trunc", value.copy())),
        exp.LT(this=exp.Abs(this=value.copy()), expression=exp.Literal.number("1e15")),
    )
    return (
        exp.case()
        .when(fn("isnan", value.copy()), _null_text())
        .when(exp.EQ(this=value.copy(), expression=exp.cast(lit("inf"), "DOUBLE")), lit("inf"))
        .when(exp.EQ(this=value.copy(), expression=exp.cast(lit("-inf"), "DOUBLE")), lit("-inf"))
        .when(whole, exp.cast(exp.cast(value.copy(), "BIGINT"), "VARCHAR"))
        .else_(exp.cast(value.copy(), "VARCHAR"))
    )


def nfc(value: exp.Expr) -> exp.Expr:
    return fn("nfc_normalize", value)


def typed_text(value: exp.Expr, duck_type: str, where: str) -> exp.Expr:
    """``clean_value`` + ``text_form`` of a typed column."""
    base = duck_type.upper()
    if base in ("VARCHAR", "JSON"):
        return nfc(value)
    if base == "BOOLEAN":
        return exp.case().when(_is_null(value.copy()), _null_text()).when(value.copy(), lit("true")).else_(lit("false"))
    if base in INTEGER_TYPES:
        return exp.cast(value, "VARCHAR")
    if base in FLOAT_TYPES:
        return double_text(exp.cast(value, "DOUBLE"))
    if base.startswith("DECIMAL"):
        return exp.cast(value, "VARCHAR")
    if base.startswith(("STRUCT", "MAP")) or base.endswith("]"):
        return nfc(exp.cast(fn("to_json", value), "VARCHAR"))
    raise UnsupportedOnEngine(
        f"{where}: columns of type {duck_type} are not compared the same way by DuckDB; "
        "use --engine python"
    )


def json_text(document: exp.Expr, path: str) -> exp.Expr:
    """``clean_value`` + ``text_form`` of one value of a JSON document (``$."key"``)."""
    kind = fn("json_type", document.copy(), lit(path))
    text = fn("json_extract_string", document.copy(), lit(path))
    as_number = exp.TryCast(this=text.copy(), to=exp.DataType.build("DOUBLE"))
    is_integer = fn("regexp_full_match", text.copy(), lit("-?[0-9]+"))
    return (
        exp.case()
        .when(exp.EQ(this=kind.copy(), expression=lit("VARCHAR")), nfc(text.copy()))
        .when(exp.EQ(this=kind.copy(), expression=lit("BOOLEAN")), text.copy())
        .when(exp.In(this=kind.copy(), expressions=[lit("BIGINT"), lit("UBIGINT")]), text.copy())
        .when(exp.and_(exp.EQ(this=kind.copy(), expression=lit("DOUBLE")), is_integer), text.copy())
        .when(exp.EQ(this=kind.copy(), expression=lit("DOUBLE")), double_text(as_number))
        .when(exp.In(this=kind.copy(), expressions=[lit("OBJECT"), lit("ARRAY")]),
              nfc(exp.cast(fn("json_extract", document.copy(), lit(path)), "VARCHAR")))
        .else_(_null_text())
    )


def json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_blank(value: exp.Expr) -> exp.Expr:
    """``not value.strip()`` for a text; the slow TRIM only when the first character could be
    white space (printable ASCII cannot)."""
    first = exp.Left(this=value.copy(), expression=lit(1))
    printable = exp.Between(this=first, low=lit("!"), high=lit("~"))
    stripped = exp.EQ(this=exp.Trim(this=value.copy(), expression=lit(UNICODE_SPACE)), expression=lit(""))
    return exp.case().when(printable, exp.false()).else_(stripped)


def plain_ascii(value: exp.Expr) -> exp.Expr:
    """ASCII text whose first and last characters are above the space: its own
    ``nfc(value.strip())``. Written with byte comparisons (``value >= '!'`` tests the first
    byte, ``reverse(value) >= '!'`` the last), 3-4x cheaper in DuckDB than ``ascii(right(...))``."""
    return exp.and_(
        exp.EQ(this=fn("strlen", value.copy()), expression=exp.Length(this=value.copy())),
        exp.GTE(this=value.copy(), expression=lit("!")),
        exp.GTE(this=fn("reverse", value.copy()), expression=lit("!")),
    )


def strip_text(value: exp.Expr) -> exp.Expr:
    """``nfc(value.strip())``, empty -> NULL (ids and event types).

    DuckDB's TRIM with a character set is slow, so it only runs on values that need it:
    printable ASCII that starts and ends with a non-space is its own stripped NFC form."""
    stripped = exp.Trim(this=value.copy(), expression=lit(UNICODE_SPACE), position="BOTH")
    clean = plain_ascii(value)
    cleaned = exp.Nullif(this=nfc(stripped), expression=lit(""))
    return exp.case().when(clean, value.copy()).else_(cleaned)


def timestamp_us(text: exp.Expr, *, python: bool = True) -> exp.Expr:
    """Epoch microseconds of ISO 8601 text; NULL when it is not one.

    ``YYYY-MM-DDTHH:MM:SSZ`` (what most exports write) takes the cheapest path; other
    shapes DuckDB parses like ``datetime.fromisoformat`` take a stricter one; the rest
    goes to Python (``python=False``: stays NULL, for the caller to hand to Python)."""
    canonical = exp.and_(
        exp.Like(this=text.copy(), expression=lit("____-__-__T__:__:__Z")),
        exp.not_(exp.Like(this=text.copy(), expression=lit("%T24%"))),
        exp.not_(exp.Like(this=text.copy(), expression=lit("0000%"))),
    )
    naive = fn("epoch_us", exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMP")))
    fast = fn("regexp_full_match", text.copy(), lit(ISO_FAST))
    parsed = fn("epoch_us", exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMPTZ")))
    case = exp.case().when(canonical, naive).when(fast, parsed)
    return case.else_(fn(PYTHON_TIMESTAMP_FUNCTION, text.copy())) if python else case


def typed_timestamp_us(value: exp.Expr, duck_type: str) -> exp.Expr | None:
    """Epoch microseconds of a typed timestamp column; None when the type is text or unknown."""
    base = duck_type.upper()
    if base.startswith("TIMESTAMP") and base.endswith("_NS"):
        # nanoseconds (pandas' default; epoch_us takes no TIMESTAMPTZ_NS): floored to the
        # microsecond, as the Python readers and `send` floor them (DuckDB's // and %
        # truncate toward zero)
        ns = fn("epoch_ns", value)
        below = exp.Mod(this=exp.Paren(this=exp.Add(this=exp.Mod(this=ns.copy(), expression=lit(1000)),
                                                    expression=lit(1000))), expression=lit(1000))
        return exp.IntDiv(this=exp.Paren(this=exp.Sub(this=ns, expression=below)), expression=lit(1000))
    if base.startswith("TIMESTAMP") or base == "DATE":
        return fn("epoch_us", exp.cast(value, "TIMESTAMP") if base == "DATE" else value)
    return None


@dataclass
class FileSource:
    """A data file as a DuckDB relation: ``relation`` holds the raw rows, ``position``
    their 0-based order in the file; for JSONL the relation has one ``json`` column."""

    path: Path
    fmt: str
    relation: str
    columns: dict[str, str]  # column -> DuckDB type (not for JSONL)
    position: str

    def column(self, name: str) -> exp.Expr:
        return exp.column(name, table="s", quoted=True)

    def has(self, name: str) -> bool:
        return self.fmt == "jsonl" or name in self.columns

    def json_document(self) -> exp.Expr:
        return self.column("json")

    def raw_type(self, name: str) -> str:
        return "JSON" if self.fmt == "jsonl" else self.columns.get(name, "VARCHAR")

    def text(self, name: str, where: str) -> exp.Expr:
        """The text form of a field (NULL when absent)."""
        if self.fmt == "jsonl":
            return json_text(self.json_document(), json_path(name))
        if name not in self.columns:
            return _null_text()
        return typed_text(self.column(name), self.columns[name], where)

    def id_text(self, name: str) -> tuple[exp.Expr, exp.Expr]:
        """``id_text``: (the id, NULL when empty; a condition that holds on a bad id)."""
        if self.fmt == "jsonl":
            doc = self.json_document()
            kind = fn("json_type", doc.copy(), lit(json_path(name)))
            raw = fn("json_extract_string", doc.copy(), lit(json_path(name)))
            number: exp.Expr = exp.TryCast(this=raw.copy(), to=exp.DataType.build("DOUBLE"))
            value: exp.Expr = (
                exp.case()
                .when(exp.EQ(this=kind.copy(), expression=lit("VARCHAR")), strip_text(raw.copy()))
                .when(exp.In(this=kind.copy(), expressions=[lit("BIGINT"), lit("UBIGINT")]), raw.copy())
                .when(exp.and_(exp.EQ(this=kind.copy(), expression=lit("DOUBLE")),
                               exp.EQ(this=number.copy(), expression=fn("trunc", number.copy()))),
                      exp.cast(exp.cast(number.copy(), "HUGEINT"), "VARCHAR"))
                .else_(_null_text())
            )
            bad: exp.Expr = exp.In(this=kind, expressions=[lit("BOOLEAN"), lit("OBJECT"), lit("ARRAY")])
            bad = exp.or_(bad, exp.and_(exp.EQ(this=kind.copy(), expression=lit("DOUBLE")),
                                        exp.NEQ(this=number.copy(), expression=fn("trunc", number.copy()))))
            return value, bad
        if name not in self.columns:
            return _null_text(), exp.false()
        column, kind_name = self.column(name), self.columns[name].upper()
        if kind_name == "VARCHAR":
            return strip_text(column), exp.false()
        if kind_name in INTEGER_TYPES:
            return exp.cast(column, "VARCHAR"), exp.false()
        if kind_name in FLOAT_TYPES:
            number = exp.cast(column, "DOUBLE")
            whole = exp.EQ(this=number.copy(), expression=fn("trunc", number.copy()))
            value = exp.case().when(whole, exp.cast(exp.cast(number.copy(), "HUGEINT"), "VARCHAR")).else_(_null_text())
            return value, exp.and_(exp.not_(_is_null(number.copy())), exp.not_(whole.copy()))
        return _null_text(), exp.not_(_is_null(column))

    def event_type(self) -> tuple[exp.Expr, exp.Expr]:
        """``type``: (the stripped text; a condition that holds on a bad or empty type)."""
        if self.fmt == "jsonl":
            doc = self.json_document()
            kind = fn("json_type", doc.copy(), lit('$."type"'))
            value = strip_text(fn("json_extract_string", doc.copy(), lit('$."type"')))
            bad = exp.or_(exp.not_(exp.EQ(this=kind, expression=lit("VARCHAR"))), _is_null(value.copy()))
            return exp.case().when(exp.EQ(this=kind.copy(), expression=lit("VARCHAR")), value).else_(_null_text()), bad
        if self.columns.get("type", "").upper() != "VARCHAR":
            return _null_text(), exp.true()
        value = strip_text(self.column("type"))
        return value, _is_null(value.copy())

    def timestamp(self, name: str, *, python: bool = True) -> tuple[exp.Expr, exp.Expr, exp.Expr]:
        """(epoch µs or NULL, the raw value is present, the raw value is blank text)."""
        if self.fmt == "jsonl":
            doc = self.json_document()
            kind = fn("json_type", doc.copy(), lit(json_path(name)))
            raw = fn("json_extract_string", doc.copy(), lit(json_path(name)))
            is_text = exp.EQ(this=kind, expression=lit("VARCHAR"))
            present = exp.and_(exp.not_(_is_null(kind.copy())), exp.NEQ(this=kind.copy(), expression=lit("NULL")))
            blank = exp.and_(is_text.copy(), is_blank(raw))
            value = exp.case().when(is_text, timestamp_us(raw, python=python)).else_(exp.cast(exp.null(), "BIGINT"))
            return value, present, blank
        if name not in self.columns:
            return exp.cast(exp.null(), "BIGINT"), exp.false(), exp.false()
        column, type_name = self.column(name), self.columns[name]
        typed = typed_timestamp_us(column, type_name)
        present = exp.not_(_is_null(column.copy()))
        if typed is not None:
            return typed, present, exp.false()
        if type_name.upper() != "VARCHAR":
            return exp.cast(exp.null(), "BIGINT"), present, exp.false()
        return timestamp_us(column, python=python), present, is_blank(column)


def table_function(name: str, path: Path, **options: Any) -> exp.Expr:
    """``name('path', option = value, ...)`` as a table."""
    args: list[exp.Expr] = [lit(str(path))]
    for key, value in options.items():
        if isinstance(value, bool):
            rendered: exp.Expr = exp.true() if value else exp.false()
        elif isinstance(value, (list, tuple)):
            rendered = exp.Array(expressions=[lit(v) for v in value])
        else:
            rendered = lit(value)
        args.append(exp.EQ(this=exp.column(key), expression=rendered))
    return exp.Table(this=fn(name, *args))


def csv_reader(path: Path, names: Sequence[str]) -> exp.Expr:
    return table_function(
        "read_csv", path, header=True, all_varchar=True, delim=",", quote='"', escape='"',
        strict_mode=True, null_padding=False, names=list(names),
    )
