"""Python regular expressions (the ``matches`` operator) rewritten for SQL engines.

``matches`` is Python's ``re.search`` with the pattern as written. Each engine has its
own regex dialect: DuckDB uses RE2, PostgreSQL its ARE engine, Spark Java's
``java.util.regex``. A pattern is parsed with Python's own parser and written out again
for the target, node by node (``{opcode: emitter}``), so that the meaning is Python's:

* character classes (``\\d``, ``\\w``, ``\\s``, ``.``, ``[^...]``) become explicit code-point
  ranges computed from Python's own definitions, so ``\\d`` means Unicode decimal digits
  everywhere (RE2's ``\\d`` is ASCII only, PostgreSQL's follows the locale);
* ``$`` keeps Python's meaning (end, or before a final newline);
* ``\\b`` becomes a look-around over the explicit word class on PostgreSQL and Spark. RE2
  has no look-around and its ``\\b`` is ASCII-only: the translation is *exact on ASCII text
  only*, and the caller checks the value is ASCII and otherwise asks Python
  (:attr:`Translation.ascii_only`);
* whether a match *exists* does not depend on greediness, so lazy repeats are written greedy.

What a target cannot express the same way is refused with :class:`UnsupportedPattern`
(look-arounds and back-references on RE2, scoped flags on PostgreSQL, conditionals
anywhere, ...): run such models with ``--engine python``.
"""

from __future__ import annotations

import re
import re._constants as sre_c  # Python's own regex parser (3.11+)
import re._parser as sre_parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Any

Ranges = tuple[tuple[int, int], ...]
MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
FLAVOURS = ("re2", "postgres", "java")
# largest {m,n} count each engine accepts
_MAX_COUNT = {"re2": 1000, "postgres": 255, "java": 1_000_000}
_ENGINE_NAME = {"re2": "DuckDB (RE2)", "postgres": "PostgreSQL", "java": "Spark (Java regex)"}


class UnsupportedPattern(ValueError):
    """The pattern means something else (or nothing) in the target's regex dialect."""


@dataclass(frozen=True)
class Translation:
    """A pattern for one engine. ``ascii_only``: exact only for ASCII text (RE2 ``\\b``)."""

    pattern: str
    ascii_only: bool = False


# ---- code-point sets ------------------------------------------------------------------


def _ranges_of(test: Callable[[str], bool]) -> Ranges:
    out: list[tuple[int, int]] = []
    start = -1
    for code in range(MAX_CODE_POINT + 2):
        inside = code <= MAX_CODE_POINT and test(chr(code))
        if inside and start < 0:
            start = code
        elif not inside and start >= 0:
            out.append((start, code - 1))
            start = -1
    return tuple(out)


@cache
def _category(name: str, ascii_only: bool) -> Ranges:
    """Python's own ``\\d``, ``\\s``, ``\\w`` (str patterns), as code-point ranges."""
    if ascii_only:
        table = {"digit": "0-9", "space": " \t\n\r\f\v", "word": "a-zA-Z0-9_"}
        return _ranges_of(lambda ch: ch.isascii() and re.fullmatch(f"[{table[name]}]", ch) is not None)
    tests: dict[str, Callable[[str], bool]] = {
        "digit": str.isdecimal,
        "space": str.isspace,
        "word": lambda ch: ch.isalnum() or ch == "_",
    }
    return _ranges_of(tests[name])


def _union(parts: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(parts):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    next_start = 0
    for lo, hi in ranges:
        if lo > next_start:
            out.append((next_start, lo - 1))
        next_start = hi + 1
    if next_start <= MAX_CODE_POINT:
        out.append((next_start, MAX_CODE_POINT))
    return tuple(out)


_CATEGORIES: dict[Any, tuple[str, bool]] = {
    sre_c.CATEGORY_DIGIT: ("digit", False),
    sre_c.CATEGORY_NOT_DIGIT: ("digit", True),
    sre_c.CATEGORY_SPACE: ("space", False),
    sre_c.CATEGORY_NOT_SPACE: ("space", True),
    sre_c.CATEGORY_WORD: ("word", False),
    sre_c.CATEGORY_NOT_WORD: ("word", True),
}


# ---- the writer -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    flavour: str
    flags: int
    rule: str
    tail: bool = False  # nothing can be consumed after this point of the pattern

    @property
    def ascii(self) -> bool:
        return bool(self.flags & sre_c.SRE_FLAG_ASCII)

    def refuse(self, what: str) -> UnsupportedPattern:
        return UnsupportedPattern(
            f"{self.rule}: the pattern uses {what}, which {_ENGINE_NAME[self.flavour]} cannot "
            "match the way Python does; run this model with --engine python"
        )


def _escape(code: int, flavour: str) -> str:
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    if 0x20 < code < 0x7F:
        return "\\" + char
    if flavour == "postgres":
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return f"\\x{{{code:x}}}"


def _class(ranges: Ranges, ctx: _Context) -> str:
    # Code points that UTF-8 text cannot hold (surrogates; NUL for PostgreSQL) are left out.
    lowest = 1 if ctx.flavour == "postgres" else 0
    parts: list[str] = []
    for lo, hi in ranges:
        for a, b in ((lo, min(hi, _SURROGATES[0] - 1)), (max(lo, _SURROGATES[1] + 1), hi)):
            a = max(a, lowest)
            if a > b:
                continue
            parts.append(_escape(a, ctx.flavour) if a == b else f"{_escape(a, ctx.flavour)}-{_escape(b, ctx.flavour)}")
    if not parts:
        return "[^\\u0001-\\U0010ffff]" if ctx.flavour == "postgres" else "[^\\x{0}-\\x{10ffff}]"
    return "[" + "".join(parts) + "]"


def _set_of(items: list[tuple[Any, Any]], ctx: _Context) -> Ranges:
    parts: list[tuple[int, int]] = []
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            parts.append((av, av))
        elif op is sre_c.RANGE:
            parts.append((av[0], av[1]))
        elif op is sre_c.CATEGORY:
            if av not in _CATEGORIES:
                raise ctx.refuse(f"the class {av}")
            name, negated = _CATEGORIES[av]
            ranges = _category(name, ctx.ascii)
            parts.extend(_complement(ranges) if negated else ranges)
        else:
            raise ctx.refuse(f"{op} inside a character class")
    result = _union(parts)
    return _complement(result) if negate else result


def _seq(items: Any, ctx: _Context) -> str:
    items = list(items)
    last = len(items) - 1
    return "".join(
        _node(op, av, replace(ctx, tail=ctx.tail and index == last))
        for index, (op, av) in enumerate(items)
    )


def _literal(av: int, ctx: _Context) -> str:
    return _escape(av, ctx.flavour)


def _not_literal(av: int, ctx: _Context) -> str:
    return _class(_complement(((av, av),)), ctx)


def _any(av: None, ctx: _Context) -> str:
    if ctx.flags & sre_c.SRE_FLAG_DOTALL:
        return _class(((0, MAX_CODE_POINT),), ctx)
    return _class(_complement(((10, 10),)), ctx)


def _in(av: list[tuple[Any, Any]], ctx: _Context) -> str:
    return _class(_set_of(av, ctx), ctx)


def _branch(av: tuple[None, list[Any]], ctx: _Context) -> str:
    return "(?:" + "|".join(_seq(branch, ctx) for branch in av[1]) + ")"


def _subpattern(av: tuple[int | None, int, int, Any], ctx: _Context) -> str:
    group, add, remove, inner = av
    body_ctx = ctx
    prefix = ""
    if add or remove:
        flags = (ctx.flags | add) & ~remove
        body_ctx = replace(ctx, flags=flags)
        changed = (ctx.flags ^ flags) & sre_c.SRE_FLAG_IGNORECASE
        if changed:
            if ctx.flavour == "postgres":
                raise ctx.refuse("a scoped flag (?i:...)")
            on = "i" + ("u" if ctx.flavour == "java" else "")
            prefix = f"(?{on}:" if flags & sre_c.SRE_FLAG_IGNORECASE else f"(?-{on}:"
    body = _seq(inner, body_ctx)
    if prefix:
        body = prefix + body + ")"
    return f"({body})" if group is not None else f"(?:{body})"


def _repeat(kind: Any) -> Callable[[tuple[int, int, Any], _Context], str]:
    def emit(av: tuple[int, int, Any], ctx: _Context) -> str:
        low, high, inner = av
        if kind is sre_c.POSSESSIVE_REPEAT and ctx.flavour != "java":
            raise ctx.refuse("a possessive repeat (*+, ++, ?+)")
        limit = _MAX_COUNT[ctx.flavour]
        if low > limit or (high is not sre_c.MAXREPEAT and high > limit):
            raise ctx.refuse(f"a repeat count above {limit}")
        body = f"(?:{_seq(inner, replace(ctx, tail=False))})"
        if high is sre_c.MAXREPEAT:
            count = "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
        elif low == high:
            count = f"{{{low}}}"
        elif (low, high) == (0, 1):
            count = "?"
        else:
            count = f"{{{low},{high}}}"
        return body + count + ("+" if kind is sre_c.POSSESSIVE_REPEAT else "")

    return emit


def _word_boundary(ctx: _Context, negated: bool) -> str:
    if ctx.flavour == "re2":
        if negated:  # Python's \B never matches an empty text; RE2's does
            raise ctx.refuse("\\B (not a word boundary)")
        return "\\b"
    word = _class(_category("word", ctx.ascii), ctx)
    anything = _class(((0, MAX_CODE_POINT),), ctx)
    if negated:  # ... and not in an empty text, as in Python
        return f"(?:(?<={word})(?={word})|(?<!{word})(?!{word})(?:(?<={anything})|(?={anything})))"
    return f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"


def _at(av: Any, ctx: _Context) -> str:
    multiline = bool(ctx.flags & sre_c.SRE_FLAG_MULTILINE)
    end = {"re2": "\\z", "postgres": "\\Z", "java": "\\z"}[ctx.flavour]
    if av is sre_c.AT_BEGINNING_STRING:
        return "\\A"
    if av is sre_c.AT_END_STRING:
        return end
    if av is sre_c.AT_BEGINNING:
        if not multiline:
            return "^" if ctx.flavour != "java" else "\\A"
        return "(?m:^)" if ctx.flavour == "re2" else "(?:\\A|(?<=\\n))"
    if av is sre_c.AT_END:
        if multiline:
            return "(?m:$)" if ctx.flavour == "re2" else f"(?=\\n|{end})"
        if ctx.flavour != "re2":
            return f"(?=\\n?{end})"
        # RE2 has no look-ahead: "(?:\n?\z)" consumes the final newline, which is the
        # same as Python's "$" only when nothing follows it.
        if not ctx.tail:
            raise ctx.refuse("'$' before more of the pattern")
        return "(?:\\n?\\z)"
    if av is sre_c.AT_BOUNDARY:
        return _word_boundary(ctx, negated=False)
    if av is sre_c.AT_NON_BOUNDARY:
        return _word_boundary(ctx, negated=True)
    raise ctx.refuse(f"the anchor {av}")


def _assert(negative: bool) -> Callable[[tuple[int, Any], _Context], str]:
    def emit(av: tuple[int, Any], ctx: _Context) -> str:
        direction, inner = av
        if ctx.flavour == "re2":
            raise ctx.refuse("a look-ahead or look-behind")
        kind = ("<" if direction < 0 else "") + ("!" if negative else "=")
        return f"(?{kind}{_seq(inner, ctx)})"

    return emit


def _groupref(av: int, ctx: _Context) -> str:
    if ctx.flavour == "re2":
        raise ctx.refuse("a back-reference")
    return f"(?:\\{av})" if ctx.flavour == "java" else f"\\{av}"


def _refused(what: str) -> Callable[[Any, _Context], str]:
    def emit(av: Any, ctx: _Context) -> str:
        raise ctx.refuse(what)

    return emit


def _atomic(av: Any, ctx: _Context) -> str:
    if ctx.flavour != "java":
        raise ctx.refuse("an atomic group (?>...)")
    return f"(?>{_seq(av, ctx)})"


_EMITTERS: dict[Any, Callable[[Any, _Context], str]] = {
    sre_c.LITERAL: _literal,
    sre_c.NOT_LITERAL: _not_literal,
    sre_c.ANY: _any,
    sre_c.IN: _in,
    sre_c.BRANCH: _branch,
    sre_c.SUBPATTERN: _subpattern,
    sre_c.MAX_REPEAT: _repeat(sre_c.MAX_REPEAT),
    sre_c.MIN_REPEAT: _repeat(sre_c.MIN_REPEAT),
    sre_c.POSSESSIVE_REPEAT: _repeat(sre_c.POSSESSIVE_REPEAT),
    sre_c.AT: _at,
    sre_c.ASSERT: _assert(negative=False),
    sre_c.ASSERT_NOT: _assert(negative=True),
    sre_c.GROUPREF: _groupref,
    sre_c.GROUPREF_EXISTS: _refused("a conditional group (?(1)...)"),
    sre_c.ATOMIC_GROUP: _atomic,
}


def _node(op: Any, av: Any, ctx: _Context) -> str:
    emitter = _EMITTERS.get(op)
    if emitter is None:
        raise ctx.refuse(f"the construct {op}")
    return emitter(av, ctx)


@lru_cache(maxsize=512)
def translate(pattern: str, flavour: str, rule: str = "matches") -> Translation:
    """``pattern`` (Python syntax) for ``flavour`` (re2, postgres, java); ``rule`` names
    where the pattern is, for the error message."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown regex flavour {flavour!r}; one of {', '.join(FLAVOURS)}")
    parsed = sre_parse.parse(pattern)
    flags = parsed.state.flags
    ctx = _Context(flavour, flags, rule, tail=True)
    if flags & sre_c.SRE_FLAG_LOCALE:
        raise ctx.refuse("the LOCALE flag")
    text = _seq(parsed, ctx)
    if flags & sre_c.SRE_FLAG_IGNORECASE:
        text = ("(?iu)" if flavour == "java" else "(?i)") + text
    ascii_only = flavour == "re2" and not ctx.ascii and any(
        op is sre_c.AT and av in (sre_c.AT_BOUNDARY, sre_c.AT_NON_BOUNDARY) for op, av in _walk(parsed)
    )
    return Translation(text, ascii_only)


def _walk(items: Any) -> Any:
    for op, av in items:
        yield op, av
        if op is sre_c.BRANCH:
            for branch in av[1]:
                yield from _walk(branch)
        elif op is sre_c.SUBPATTERN:
            yield from _walk(av[3])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            yield from _walk(av[2])
        elif op in (sre_c.ASSERT, sre_c.ASSERT_NOT):  # noqa: SIM114
            yield from _walk(av[1])
        elif op is sre_c.ATOMIC_GROUP:
            yield from _walk(av)
