"""Hypothesis strategies for random scoring models, leads and events.

Shared by the engine's property tests and the equivalence tests of other engines: every
document drawn here is valid under shared/docs/model-spec.md, uses every construct of the
language (all rule kinds, nested combinators, `where` filters, groups with bounds and
grades, stages), and draws its words from small vocabularies so that conditions both hold
and fail often.

- ``model_documents()``: the document as plain data (JSON-ready), for engines that read files;
- ``models()``: the same, parsed (``ScoringModel``);
- ``leads()``, ``event_lists()``: inputs, with timestamps around ``AS_OF``;
- ``scenarios()``: (model, lead, events) together.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from leadscore.engine import Event, Lead
from leadscore.engine.timestamps import MICROS_PER_DAY, iso, to_micros
from leadscore.model import ScoringModel, document_issues

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF_US = to_micros(AS_OF)

LEAD_ID = "lead-1"
ATTRIBUTES = ("country", "job_title", "employees", "revenue", "opted_in", "chức_vụ")
PROPERTIES = ("url", "plan", "amount", "campaign")
EVENT_TYPES = ("page_view", "form_submit", "email_open", "demo_request")
GROUPS = ("fit", "engagement", "intent")
RULE_GROUPS = (*GROUPS, "default", "extra")  # "extra" is never declared

WORDS = (
    "NO", "no", " SE ", "VP Sales", "vp", "Chief Executive", "ceo", "Director", "intern",
    "Giám đốc", "giám đốc", "Việt Nam", "Hà Nội", "/pricing", "/blog", "pro", "Pro ",
    "enterprise", "spring", "", "  ", "true", "42", "42.0", " 7.5 ", "1e3", "-3", "abc",
)
PATTERNS = (r"(?i)\bvp\b", r"^/pricing", r"\d+", r"Đốc", r"(?i)giám", r"^$", r"^[A-Z]", r"\.0$")
NUMBERS = (-100, -7.5, -1, 0, 0.5, 1, 3, 7, 7.5, 10, 42, 50, 120, 1000)

texts = st.sampled_from(WORDS)
numbers = st.sampled_from(NUMBERS) | st.integers(-200, 200)
scalars = texts | numbers | st.booleans()


attribute_values = st.one_of(
    texts,
    texts,
    texts,
    numbers,
    numbers,
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
    st.none(),
    st.just(math.nan),
    st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyÁÀẢÃẠĐ 0123456789.-", max_size=8),
)
"""Values of mixed types as files and APIs give them, incl. missing ones (None, NaN)."""


OPERATORS = ("equals", "not_equals", "in", "not_in", "contains", "starts_with", "matches",
             "gt", "gte", "lt", "lte", "between", "exists")

# Strategies are built once, here: building them inside a draw makes every example slow.
_operators = st.sampled_from(OPERATORS)
_scalar_lists = st.lists(scalars, min_size=1, max_size=4)
_patterns = st.sampled_from(PATTERNS)
_attribute_names = st.sampled_from(ATTRIBUTES)
_property_names = st.sampled_from(PROPERTIES)
_small_counts = st.integers(1, 3)
_absence_windows = st.sampled_from((1, 7, 30, 0.5))
_within = st.sampled_from((0, 1, 7, 30, 90, 0.5))
_repeats = st.sampled_from((None, "once", "each", "each"))
_max_times = st.sampled_from((1, 1, 2, 2, 3, 4))
_half_lives = st.sampled_from((0.5, 1, 7, 30, 90))
_rule_groups = st.sampled_from(RULE_GROUPS)
_labels = st.sampled_from(("Pricing page", "Giám đốc", "CEO / VP"))
_event_type = st.sampled_from((*EVENT_TYPES, "page_view", "page_view"))  # page views are common
_event_ids = st.none() | st.sampled_from(("a", "b", "c", "d"))
_properties = st.dictionaries(_property_names, attribute_values, max_size=3)


@st.composite
def predicates(draw: st.DrawFn) -> dict[str, Any]:
    """``{OP: VALUE}`` with an operand that suits the operator."""
    op = draw(_operators)
    if op in ("equals", "not_equals"):
        return {op: draw(scalars)}
    if op in ("in", "not_in"):
        return {op: draw(_scalar_lists)}
    if op in ("contains", "starts_with"):
        return {op: draw(texts)}
    if op == "matches":
        return {op: draw(_patterns)}
    if op == "between":
        lo, hi = sorted((draw(numbers), draw(numbers)))
        return {op: [lo, hi]}
    if op == "exists":
        return {op: draw(st.booleans())}
    return {op: draw(numbers)}


where_filters = st.one_of(
    st.none(), st.none(), st.dictionaries(_property_names, predicates(), min_size=1, max_size=2))
"""None, or a `where` mapping of one or two properties."""
event_types = _event_type | st.lists(_event_type, min_size=1, max_size=3, unique=True)
"""One event type, or a list of them."""


@st.composite
def attribute_conditions(draw: st.DrawFn) -> dict[str, Any]:
    return {"attribute": draw(_attribute_names), **draw(predicates())}


@st.composite
def event_conditions(draw: st.DrawFn, *, min_count: bool = True) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": draw(event_types)}
    where = draw(where_filters)
    if where:
        condition["where"] = where
    if draw(st.booleans()):
        condition["within_days"] = draw(_within)
    if min_count and draw(st.booleans()):
        condition["min_count"] = draw(_small_counts)
    return condition


@st.composite
def absence_conditions(draw: st.DrawFn) -> dict[str, Any]:
    condition: dict[str, Any] = {"no_event": draw(event_types), "within_days": draw(_absence_windows)}
    where = draw(where_filters)
    if where:
        condition["where"] = where
    return condition


_event_condition = event_conditions()
_event_condition_without_min_count = event_conditions(min_count=False)

conditions = st.recursive(
    attribute_conditions() | _event_condition | absence_conditions(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
        st.lists(children, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=5,
)
"""Any condition, with combinators nested a few levels deep."""
non_event_conditions = conditions.filter(lambda c: "event" not in c)
"""Any condition but a single event condition (the `when` of an attribute/absence/combinator rule)."""

points = st.sampled_from((-25, -10, -5, -2.5, -1, 0.5, 1, 3, 5, 7.5, 10, 15, 20, 40)) | (
    st.integers(1, 50) | st.integers(-50, -1))


@st.composite
def event_rules(draw: st.DrawFn) -> dict[str, Any]:
    """A rule body (no id) whose `when` is a single event condition: repeat, max_times and
    decay apply."""
    repeat = draw(_repeats)
    when = draw(_event_condition_without_min_count if repeat == "each" else _event_condition)
    rule: dict[str, Any] = {"points": draw(points), "when": when}
    if repeat is not None:
        rule["repeat"] = repeat
    if repeat == "each" and draw(st.booleans()):
        rule["max_times"] = draw(_max_times)
    if draw(st.booleans()):
        rule["decay"] = {"half_life_days": draw(_half_lives)}
    return rule


@st.composite
def other_rules(draw: st.DrawFn) -> dict[str, Any]:
    """A rule body (no id) whose `when` is anything but a single event condition."""
    return {"points": draw(points), "when": draw(non_event_conditions)}


_attribute_rule_bodies = st.fixed_dictionaries({"points": points, "when": attribute_conditions()})
_absence_rule_bodies = st.fixed_dictionaries({"points": points, "when": absence_conditions()})
_rule_bodies = st.one_of(event_rules(), event_rules(), _attribute_rule_bodies, _attribute_rule_bodies,
                         _absence_rule_bodies, other_rules())


@st.composite
def rules(draw: st.DrawFn, index: int = 0) -> dict[str, Any]:
    """A rule with id ``rule-<index>``, of any kind, maybe with a group and a label."""
    rule = {"id": f"rule-{index}", **draw(_rule_bodies)}
    if draw(st.booleans()):
        rule["group"] = draw(_rule_groups)
    if draw(st.integers(0, 3)) == 0:
        rule["label"] = draw(_labels)
    return rule


_group_names = st.lists(st.sampled_from(GROUPS), unique=True, max_size=3)
_group_mins = st.none() | st.sampled_from((-30, -10, 0, 5))
_group_maxes = st.none() | st.sampled_from((0, 10, 25, 50, 80))
_thresholds = st.lists(st.integers(-40, 60), min_size=1, max_size=4, unique=True)


@st.composite
def groups(draw: st.DrawFn) -> dict[str, Any]:
    """Declared groups, each with optional min, max and grades."""
    declared: dict[str, Any] = {}
    for name in draw(_group_names):
        group: dict[str, Any] = {}
        low, high = draw(_group_mins), draw(_group_maxes)
        if low is not None and high is not None and low > high:
            low, high = high, low
        if low is not None:
            group["min"] = low
        if high is not None:
            group["max"] = high
        if draw(st.booleans()):
            falling = sorted(draw(_thresholds), reverse=True)
            group["grades"] = {"ABCDE"[i]: t for i, t in enumerate(falling)}
        declared[name] = group
    return declared


_groups = groups()
_score_mins = st.sampled_from((-50, -10, 0, 0, 5))
_score_maxes = st.sampled_from((10, 50, 100, 100, 200))


@st.composite
def model_documents(draw: st.DrawFn, *, max_rules: int = 6, stages: bool | None = None) -> dict[str, Any]:
    """A valid model document as plain data (``stages``: True always, False never, None either)."""
    low, high = draw(_score_mins), draw(_score_maxes)
    document: dict[str, Any] = {"version": 1, "name": "random"}
    if draw(st.booleans()) or (low, high) != (0, 100):
        document["score"] = {"min": low, "max": high}
    declared = draw(_groups)
    if declared:
        document["groups"] = declared
    count = draw(st.integers(0, max_rules))
    document["rules"] = [{**draw(_rule_bodies), "id": f"rule-{i}"} for i in range(count)]
    for rule in document["rules"]:
        if draw(st.booleans()):
            rule["group"] = draw(_rule_groups)
        if draw(st.integers(0, 3)) == 0:
            rule["label"] = draw(_labels)
    if draw(st.booleans()) if stages is None else stages:
        above = draw(st.lists(st.integers(low + 1, high + 10), unique=True, max_size=4))
        last = draw(st.integers(low - 20, low))
        minimums = [*sorted(above, reverse=True), last]
        document["stages"] = [{"name": f"S{i}", "min_score": m} for i, m in enumerate(minimums)]
    return document


def to_model(document: dict[str, Any]) -> ScoringModel:
    """Validate a document as `parse_model` does (without the YAML pass it makes for line
    numbers, which is slow); every drawn document must be valid."""
    model = ScoringModel.model_validate(json.loads(json.dumps(document)))
    assert not document_issues(model), document_issues(model)
    return model


def models(**options: Any) -> st.SearchStrategy[ScoringModel]:
    """Parsed models."""
    return model_documents(**options).map(to_model)


_attribute_name_lists = st.lists(_attribute_names, unique=True, min_size=1, max_size=len(ATTRIBUTES))
_created = st.sampled_from(("absent", None, "", "offset"))
_created_half_days = st.integers(-2, 60)


@st.composite
def leads(draw: st.DrawFn, lead_id: str = LEAD_ID) -> Lead:
    """A lead with some attributes of mixed types and maybe `created_at` (0-30 days ago,
    in half days, or just after AS_OF; or null or empty)."""
    attributes: dict[str, Any] = {name: draw(attribute_values) for name in draw(_attribute_name_lists)}
    created = draw(_created)
    if created == "offset":
        attributes["created_at"] = iso(AS_OF_US - draw(_created_half_days) * MICROS_PER_DAY // 2)
    elif created != "absent":
        attributes["created_at"] = created
    return Lead(lead_id, attributes)


WINDOW_EDGES = (0, MICROS_PER_DAY // 2, MICROS_PER_DAY, 7 * MICROS_PER_DAY, 30 * MICROS_PER_DAY,
                90 * MICROS_PER_DAY)
"""Ages (µs) at which a `within_days` window of the drawn models ends."""


def _timestamps(latest: int) -> st.SearchStrategy[int]:
    edges = st.tuples(st.sampled_from(WINDOW_EDGES), st.sampled_from((-1, 0, 0, 1))).map(
        lambda edge: AS_OF_US - edge[0] - edge[1]).filter(lambda ts: latest or ts <= AS_OF_US)
    return st.one_of(
        st.integers(-2 * latest, 240).map(lambda halves: AS_OF_US - halves * MICROS_PER_DAY // 2),
        st.integers(-latest * 86_400, 120 * 86_400).map(lambda s: AS_OF_US - s * 1_000_000),
        # exactly on a window's edge, or 1 µs either side of it (twice as likely)
        edges,
        edges,
    )


_TIMESTAMPS = {True: _timestamps(3), False: _timestamps(0)}


def timestamps(*, after_as_of: bool = True) -> st.SearchStrategy[int]:
    """Epoch µs around AS_OF: whole and half days (to hit window edges), or any second, up to
    120 days back; up to 3 days after AS_OF unless ``after_as_of`` is False."""
    return _TIMESTAMPS[after_as_of]


@st.composite
def events(draw: st.DrawFn, *, lead_id: str = LEAD_ID, ts: int | None = None,
           event_id: str | None = None, after_as_of: bool = True) -> Event:
    """One event of a random type and properties (``ts``/``event_id`` fixed when given)."""
    when = draw(_TIMESTAMPS[after_as_of]) if ts is None else ts
    return Event(lead_id, draw(_event_type), when, draw(_properties), event_id)


_DISTINCT_STAMPS = {k: st.lists(v, unique=True, max_size=16) for k, v in _TIMESTAMPS.items()}
_list_sizes = st.integers(0, 16)


@st.composite
def event_lists(draw: st.DrawFn, *, distinct: bool = False, after_as_of: bool = True,
                lead_id: str = LEAD_ID) -> list[Event]:
    """0 to 16 events of one lead. ``distinct``: every event has its own id and its own
    timestamp. Otherwise ids are missing or drawn from a few values (so duplicates occur)."""
    stamps_strategy = _TIMESTAMPS[after_as_of]
    if distinct:
        stamps = draw(_DISTINCT_STAMPS[after_as_of])
        return [Event(lead_id, draw(_event_type), t, draw(_properties), f"e{i}")
                for i, t in enumerate(stamps)]
    return [Event(lead_id, draw(_event_type), draw(stamps_strategy), draw(_properties),
                  draw(_event_ids)) for _ in range(draw(_list_sizes))]


@st.composite
def scenarios(draw: st.DrawFn, *, distinct: bool = False, **model_options: Any
              ) -> tuple[ScoringModel, Lead, list[Event]]:
    """(model, lead, events) for one lead, scored at AS_OF_US."""
    return draw(models(**model_options)), draw(leads()), draw(event_lists(distinct=distinct))
