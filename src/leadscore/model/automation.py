"""Automation in the scoring-model language: ``triggers``, ``segments`` and ``email``.

All three top-level keys are optional, so every version-1 document keeps validating
and meaning the same. Checks that need the whole document (a trigger naming an
unknown stage, rule, segment or template) live in :func:`automation_issues`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from leadscore.errors import ModelIssue
from leadscore.model.schema import (
    RULE_ID_PATTERN,
    AttributeCondition,
    Boolean,
    Number,
    Strict,
    Text,
    _integer,
    _number,
    did_you_mean,
)

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
TRIGGER_EVENTS: tuple[str, ...] = (
    "stage_entered", "stage_left", "score_above", "score_below", "rule_fired",
    "segment_entered", "segment_left",
)
ACTION_KINDS: tuple[str, ...] = ("webhook", "email", "assign_owner", "tag")

PositiveNumber = Annotated[float, Field(gt=0), BeforeValidator(_number)]
PositiveInteger = Annotated[int, Field(ge=1), BeforeValidator(_integer)]


class WebhookAction(Strict):
    """``{webhook: {url, secret, timeout_seconds, max_attempts}}``: POST the change as JSON."""

    url: Text = Field(description="http(s) URL; may hold ${ENV_VAR} references for secrets")
    secret: Text | None = Field(
        None, pattern=SECRET_PATTERN,
        description="HMAC-SHA256 signing secret, as an ${ENV_VAR} reference (never a literal)",
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=60), BeforeValidator(_number)] = 5.0
    max_attempts: Annotated[int, Field(ge=1, le=100), BeforeValidator(_integer)] = 8

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://", "${")):
            raise PydanticCustomError(
                "url", "a webhook url starts with http:// or https://, got {url!r}", {"url": url}
            )
        return url


class EmailAction(Strict):
    """``{email: {template, to}}``: render a template of ``email.templates`` and send it."""

    template: Text = Field(min_length=1)
    to: Text = Field("owner", description="lead (needs consent), owner, or an e-mail address")


class Territory(Strict):
    """``{when: {attribute: country, in: [DE, AT]}, owner: anna@example.com}``."""

    when: AttributeCondition
    owner: Text = Field(min_length=1)


class AssignOwnerAction(Strict):
    """``{assign_owner: {territories: [...], round_robin: [reps], keep_existing: true}}``:
    the first matching territory wins, else the next rep of ``round_robin``."""

    territories: list[Territory] | None = None
    round_robin: list[Text] | None = Field(None, min_length=1)
    keep_existing: Boolean = True

    @model_validator(mode="after")
    def _some_rule(self) -> AssignOwnerAction:
        if not self.territories and not self.round_robin:
            raise PydanticCustomError("owner", "assign_owner needs territories, round_robin or both")
        return self


class TagAction(Strict):
    """``{tag: {add: [hot], remove: [cold]}}``."""

    add: list[Text] | None = None
    remove: list[Text] | None = None

    @model_validator(mode="after")
    def _something(self) -> TagAction:
        if not self.add and not self.remove:
            raise PydanticCustomError("tag", "tag needs add, remove or both")
        return self


class Action(Strict):
    """Exactly one of ``webhook``, ``email``, ``assign_owner``, ``tag``."""

    _key_noun: ClassVar[str] = "action"

    webhook: WebhookAction | None = None
    email: EmailAction | None = None
    assign_owner: AssignOwnerAction | None = None
    tag: TagAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        used = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(used) != 1:
            raise PydanticCustomError(
                "action", "an action has exactly one of {kinds}; found {n}",
                {"kinds": ", ".join(ACTION_KINDS), "n": len(used)},
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)


class TriggerOn(Strict):
    """What starts a trigger: exactly one of :data:`TRIGGER_EVENTS`."""

    _key_noun: ClassVar[str] = "trigger event"

    stage_entered: Text | None = None
    stage_left: Text | None = None
    score_above: Number | None = Field(None, description="the score crosses this value upward")
    score_below: Number | None = Field(None, description="the score crosses this value downward")
    rule_fired: Text | None = Field(None, description="a rule gives points for the first time")
    segment_entered: Text | None = None
    segment_left: Text | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TriggerOn:
        used = [k for k in TRIGGER_EVENTS if getattr(self, k) is not None]
        if len(used) != 1:
            raise PydanticCustomError(
                "trigger_on", "`on` needs exactly one of {kinds}; found {n}",
                {"kinds": ", ".join(TRIGGER_EVENTS), "n": len(used)},
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TRIGGER_EVENTS if getattr(self, k) is not None)

    @property
    def value(self) -> Any:
        return getattr(self, self.kind)


class Trigger(Strict):
    """``{id, on: {...}, do: [actions]}``."""

    id: Text = Field(pattern=RULE_ID_PATTERN)
    description: Text | None = None
    on: TriggerOn
    do: list[Action] = Field(min_length=1)


class Segment(Strict):
    """A named dynamic list: every filter given must hold."""

    name: Text = Field(pattern=RULE_ID_PATTERN)
    description: Text | None = None
    min_score: Number | None = None
    max_score: Number | None = None
    stage: Text | list[Text] | None = None
    grades: dict[str, Text | list[Text]] | None = None
    attributes: list[AttributeCondition] | None = None
    rule_fired: Text | list[Text] | None = Field(None, description="rules that give points now")
    active_within_days: Annotated[float, Field(gt=0), BeforeValidator(_number)] | None = None

    @property
    def stages(self) -> tuple[str, ...] | None:
        return None if self.stage is None else (
            (self.stage,) if isinstance(self.stage, str) else tuple(self.stage))

    @property
    def rules(self) -> tuple[str, ...]:
        if self.rule_fired is None:
            return ()
        return (self.rule_fired,) if isinstance(self.rule_fired, str) else tuple(self.rule_fired)


class EmailTemplate(Strict):
    """A Jinja template (sandboxed): ``lead``, ``change``, ``owner`` and ``trigger`` are defined."""

    subject: Text = Field(min_length=1)
    body: Text = Field(min_length=1)

    @field_validator("subject", "body")
    @classmethod
    def _compiles(cls, text: str) -> str:
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        try:
            SandboxedEnvironment().parse(text)
        except TemplateSyntaxError as exc:
            raise PydanticCustomError(
                "template", "not a valid template: {err} (line {line})",
                {"err": exc.message or "syntax error", "line": exc.lineno},
            ) from None
        return text


class RateLimit(Strict):
    """At most ``max`` e-mails to one lead per ``per_hours``."""

    max: PositiveInteger = 1
    per_hours: PositiveNumber = 24


class EmailSettings(Strict):
    """``email:`` the sender, templates and the consent rules of e-mail actions."""

    from_: Text = Field(alias="from", min_length=3)
    templates: dict[str, EmailTemplate] = Field(default_factory=dict)
    email_attribute: Text = "email"
    consent_attribute: Text = "consent_email"
    unsubscribed_attribute: Text = "unsubscribed"
    rate_limit: RateLimit = Field(default_factory=RateLimit)


def env_references(text: str) -> list[str]:
    """The names of the ``${ENV_VAR}`` references in a text."""
    return ENV_REFERENCE.findall(text)


def automation_issues(model: Any) -> list[ModelIssue]:
    """Problems of ``triggers``, ``segments`` and ``email`` that need the whole document."""
    issues: list[ModelIssue] = []
    stages = [s.name for s in model.stages or []]
    rules = [r.id for r in model.rules]
    segments = [s.name for s in model.segments or []]
    templates = list(model.email.templates) if model.email is not None else []

    def known(path: str, noun: str, name: str, choices: list[str]) -> None:
        if name not in choices:
            hint = did_you_mean(name, choices) or (
                f" (known: {', '.join(choices)})" if choices else f" (the model has no {noun}s)")
            issues.append(ModelIssue(path, f"unknown {noun} '{name}'{hint}"))

    seen: dict[str, int] = {}
    for index, segment in enumerate(model.segments or []):
        where = f"segments[{index}]"
        if segment.name in seen:
            issues.append(ModelIssue(f"{where}.name", f"duplicate segment name '{segment.name}'"))
        seen.setdefault(segment.name, index)
        for stage in segment.stages or ():
            known(f"{where}.stage", "stage", stage, stages)
        for rule in segment.rules:
            known(f"{where}.rule_fired", "rule", rule, rules)
        for group in segment.grades or {}:
            known(f"{where}.grades", "graded group", group, model.graded_groups())
    ids: dict[str, int] = {}
    for index, trigger in enumerate(model.triggers or []):
        where = f"triggers[{index}]"
        if trigger.id in ids:
            issues.append(ModelIssue(f"{where}.id", f"duplicate trigger id '{trigger.id}'"))
        ids.setdefault(trigger.id, index)
        kind, value = trigger.on.kind, trigger.on.value
        if kind in ("stage_entered", "stage_left"):
            known(f"{where}.on.{kind}", "stage", value, stages)
        elif kind == "rule_fired":
            known(f"{where}.on.{kind}", "rule", value, rules)
        elif kind in ("segment_entered", "segment_left"):
            known(f"{where}.on.{kind}", "segment", value, segments)
        for a_index, action in enumerate(trigger.do):
            if action.email is not None:
                path = f"{where}.do[{a_index}].email"
                if model.email is None:
                    issues.append(ModelIssue(path, "an email action needs an `email:` section "
                                                   "(from, templates) in the model"))
                else:
                    known(f"{path}.template", "template", action.email.template, templates)
    return issues
