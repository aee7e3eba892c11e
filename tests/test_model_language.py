"""The scoring-model language v1 (shared/docs/model-spec.md): what parses, what is refused
and how the refusal reads (path, problem, did-you-mean, line)."""

from __future__ import annotations

import functools
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from leadscore.errors import ModelError, ModelIssue
from leadscore.model import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    dump_model,
    load_model,
    model_json_schema,
    parse_model,
)
from leadscore.model.loading import parse_yaml
from strategies import model_documents, to_model

# The example document of the spec, verbatim.
SPEC_EXAMPLE = r"""
version: 1                 # required
name: b2b-default          # required
description: optional text
score: {min: 0, max: 100}  # the total is clipped to [min, max]; default 0..100
groups:                    # optional; a group's sum is clipped to [min, max] (each optional)
  fit:        {max: 50, grades: {A: 40, B: 25, C: 10, D: 0}}
  engagement: {min: -20, max: 60}
rules:
  - id: exec-title         # required, unique, [a-z0-9_-]+
    label: "CEO / VP"      # optional; shown in explanations
    group: fit             # optional; default group "default"
    points: 20             # required, non-zero, may be negative
    when: {attribute: job_title, matches: '(?i)\b(ceo|vp|chief)\b'}
  - id: pricing-page
    group: engagement
    points: 15
    when: {event: page_view, where: {url: {contains: /pricing}}, within_days: 90}
    repeat: each           # once (default) | each
    max_times: 3           # with repeat: each; only the 3 most recent matching events count
    decay: {half_life_days: 30}
stages:                    # first stage whose min_score <= total wins
  - {name: SQL,  min_score: 80}
  - {name: MQL,  min_score: 50}
  - {name: Warm, min_score: 20}
  - {name: New,  min_score: 0}
"""

HEAD = "version: 1\nname: t\n"


def refused(text: str, fmt: str | None = None) -> list[ModelIssue]:
    """The issues of a document that must be refused."""
    with pytest.raises(ModelError) as info:
        parse_model(text, fmt=fmt)
    assert info.value.issues, "a ModelError always names at least one issue"
    return info.value.issues


def one_issue(text: str, fmt: str | None = None) -> ModelIssue:
    issues = refused(text, fmt)
    assert len(issues) == 1, issues
    return issues[0]


def rule_doc(when: str, extra: str = "") -> str:
    """A document with one rule `a` (points 10) whose `when` is the given flow mapping."""
    return HEAD + f"rules:\n  - id: a\n    points: 10\n{extra}    when: {when}\n"


# ---------------------------------------------------------------- what parses


def test_spec_example_parses_with_every_field() -> None:
    model = parse_model(SPEC_EXAMPLE)
    assert model.version == 1
    assert model.name == "b2b-default"
    assert model.description == "optional text"
    assert (model.score.min, model.score.max) == (0, 100)
    fit, engagement = model.groups["fit"], model.groups["engagement"]
    assert (fit.min, fit.max) == (None, 50)
    assert list(fit.grades.items()) == [("A", 40), ("B", 25), ("C", 10), ("D", 0)]
    assert (engagement.min, engagement.max, engagement.grades) == (-20, 60, None)

    exec_title, pricing = model.rules
    assert (exec_title.id, exec_title.label, exec_title.group, exec_title.points) == (
        "exec-title", "CEO / VP", "fit", 20)
    assert isinstance(exec_title.when, AttributeCondition)
    assert exec_title.when.attribute == "job_title"
    assert exec_title.when.op == "matches"
    assert exec_title.when.value == r"(?i)\b(ceo|vp|chief)\b"
    assert exec_title.repeat == "once" and exec_title.max_times is None and exec_title.decay is None
    assert not exec_title.is_event_rule

    assert pricing.is_event_rule
    assert isinstance(pricing.when, EventCondition)
    assert pricing.when.types == ("page_view",)
    assert pricing.when.within_days == 90
    assert pricing.when.min_count == 1
    assert (pricing.when.where["url"].op, pricing.when.where["url"].value) == ("contains", "/pricing")
    assert (pricing.repeat, pricing.max_times, pricing.decay.half_life_days) == ("each", 3, 30)
    assert pricing.label is None

    assert [(s.name, s.min_score) for s in model.stages] == [
        ("SQL", 80), ("MQL", 50), ("Warm", 20), ("New", 0)]
    assert model.group_names() == ["fit", "engagement"]
    assert model.graded_groups() == ["fit"]


def test_spec_example_as_json_means_the_same() -> None:
    data = parse_yaml(SPEC_EXAMPLE)
    as_json = parse_model(json.dumps(data, indent=2), fmt="json")
    assert as_json == parse_model(SPEC_EXAMPLE)
    # the source name decides the format too
    assert parse_model(json.dumps(data), source="m.JSON") == as_json


def test_minimal_document_gets_the_defaults() -> None:
    model = parse_model(HEAD)
    assert (model.score.min, model.score.max) == (0, 100)
    assert model.groups == {} and model.rules == [] and model.stages is None
    assert model.description is None


def test_rule_defaults_group_default_and_repeat_once() -> None:
    model = parse_model(rule_doc("{event: signup}"))
    rule = model.rules[0]
    assert (rule.group, rule.repeat, rule.label, rule.max_times, rule.decay) == (
        "default", "once", None, None, None)
    assert model.group_names() == ["default"]


@pytest.mark.parametrize(
    ("op", "operand", "value"),
    [
        ("equals", "Germany", "Germany"),
        ("equals", "42", 42),
        ("equals", "2.5", 2.5),
        ("equals", "true", True),
        ("not_equals", "x", "x"),
        ("in", "[NO, SE, 3]", ["NO", "SE", 3]),
        ("not_in", "[a]", ["a"]),
        ("contains", "vp", "vp"),
        ("starts_with", "Dr", "Dr"),
        ("matches", r"'(?i)^\d+$'", r"(?i)^\d+$"),
        ("gt", "10", 10.0),
        ("gte", "-1.5", -1.5),
        ("lt", "1e3", 1000.0),
        ("lte", "0", 0.0),
        ("between", "[1, 5]", [1.0, 5.0]),
        ("exists", "true", True),
        ("exists", "false", False),
    ],
)
def test_every_operator_parses_on_attributes_and_properties(op: str, operand: str, value: object) -> None:
    model = parse_model(rule_doc(f"{{attribute: x, {op}: {operand}}}"))
    when = model.rules[0].when
    assert isinstance(when, AttributeCondition)
    assert (when.attribute, when.op, when.value) == ("x", op, value)
    assert type(when.value) is type(value)

    model = parse_model(rule_doc(f"{{event: e, where: {{p: {{{op}: {operand}}}}}}}"))
    flt = model.rules[0].when.where["p"]
    assert (flt.op, flt.value) == (op, value)


def test_event_condition_with_every_key_and_a_list_of_types() -> None:
    model = parse_model(rule_doc(
        "{event: [page_view, form_submit], where: {url: {contains: /pricing}, plan: {in: [pro]}},"
        " within_days: 30, min_count: 2}"))
    when = model.rules[0].when
    assert when.types == ("page_view", "form_submit")
    assert list(when.where) == ["url", "plan"]
    assert (when.within_days, when.min_count) == (30, 2)


def test_absence_condition_with_list_and_where() -> None:
    model = parse_model(rule_doc("{no_event: [email_open, email_click], where: {campaign: {equals: q1}}, within_days: 45}"))
    when = model.rules[0].when
    assert isinstance(when, AbsenceCondition)
    assert when.types == ("email_open", "email_click")
    assert when.within_days == 45
    assert when.where["campaign"].value == "q1"
    assert not model.rules[0].is_event_rule


def test_nested_combinators_parse() -> None:
    text = HEAD + """rules:
  - id: nested
    points: -5
    when:
      all:
        - any:
            - {attribute: country, in: [NO, SE]}
            - {event: demo_request, within_days: 7}
        - not: {no_event: email_open, within_days: 30}
        - not:
            not: {attribute: email, exists: true}
"""
    when = parse_model(text).rules[0].when
    assert isinstance(when, AllCondition)
    first, second, third = when.all
    assert isinstance(first, AnyCondition)
    assert isinstance(first.any[0], AttributeCondition) and isinstance(first.any[1], EventCondition)
    assert isinstance(second, NotCondition) and isinstance(second.not_, AbsenceCondition)
    assert isinstance(third.not_, NotCondition)
    assert isinstance(third.not_.not_, AttributeCondition)


def test_negative_and_fractional_points_and_repeat_each_without_max_times() -> None:
    text = HEAD + """rules:
  - {id: a, points: -7.5, when: {attribute: x, exists: false}}
  - {id: b_2, points: 0.25, when: {event: e}, repeat: each, decay: {half_life_days: 0.5}}
  - {id: c, points: 3, when: {event: e, min_count: 4}, repeat: once}
"""
    a, b, c = parse_model(text).rules
    assert a.points == -7.5
    assert (b.points, b.repeat, b.max_times, b.decay.half_life_days) == (0.25, "each", None, 0.5)
    assert (c.repeat, c.when.min_count) == ("once", 4)


def test_groups_with_only_some_bounds_and_stages_optional() -> None:
    text = HEAD + """score: {min: -50, max: 200}
groups:
  only_min: {min: -10}
  only_grades: {grades: {hot: 10, cold: -100}}
  empty: {}
stages:
  - {name: Top, min_score: 100}
  - {name: Rest, min_score: -60}
"""
    model = parse_model(text)
    assert (model.score.min, model.score.max) == (-50, 200)
    assert (model.groups["only_min"].min, model.groups["only_min"].max) == (-10, None)
    assert model.groups["only_grades"].grades == {"hot": 10, "cold": -100}
    assert model.groups["empty"].grades is None
    assert [s.name for s in model.stages] == ["Top", "Rest"]


def test_yaml_12_booleans_norway_stays_text() -> None:
    model = parse_model(rule_doc("{attribute: country, in: [NO, no, SE, yes, on, off, Y, n, true, FALSE]}"))
    assert model.rules[0].when.value == ["NO", "no", "SE", "yes", "on", "off", "Y", "n", True, False]
    assert parse_model(rule_doc("{attribute: country, equals: NO}")).rules[0].when.value == "NO"


def test_yaml_12_numbers() -> None:
    # 1.2 core schema: `1e3` is a number; 1.1's base 60 (`1:30`), `1_000` and `0b11` stay text,
    # and a leading zero is not octal
    when = parse_model(rule_doc("{attribute: x, in: [1e3, 1:30, 1_000, 0b11, 017, 0o17, 0x1F, .5, -2.]}")).rules[0].when
    assert when.value == [1000.0, "1:30", "1_000", "0b11", 17, 15, 31, 0.5, -2.0]
    assert parse_model(rule_doc("{attribute: x, gte: 2.5e3}")).rules[0].when.value == 2500.0


def test_yaml_dates_stay_text() -> None:
    when = parse_model(rule_doc("{attribute: signup_day, equals: 2025-01-31}")).rules[0].when
    assert when.value == "2025-01-31"


def test_text_in_any_script() -> None:
    when = parse_model(rule_doc("{attribute: chức_vụ, contains: Giám đốc}")).rules[0].when
    assert (when.attribute, when.value) == ("chức_vụ", "Giám đốc")


def test_text_is_read_as_unicode_nfc() -> None:
    # a model saved with decomposed accents (NFD) means the same as one saved composed (NFC),
    # as the data is NFC-normalised on the way in (docs/model-language.md, Inputs)
    nfc = "Nguyễn"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    model = parse_model(rule_doc(f"{{attribute: {nfd}, in: [{nfd}, x]}}", f"    label: {nfd}\n"))
    assert model == parse_model(rule_doc(f"{{attribute: {nfc}, in: [{nfc}, x]}}", f"    label: {nfc}\n"))
    assert model.rules[0].when.value == [nfc, "x"]
    assert model.rules[0].label == nfc


def test_load_model_reads_yaml_yml_and_json_files(tmp_path: Path) -> None:
    expected = parse_model(SPEC_EXAMPLE)
    (tmp_path / "m.yaml").write_text(SPEC_EXAMPLE, encoding="utf-8")
    (tmp_path / "m.yml").write_bytes(b"\xef\xbb\xbf" + SPEC_EXAMPLE.encode())  # with a BOM
    (tmp_path / "m.json").write_text(json.dumps(parse_yaml(SPEC_EXAMPLE)), encoding="utf-8")
    for name in ("m.yaml", "m.yml", "m.json"):
        assert load_model(tmp_path / name) == expected
    assert load_model(str(tmp_path / "m.yaml")) == expected


def test_load_model_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "rules:\n  - id: a\n    points: 0\n    when: {event: x}\n", encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert info.value.source == str(path)
    assert str(info.value) == (
        f"{path}: invalid model: rules[0].points (line 5): points must not be 0 (remove the rule instead)"
    )


def test_load_model_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "nope.yaml")
    assert info.value.issues[0].message == "cannot read the file: No such file or directory"
    # not an "invalid model": the words of a missing data file
    assert str(info.value) == info.value.one_line() == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(HEAD.encode() + b"description: caf\xe9\n")
    with pytest.raises(ModelError) as info:
        load_model(latin)
    assert info.value.issues[0].message == "not UTF-8 text (byte 35); save the file as UTF-8"


# ---------------------------------------------------------------- what is refused

OPS = ("equals, not_equals, in, not_in, contains, starts_with, matches, gt, gte, lt, lte, "
       "between, exists")
KINDS = "attribute, event, no_event, all, any, not"

# (document, path, message, line); line 6 is the `when:` line of rule_doc
INVALID = {
    "unknown operator": (
        rule_doc("{attribute: job_title, containz: vp}"),
        "rules[0].when", "unknown operator 'containz' - did you mean 'contains'?", 6),
    "unknown operator, nothing close": (
        rule_doc("{attribute: job_title, frobnicate: vp}"),
        "rules[0].when",
        "unknown operator 'frobnicate' (allowed: equals, not_equals, in, not_in, contains, "
        "starts_with, matches, gt, gte, lt, lte, between, exists, attribute)", 6),
    "unknown operator in where": (
        rule_doc("{event: page_view, where: {url: {startswith: /p}}}"),
        "rules[0].when.where.url", "unknown operator 'startswith' - did you mean 'starts_with'?", 6),
    "unknown rule key": (
        HEAD + "rules:\n  - id: a\n    pointz: 10\n    when: {event: x}\n",
        "rules[0]", "unknown key 'pointz' - did you mean 'points'?", 4),
    "unknown top-level key": (
        HEAD + "stage: []\n",
        "", "unknown key 'stage' - did you mean 'stages'?", 1),
    "unknown key in event condition": (
        rule_doc("{event: x, within_day: 3}"),
        "rules[0].when", "unknown key 'within_day' - did you mean 'within_days'?", 6),
    "unknown key in group": (
        HEAD + "groups:\n  fit: {maximum: 5}\n",
        "groups.fit", "unknown key 'maximum' - did you mean 'max'?", 4),
    "unknown condition kind": (
        rule_doc("{atribute: job_title, contains: vp}"),
        "rules[0].when",
        f"a condition needs one of {KINDS}; found 'atribute', 'contains' - did you mean 'attribute'?", 6),
    "unknown condition kind (plural)": (
        rule_doc("{events: signup}"),
        "rules[0].when", f"a condition needs one of {KINDS}; found 'events' - did you mean 'event'?", 6),
    "two kinds in one condition": (
        rule_doc("{attribute: x, event: y, contains: vp}"),
        "rules[0].when",
        f"a condition has exactly one of {KINDS}; found attribute and event (combine them with all: [...])", 6),
    "condition not a mapping": (
        rule_doc("[{event: x}]"),
        "rules[0].when",
        "a condition is a mapping such as {attribute: job_title, contains: vp} or {event: page_view}, "
        "got a list", 6),
    "zero operators": (
        rule_doc("{attribute: x}"),
        "rules[0].when", f"needs exactly one operator, one of: {OPS}", 6),
    "zero operators in where": (
        rule_doc("{event: x, where: {url: {}}}"),
        "rules[0].when.where.url", f"needs exactly one operator, one of: {OPS}", 6),
    "two operators": (
        rule_doc("{attribute: x, contains: a, equals: b}"),
        "rules[0].when",
        "needs exactly one operator, found 2: contains, equals (combine conditions with all: [...])", 6),
    "points as text": (
        HEAD + "rules:\n  - id: a\n    points: '20'\n    when: {event: x}\n",
        "rules[0].points", "expected a number, got the text '20'", 5),
    "points zero": (
        HEAD + "rules:\n  - id: a\n    points: 0\n    when: {event: x}\n",
        "rules[0].points", "points must not be 0 (remove the rule instead)", 5),
    "points boolean": (
        HEAD + "rules:\n  - id: a\n    points: true\n    when: {event: x}\n",
        "rules[0].points", "expected a number, got a boolean", 5),
    "points infinite": (
        HEAD + "rules:\n  - id: a\n    points: .inf\n    when: {event: x}\n",
        "rules[0].points", "expected a finite number, got inf", 5),
    "points missing": (
        HEAD + "rules:\n  - id: a\n    when: {event: x}\n",
        "rules[0].points", "required key is missing", 4),
    "gt with text": (
        rule_doc("{attribute: x, gt: '5'}"),
        "rules[0].when.gt", "expected a number, got the text '5'", 6),
    "exists with text": (
        rule_doc("{attribute: x, exists: 'yes'}"),
        "rules[0].when.exists", "expected true or false, got the text 'yes'", 6),
    "contains with a number": (
        rule_doc("{attribute: x, contains: 5}"),
        "rules[0].when.contains", "expected a text, got the number 5", 6),
    "in with a mapping": (
        rule_doc("{attribute: x, in: {a: 1}}"),
        "rules[0].when.in", "expected a list, got dict", 6),
    "repeat on attribute rule": (
        rule_doc("{attribute: x, exists: true}", "    repeat: each\n"),
        "rules[0].repeat",
        "repeat is only allowed when `when` is a single event condition ({event: ...}), "
        "not an attribute condition", 6),
    "repeat once on absence rule": (
        rule_doc("{no_event: x, within_days: 3}", "    repeat: once\n"),
        "rules[0].repeat",
        "repeat is only allowed when `when` is a single event condition ({event: ...}), "
        "not a no_event condition", 6),
    "max_times on attribute rule": (
        rule_doc("{attribute: x, exists: true}", "    max_times: 2\n"),
        "rules[0].max_times",
        "max_times is only allowed when `when` is a single event condition ({event: ...})", 6),
    "decay on a combinator of events": (
        rule_doc("{all: [{event: x}]}", "    decay: {half_life_days: 3}\n"),
        "rules[0].decay",
        "decay is only allowed when `when` is a single event condition ({event: ...}), "
        "not an all condition", 6),
    "decay on not": (
        rule_doc("{not: {event: x}}", "    decay: {half_life_days: 3}\n"),
        "rules[0].decay",
        "decay is only allowed when `when` is a single event condition ({event: ...}), "
        "not a not condition", 6),
    "max_times without repeat each": (
        rule_doc("{event: x}", "    max_times: 2\n"),
        "rules[0].max_times",
        "max_times needs repeat: each (with repeat: once only one event counts)", 6),
    "max_times with repeat once": (
        rule_doc("{event: x}", "    repeat: once\n    max_times: 2\n"),
        "rules[0].max_times",
        "max_times needs repeat: each (with repeat: once only one event counts)", 7),
    "max_times zero": (
        rule_doc("{event: x}", "    repeat: each\n    max_times: 0\n"),
        "rules[0].max_times", "Input should be greater than or equal to 1", 7),
    "max_times fractional": (
        rule_doc("{event: x}", "    repeat: each\n    max_times: 2.5\n"),
        "rules[0].max_times", "expected a whole number, got the number 2.5", 7),
    "min_count with repeat each": (
        rule_doc("{event: x, min_count: 2}", "    repeat: each\n"),
        "rules[0]", "min_count is invalid with repeat: each (use repeat: once, or drop min_count)", 4),
    "min_count zero": (
        rule_doc("{event: x, min_count: 0}"),
        "rules[0].when.min_count", "Input should be greater than or equal to 1", 6),
    "repeat unknown": (
        rule_doc("{event: x}", "    repeat: twice\n"),
        "rules[0].repeat", "Input should be 'once' or 'each'", 6),
    "absence without within_days": (
        rule_doc("{no_event: email_open}"),
        "rules[0].when.within_days", "required key is missing", 6),
    "absence with within_days 0": (
        rule_doc("{no_event: email_open, within_days: 0}"),
        "rules[0].when.within_days", "Input should be greater than 0", 6),
    "negative within_days": (
        rule_doc("{event: x, within_days: -1}"),
        "rules[0].when.within_days", "Input should be greater than or equal to 0", 6),
    "half_life 0": (
        rule_doc("{event: x}", "    decay: {half_life_days: 0}\n"),
        "rules[0].decay.half_life_days", "Input should be greater than 0", 6),
    "empty list of event types": (
        rule_doc("{event: []}"),
        "rules[0].when.event", "needs at least one non-empty event type", 6),
    "blank event type": (
        rule_doc("{event: [page_view, ' ']}"),
        "rules[0].when.event", "needs at least one non-empty event type", 6),
    "duplicate rule ids": (
        HEAD + "rules:\n  - {id: a, points: 1, when: {event: x}}\n  - {id: b, points: 1, when: {event: x}}\n"
        "  - {id: a, points: 2, when: {event: y}}\n",
        "rules[2].id", "duplicate rule id 'a' (first used by rules[0])", 6),
    "rule id with a space and capitals": (
        HEAD + "rules:\n  - id: Exec Title\n    points: 1\n    when: {event: x}\n",
        "rules[0].id", "rule id 'Exec Title' may only hold lower-case letters, digits, '_' and '-'", 4),
    "rule id with a dot": (
        HEAD + "rules:\n  - id: exec.title\n    points: 1\n    when: {event: x}\n",
        "rules[0].id", "rule id 'exec.title' may only hold lower-case letters, digits, '_' and '-'", 4),
    "rule id with a trailing newline": (
        HEAD + "rules:\n  - id: \"a\\n\"\n    points: 1\n    when: {event: x}\n",
        "rules[0].id", "rule id 'a\\n' may only hold lower-case letters, digits, '_' and '-'", 4),
    "rule id missing": (
        HEAD + "rules:\n  - points: 1\n    when: {event: x}\n",
        "rules[0].id", "required key is missing", 4),
    "group name with a space": (
        rule_doc("{event: x}", "    group: my group\n"),
        "rules[0].group", "group name 'my group' may only hold letters, digits, '_' and '-'", 6),
    "stages not falling": (
        HEAD + "stages:\n  - {name: A, min_score: 10}\n  - {name: B, min_score: 20}\n  - {name: C, min_score: 0}\n",
        "stages[1].min_score", "stages must be listed by falling min_score: 20 is not below 10 of 'A'", 5),
    "stages with equal min_score": (
        HEAD + "stages:\n  - {name: A, min_score: 10}\n  - {name: B, min_score: 10}\n  - {name: C, min_score: 0}\n",
        "stages[1].min_score", "stages must be listed by falling min_score: 10 is not below 10 of 'A'", 5),
    "last stage above score.min": (
        HEAD + "stages:\n  - {name: A, min_score: 50}\n  - {name: B, min_score: 5}\n",
        "stages[1].min_score",
        "the last stage's min_score (5) must be at most score.min (0) so that every lead has a stage - "
        "set 'B' to min_score: 0", 5),
    "empty stages": (
        HEAD + "stages: []\n",
        "stages", "needs at least one stage (or leave stages out)", 3),
    "duplicate stage names": (
        HEAD + "stages:\n  - {name: A, min_score: 10}\n  - {name: A, min_score: 0}\n",
        "stages[1].name", "duplicate stage name 'A'", 5),
    "grades not falling": (
        HEAD + "groups:\n  fit: {grades: {A: 10, B: 20}}\n",
        "groups.fit.grades.B", "grades must be listed by falling threshold: B (20) comes after A (10)", 4),
    "grades empty": (
        HEAD + "groups:\n  fit: {grades: {}}\n",
        "groups.fit.grades", "needs at least one grade", 4),
    "group min above max": (
        HEAD + "groups:\n  fit: {min: 5, max: 1}\n",
        "groups.fit", "min (5) must not be above max (1)", 4),
    "score min equals max": (
        HEAD + "score: {min: 100, max: 100}\n",
        "score", "min (100) must be below max (100)", 3),
    "score min above max": (
        HEAD + "score: {min: 10, max: -10}\n",
        "score", "min (10) must be below max (-10)", 3),
    "version 2": (
        "version: 2\nname: t\n", "version", "must be 1 (this is the version of the language), got 2", 1),
    "version as text": (
        "version: '1'\nname: t\n", "version",
        "must be 1 (this is the version of the language), got '1'", 1),
    "version true": (
        "version: true\nname: t\n", "version",
        "must be 1 (this is the version of the language), got True", 1),
    "version missing": ("name: t\n", "version", "required key is missing", 1),
    "name missing": ("version: 1\n", "name", "required key is missing", 1),
    "invalid regex": (
        rule_doc("{attribute: x, matches: '(ab'}"),
        "rules[0].when.matches",
        "not a valid regular expression: missing ), unterminated subpattern at position 0", 6),
    "between with lo above hi": (
        rule_doc("{attribute: x, between: [5, 1]}"),
        "rules[0].when.between", "between needs [low, high] with low <= high, got [5.0, 1.0]", 6),
    "between with three numbers": (
        rule_doc("{attribute: x, between: [1, 2, 3]}"),
        "rules[0].when.between", "List should have at most 2 items after validation, not 3", 6),
    "between with a null": (
        rule_doc("{attribute: x, between: [1, null]}"),
        "rules[0].when.between[1]", "expected a number, got null", 6),
    "in with an empty list": (
        rule_doc("{attribute: x, in: []}"),
        "rules[0].when.in", "needs at least one item", 6),
    "not_in with an empty list": (
        rule_doc("{attribute: x, not_in: []}"),
        "rules[0].when.not_in", "needs at least one item", 6),
    "all with an empty list": (
        rule_doc("{all: []}"), "rules[0].when.all", "needs at least one item", 6),
    "null operand": (
        rule_doc("{attribute: x, equals: null}"),
        "rules[0].when",
        "operator 'equals' needs a value (to test for a missing value use exists: false)", 6),
    "null exists": (
        rule_doc("{attribute: x, exists: null}"),
        "rules[0].when",
        "operator 'exists' needs a value (to test for a missing value use exists: false)", 6),
    "null inside in": (
        rule_doc("{attribute: x, in: [a, null]}"),
        "rules[0].when.in[1]",
        "expected a text, number or boolean, got null (to test for a missing value use exists: false)", 6),
    "rules not a list": (
        HEAD + "rules: {a: 1}\n", "rules", "expected a list, got dict", 3),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_document_is_refused_naming_path_problem_and_line(case: str) -> None:
    text, path, message, line = INVALID[case]
    issue = one_issue(text)
    assert (issue.path, issue.message, issue.line) == (path, message, line)


def test_refusal_reads_as_one_sentence_with_place_and_hint() -> None:
    with pytest.raises(ModelError) as info:
        parse_model(rule_doc("{attribute: job_title, containz: vp}"), source="m.yaml")
    assert str(info.value) == (
        "m.yaml: invalid model: rules[0].when (line 6): unknown operator 'containz' - "
        "did you mean 'contains'?"
    )


def test_a_literal_webhook_secret_is_refused_saying_how_to_give_one() -> None:
    text = rule_doc("{attribute: x, equals: 1}") + """stages:
  - {name: MQL, min_score: 10}
  - {name: New, min_score: 0}
triggers:
  - id: crm
    on: {stage_entered: MQL}
    do:
      - webhook: {url: "https://crm.example.com/hook", secret: "hunter2"}
"""
    issue = one_issue(text)
    assert issue.path == "triggers[0].do[0].webhook.secret"
    assert issue.message.startswith("the secret must name an environment variable, as ${WEBHOOK_SECRET}: "
                                    "a literal secret is refused")
    assert "hunter2" not in issue.message  # the secret is not echoed either
    assert "pattern" not in issue.message


def test_nested_error_has_full_path_and_line() -> None:
    text = HEAD + """rules:
  - id: ok
    points: 1
    when: {attribute: x, equals: 1}
  - id: deep
    points: 1
    when:
      all:
        - any:
            - {attribute: x, equals: 1}
            - not: {event: page_view, where: {url: {containz: /pricing}}}
"""
    issue = one_issue(text)
    assert issue.path == "rules[1].when.all[0].any[1].not.where.url"
    assert issue.message == "unknown operator 'containz' - did you mean 'contains'?"
    assert issue.line == 13


def test_whole_document_refused_and_every_problem_listed() -> None:
    text = HEAD + """rules:
  - {id: good, points: 5, when: {event: signup}}
  - {id: bad, points: 0, when: {event: signup}}
  - {id: worse, points: 1, when: {attribute: x, containz: a}}
"""
    issues = refused(text)
    assert [(i.path, i.line) for i in issues] == [("rules[1].points", 5), ("rules[2].when", 6)]
    with pytest.raises(ModelError) as info:
        parse_model(text)
    assert str(info.value) == (
        "invalid model (2 problems):\n"
        "  rules[1].points (line 5): points must not be 0 (remove the rule instead)\n"
        "  rules[2].when (line 6): unknown operator 'containz' - did you mean 'contains'?"
    )
    assert info.value.one_line() == (
        "invalid model: rules[1].points (line 5): points must not be 0 (remove the rule instead) "
        "(and 1 more problem(s); run `leadscore model check`)"
    )


def test_document_checks_report_every_problem_in_order() -> None:
    text = HEAD + """score: {min: 10, max: 5}
groups:
  fit: {grades: {A: 1, B: 2}}
rules:
  - {id: a, points: 1, when: {event: x}}
  - {id: a, points: 1, when: {event: x}}
"""
    assert [i.path for i in refused(text)] == ["score", "groups.fit.grades.B", "rules[1].id"]


def test_yaml_syntax_error_has_a_line() -> None:
    issue = one_issue(HEAD + "rules:\n  - id: a\n    points: 1\n    when: {attribute: x, equals: [}\n")
    assert issue.path == ""
    assert issue.message == "not valid YAML: expected the node content, but found '}'"
    assert issue.line == 6


def test_yaml_bad_indentation_has_a_line() -> None:
    issue = one_issue("version: 1\nname: t\n  rules: []\n")
    assert issue.message.startswith("not valid YAML: ")
    assert issue.line == 3


@pytest.mark.parametrize(
    ("rules", "path", "line", "column"),
    [
        ("  - {id: a, points: 1, label: 'Pricing\x00 page', when: {event: x}}\n", "rules[0].label", 4, 39),
        ("  - id: a\n    points: 1\n    when: {event: \"visit\x00\"}\n", "rules[0].when.event", 6, 25),
        ("  - id: a\n    poi\x00nts: 1\n    when: {event: x}\n", "rules[0]", 5, 8),  # in a key: its mapping
        ("  - {id: a, points: 1, when: {event: x}}\n\x00\n", "", 5, 1),  # between values: the line only
    ],
)
def test_a_raw_nul_character_in_yaml_is_refused_at_its_line_column_and_field(
    rules: str, path: str, line: int, column: int
) -> None:
    issue = one_issue(HEAD + "rules:\n" + rules)
    assert (issue.path, issue.line) == (path, line)
    assert issue.message == (f"not valid YAML: the character U+0000 at line {line}, column {column} is not allowed "
                             "in a YAML document (remove it: no text of a model may hold a NUL character)")


def test_another_control_character_in_yaml_is_named() -> None:
    issue = one_issue(HEAD + "rules:\n  - {id: a, points: 1, label: 'ding\x07', when: {event: x}}\n")
    assert (issue.path, issue.line) == ("rules[0].label", 4)
    assert "the character U+0007 at line 4, column 36" in issue.message
    assert issue.message.endswith("(remove it, or write it as an escape in a double-quoted text)")


def test_duplicate_yaml_key_is_refused_with_its_line() -> None:
    issue = one_issue(HEAD + "rules:\n  - id: a\n    points: 1\n    points: 2\n    when: {event: x}\n")
    assert (issue.path, issue.message, issue.line) == ("", "not valid YAML: duplicate key 'points'", 6)
    issue = one_issue("version: 1\nname: a\nname: b\n")
    assert (issue.message, issue.line) == ("not valid YAML: duplicate key 'name'", 3)


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("", "an empty document"),
        ("# only a comment\n", "an empty document"),
        ("- version: 1\n", "a list"),
        ("hello\n", ""),
        ("42\n", ""),
    ],
)
def test_non_mapping_document_is_refused(text: str, got: str) -> None:
    issue = one_issue(text)
    assert (issue.path, issue.line) == ("", 1)
    assert issue.message.startswith(f"a model is a mapping with version, name and rules; got {got}")


def test_json_syntax_error_has_line_and_column() -> None:
    issue = one_issue('{\n  "version": 1,\n  "name": "x",\n  "rules": [}\n', fmt="json")
    assert (issue.path, issue.message, issue.line) == ("", "not valid JSON: Expecting value (column 13)", 4)


def test_json_error_has_path_and_line() -> None:
    text = json.dumps(
        {"version": 1, "name": "x", "rules": [
            {"id": "a", "points": 1, "when": {"event": "x"}},
            {"id": "b", "points": 1, "when": {"attribute": "y", "containz": "z"}},
        ]},
        indent=2,
    )
    issue = one_issue(text, fmt="json")
    assert issue.path == "rules[1].when"
    assert issue.message == "unknown operator 'containz' - did you mean 'contains'?"
    assert text.splitlines()[issue.line - 1].strip() == '"when": {'


def test_json_non_mapping_is_refused() -> None:
    issue = one_issue("[1, 2]", fmt="json")
    assert issue.message == "a model is a mapping with version, name and rules; got a list"


# ---------------------------------------------------------------- JSON schema


def check_schema(schema: dict) -> None:
    """Raise when `schema` is not a valid Draft 2020-12 schema (`jsonschema`, else `jsonschema_rs`,
    which schemathesis of the dev extras brings)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - depends on the environment
        import jsonschema_rs

        jsonschema_rs.meta.validate(schema)
    else:
        jsonschema.Draft202012Validator.check_schema(schema)


@functools.cache
def _validator_of(schema_text: str) -> Any:
    schema = json.loads(schema_text)
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - depends on the environment
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_accepts(schema: dict, document: object) -> bool:
    return bool(_validator_of(json.dumps(schema, sort_keys=True)).is_valid(document))


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = model_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(schema)  # plain JSON
    check_schema(schema)
    # bounds use JSON Schema keywords (pydantic's own `ge`/`gt` would be ignored by editors)
    def value_schemas(node: object):  # noqa: ANN202
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer"):
                yield node
            for value in node.values():
                yield from value_schemas(value)
        elif isinstance(node, list):
            for value in node:
                yield from value_schemas(value)

    for node in value_schemas(schema):
        assert not {"ge", "gt", "le", "lt"} & set(node), node


def test_json_schema_validates_the_spec_example() -> None:
    assert schema_accepts(model_json_schema(), parse_yaml(SPEC_EXAMPLE))
    assert schema_accepts(model_json_schema(), {"version": 1, "name": "minimal"})


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"rules": [{"id": "a", "points": "20", "when": {"event": "x"}}]},
        {"rules": [{"id": "a", "points": 1, "when": {"attribute": "x", "containz": "a"}}]},
        {"rules": [{"id": "a", "points": 1, "when": {"frob": "x"}}]},
        {"rules": [{"id": "Bad Id", "points": 1, "when": {"event": "x"}}]},
        {"rules": [{"id": "a", "points": 1, "when": {"event": "x"}, "repeat": "twice"}]},
        {"rules": [{"id": "a", "points": 1, "when": {"event": "x"}, "repeat": "each", "max_times": 0}]},
        {"rules": [{"id": "a", "points": 1, "when": {"event": "x", "within_days": -1}}]},
        {"rules": [{"id": "a", "points": 1, "when": {"no_event": "x"}}]},
        {"stages": [{"name": "A"}]},
        {"scor": {"min": 0}},
    ],
)
def test_json_schema_rejects_wrong_documents(change: dict) -> None:
    document = {**parse_yaml(SPEC_EXAMPLE), **change}
    assert not schema_accepts(model_json_schema(), document)
    with pytest.raises(ModelError):  # and the loader agrees
        parse_model(json.dumps(document), fmt="json")


def test_json_schema_rejects_a_document_without_name_or_rules_as_text() -> None:
    schema = model_json_schema()
    assert not schema_accepts(schema, {"version": 1})
    assert not schema_accepts(schema, {"version": 1, "name": "x", "rules": "none"})
    assert not schema_accepts(schema, ["version", 1])


def test_json_schema_accepts_every_valid_construct() -> None:
    text = HEAD + """score: {min: -10, max: 10}
groups:
  g: {min: -5, max: 5, grades: {A: 1, B: -5}}
rules:
  - {id: a, group: g, points: -1.5, when: {attribute: x, between: [1, 2]}}
  - {id: b, points: 2, when: {event: [e, f], where: {p: {in: [NO, 1, true]}}, within_days: 0, min_count: 2}}
  - {id: c, points: 2, when: {no_event: e, within_days: 3}}
  - id: d
    points: 1
    when: {all: [{any: [{not: {attribute: y, exists: false}}, {event: e}]}]}
  - {id: e, points: 3, when: {event: e}, repeat: each, max_times: 1, decay: {half_life_days: 2}}
stages: [{name: X, min_score: -10}]
"""
    document = parse_yaml(text)
    assert parse_model(json.dumps(document), fmt="json") == parse_model(text)
    assert schema_accepts(model_json_schema(), document)


# ---------------------------------------------------------------- dump_model


def test_dump_model_reads_back_the_same_with_tricky_texts() -> None:
    text = HEAD + """rules:
  - id: a
    points: 1e20
    when: {attribute: x, in: ['1e3', 'NO', '017', '1:30', '0o17', '1_000', 'on', '2025-01-01',
                              '.5', '+1', '-.inf', '~', 'null', '', 1e3, 0.1, 17, true, 'true', Giám đốc]}
"""
    model = parse_model(text)
    dumped = dump_model(model)
    assert "- '1e3'" in dumped and "- 'NO'" in dumped and "- Giám đốc" in dumped
    assert parse_model(dumped) == model
    assert parse_model(dumped).rules[0].when.value == model.rules[0].when.value


def test_dump_model_of_the_spec_example_leaves_defaults_out() -> None:
    model = parse_model(SPEC_EXAMPLE)
    dumped = dump_model(model)
    assert parse_model(dumped) == model
    assert "repeat: once" not in dumped and "min_count" not in dumped


@settings(max_examples=30, deadline=None)
@given(model_documents())
def test_random_documents_read_the_same_from_json_yaml_and_dump(document: dict) -> None:
    model = to_model(document)
    assert parse_model(json.dumps(document), fmt="json") == model
    assert parse_model(json.dumps(document, indent=1)) == model  # JSON read as YAML
    assert parse_model(dump_model(model)) == model
    assert schema_accepts(SCHEMA, document)


SCHEMA = model_json_schema()
