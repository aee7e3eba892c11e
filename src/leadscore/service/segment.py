"""Segment / RudderStack webhook payloads: identify, track, page, screen and batch.

``userId`` (else ``anonymousId``) is the lead_id; identify ``traits`` are attributes;
a track's ``event`` is the event type (page -> ``page_view``, screen -> ``screen_view``);
``messageId`` is the event_id, so a webhook retried by Segment counts once. Other
message types (group, alias) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from leadscore.ingest.normalise import kind_of
from leadscore.service.errors import InvalidRequest
from leadscore.service.ingest import (
    DEFAULT_TOLERANCE_US,
    clean_attributes,
    clean_lead_id,
    parse_events,
    store_events,
    upsert_lead,
)
from leadscore.service.models import ActiveModel
from leadscore.service.scoring import ScoringPolicy, score_public

EVENT_TYPES = {"page": "page_view", "screen": "screen_view"}
IGNORED = ("group", "alias")


def _messages(payload: Any) -> tuple[list[Any], str]:
    if not isinstance(payload, Mapping):
        raise InvalidRequest("a Segment payload is a JSON object", "body")
    if "batch" in payload:
        batch = payload["batch"]
        if not isinstance(batch, list):
            raise InvalidRequest("batch must be a list of messages", "batch")
        return batch, "batch"
    return [payload], "message"


def _lead_id(message: Mapping[str, Any], where: str) -> Any:
    for key in ("userId", "anonymousId"):
        value = message.get(key)
        if value is not None and value != "":
            return value
    raise InvalidRequest(f"{where}: needs userId or anonymousId", f"{where}.userId")


def _id_key(message: Mapping[str, Any]) -> str:
    """The key the lead_id of ``message`` comes from (:func:`_lead_id`)."""
    return "userId" if message.get("userId") not in (None, "") else "anonymousId"


def ingest_segment(
    session: Session, model: ActiveModel, payload: Any, now_us: int, *,
    policy: ScoringPolicy = ScoringPolicy(), tolerance_us: int = DEFAULT_TOLERANCE_US,
    max_events: int = 10_000,
) -> dict[str, Any]:
    """Apply a Segment message or batch; every message is checked before anything is stored."""
    messages, name = _messages(payload)
    if not messages:
        raise InvalidRequest(f"{name}: the batch is empty", name)
    if len(messages) > max_events:
        raise InvalidRequest(f"{name}: {len(messages)} messages; at most {max_events}", name)
    identifies: list[tuple[Any, dict[str, Any], str]] = []
    records: list[dict[str, Any]] = []
    origins: list[tuple[str, Mapping[str, Any]]] = []  # each record's place and message
    ignored = 0
    for index, message in enumerate(messages):
        where = f"batch[{index}]" if name == "batch" else "body"
        if not isinstance(message, Mapping):
            raise InvalidRequest(f"{where}: a message is a JSON object", where)
        kind = message.get("type")
        if kind in IGNORED:
            ignored += 1
            continue
        lead_id = _lead_id(message, where)
        if kind == "identify":
            traits = message.get("traits") or {}
            if not isinstance(traits, Mapping):
                raise InvalidRequest(f"{where}.traits: must be an object, got {kind_of(traits)}", f"{where}.traits")
            clean_lead_id(lead_id, f"{where}.{_id_key(message)}")
            clean_attributes(traits, f"{where}.traits")
            identifies.append((lead_id, dict(traits), where))
        elif kind in ("track", "page", "screen"):
            if kind == "track":
                event_type = message.get("event")
                if not isinstance(event_type, str) or not event_type.strip():
                    raise InvalidRequest(f"{where}.event: a track needs an event name", f"{where}.event")
            else:
                event_type = EVENT_TYPES[kind]
            properties = message.get("properties") or {}
            if not isinstance(properties, Mapping):
                raise InvalidRequest(f"{where}.properties: must be an object, got {kind_of(properties)}", f"{where}.properties")
            if kind != "track" and message.get("name") and "name" not in properties:
                properties = {**properties, "name": message["name"]}
            records.append({
                "lead_id": lead_id, "type": event_type,
                "timestamp": message.get("timestamp") or message.get("originalTimestamp"),
                "event_id": message.get("messageId"), "properties": properties,
            })
            origins.append((where, message))
        else:
            raise InvalidRequest(
                f"{where}.type: unknown message type {kind!r}; use identify, track, page, screen "
                "(group and alias are ignored)", f"{where}.type",
            )
    events = []
    for record, (where, message) in zip(records, origins, strict=True):
        try:
            events.extend(parse_events([record], now_us, tolerance_us=tolerance_us, where="body"))
        except InvalidRequest as exc:
            name = str(exc.field)  # the field of the event record: named as Segment names it
            head, dot, rest = name.partition(".")
            head = {"type": "event", "event_id": "messageId",
                    "lead_id": _id_key(message)}.get(head, head)
            field = f"{where}.{head}{dot}{rest}"
            raise InvalidRequest(f"{field}: {exc.message.split(': ', 1)[-1]}", field) from None
    leads: dict[str, dict[str, Any]] = {}
    for lead_id, traits, where in identifies:
        upsert = upsert_lead(session, model, lead_id, traits, now_us, policy=policy, where=where)
        score = score_public(upsert.change) if upsert.change is not None else {
            "score": upsert.state.score, "stage": upsert.state.stage,
            "groups": {}, "grades": upsert.state.grades or {},
        }
        leads[upsert.lead_id] = {"lead_id": upsert.lead_id, **score, "created": upsert.created}
    accepted, duplicates = 0, 0
    if events:
        result = store_events(session, model, events, now_us, policy=policy).public()
        accepted, duplicates = result["accepted"], result["duplicates"]
        for lead in result["leads"]:
            lead["created"] = lead["created"] or leads.get(lead["lead_id"], {}).get("created", False)
            leads[lead["lead_id"]] = lead
    return {
        "accepted": accepted, "duplicates": duplicates, "identified": len(identifies),
        "ignored": ignored, "leads": list(leads.values()),
    }
