"""The operator table of the language (engine/values.py) as SQL predicates.

Every attribute and property arrives as its *text form* (``engine.values.text_form``:
``true``/``false``, ``50`` for 50.0, Python's repr for other floats), NULL when
missing. That one column is enough for every operator, because Python's rules are
functions of the text form: a value is a number exactly when its stripped text form
matches ``NUMBER_RE``; string operators fold the text form (strip ASCII white space,
lower-case); ``matches`` searches the text form as it is. Operands are folded or
converted here, in Python, at compile time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from leadscore.engine.values import folded
from leadscore.sql.dialects import Dialect, UnsupportedOnEngine, double
from leadscore.sql.regex import UnsupportedPattern, translate

Test = Callable[[Dialect, exp.Expr, Any, str], exp.Expr]


def _false() -> exp.Expr:
    return exp.false()


def _is_number_operand(operand: Any) -> bool:
    return isinstance(operand, (int, float)) and not isinstance(operand, bool)


def _number_equals(dialect: Dialect, value: exp.Expr, operand: float | int) -> exp.Expr:
    if float(operand) != operand:  # an int no double equals (Python compares exactly)
        return _false()
    return exp.EQ(this=dialect.number(value), expression=double(operand))


def _equals(dialect: Dialect, value: exp.Expr, operand: Any, where: str) -> exp.Expr:
    if _is_number_operand(operand):
        return _number_equals(dialect, value, operand)
    return exp.EQ(this=dialect.fold(value), expression=exp.Literal.string(folded(operand)))


def _in(dialect: Dialect, value: exp.Expr, operands: list[Any], where: str) -> exp.Expr:
    texts = [folded(o) for o in operands if not _is_number_operand(o)]
    numbers = [o for o in operands if _is_number_operand(o) and float(o) == o]
    tests: list[exp.Expr] = []
    if texts:
        tests.append(exp.In(this=dialect.fold(value), expressions=[exp.Literal.string(t) for t in dict.fromkeys(texts)]))
    if numbers:
        unique = list(dict.fromkeys(float(n) for n in numbers))
        tests.append(exp.In(this=dialect.number(value), expressions=[double(n) for n in unique]))
    if not tests:
        return _false()
    return exp.or_(*[_known(t) for t in tests])


def _contains(dialect: Dialect, value: exp.Expr, operand: str, where: str) -> exp.Expr:
    needle = folded(operand)
    if not needle:
        return exp.true()
    position = exp.StrPosition(this=dialect.fold(value), substr=exp.Literal.string(needle))
    return exp.GT(this=position, expression=exp.Literal.number(0))


def _starts_with(dialect: Dialect, value: exp.Expr, operand: str, where: str) -> exp.Expr:
    prefix = folded(operand)
    if not prefix:
        return exp.true()
    return exp.StartsWith(this=dialect.fold(value), expression=exp.Literal.string(prefix))


def _matches(dialect: Dialect, value: exp.Expr, pattern: str, where: str) -> exp.Expr:
    try:
        translation = translate(pattern, dialect.regex_flavour, where)
    except UnsupportedPattern as exc:
        raise UnsupportedOnEngine(str(exc)) from None
    return dialect.regex(value, translation, pattern)


def _compare(kind: type[exp.Binary]) -> Test:
    def test(dialect: Dialect, value: exp.Expr, operand: float, where: str) -> exp.Expr:
        return kind(this=dialect.number(value), expression=double(operand))

    return test


def _between(dialect: Dialect, value: exp.Expr, bounds: list[float], where: str) -> exp.Expr:
    return exp.Between(this=dialect.number(value), low=double(bounds[0]), high=double(bounds[1]))


def _known(test: exp.Expr) -> exp.Expr:
    """NULL (a text that is no number, ...) counts as false."""
    if isinstance(test, exp.Boolean):
        return test
    return exp.Coalesce(this=test, expressions=[_false()])


OPERATOR_TESTS: dict[str, Test] = {
    "equals": _equals,
    "not_equals": lambda d, v, o, w: exp.not_(_known(_equals(d, v, o, w))),
    "in": _in,
    "not_in": lambda d, v, o, w: exp.not_(_known(_in(d, v, o, w))),
    "contains": _contains,
    "starts_with": _starts_with,
    "matches": _matches,
    "gt": _compare(exp.GT),
    "gte": _compare(exp.GTE),
    "lt": _compare(exp.LT),
    "lte": _compare(exp.LTE),
    "between": _between,
}


def predicate(dialect: Dialect, value: exp.Expr, op: str, operand: Any, where: str) -> exp.Expr:
    """``test_value``: a missing value (NULL) fails every operator but ``exists: false``."""
    present = exp.not_(exp.Is(this=value.copy(), expression=exp.null()))
    if op == "exists":
        return present if operand else exp.Is(this=value.copy(), expression=exp.null())
    if op not in OPERATOR_TESTS:
        raise UnsupportedOnEngine(f"{where}: the operator '{op}' has no SQL form")
    test = OPERATOR_TESTS[op](dialect, value, operand, where)
    return exp.and_(present, _known(test))


def within_lower_bound(as_of_us: int, days: float) -> int:
    """The smallest ``ts_us`` with ``as_of_us - ts_us <= days * MICROS_PER_DAY`` (exactly)."""
    from leadscore.engine.timestamps import MICROS_PER_DAY

    return as_of_us - math.floor(days * MICROS_PER_DAY)
