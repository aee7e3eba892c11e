"""A score's explanation (and its rounded groups, its grades) as compact JSON text, built
directly (the service stores them for every scored lead, and answers with them).

:func:`explanation_json` gives, byte for byte, ``json.dumps(score.explanation(),
ensure_ascii=False, separators=(",", ":"))`` (read-only mappings among the attribute values
encoded as objects, as ``leadscore.store.raw.to_json`` does), property-tested against it;
:func:`rounded_groups_json` and :func:`grades_json` likewise.
It skips building the dictionaries of :meth:`LeadScore.explanation` and reuses the text of
the names that repeat from lead to lead (rule ids, labels, groups, event types): encoding
explanations was a fifth of the service's time on batches of events (perf, issue #3).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any

from leadscore.engine.scoring import MAX_EVENTS_IN_EXPLANATION, Contribution, LeadScore, round_score
from leadscore.engine.timestamps import iso

_INFINITY = float("inf")


def _float(value: float) -> str:
    """A float as the json module writes it (NaN and infinities included)."""
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode

_TEXTS: dict[str, str] = {}  # names as JSON strings (rule ids, labels, groups, types, grades)
_TEXTS_LIMIT = 4096


def _text(value: str) -> str:
    """A name as a JSON string, remembered (names come from the model: a few dozen)."""
    found = _TEXTS.get(value)
    if found is None:
        if len(_TEXTS) >= _TEXTS_LIMIT:
            _TEXTS.clear()
        found = _TEXTS[value] = encode_basestring(value)
    return found


def _name(value: str | None) -> str:
    return "null" if value is None else _text(value)


def _value(value: Any) -> str:
    """Any JSON value (an attribute's): the common scalars directly, the rest encoded."""
    kind = value.__class__
    if kind is float:
        return _float(value)
    if kind is str:
        return encode_basestring(value)  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _encode(value)


_RULE_HEADS: dict[tuple[str, str | None, str], str] = {}


def _rule_json(contribution: Contribution) -> str:
    key = (contribution.rule_id, contribution.label, contribution.group)
    head = _RULE_HEADS.get(key)
    if head is None:
        if len(_RULE_HEADS) >= _TEXTS_LIMIT:
            _RULE_HEADS.clear()
        head = _RULE_HEADS[key] = (
            f'{{"rule":{encode_basestring(key[0])},"label":{encode_basestring(key[1] or key[0])},'
            f'"group":{encode_basestring(key[2])},"points":'
        )
    parts = [head, _value(round_score(contribution.points))]
    attributes = contribution.attributes
    if attributes:
        parts.append(',"attributes":{')
        parts.append(",".join([f"{_key(name)}:{_value(value)}" for name, value in attributes.items()]))
        parts.append("}")
    events = contribution.events
    if events:
        parts.append(f',"events_counted":{len(events)},"events":[')
        parts.append(",".join([
            f'{{"event_id":{_event_id(e.event_id)},"type":{_text(e.type)},"timestamp":"{iso(e.ts)}",'
            f'"age_days":{_value(round(e.age_days, 2))},"factor":{_value(round(e.factor, 4))}}}'
            for e in events[:MAX_EVENTS_IN_EXPLANATION]
        ]))
        parts.append("]")
    parts.append("}")
    return "".join(parts)


def _key(name: Any) -> str:
    """An object key as json writes it (attribute names are texts; others as json does)."""
    if name.__class__ is str:
        return _text(name)
    return _encode({name: None})[1:-6]  # '{KEY:null}' -> KEY


def _event_id(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)  # type: ignore[no-any-return]


def _remembered(score: LeadScore, name: str, make: Callable[[LeadScore], str]) -> str:
    """``make(score)``, kept on the score (perf, issue #3: the service writes a scored lead's
    texts out of its write transaction, then stores them, and answers with its groups). A
    score is immutable, so are its texts; they are kept beside the fields, as
    ``functools.cached_property`` keeps a value (not fields: equality, ``repr`` and
    ``dataclasses.replace`` do not see them)."""
    found: str | None = score.__dict__.get(name)
    if found is None:
        found = score.__dict__[name] = make(score)
    return found


def explanation_json(score: LeadScore) -> str:
    """``json.dumps(score.explanation(), ensure_ascii=False, separators=(",", ":"))``, remembered."""
    return _remembered(score, "_explanation_json", _explanation_json)


def _explanation_json(score: LeadScore) -> str:
    raw_groups, grades = score.raw_groups, score.grades
    groups = []
    for key, (name, value) in zip(_keys(tuple(score.groups)), score.groups.items(), strict=True):
        entry = f'{key}{{"score":{_value(round_score(value))}'
        unclipped = raw_groups[name]
        if unclipped != value:
            entry += f',"unclipped":{_value(round_score(unclipped))}'
        if name in grades:
            entry += f',"grade":{_name(grades[name])}'
        groups.append(entry + "}")
    rules = ",".join([_rule_json(c) for c in score.contributions])
    return (f'{{"score":{_value(score.score)},"stage":{_name(score.stage)},'
            f'"groups":{{{",".join(groups)}}},"rules":[{rules}]}}')


_KEYS: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _keys(names: tuple[Any, ...]) -> tuple[str, ...]:
    """``"name":`` of each name, remembered by the tuple (a model's groups, in its order)."""
    found = _KEYS.get(names)
    if found is None:
        if len(_KEYS) >= _TEXTS_LIMIT:
            _KEYS.clear()
        found = _KEYS[names] = tuple(f"{_key(name)}:" for name in names)
    return found


def rounded_groups_json(score: LeadScore) -> str:
    """``json.dumps(score.rounded_groups(), ensure_ascii=False, separators=(",", ":"))``, remembered."""
    return _remembered(score, "_rounded_groups_json", _rounded_groups_json)


def _rounded_groups_json(score: LeadScore) -> str:
    groups = score.groups
    return "{" + ",".join([key + _value(round_score(value))
                           for key, value in zip(_keys(tuple(groups)), groups.values(), strict=True)]) + "}"


def grades_json(grades: Mapping[str, str | None]) -> str:
    """``json.dumps(dict(grades), ensure_ascii=False, separators=(",", ":"))`` of a score's grades."""
    return "{" + ",".join([key + _name(grade)
                           for key, grade in zip(_keys(tuple(grades)), grades.values(), strict=True)]) + "}"


def public_fields_json(score: LeadScore) -> str:
    """``"score":..,"stage":..,"groups":{..},"grades":{..}``: the members of the JSON object
    ``{"score": score.score, "stage": score.stage, "groups": score.rounded_groups(), "grades":
    dict(score.grades)}`` (what the service answers for a scored lead), as json writes them."""
    return (f'"score":{_value(score.score)},"stage":{_name(score.stage)},'
            f'"groups":{rounded_groups_json(score)},"grades":{grades_json(score.grades)}')
