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
import weakref
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

WHITESPACE = " \t\n\r\f\v"
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


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
    if value.__class__ is str:
        return value.strip(WHITESPACE).lower()  # type: ignore[no-any-return]
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


ValueTest = Callable[[Any], bool]  # applied to a value that is not missing


def _equals(operand: Any) -> ValueTest:
    if _is_number_operand(operand):
        target = float(operand)
        return lambda v: as_number(v) == target
    text = folded(operand)
    return lambda v: folded(v) == text


def _one_of(operands: list[Any]) -> ValueTest:
    """``in``: equal to any operand (numbers as numbers, the rest as folded text)."""
    numbers = {float(o) for o in operands if _is_number_operand(o)}
    texts = {folded(o) for o in operands if not _is_number_operand(o)}

    def test(v: Any) -> bool:
        if texts and folded(v) in texts:
            return True
        return bool(numbers) and as_number(v) in numbers

    return test


def _negate(factory: Callable[[Any], ValueTest]) -> Callable[[Any], ValueTest]:
    def make(operand: Any) -> ValueTest:
        test = factory(operand)
        return lambda v: not test(v)

    return make


def _contains(operand: str) -> ValueTest:
    text = folded(operand)
    return lambda v: text in folded(v)


def _starts_with(operand: str) -> ValueTest:
    text = folded(operand)
    return lambda v: folded(v).startswith(text)


_MEMO_LIMIT = 20_000  # texts remembered per `matches` test
_MEMO_TEXT_LIMIT = 4096  # characters: a longer text is searched each time, never kept
_MEMO_CHARS = 1_000_000  # characters of all the texts of one memo
_memos: weakref.WeakValueDictionary[int, _Memo] = weakref.WeakValueDictionary()


class _Memo(dict[str, bool]):
    """The results of one `matches` test by value text: at most _MEMO_LIMIT texts of at
    most _MEMO_TEXT_LIMIT characters, _MEMO_CHARS characters in all (a few MB at worst; in
    practice the few distinct job titles or industries); registered so that
    :func:`forget_values` can empty it."""

    chars = 0

    def remember(self, text: str, found: bool) -> None:
        size = len(text)
        if size <= _MEMO_TEXT_LIMIT and len(self) < _MEMO_LIMIT and self.chars + size <= _MEMO_CHARS:
            self[text] = found
            self.chars += size

    def clear(self) -> None:
        super().clear()
        self.chars = 0


def forget_values() -> None:
    """Empty every memo of lead values (when a lead is erased: no cache keeps its data)."""
    for memo in list(_memos.values()):
        memo.clear()


def _matches(operand: str) -> ValueTest:
    search = re.compile(operand).search
    memo = _Memo()  # attribute values repeat (job titles, industries): search once
    _memos[id(memo)] = memo

    def test(v: Any) -> bool:
        text = text_form(v)
        found = memo.get(text)
        if found is None:
            found = search(text) is not None
            memo.remember(text, found)
        return found

    return test


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Any], ValueTest]:
    def make(operand: float) -> ValueTest:
        def test(v: Any) -> bool:
            number = as_number(v)
            return number is not None and compare(number, operand)

        return test

    return make


def _between(bounds: list[float]) -> ValueTest:
    low, high = bounds

    def test(v: Any) -> bool:
        number = as_number(v)
        return number is not None and low <= number <= high

    return test


# The operator table: operator name -> factory(operand) -> test(value).
# `exists` is decided on missing-ness alone (see value_test).
OPERATORS: dict[str, Callable[[Any], ValueTest]] = {
    "equals": _equals,
    "not_equals": _negate(_equals),
    "in": _one_of,
    "not_in": _negate(_one_of),
    "contains": _contains,
    "starts_with": _starts_with,
    "matches": _matches,
    "gt": _numeric(lambda n, o: n > o),
    "gte": _numeric(lambda n, o: n >= o),
    "lt": _numeric(lambda n, o: n < o),
    "lte": _numeric(lambda n, o: n <= o),
    "between": _between,
}

LookupTest = Callable[[Mapping[str, Any]], bool]


def value_test(name: str, op: str, operand: Any) -> LookupTest:
    """A test of ``values[name]``: a missing value fails every operator but ``exists: false``."""
    if op == "exists":
        want_present = bool(operand)
        return lambda values: is_missing(values.get(name)) is not want_present
    test = OPERATORS[op](operand)
    fast = _text_check(name, op, operand, test)
    if fast is not None:
        return fast

    def check(values: Mapping[str, Any]) -> bool:
        value = values.get(name)
        if value is None or (value.__class__ is float and value != value):
            return False
        return test(value)

    return check


# The common tests of a text value (event properties: urls, assets, links, categories)
# with the value folded inline as `folded` folds a str, then compared as the operator's
# test compares (perf, issue #3: testing a str value took three calls, check -> the
# operator's test -> folded; here it is one, and a C method for most operators).
TextTest = Callable[[str], bool]  # applied to the value's folded text


def _text_test(op: str, operand: Any) -> TextTest | None:
    """The test of ``op`` on a folded text value, when it needs nothing else (None: use the
    operator's own test; `contains` and `starts_with` are written in their checks)."""
    if op in ("equals", "not_equals") and not _is_number_operand(operand):
        return folded(operand).__eq__ if op == "equals" else folded(operand).__ne__
    if op in ("in", "not_in") and not any(_is_number_operand(o) for o in operand):
        texts = frozenset(folded(o) for o in operand)
        return texts.__contains__ if op == "in" else lambda v: v not in texts
    return None


def _text_check(name: str, op: str, operand: Any, test: ValueTest) -> LookupTest | None:
    """``check`` of value_test with a str value tested on its folded text, or None."""
    if op == "contains":
        part = folded(operand)

        def contains(values: Mapping[str, Any]) -> bool:
            value = values.get(name)
            if value.__class__ is str:
                return part in value.strip(WHITESPACE).lower()  # type: ignore[union-attr]
            if value is None or (value.__class__ is float and value != value):
                return False
            return test(value)

        return contains
    if op == "starts_with":
        prefix = folded(operand)

        def starts_with(values: Mapping[str, Any]) -> bool:
            value = values.get(name)
            if value.__class__ is str:
                return value.strip(WHITESPACE).lower().startswith(prefix)  # type: ignore[union-attr,no-any-return]
            if value is None or (value.__class__ is float and value != value):
                return False
            return test(value)

        return starts_with
    on_text = _text_test(op, operand)
    if on_text is None:
        return None

    def check(values: Mapping[str, Any]) -> bool:
        value = values.get(name)
        if value.__class__ is str:
            return on_text(value.strip(WHITESPACE).lower())  # type: ignore[union-attr]
        if value is None or (value.__class__ is float and value != value):
            return False
        return test(value)

    return check


@lru_cache(maxsize=4096, typed=True)
def _cached_test(name: str, op: str, operand: Any) -> LookupTest:
    return value_test(name, op, operand)


def test_value(values: Mapping[str, Any], name: str, op: str, operand: Any) -> bool:
    """Apply one operator to ``values[name]`` (see :func:`value_test`)."""
    key = tuple(operand) if isinstance(operand, list) else operand
    test = _cached_test(name, op, key) if key is operand else value_test(name, op, operand)
    return test(values)
