"""Reading request bodies: size, JSON syntax and the shape of event records.

Field paths in messages are those of the body (``events[3].timestamp``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from leadscore.service.errors import InvalidRequest, PayloadTooLarge

EVENT_KEYS = ("event_id", "lead_id", "type", "timestamp", "properties")
LEAD_KEYS = ("lead_id", "attributes")


class MalformedBody(InvalidRequest):
    """The body is not valid JSON (or not UTF-8)."""


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; at most {limit} are allowed", "body")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    body = await read_body(request, limit)
    if not body.strip():
        raise MalformedBody("the body is empty; send a JSON object", "body")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8 text", "body") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "body"
        ) from None


def check_keys(record: Any, allowed: tuple[str, ...], where: str, required: tuple[str, ...]) -> None:
    """A JSON object with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(record, dict):
        raise InvalidRequest(f"{where}: expected a JSON object, got {_kind(record)}", where)
    for key in record:
        if key not in allowed:
            raise InvalidRequest(
                f"{where}: unknown field '{key}' (allowed: {', '.join(allowed)})",
                f"{where}.{key}" if where != "body" else key,
            )
    for key in required:
        if key not in record or record[key] is None:
            field = f"{where}.{key}" if where != "body" else key
            raise InvalidRequest(f"{field} is required", field)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "a list", str: "a text", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def event_records(payload: Any) -> tuple[list[dict[str, Any]], str]:
    """The event records of ``{...event}`` or ``{"events": [...]}``, checked for shape."""
    if isinstance(payload, dict) and "events" in payload:
        for key in payload:
            if key != "events":
                raise InvalidRequest(
                    f"unknown field '{key}' next to 'events' (a batch is {{\"events\": [...]}})", key
                )
        records = payload["events"]
        if not isinstance(records, list):
            raise InvalidRequest(f"events must be a list, got {_kind(records)}", "events")
        where = "events"
        for index, record in enumerate(records):
            check_keys(record, EVENT_KEYS, f"events[{index}]", ("lead_id", "type"))
            _check_types(record, f"events[{index}]")
        return records, where
    check_keys(payload, EVENT_KEYS, "body", ("lead_id", "type"))
    _check_types(payload, "body")
    return [payload], "event"


def _check_types(record: dict[str, Any], where: str) -> None:
    def field(name: str) -> str:
        return name if where == "body" else f"{where}.{name}"

    timestamp = record.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise InvalidRequest(
            f"{field('timestamp')} must be an ISO 8601 text, got {_kind(timestamp)}", field("timestamp")
        )
    properties = record.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidRequest(
            f"{field('properties')} must be an object, got {_kind(properties)}", field("properties")
        )
    kind = record.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{field('type')} must be a text, got {_kind(kind)}", field("type"))
