"""How attribute and property values compare: the operator table of the language.

These few functions define the comparison semantics every engine must copy:

* *text form*: booleans are ``true``/``false``; whole numbers have no decimal part
  (``50.0`` -> ``50``); other numbers use Python's shortest round-trip form.
* string operators compare the text form with leading/trailing ASCII white space
  removed and letters lower-cased (``str.lower``).
* a value is a *number* when it is an int or float (not a boolean), or a text whose
  stripped form matches ``NUMBER_RE`` (no ``nan``, ``inf``, ``1_000`` or ``0x10``).
* an absent attribute, ``None`` and a float NaN are all *missing*.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

WHITESPACE = " \t\n\r\f\v"
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MISSING = object()


def is_missing(value: Any) -> bool:
    """True for None and float NaN (how files spell an empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def text_form(value: Any) -> str:
    """The text a value compares as, before case and white space are folded."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def folded(value: Any) -> str:
    """Text form, stripped of leading/trailing white space, lower-cased."""
    return text_form(value).strip(WHITESPACE).lower()


def as_number(value: Any) -> float | None:
    """The number a value stands for, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        stripped = value.strip(WHITESPACE)
        if NUMBER_RE.fullmatch(stripped):
            number = float(stripped)
            return number if math.isfinite(number) else None
    return None


def _is_number_operand(operand: Any) -> bool:
    return isinstance(operand, (int, float)) and not isinstance(operand, bool)


def values_equal(value: Any, operand: Any) -> bool:
    """``equals``: numbers compare as numbers when the operand is a number, else folded text."""
    if _is_number_operand(operand):
        number = as_number(value)
        return number is not None and number == operand
    return folded(value) == folded(operand)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _between(value: Any, bounds: list[float]) -> bool:
    number = as_number(value)
    return number is not None and bounds[0] <= number <= bounds[1]


def _compare(test: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def check(value: Any, operand: Any) -> bool:
        number = as_number(value)
        return number is not None and test(number, operand)

    return check


# operator name -> test(value, operand); value is never missing here.
OPERATOR_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": values_equal,
    "not_equals": lambda v, o: not values_equal(v, o),
    "in": lambda v, o: any(values_equal(v, x) for x in o),
    "not_in": lambda v, o: not any(values_equal(v, x) for x in o),
    "contains": lambda v, o: folded(o) in folded(v),
    "starts_with": lambda v, o: folded(v).startswith(folded(o)),
    "matches": lambda v, o: _regex(o).search(text_form(v)) is not None,
    "gt": _compare(lambda n, o: n > o),
    "gte": _compare(lambda n, o: n >= o),
    "lt": _compare(lambda n, o: n < o),
    "lte": _compare(lambda n, o: n <= o),
    "between": _between,
    "exists": lambda v, o: bool(o),
}


def test_value(values: Mapping[str, Any], name: str, op: str, operand: Any) -> bool:
    """Apply one operator to ``values[name]``; a missing value fails all but ``exists: false``."""
    value = values.get(name, _MISSING)
    if value is _MISSING or is_missing(value):
        return op == "exists" and operand is False
    return OPERATOR_TESTS[op](value, operand)
