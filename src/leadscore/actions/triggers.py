"""Evaluating triggers on score changes, inside the scoring transaction.

:func:`on_changes` is registered with ``on_score_change``: for each rescored lead it
updates segment memberships and first-fired rules, then runs the actions of every
trigger whose ``on`` matched. Webhooks and e-mails become outbox rows (delivered later
by the dispatcher); owners and tags are written at once. Nothing here waits on a network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadscore.actions import emails, outbox, owners, segments
from leadscore.engine import iso
from leadscore.model import ScoringModel
from leadscore.model.automation import Action, Trigger
from leadscore.service.models import ModelCache
from leadscore.service.scoring import ScoreChange, chunks
from leadscore.store.queries import insert_ignoring
from leadscore.store.tables import leads
from leadscore.store.tables_automation import rules_fired

_models: dict[str, ModelCache] = {}  # by database URL: versions are numbered per database


@dataclass
class Happenings:
    """What happened to one lead in this change, beyond the score itself."""

    entered: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)
    first_fired: set[str] = field(default_factory=set)


def crossed(trigger: Trigger, change: ScoreChange, seen: Happenings) -> bool:
    """Does this change start the trigger? (See docs/automation.md, "When triggers fire".)"""
    on = trigger.on
    kind, value = on.kind, on.value
    old, new = change.old_score, change.result.score
    if kind == "stage_entered":
        return change.stage_changed and change.result.stage == value
    if kind == "stage_left":
        return change.stage_changed and change.old_stage == value and change.old_score is not None
    if kind == "score_above":
        return (old is None or old < value) and new >= value
    if kind == "score_below":
        return old is not None and old >= value and new < value
    if kind == "rule_fired":
        return value in seen.first_fired
    if kind == "segment_entered":
        return value in seen.entered
    if kind == "segment_left":
        return value in seen.left
    raise AssertionError(kind)  # pragma: no cover - the schema allows no other kind


def _first_fired(session: Session, changes: Sequence[ScoreChange], rules: set[str]) -> dict[int, set[str]]:
    """Record rules giving points for the first time; returns them per lead."""
    now_giving = {
        c.lead_pk: {x.rule_id for x in c.result.contributions if x.points and x.rule_id in rules}
        for c in changes
    }
    pks = [pk for pk, given in now_giving.items() if given]
    if not pks:
        return {}
    before: dict[int, set[str]] = {pk: set() for pk in pks}
    for part in chunks(pks):
        for pk, rule in session.execute(
            select(rules_fired.c.lead_pk, rules_fired.c.rule_id).where(rules_fired.c.lead_pk.in_(part))
        ):
            before[int(pk)].add(str(rule))
    out: dict[int, set[str]] = {}
    rows: list[dict[str, Any]] = []
    at = changes[0].at_us
    for pk in pks:
        new = now_giving[pk] - before[pk]
        if new:
            out[pk] = new
            rows.extend({"lead_pk": pk, "rule_id": r, "first_us": at} for r in sorted(new))
    if rows:
        session.execute(insert_ignoring(session, rules_fired, ["lead_pk", "rule_id"]), rows)
    return out


def _attributes(session: Session, pks: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(pks)):
        for pk, attributes in session.execute(
            select(leads.c.id, leads.c.attributes).where(leads.c.id.in_(part))
        ):
            out[int(pk)] = attributes or {}
    return out


def webhook_body(trigger: Trigger, change: ScoreChange, attributes: Mapping[str, Any],
                 key: str) -> dict[str, Any]:
    result = change.result
    return {
        "id": key,
        "trigger": trigger.id,
        "on": {trigger.on.kind: trigger.on.value},
        "lead": {"lead_id": change.lead_id, "attributes": dict(attributes)},
        "old": {"score": change.old_score, "stage": change.old_stage, "grades": change.old_grades},
        "new": {"score": result.score, "stage": result.stage, "grades": dict(result.grades)},
        "cause": change.cause,
        "detail": change.detail,
        "model_version": change.model_version_id,
        "occurred_at": iso(change.at_us),
    }


def run_actions(session: Session, model: ScoringModel, trigger: Trigger, change: ScoreChange,
                attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a matched trigger's actions; returns the outbox rows to write."""
    rows: list[dict[str, Any]] = []
    now = change.at_us
    owners.log_action(session, change.lead_pk, now, trigger.id, "trigger",
                      f"{trigger.on.kind}: {trigger.on.value}")
    for index, action in enumerate(trigger.do):
        key = outbox.idempotency_key(trigger.id, index, change.lead_pk, change.lead_id, now)
        rows.extend(_action(session, model, trigger, index, action, change, attributes, key))
    return rows


def _action(session: Session, model: ScoringModel, trigger: Trigger, index: int, action: Action,
            change: ScoreChange, attributes: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    now = change.at_us
    if action.webhook is not None:
        hook = action.webhook
        payload = {"body": webhook_body(trigger, change, attributes, key), "secret": hook.secret,
                   "timeout_seconds": hook.timeout_seconds}
        return [outbox.new_row(key=key, kind="webhook", trigger_id=trigger.id,
                               lead_pk=change.lead_pk, lead_id=change.lead_id, target=hook.url,
                               payload=payload, max_attempts=hook.max_attempts, now_us=now)]
    if action.email is not None:
        settings = model.email
        assert settings is not None  # checked when the model was loaded
        address, reason = emails.recipient(session, action.email, settings, change.lead_pk,
                                           dict(attributes))
        if address is None:
            owners.log_action(session, change.lead_pk, now, trigger.id, "email_skipped", reason)
            return []
        to_lead = action.email.to == "lead"
        if to_lead and emails.over_rate_limit(session, settings, change.lead_pk, now):
            owners.log_action(session, change.lead_pk, now, trigger.id, "email_skipped",
                              "rate limit reached")
            return []
        template = settings.templates[action.email.template]
        context = {
            "lead": {"lead_id": change.lead_id, **dict(attributes)},
            "change": webhook_body(trigger, change, attributes, key),
            "owner": owners.owner_of(session, change.lead_pk),
            "trigger": trigger.id,
        }
        try:
            subject = emails.render(template.subject, context).strip()
            body = emails.render(template.body, context)
        except Exception as exc:  # noqa: BLE001 - a template error must not refuse the event
            owners.log_action(session, change.lead_pk, now, trigger.id, "email_skipped",
                              f"template error: {exc}")
            return []
        message: dict[str, Any] = {"from": settings.from_, "subject": subject, "body": body,
                                   "template": action.email.template}
        if to_lead:
            message["consent"] = {
                "from": settings.from_, "email_attribute": settings.email_attribute,
                "consent_attribute": settings.consent_attribute,
                "unsubscribed_attribute": settings.unsubscribed_attribute,
            }
        owners.log_action(session, change.lead_pk, now, trigger.id, "email", address)
        kind = "email_lead" if to_lead else "email"
        return [outbox.new_row(key=key, kind=kind, trigger_id=trigger.id, lead_pk=change.lead_pk,
                               lead_id=change.lead_id, target=address, payload=message,
                               max_attempts=8, now_us=now)]
    if action.assign_owner is not None:
        owners.assign_owner(session, action.assign_owner, change.lead_pk, attributes, now,
                            trigger.id, f"round_robin:{trigger.id}:{index}")
        return []
    if action.tag is not None:
        owners.apply_tags(session, action.tag, change.lead_pk, now, trigger.id)
    return []


def on_changes(session: Session, changes: Sequence[ScoreChange]) -> None:
    """The ``on_score_change`` listener."""
    if not changes:
        return
    by_version: dict[int, list[ScoreChange]] = {}
    for change in changes:
        by_version.setdefault(change.model_version_id, []).append(change)
    for version, group in by_version.items():
        url = str(session.get_bind().engine.url)
        model = _models.setdefault(url, ModelCache()).get(session, version).model
        if not model.triggers and not model.segments:
            continue
        evaluate(session, model, group)


def evaluate(session: Session, model: ScoringModel, changes: Sequence[ScoreChange]) -> None:
    attributes = _attributes(session, [c.lead_pk for c in changes])
    moved = segments.update_for_changes(session, model, changes, attributes)
    triggers = model.triggers or []
    if not triggers:
        return
    watched = {t.on.value for t in triggers if t.on.kind == "rule_fired"}
    first = _first_fired(session, changes, watched) if watched else {}
    rows: list[dict[str, Any]] = []
    for change in changes:
        entered, left = moved.get(change.lead_pk, (set(), set()))
        seen = Happenings(entered, left, first.get(change.lead_pk, set()))
        for trigger in triggers:
            if crossed(trigger, change, seen):
                rows.extend(run_actions(session, model, trigger, change,
                                        attributes.get(change.lead_pk, {})))
    outbox.enqueue(session, rows)
