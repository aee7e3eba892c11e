"""Turning raw records (from files, JSON bodies, Segment) into leads and events.

Shared by the file readers, the API and the importer so that every door applies
the same rules:

* ids (``lead_id``, ``event_id``) are text; whole numbers become ``"123"``;
* text is Unicode-normalised to NFC (so a name typed on a Mac equals one typed on Windows);
* an empty text cell from a flat file is a missing value;
* nested values (objects, lists) in attributes or properties are kept as compact JSON text;
* ``timestamp`` is ISO 8601; no offset means UTC;
* a text that is stored (an id, a type, a name, a value) may not hold a NUL character
  (PostgreSQL cannot store one), and a number must be finite (JSON has no NaN or
  infinity; a NaN from a flat file is a missing value, as an empty cell is).
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from leadscore.engine.scoring import Event
from leadscore.engine.timestamps import micros_of, utc_micros

EVENT_FIELDS = ("lead_id", "type", "timestamp", "event_id", "properties")
_EVENT_FIELDS = frozenset(EVENT_FIELDS)


class RecordError(ValueError):
    """A record is invalid; ``column`` names the field at fault. The message starts with
    the column's name (``lead_id is empty``); :attr:`detail` is the message without it."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column

    @property
    def detail(self) -> str:
        """What is wrong, without the column's name: ``is empty``, ``contains a NUL
        character`` (for a message that names a place before it: ``field: detail``)."""
        text = str(self)
        column = self.column
        if column is not None and text.startswith(column) and text[len(column):len(column) + 1] in (" ", ":"):
            return text[len(column):].lstrip(": ")
        return text


NUL = "\x00"


def nul_error(column: str) -> RecordError:
    """The error of a text that holds a NUL character (no database stores one the same)."""
    return RecordError(f"{column} contains a NUL character", column)


def name_error(column: str, name: str) -> RecordError:
    """The error of a name (of a property, an attribute) that holds a NUL character."""
    return RecordError(f"{column}: the name {name!r} contains a NUL character", column)


def not_finite(column: str) -> RecordError:
    return RecordError(
        f"{column} is not a finite number (NaN, Infinity and numbers beyond 1.8e308 are refused)",
        column,
    )


def json_constant(name: str) -> float:
    """``parse_constant`` of JSON readers: ``NaN``, ``Infinity`` and ``-Infinity`` (which
    JSON does not have; Python's reader takes them) read as an infinity, as a number beyond
    1.8e308 is read, so that :func:`clean_value` refuses them where they are used, with
    their field, and a NaN is not taken for a missing value."""
    return -math.inf if name.startswith("-") else math.inf


LONE_SURROGATE = ("contains half of a UTF-16 surrogate pair (a \\ud800-\\udfff escape without its "
                  "other half, e.g. an emoji cut in two): not Unicode text")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (JSON's ``"\\ud83d"`` alone): no
    database, and no UTF-8 answer, can hold one."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable(value: Any, where: str = "", *, finite: bool = False) -> Iterator[RecordError]:
    """The errors of ``value`` - a document of mappings, lists, texts and numbers, as JSON
    or YAML reads one - that no database stores the same, in document order: a text that
    holds a NUL character (:func:`nul_error`) or half of a surrogate pair, a name (a
    mapping's key) that holds one (:func:`name_error`, at its mapping's place) and, with ``finite``, a number that is not
    finite (:func:`not_finite`). PostgreSQL cannot store a NUL in a text or JSONB column,
    nor NaN or an infinity in JSONB; SQLite would store them. Each error's ``column`` is its
    place (``where`` extended: ``rules[0].when.where``, ``traits.tags[1]``), its
    :attr:`~RecordError.detail` what is wrong there."""
    if isinstance(value, str):
        if NUL in value:
            yield nul_error(where)
        elif has_lone_surrogate(value):
            yield RecordError(f"{where or 'value'} {LONE_SURROGATE}", where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            if NUL in name:
                yield name_error(where, name)
            elif has_lone_surrogate(name):
                yield RecordError(f"{where or 'body'}: the name {ascii(name)} {LONE_SURROGATE}", where)
            yield from unstorable(item, f"{where}.{name}" if where else name, finite=finite)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from unstorable(item, f"{where}[{index}]", finite=finite)
    elif finite and isinstance(value, float) and not math.isfinite(value):
        yield not_finite(where)


def nfc(text: str) -> str:
    """Unicode NFC form (cheap when already NFC, as most text is)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def clean_value(value: Any, column: str = "value") -> Any:
    """An attribute/property value as the engine sees it; RecordError (naming ``column``)
    for a text with a NUL character or a number that is not finite (NaN: missing)."""
    if isinstance(value, str):  # the commonest, first
        if NUL in value:
            raise nul_error(column)
        return nfc(value)
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None
        raise not_finite(column)
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str,
                              allow_nan=False)
        except ValueError:
            raise RecordError(f"{column} holds a number that is not finite (NaN or Infinity)",
                              column) from None
        if "\\u0000" in text and any(unstorable(value)):  # json escapes NUL as \u0000
            raise nul_error(column)
        return nfc(text)
    text = str(value)
    if NUL in text:
        raise nul_error(column)
    return nfc(text)


def clean_name(key: Any, column: str) -> str:
    """An attribute/property name as text (NFC); RecordError when it holds a NUL."""
    name = nfc(key if isinstance(key, str) else str(key))
    if NUL in name:
        raise name_error(column, name)
    return name


ID_LENGTH = 255  # the longest lead_id, event type or event_id the store holds (characters)


def check_stored_length(text: str | None, column: str) -> None:
    """RecordError when ``text`` is longer than the store holds (:data:`ID_LENGTH`), as the
    service refuses it: for the readers of ``leadscore import`` and ``leadscore send``."""
    if text is not None and len(text) > ID_LENGTH:
        raise RecordError(f"{column} is {len(text)} characters long; at most {ID_LENGTH} are allowed", column)


def check_event_lengths(event: Event) -> None:
    """:func:`check_stored_length` of an event's lead_id, type and event_id, in that order."""
    for column, text in (("lead_id", event.lead_id), ("type", event.type), ("event_id", event.event_id)):
        check_stored_length(text, column)


def id_text(value: Any, column: str, *, required: bool = True) -> str | None:
    """An identifier as text; None/empty is an error when required."""
    if isinstance(value, str):  # the commonest, first
        text = nfc(value.strip())
    elif value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    elif isinstance(value, bool):
        raise RecordError(f"{column} must be text or a whole number, got a boolean", column)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"{column} must be text or a whole number, got {value!r}", column)
        text = str(int(value))
    else:
        raise RecordError(f"{column} must be text, got {type(value).__name__}", column)
    if not text:
        if required:
            raise RecordError(f"{column} is empty", column)
        return None
    if NUL in text:
        raise nul_error(column)
    return text


def timestamp_us(value: Any, column: str = "timestamp") -> int:
    """Epoch microseconds of an ISO 8601 value (or datetime)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError(f"{column} is empty", column)
    try:
        return micros_of(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RecordError(f"{column}: {exc}", column) from None


def make_event(record: Mapping[str, Any], *, default_ts: int | None = None) -> Event:
    """Build an :class:`Event` from a mapping: ``lead_id``, ``type``, ``timestamp``,
    optional ``event_id``, and properties (a ``properties`` object and/or extra keys)."""
    lead_id = id_text(record.get("lead_id"), "lead_id")
    assert lead_id is not None
    kind = record.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise RecordError("type is empty" if not kind else "type must be text", "type")
    if NUL in kind:
        raise nul_error("type")
    raw_ts = record.get("timestamp")
    if (raw_ts is None or raw_ts == "") and default_ts is not None:
        ts = default_ts
    else:
        ts = timestamp_us(raw_ts)
    event_id = id_text(record.get("event_id"), "event_id", required=False)
    props: dict[str, Any] = {}
    nested = record.get("properties")
    if nested is not None:
        if isinstance(nested, str):
            try:
                nested = json.loads(nested) if nested.strip() else {}
            except json.JSONDecodeError:
                raise RecordError("properties is not a JSON object", "properties") from None
        if not isinstance(nested, Mapping):
            raise RecordError(f"properties must be an object, got {kind_of(nested)}", "properties")
        for key, value in nested.items():
            name = clean_name(key, "properties")
            cleaned = clean_value(value, f"properties.{name}")
            if cleaned is not None:
                props[name] = cleaned
    if not record.keys() <= _EVENT_FIELDS:  # properties given as keys of their own
        for key, value in record.items():
            if key in _EVENT_FIELDS:
                continue
            name = clean_name(key, "properties")
            cleaned = clean_value(value, name)
            if cleaned is not None:
                props[name] = cleaned
    return Event(lead_id, nfc(kind.strip()), ts, props, event_id)


def kind_of(value: Any) -> str:
    """A value's kind in JSON's words, for messages: ``a string``, ``a number``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def plain_event(record: Any, default_ts: int | None, nul_free: bool = False) -> Event | None:
    """``make_event(record, default_ts=default_ts)`` of the common record of a JSON body
    (perf, issue #3: a fifth of the time of reading a batch): a dict of the five event
    fields only; ASCII ids and type (their own NFC form); ``event_id`` text or absent; the
    timestamp a text :func:`~leadscore.engine.timestamps.utc_micros` reads, or absent with
    ``default_ts``; ``properties`` absent or an object of ASCII names and values that are
    ASCII texts, finite numbers, booleans or nulls (left out, as clean_value does), no text
    with a NUL character. None for any other record, which then takes :func:`make_event`
    (the same event, or its error). ``nul_free``: the caller knows that no text of the
    record holds a NUL (the JSON body it was read from has no ``\\u0000``); the texts are
    then not searched for one."""
    if record.__class__ is not dict or not record.keys() <= _EVENT_FIELDS:
        return None
    lead_id = record.get("lead_id")
    if lead_id.__class__ is not str or not lead_id.isascii():
        return None
    lead_id = lead_id.strip()
    kind = record.get("type")
    if not lead_id or kind.__class__ is not str or not kind.isascii():
        return None
    if not nul_free and (NUL in lead_id or NUL in kind):
        return None
    kind = kind.strip()
    if not kind:
        return None
    raw_ts = record.get("timestamp")
    if raw_ts is None or raw_ts == "":
        if default_ts is None:
            return None
        ts = default_ts
    elif raw_ts.__class__ is str:
        found = utc_micros(raw_ts)
        if found is None:
            return None
        ts = found
    else:
        return None
    event_id = record.get("event_id")
    if event_id is not None:
        if event_id.__class__ is not str or not event_id.isascii():
            return None
        if not nul_free and NUL in event_id:
            return None
        event_id = event_id.strip() or None
    props: dict[str, Any] = {}
    nested = record.get("properties")
    if nested is not None:
        if nested.__class__ is not dict:
            return None
        for key, value in nested.items():
            if key.__class__ is not str or not key.isascii():
                return None
            value_class = value.__class__
            if value_class is str:
                if not value.isascii():
                    return None
            elif value_class is float:
                if value - value != 0.0:  # NaN or infinite: left out or refused by clean_value
                    return None
            elif value is None:
                continue
            elif value_class is not int and value_class is not bool:
                return None
            props[key] = value
        if not nul_free and _nul_in(props):
            return None
    return Event(lead_id, kind, ts, props, event_id)


def _nul_in(props: dict[str, Any]) -> bool:
    """Whether a name or a text value of ``props`` holds a NUL character."""
    for key, value in props.items():
        if NUL in key or value.__class__ is str and NUL in value:
            return True
    return False


def make_attributes(record: Mapping[str, Any], *, skip: tuple[str, ...] = ("lead_id",)) -> dict[str, Any]:
    """Lead attributes from a flat record (``attributes`` object merged in); checks created_at."""
    attributes: dict[str, Any] = {}
    nested = record.get("attributes")
    items = list(record.items())
    if isinstance(nested, Mapping):
        items = [(k, v) for k, v in items if k != "attributes"] + list(nested.items())
    for key, value in items:
        if key in skip:
            continue
        name = clean_name(key, "attributes")
        attributes[name] = clean_value(value, name)
    created = attributes.get("created_at")
    if created is not None and not (isinstance(created, str) and not created.strip()):
        timestamp_us(created, "created_at")
    return attributes
