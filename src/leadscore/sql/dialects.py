"""The SQL dialects leadscore compiles to: one generator (SQLGlot), a small table of differences.

Everything the three engines share is written once in :mod:`leadscore.sql.compiler`
with SQLGlot's expression builder; a :class:`Dialect` holds only what differs:

================  =====================  ========================  =====================
difference        duckdb                 postgres                  spark
================  =====================  ========================  =====================
regex flavour     RE2 (+ Python for      ARE                       java.util.regex
                  ``\\b`` on non-ASCII)
text -> number    ``TRY_CAST``           via ``NUMERIC``           ``CAST`` (guarded)
0.5 ** x          ``POWER``              ``POWER``, 0 below 2^-990  ``POWER``
                                         (PostgreSQL raises on
                                         underflow)
top-N events      ``MAX(ts, n)`` list    ``ROW_NUMBER()`` window   ``ROW_NUMBER()`` window
rule points CTE   ``MATERIALIZED``       ``MATERIALIZED``          (Spark keeps it)
================  =====================  ========================  =====================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from leadscore.errors import LeadscoreError
from leadscore.sql.regex import Translation

# Python's NUMBER_RE (engine/values.py) with ASCII digits, anchored, around the ASCII white
# space as_number strips (" 7.5 " is 7.5); every engine's cast to a number skips it too.
_SPACE = r"[ \t\n\r\f\v]*"
NUMBER_PATTERN = rf"^{_SPACE}[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?{_SPACE}$"
# DuckDB calls back into Python for ``matches`` on non-ASCII text when RE2 differs there.
PYTHON_REGEX_FUNCTION = "leadscore_re_search"
DOUBLE_MAX = "1.7976931348623157e308"


class UnsupportedOnEngine(LeadscoreError):
    """The model uses something this engine cannot compute exactly as the python engine does."""


def double(value: float | int | str) -> exp.Expr:
    """A DOUBLE literal whose value is exactly ``float(value)``."""
    number = float(value)
    text = repr(number)
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"not a finite number: {value!r}")
    return exp.cast(exp.Literal.number(text), exp.DataType.Type.DOUBLE)


def _regex_like(value: exp.Expr, pattern: str) -> exp.Expr:
    return exp.RegexpLike(this=value, expression=exp.Literal.string(pattern))


def _duckdb_regex(value: exp.Expr, translation: Translation, original: str) -> exp.Expr:
    test = _regex_like(value, translation.pattern)
    if not translation.ascii_only:
        return test
    # RE2's \b is ASCII-only: exact on ASCII text; other text asks Python's re.
    is_ascii = exp.EQ(this=exp.func("strlen", value), expression=exp.Length(this=value))
    python = exp.func(PYTHON_REGEX_FUNCTION, value, exp.Literal.string(original))
    return exp.If(this=is_ascii, true=test, false=python)


def _plain_regex(value: exp.Expr, translation: Translation, original: str) -> exp.Expr:
    return _regex_like(value, translation.pattern)


def _finite(number: exp.Expr) -> exp.Expr:
    return exp.LTE(this=exp.Abs(this=number), expression=double(DOUBLE_MAX))


def _duckdb_number(text: exp.Expr) -> exp.Expr:
    number = exp.TryCast(this=text, to=exp.DataType.build("double"))
    guard = exp.func("regexp_full_match", text, exp.Literal.string(NUMBER_PATTERN[1:-1]))
    return exp.case().when(exp.and_(guard, _finite(number)), number)


def _spark_number(text: exp.Expr) -> exp.Expr:
    number = exp.cast(text, exp.DataType.Type.DOUBLE)
    guard = _regex_like(text, NUMBER_PATTERN)
    return exp.case().when(exp.and_(guard, _finite(number)), number)


def _postgres_number(text: exp.Expr) -> exp.Expr:
    # float8in raises on overflow and on underflow to 0, so go through NUMERIC first
    # (exact); the pattern bounds the digits so that NUMERIC always accepts the text.
    bounded = rf"^{_SPACE}[+-]?([0-9]{{1,250}}(\.[0-9]{{0,250}})?|\.[0-9]{{1,250}})([eE][+-]?[0-9]{{1,3}})?{_SPACE}$"
    exact = exp.Abs(this=exp.cast(text, exp.DataType.Type.DECIMAL))
    return (
        exp.case()
        .when(exp.not_(_regex_like(text, bounded)), exp.null())
        .when(exp.GT(this=exact, expression=exp.Literal.number(DOUBLE_MAX)), exp.null())
        .when(exp.LTE(this=exact, expression=exp.Literal.number("2.4703282292062328e-324")), double(0))
        .else_(exp.cast(text, exp.DataType.Type.DOUBLE))
    )


def _fold(value: exp.Expr) -> exp.Expr:
    """``folded``: strip ASCII white space, lower-case."""
    trimmed = exp.Trim(this=value, expression=exp.Literal.string(" \t\n\r\f\v"), position="BOTH")
    return exp.Lower(this=trimmed)


def _duckdb_fold(value: exp.Expr) -> exp.Expr:
    # DuckDB's TRIM with a character set is slow; a text whose first and last characters
    # are above ' ' (all six white-space characters are at or below it) has none to strip.
    one = exp.Literal.number(1)
    bare = exp.and_(exp.GT(this=exp.Left(this=value.copy(), expression=one), expression=exp.Literal.string(" ")),
                    exp.GT(this=exp.Right(this=value.copy(), expression=one.copy()),
                           expression=exp.Literal.string(" ")))
    return exp.If(this=bare, true=exp.Lower(this=value.copy()), false=_fold(value.copy()))


def _power(exponent: exp.Expr) -> exp.Expr:
    return exp.Pow(this=double(0.5), expression=exponent)


def _postgres_power(exponent: exp.Expr) -> exp.Expr:
    # PostgreSQL raises "value out of range: underflow" where C gives 0 (and so would a
    # product with such a factor); 0.5 ** 990 is 1e-298: no score can tell the difference.
    return exp.If(
        this=exp.GTE(this=exponent, expression=exp.Literal.number(990)),
        true=double(0),
        false=_power(exponent),
    )


@dataclass(frozen=True)
class Dialect:
    """What one SQL engine does differently."""

    name: str
    sqlglot: str  # the SQLGlot dialect that writes the SQL
    regex_flavour: str  # see leadscore.sql.regex.FLAVOURS
    regex: Callable[[exp.Expr, Translation, str], exp.Expr]
    number: Callable[[exp.Expr], exp.Expr]  # text form -> DOUBLE or NULL
    half_power: Callable[[exp.Expr], exp.Expr]  # x -> 0.5 ** x
    top_n_aggregate: bool  # MAX(x, n) gives the n largest values as a list
    materialize: bool  # WITH ... AS MATERIALIZED (else the engine may inline and recompute)
    fold: Callable[[exp.Expr], exp.Expr] = _fold  # strip ASCII white space, lower()

    def sql(self, expression: exp.Expr, *, pretty: bool = False) -> str:
        return expression.sql(dialect=self.sqlglot, pretty=pretty)


DIALECTS: dict[str, Dialect] = {
    "duckdb": Dialect("duckdb", "duckdb", "re2", _duckdb_regex, _duckdb_number, _power, True, True,
                      _duckdb_fold),
    "postgres": Dialect(
        "postgres", "postgres", "postgres", _plain_regex, _postgres_number, _postgres_power, False, True
    ),
    "spark": Dialect("spark", "spark", "java", _plain_regex, _spark_number, _power, False, False),
}


def get_dialect(dialect: str | Dialect) -> Dialect:
    """A dialect by name (``duckdb``, ``postgres``, ``spark``)."""
    if isinstance(dialect, Dialect):
        return dialect
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    return DIALECTS[dialect]
