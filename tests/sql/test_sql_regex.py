"""``matches`` patterns rewritten for RE2 (DuckDB), PostgreSQL and Java (Spark)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sql_harness import duckdb_connection

from leadscore.model import parse_model
from leadscore.sql import UnsupportedOnEngine, compile_model, translate
from leadscore.sql.regex import UnsupportedPattern

PATTERNS = [
    r"(?i)\b(ceo|cto|vice[- ]president)\b", r"^/pricing", r"\d+", r"Đốc", r"(?i)giám", r"^$", r"^[A-Z]",
    r"\.0$", r"a.b", r"(?s)a.b", r"(?m)^x$", r"[^a-c\d]z", r"\bvp\b", r"a{2,3}?", r"\s+", r"x\Z", r"\Ax",
    r"(?x) a  b  # comment", r"[\w-]+@", r"\W", r"(?i:X)y", r"\B", r"(a|b)+c*", r"é|ß",
]
TEXTS = [
    "CEO", "the vp", "vp", "xvp", "vpé", "évp", "a\nb", "axb", "/pricing/x", "x/pricing", "12", "٣", "Giám Đốc",
    "GIÁM", "", "42.0", "42.0\n", "x\ny", "aa", "aaa", " \u00a0", "x", "xy", "q\nx", "x\n", "Vice President",
    "vice-president", "ab", "Xy", "xy", "bbac", "a.b@x", "STRASSE ß", "\u2003",
]


def test_exact_output_for_simple_patterns() -> None:
    assert translate(r"^/pricing", "re2").pattern == r"^\/pricing"
    assert translate(r"\.0$", "re2").pattern == r"\.0(?:\n?\z)"
    assert translate(r"\.0$", "postgres").pattern == r"\.0(?=\n?\Z)"
    assert translate(r"(?i)vp", "java").pattern == "(?iu)vp"
    assert translate(r"a+?", "re2").pattern == "(?:a)+"
    assert translate(r"\bvp", "re2") .ascii_only
    assert not translate(r"\bvp", "postgres").ascii_only


@pytest.mark.parametrize(("pattern", "flavour", "what"), [
    (r"x(?=y)", "re2", "look-ahead"),
    (r"(?<!y)x", "re2", "look-ahead or look-behind"),
    (r"(a)\1", "re2", "back-reference"),
    (r"(a)?(?(1)b|c)", "postgres", "conditional"),
    (r"(a)?(?(1)b|c)", "java", "conditional"),
    (r"(?i:a)b", "postgres", "scoped flag"),
    (r"a*+", "re2", "possessive"),
    (r"(?>a)", "postgres", "atomic group"),
    (r"a{300}", "postgres", "repeat count above 255"),
    (r"a$b", "re2", "'$' before more of the pattern"),
])
def test_refused_patterns_name_the_construct(pattern: str, flavour: str, what: str) -> None:
    with pytest.raises(UnsupportedPattern, match=re.escape(what)):
        translate(pattern, flavour, "rules[0] (x).when")


def test_compiling_a_refused_pattern_names_the_rule_and_suggests_python() -> None:
    model = parse_model("version: 1\nname: t\nrules:\n"
                        "- {id: look, points: 5, when: {attribute: title, matches: 'vp(?!x)'}}\n")
    with pytest.raises(UnsupportedOnEngine) as info:
        compile_model(model, "duckdb", as_of_us=0)
    assert "rules[0] (look).when" in str(info.value)
    assert "--engine python" in str(info.value)
    compile_model(model, "postgres", as_of_us=0)  # PostgreSQL has look-ahead


def _cases(flavour: str) -> list[tuple[str, str, Any]]:
    out = []
    for pattern in PATTERNS:
        try:
            translation = translate(pattern, flavour)
        except UnsupportedPattern:
            continue
        out += [(pattern, text, translation) for text in TEXTS]
    return out


def test_re2_matches_like_python() -> None:
    con = duckdb_connection()
    wrong = []
    for pattern, text, translation in _cases("re2"):
        if translation.ascii_only and not text.isascii():
            continue  # the compiled query asks Python for these
        got = con.execute("SELECT regexp_matches(?, ?)", [text, translation.pattern]).fetchall()[0][0]
        if got != (re.search(pattern, text) is not None):
            wrong.append((pattern, text))
    assert not wrong


@pytest.mark.postgres
def test_postgres_matches_like_python(postgres_url: str) -> None:
    import psycopg

    wrong = []
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for pattern, text, translation in _cases("postgres"):
            got = conn.execute("SELECT %s ~ %s", [text, translation.pattern]).fetchone()
            if got is None or got[0] != (re.search(pattern, text) is not None):
                wrong.append((pattern, text))
    assert not wrong
