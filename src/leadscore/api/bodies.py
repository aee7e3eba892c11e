"""Reading request bodies: size, JSON syntax and the shape of event records.

Field paths in messages are those of the body (``events[3].timestamp``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from leadscore.config import Settings
from leadscore.ingest.normalise import json_constant, kind_of, unstorable
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


async def read_json(request: Request, limit: int, root: str = "") -> Any:
    """The body's JSON (:func:`parse_json`), with no text that holds a NUL character
    (:func:`refuse_nul`; ``root`` prefixes the field of that error)."""
    body = await read_body(request, limit)
    payload = parse_json(body)
    refuse_nul(body, payload, root)
    return payload


def nul_free(body: bytes) -> bool:
    """Whether no text of the JSON ``body`` can hold a NUL character: in a UTF-8 body a NUL
    can only be written ``\\u0000`` (a raw one is not valid JSON; a UTF-16 or UTF-32 body
    has zero bytes and is not taken for NUL-free). One search of the bytes: the texts of the
    common body are not searched one by one (perf, issue #3)."""
    return b"\\u0000" not in body and b"\x00" not in body


def parse_json(body: bytes) -> Any:
    """The JSON of a body. ``NaN`` and ``Infinity`` read as infinities, which the doors
    refuse where they are used, naming the field (normalise.json_constant)."""
    if not body.strip():
        raise MalformedBody("the body is empty; send a JSON object", "body")
    try:
        return json.loads(body, parse_constant=json_constant)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8 text", "body") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "body"
        ) from None


def refuse_nul(body: bytes, payload: Any, root: str = "") -> None:
    """InvalidRequest naming the field of the first text of ``payload`` (the JSON of
    ``body``) that holds a NUL character or half of a surrogate pair (``"\\ud83d"`` alone):
    PostgreSQL cannot store a NUL, no database and no UTF-8 answer a lone surrogate, and no
    door takes either on any database. ``root`` prefixes the field."""
    if not nul_free(body) or b"\\ud" in body or b"\\uD" in body:  # maybe a NUL, maybe a surrogate
        found = next(unstorable(payload, root), None)
        if found is not None:
            field = found.column or "body"
            raise InvalidRequest(f"{field}: {found.detail}", field)


def check_keys(record: Any, allowed: tuple[str, ...], where: str, required: tuple[str, ...]) -> None:
    """A JSON object with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(record, dict):
        raise InvalidRequest(f"{where}: expected a JSON object, got {kind_of(record)}", where)
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
            raise InvalidRequest(f"events must be a list, got {kind_of(records)}", "events")
        where = "events"
        for index, record in enumerate(records):
            # the checks below, without a message built for each good event (perf, issue #3)
            if (record.__class__ is not dict or not record.keys() <= _EVENT_KEYS
                    or record.get("lead_id") is None or record.get("type").__class__ is not str
                    or not _good_types(record)):
                check_keys(record, EVENT_KEYS, f"events[{index}]", ("lead_id", "type"))
                _check_types(record, f"events[{index}]")
        return records, where
    check_keys(payload, EVENT_KEYS, "body", ("lead_id", "type"))
    _check_types(payload, "body")
    return [payload], "event"


_EVENT_KEYS = frozenset(EVENT_KEYS)


def _good_types(record: dict[str, Any]) -> bool:
    """``timestamp`` and ``properties`` pass :func:`_check_types` (``type`` is known to be text)."""
    timestamp = record.get("timestamp")
    if timestamp is not None and timestamp.__class__ is not str:
        return False
    properties = record.get("properties")
    return properties is None or properties.__class__ is dict


def _check_types(record: dict[str, Any], where: str) -> None:
    def field(name: str) -> str:
        return name if where == "body" else f"{where}.{name}"

    timestamp = record.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise InvalidRequest(
            f"{field('timestamp')}: must be an ISO 8601 string, got {kind_of(timestamp)}", field("timestamp")
        )
    properties = record.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidRequest(
            f"{field('properties')}: must be an object, got {kind_of(properties)}", field("properties")
        )
    kind = record.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{field('type')}: must be a string, got {kind_of(kind)}", field("type"))


@dataclass(frozen=True)
class Limits:
    """Input limits on attributes and properties (settings ``max_attributes``,
    ``max_key_length``, ``max_value_bytes``, ``max_nesting_depth``; docs/security.md)."""

    attributes: int = 200
    key_length: int = 128
    value_bytes: int = 8192
    depth: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_attributes, settings.max_key_length, settings.max_value_bytes,
                   settings.max_nesting_depth)


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _child(where: str, key: str) -> str:
    return key if where == "body" else f"{where}.{key}"


def check_values(values: Mapping[str, Any], where: str, limits: Limits, what: str) -> None:
    """InvalidRequest (422, with the field path) when the attributes or properties
    ``values`` break a limit: too many names, a name too long, or equal to another one
    once Unicode-normalised (NFC), a text value too long (in UTF-8 bytes, after NFC), or
    objects and lists nested too deep. ``values`` itself is depth 1."""
    if len(values) > limits.attributes:
        raise InvalidRequest(
            f"{where} has {len(values)} {what}; at most {limits.attributes} are allowed", where
        )
    _check_mapping(values, where, limits, 1)


def _check_mapping(values: Mapping[Any, Any], where: str, limits: Limits, depth: int) -> None:
    seen: dict[str, Any] = {}
    for key, value in values.items():
        name = key if key.__class__ is str and key.isascii() else _nfc(str(key))
        if len(name) > limits.key_length:
            raise InvalidRequest(
                f"{where}: the name '{name[:40]}…' is {len(name)} characters long; at most "
                f"{limits.key_length} are allowed", _child(where, name),
            )
        if name in seen:
            raise InvalidRequest(
                f"{where}: the names {str(seen[name])!r} and {str(key)!r} are the same text once "
                "Unicode-normalised (NFC); send one of them", _child(where, name),
            )
        seen[name] = key
        # an ASCII text within the limit (its UTF-8 size is its length) is the common case:
        # no field path is built for it (perf, issue #3)
        if value.__class__ is not str or len(value) > limits.value_bytes or not value.isascii():
            _check_value(value, _child(where, name), limits, depth)


def _check_value(value: Any, where: str, limits: Limits, depth: int) -> None:
    if isinstance(value, str):
        size = len(_nfc(value).encode("utf-8"))
        if size > limits.value_bytes:
            raise InvalidRequest(
                f"{where} is {size} bytes of UTF-8 text; at most {limits.value_bytes} are allowed", where
            )
    elif isinstance(value, (dict, list)):
        if depth + 1 > limits.depth:
            raise InvalidRequest(
                f"{where}: objects and lists nested {depth + 1} deep; at most {limits.depth} levels "
                "are allowed", where,
            )
        if len(value) > limits.attributes:
            raise InvalidRequest(
                f"{where} has {len(value)} items; at most {limits.attributes} are allowed", where
            )
        if isinstance(value, dict):
            _check_mapping(value, where, limits, depth + 1)
        else:
            for index, item in enumerate(value):
                _check_value(item, f"{where}[{index}]", limits, depth + 1)


def check_event_limits(records: list[dict[str, Any]], where: str, limits: Limits) -> None:
    """Limits of each event's ``type`` (a name: ``key_length``) and ``properties``."""
    for index, record in enumerate(records):
        kind = record.get("type")
        properties = record.get("properties")
        if (isinstance(kind, str) and not (kind.isascii() and len(kind) <= limits.key_length)
                or isinstance(properties, dict) and not _within(properties, limits)):
            place = f"events[{index}]" if where == "events" else "body"
            if isinstance(kind, str) and len(_nfc(kind.strip())) > limits.key_length:
                raise InvalidRequest(
                    f"{_child(place, 'type')} is {len(kind.strip())} characters long; at most "
                    f"{limits.key_length} are allowed", _child(place, "type"),
                )
            if isinstance(properties, dict):
                check_values(properties, _child(place, "properties"), limits, "properties")


_SCALARS = (int, float, bool, type(None))


def _within(values: dict[Any, Any], limits: Limits) -> bool:
    """Values plainly within the limits of :func:`check_values` (perf, issue #3: the common
    properties of an event are checked without building a field path for each): few enough,
    ASCII names and texts within their lengths (ASCII is its own NFC form: distinct names stay
    distinct; its UTF-8 size is its length), numbers, booleans and nulls. False says nothing:
    the values are then checked in full."""
    if len(values) > limits.attributes:
        return False
    key_length, value_bytes = limits.key_length, limits.value_bytes
    for key, value in values.items():
        if key.__class__ is not str or len(key) > key_length or not key.isascii():
            return False
        if value.__class__ is str:
            if len(value) > value_bytes or not value.isascii():
                return False
        elif value.__class__ not in _SCALARS:
            return False
    return True


def check_segment_limits(payload: Any, limits: Limits) -> None:
    """Limits of the ``traits`` and ``properties`` of a Segment message or batch."""
    if not isinstance(payload, dict):
        return
    batch = payload.get("batch")
    messages = list(enumerate(batch)) if isinstance(batch, list) else [(None, payload)]
    for index, message in messages:
        if not isinstance(message, dict):
            continue
        place = "body" if index is None else f"batch[{index}]"
        for name in ("traits", "properties"):
            values = message.get(name)
            if isinstance(values, dict):
                check_values(values, _child(place, name), limits,
                             "traits" if name == "traits" else "properties")
