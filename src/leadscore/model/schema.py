"""The scoring-model language, version 1, as pydantic classes.

The classes mirror ``shared/docs/model-spec.md`` one to one. Checks that need the
whole document (unique rule ids, stage order, ...) live in :mod:`.checks`, so that
every problem is reported with its exact path.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
)
CONDITION_KINDS: tuple[str, ...] = ("attribute", "event", "no_event", "all", "any", "not")
RULE_ID_PATTERN = r"^[a-z0-9_-]+$"
GROUP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
DEFAULT_GROUP = "default"


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` - did you mean 'x'?`` when a choice is close to ``word``, else ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" - did you mean '{close[0]}'?" if close else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number", "expected a number, got {got}", {"got": _describe(value)})
    if not math.isfinite(value):
        raise PydanticCustomError("number", "expected a finite number, got {got}", {"got": value})
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise PydanticCustomError(
            "integer", "expected a whole number, got {got}", {"got": _describe(value)}
        )
    return value


def _scalar(value: Any) -> str | int | float | bool:
    if value is None:
        raise PydanticCustomError(
            "scalar", "expected a text, number or boolean, got null (to test for a missing value use exists: false)"
        )
    if not isinstance(value, (str, int, float, bool)):
        raise PydanticCustomError(
            "scalar", "expected a text, number or boolean, got {got}", {"got": _describe(value)}
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("scalar", "expected a finite number, got {got}", {"got": value})
    return _nfc(value) if isinstance(value, str) else value


def _nfc(text: str) -> str:
    """Unicode NFC, as all text on the way in (so `Nguyễn` typed on any system matches)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("text", "expected a text, got {got}", {"got": _describe(value)})
    return _nfc(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise PydanticCustomError(
            "boolean", "expected true or false, got {got}", {"got": _describe(value)}
        )
    return value


Number = Annotated[float, BeforeValidator(_number)]
Integer = Annotated[int, BeforeValidator(_integer)]
Scalar = Annotated[Union[str, int, float, bool], BeforeValidator(_scalar)]
Text = Annotated[str, BeforeValidator(_text)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]


class Strict(BaseModel):
    """Base class: unknown keys are refused with a did-you-mean hint."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")
    _key_noun: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            if isinstance(data, BaseModel):
                return data
            raise PydanticCustomError(
                "mapping", "expected a mapping (key: value pairs), got {got}", {"got": _describe(data)}
            )
        allowed = [f.alias or name for name, f in cls.model_fields.items()]
        for key in data:
            if not isinstance(key, str):
                raise PydanticCustomError("key", "keys must be text, got {got}", {"got": _describe(key)})
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                if not hint:
                    hint = f" (allowed: {', '.join(allowed)})"
                raise PydanticCustomError(
                    "unknown_key", "unknown {noun} '{key}'{hint}", {"noun": cls._key_noun, "key": key, "hint": hint}
                )
        return data


class Predicate(Strict):
    """Exactly one operator with its operand; shared by attribute conditions and `where` filters."""

    _key_noun: ClassVar[str] = "operator"

    equals: Scalar | None = None
    not_equals: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(None, min_length=1)
    contains: Text | None = None
    starts_with: Text | None = None
    matches: Text | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    between: list[Number] | None = Field(None, min_length=2, max_length=2)
    exists: Boolean | None = None

    @field_validator("matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PydanticCustomError(
                    "regex", "not a valid regular expression: {err}", {"err": str(exc)}
                ) from None
        return pattern

    @field_validator("between")
    @classmethod
    def _ordered(cls, bounds: list[float] | None) -> list[float] | None:
        if bounds is not None and bounds[0] > bounds[1]:
            raise PydanticCustomError(
                "between", "between needs [low, high] with low <= high, got [{lo}, {hi}]",
                {"lo": bounds[0], "hi": bounds[1]},
            )
        return bounds

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> Predicate:
        used = [self._alias(name) for name in self.model_fields_set if self._alias(name) in OPERATORS]
        if len(used) != 1:
            if not used:
                raise PydanticCustomError(
                    "operator", "needs exactly one operator, one of: {ops}", {"ops": ", ".join(OPERATORS)}
                )
            raise PydanticCustomError(
                "operator", "needs exactly one operator, found {n}: {ops} (combine conditions with all: [...])",
                {"n": len(used), "ops": ", ".join(sorted(used))},
            )
        for name in self.model_fields_set:
            if self._alias(name) in OPERATORS and getattr(self, name) is None:
                raise PydanticCustomError(
                    "operator", "operator '{op}' needs a value (to test for a missing value use exists: false)",
                    {"op": self._alias(name)},
                )
        return self

    @classmethod
    def _alias(cls, name: str) -> str:
        return cls.model_fields[name].alias or name

    @property
    def op(self) -> str:
        """The operator's name as written in the document (``in``, not ``in_``)."""
        for name in self.model_fields_set:
            alias = self._alias(name)
            if alias in OPERATORS:
                return alias
        raise AssertionError("validated predicate without operator")  # pragma: no cover

    @property
    def value(self) -> Any:
        """The operand of the operator."""
        return getattr(self, "in_" if self.op == "in" else self.op)


class AttributeCondition(Predicate):
    """``{attribute: NAME, OP: VALUE}``: a test on one lead attribute."""

    kind: ClassVar[str] = "attribute"
    attribute: Text = Field(min_length=1)


class PropertyFilter(Predicate):
    """``{OP: VALUE}`` inside an event condition's ``where``."""


def _check_event_types(value: str | list[str]) -> str | list[str]:
    """An event type, or a non-empty list of them; none may be blank."""
    types = [value] if isinstance(value, str) else value
    if not types or any(not t.strip() for t in types):
        raise PydanticCustomError("event_type", "needs at least one non-empty event type")
    return value


class EventCondition(Strict):
    """``{event: TYPE or [TYPES], where, within_days, min_count}``: matching events exist."""

    kind: ClassVar[str] = "event"
    event: Text | list[Text] = Field(description="event type, or a list of types")
    where: dict[str, PropertyFilter] | None = None
    # the bound sits before the validator so that the JSON schema says `minimum` (not `ge`)
    within_days: Annotated[float, Field(ge=0), BeforeValidator(_number)] | None = None
    min_count: Integer = Field(1, ge=1)

    _types_given = field_validator("event")(_check_event_types)

    @property
    def types(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)


class AbsenceCondition(Strict):
    """``{no_event: TYPE or [TYPES], where, within_days}``: no matching event in the last N days."""

    kind: ClassVar[str] = "no_event"
    no_event: Text | list[Text] = Field(description="event type, or a list of types")
    where: dict[str, PropertyFilter] | None = None
    within_days: Number = Field(gt=0)

    _types_given = field_validator("no_event")(_check_event_types)

    @property
    def types(self) -> tuple[str, ...]:
        return (self.no_event,) if isinstance(self.no_event, str) else tuple(self.no_event)


class AllCondition(Strict):
    """``{all: [c, ...]}``: every condition holds."""

    kind: ClassVar[str] = "all"
    all: list[Condition] = Field(min_length=1)


class AnyCondition(Strict):
    """``{any: [c, ...]}``: at least one condition holds."""

    kind: ClassVar[str] = "any"
    any: list[Condition] = Field(min_length=1)


class NotCondition(Strict):
    """``{not: c}``: the condition does not hold."""

    kind: ClassVar[str] = "not"
    not_: Condition = Field(alias="not")


# Tags appear in pydantic's error locations; loading strips them (see TAG_SUFFIX).
TAG_SUFFIX = "<condition>"


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return f"{value.kind}{TAG_SUFFIX}"  # type: ignore[attr-defined]
    if isinstance(value, dict):
        for kind in CONDITION_KINDS:
            if kind in value:
                return f"{kind}{TAG_SUFFIX}"
    return None


def _check_condition_shape(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "condition",
            "a condition is a mapping such as {attribute: job_title, contains: vp} or "
            "{event: page_view}, got {got}",
            {"got": _describe(value)},
        )
    kinds = [k for k in CONDITION_KINDS if k in value]
    if len(kinds) > 1:
        raise PydanticCustomError(
            "condition",
            "a condition has exactly one of {kinds}; found {found} (combine them with all: [...])",
            {"kinds": ", ".join(CONDITION_KINDS), "found": " and ".join(kinds)},
        )
    if not kinds:
        hints = [did_you_mean(str(k), CONDITION_KINDS) for k in value]
        hint = next((h for h in hints if h), "")
        keys = ", ".join(f"'{k}'" for k in value) or "nothing"
        raise PydanticCustomError(
            "condition",
            "a condition needs one of {kinds}; found {keys}{hint}",
            {"kinds": ", ".join(CONDITION_KINDS), "keys": keys, "hint": hint},
        )
    return value


Condition = Annotated[
    Union[
        Annotated[AttributeCondition, Tag(f"attribute{TAG_SUFFIX}")],
        Annotated[EventCondition, Tag(f"event{TAG_SUFFIX}")],
        Annotated[AbsenceCondition, Tag(f"no_event{TAG_SUFFIX}")],
        Annotated[AllCondition, Tag(f"all{TAG_SUFFIX}")],
        Annotated[AnyCondition, Tag(f"any{TAG_SUFFIX}")],
        Annotated[NotCondition, Tag(f"not{TAG_SUFFIX}")],
    ],
    Discriminator(_condition_tag),
    BeforeValidator(_check_condition_shape),
]

AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()


def walk_conditions(condition: Any) -> Iterator[Any]:
    """Every condition in a tree, the condition itself first (pre-order, children in order)."""
    yield condition
    if isinstance(condition, AllCondition):
        for child in condition.all:
            yield from walk_conditions(child)
    elif isinstance(condition, AnyCondition):
        for child in condition.any:
            yield from walk_conditions(child)
    elif isinstance(condition, NotCondition):
        yield from walk_conditions(condition.not_)


def time_conditions(condition: Any) -> list[EventCondition | AbsenceCondition]:
    """The event and absence conditions of a tree (what time and events move), in
    :func:`walk_conditions` order: the order in which the engine and the SQL compiler
    both look at them for a lead's next change."""
    return [c for c in walk_conditions(condition) if isinstance(c, (EventCondition, AbsenceCondition))]


class Decay(Strict):
    """``{half_life_days: H}``: an event's points halve every H days."""

    half_life_days: Number = Field(gt=0)


def _with_article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


class Rule(Strict):
    """One scoring rule: points when a condition holds."""

    id: Text = Field(pattern=RULE_ID_PATTERN, description="unique; lower-case letters, digits, _ and -")
    label: Text | None = Field(None, description="shown in explanations")
    group: Text = Field(DEFAULT_GROUP, pattern=GROUP_NAME_PATTERN)
    points: Number = Field(description="non-zero; may be negative")
    when: Condition
    repeat: Literal["once", "each"] = "once"
    # the bound sits before the validator so that the JSON schema says `minimum` (not `ge`)
    max_times: Annotated[int, Field(ge=1), BeforeValidator(_integer)] | None = None
    decay: Decay | None = None

    @field_validator("points")
    @classmethod
    def _non_zero(cls, points: float) -> float:
        if points == 0:
            raise PydanticCustomError("points", "points must not be 0 (remove the rule instead)")
        return points

    @field_validator("repeat", "decay")
    @classmethod
    def _only_on_event_rules(cls, value: Any, info: ValidationInfo) -> Any:
        when = info.data.get("when")
        if when is not None and not isinstance(when, EventCondition):
            raise PydanticCustomError(
                "event_rule_only",
                "{field} is only allowed when `when` is a single event condition ({event: ...}), "
                "not {kind} condition",
                {"field": info.field_name, "kind": _with_article(getattr(when, "kind", "?"))},
            )
        return value

    @field_validator("max_times")
    @classmethod
    def _needs_repeat_each(cls, value: int | None, info: ValidationInfo) -> int | None:
        when = info.data.get("when")
        if value is not None and when is not None and not isinstance(when, EventCondition):
            raise PydanticCustomError(
                "event_rule_only",
                "max_times is only allowed when `when` is a single event condition ({event: ...})",
            )
        if value is not None and info.data.get("repeat", "once") != "each":
            raise PydanticCustomError(
                "max_times", "max_times needs repeat: each (with repeat: once only one event counts)"
            )
        return value

    @model_validator(mode="after")
    def _min_count_with_each(self) -> Rule:
        if (
            self.repeat == "each"
            and isinstance(self.when, EventCondition)
            and "min_count" in self.when.model_fields_set
        ):
            raise PydanticCustomError(
                "min_count", "min_count is invalid with repeat: each (use repeat: once, or drop min_count)"
            )
        return self

    @property
    def is_event_rule(self) -> bool:
        """True when ``when`` is a single event condition (so repeat/decay apply)."""
        return isinstance(self.when, EventCondition)


class ScoreRange(Strict):
    """The total is clipped to [min, max]."""

    min: Number = 0
    max: Number = 100


class Group(Strict):
    """A group's sum is clipped to [min, max]; ``grades`` map names to falling thresholds."""

    min: Number | None = None
    max: Number | None = None
    grades: dict[str, Number] | None = Field(
        None, description="grade name -> threshold, in the order written, falling thresholds"
    )


class Stage(Strict):
    """A stage: the first one whose min_score <= total wins."""

    name: Text = Field(min_length=1)
    min_score: Number


from leadscore.model.automation import EmailSettings, Segment, Trigger  # noqa: E402


class ScoringModel(Strict):
    """A scoring model (the whole document)."""

    model_config = ConfigDict(
        title="leadscore scoring model",
        json_schema_extra={"$comment": "leadscore scoring-model language, version 1"},
    )

    version: Literal[1] = Field(description="language version; must be 1")
    name: Text = Field(min_length=1)
    description: Text | None = None
    score: ScoreRange = Field(default_factory=ScoreRange)
    groups: dict[str, Group] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    stages: list[Stage] | None = None
    triggers: list[Trigger] | None = None  # docs/automation.md
    segments: list[Segment] | None = None
    email: EmailSettings | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_not_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True == 1 in Python, but `version: true` is not version 1
            raise PydanticCustomError("literal_error", "Input should be 1")
        return value

    def group_names(self) -> list[str]:
        """Every group of the model: declared ones in the order written, then the rest in rule order."""
        names = list(self.groups)
        for rule in self.rules:
            if rule.group not in names:
                names.append(rule.group)
        return names

    def graded_groups(self) -> list[str]:
        """The groups that have grades, in group order."""
        return [g for g in self.group_names() if g in self.groups and self.groups[g].grades]

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if none)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)
