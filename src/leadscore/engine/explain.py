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
from itertools import repeat
from json.encoder import encode_basestring
from math import copysign
from typing import Any

from leadscore.engine.memo import remember
from leadscore.engine.scoring import (
    MAX_EVENTS_IN_EXPLANATION,
    Contribution,
    CountedEvent,
    LeadScore,
    round_score,
)
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
        found = remember(_TEXTS, value, encode_basestring(value), _TEXTS_LIMIT)
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
        head = remember(_RULE_HEADS, key, (
            f'{{"rule":{encode_basestring(key[0])},"label":{encode_basestring(key[1] or key[0])},'
            f'"group":{encode_basestring(key[2])},"points":'
        ), _TEXTS_LIMIT)
    text = head + _rounded(contribution.points)
    attributes = contribution.attributes
    if attributes:
        text += ',"attributes":{' + ",".join([f"{_key(name)}:{_value(value)}" for name, value in attributes.items()]) + "}"
    events = contribution.events
    if events:
        text += f',"events_counted":{len(events)},"events":[{_events_json(events[:MAX_EVENTS_IN_EXPLANATION])}]'
    return text + "}"


def _events_json(events: tuple[CountedEvent, ...]) -> str:
    """The counted events' entries (``CountedEvent.to_dict``), in one loop without a call
    per number (perf, issue #3: the events of a lead's rules are explained again each time
    it is scored). ``round(x, n)`` of a float is the double nearest to its ``.nf`` text
    (both round the exact binary value, halves to even), and ``repr`` gives that text back,
    trailing zeros dropped, whenever it has at most 15 significant digits and needs no
    exponent: hence the bounds (NaN and infinities fail them and take the general path)."""
    texts = []
    names = _TEXTS
    for event in events:
        event_id, age, factor = event.event_id, event.age_days, event.factor
        if age.__class__ is float and -1e12 < age < 1e12:
            age_text = f"{age:.2f}"
            if age_text[-1] == "0":
                age_text = _trim(age_text)
        else:
            age_text = _value(round(age, 2))
        if factor.__class__ is float and -1e10 < factor < 1e10:
            if factor == 1.0:  # no decay
                factor_text = "1.0"
            else:
                factor_text = f"{factor:.4f}"
                if factor_text[-1] == "0":
                    factor_text = _trim(factor_text)
        else:
            factor_text = _value(round(factor, 4))
        texts.append(
            f'{{"event_id":{"null" if event_id is None else encode_basestring(event_id)},'
            f'"type":{names.get(event.type) or _text(event.type)},"timestamp":"{iso(event.ts)}",'
            f'"age_days":{age_text},"factor":{factor_text}}}'
        )
    return ",".join(texts)


def _trim(text: str) -> str:
    """A number's fixed-point text without trailing zeros, as ``repr`` writes it ('1.50' -> '1.5', '2.00' -> '2.0')."""
    text = text.rstrip("0")
    return text + "0" if text[-1] == "." else text


def _rounded(value: float) -> str:
    """``_value(round_score(value))``: a float below 1e12 that is no multiple of 1/8 is
    ``round(value, 2)`` there, written as ``.2f`` (see :func:`_events_json`); a multiple
    of 1/4 is its own rounding (perf, issue #3: no call of round_score and _value)."""
    if value.__class__ is float and -1e12 < value < 1e12:
        if not (value * 8.0).is_integer():
            text = f"{value:.2f}"
            return _trim(text) if text[-1] == "0" else text
        if (value * 4.0).is_integer():
            return float.__repr__(value)
    return _value(round_score(value))


def _key(name: Any) -> str:
    """An object key as json writes it (attribute names are texts; others as json does)."""
    if name.__class__ is str:
        return _text(name)
    return _encode({name: None})[1:-6]  # '{KEY:null}' -> KEY


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
    groups, raw_groups, grades = score.groups, score.raw_groups, score.grades
    if not score.contributions and raw_groups == groups:
        # perf, issue #3: most leads have no rule that gave them points, and the same few
        # totals, groups (unclipped) and grades: their whole explanation is remembered.
        # Equal keys are equal texts (the numbers are rounded to floats; names and grades
        # are texts or None) but for a zero's sign (0.0 == -0.0): only numbers of positive
        # sign are remembered. With raw_groups equal to groups no group is "unclipped".
        total, values = score.total, groups.values()
        if (total or copysign(1.0, total) > 0.0) and not (0.0 in values and -1.0 in map(copysign, _ONES, values)):
            key = (total, score.stage, tuple(groups.items()), tuple(grades.items()))
            found = _PLAIN.get(key)
            if found is None:
                found = remember(_PLAIN, key, _explained(score, groups, raw_groups, grades), _TEXTS_LIMIT)
            return found
    return _explained(score, groups, raw_groups, grades)


_PLAIN: dict[tuple[Any, ...], str] = {}  # explanations without rules
_ONES = repeat(1.0)  # map(copysign, _ONES, numbers): their signs


def _explained(score: LeadScore, groups: Mapping[str, float], raw_groups: Mapping[str, float],
               grades: Mapping[str, str | None]) -> str:
    entries = []
    for key, (name, value) in zip(_keys(tuple(groups)), groups.items(), strict=True):
        entry = f'{key}{{"score":{_rounded(value)}'
        unclipped = raw_groups[name]
        if unclipped != value:
            entry += f',"unclipped":{_rounded(unclipped)}'
        if name in grades:
            entry += f',"grade":{_name(grades[name])}'
        entries.append(entry + "}")
    rules = ",".join([_rule_json(c) for c in score.contributions])
    return (f'{{"score":{_value(score.score)},"stage":{_name(score.stage)},'
            f'"groups":{{{",".join(entries)}}},"rules":[{rules}]}}')


_KEYS: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _keys(names: tuple[Any, ...]) -> tuple[str, ...]:
    """``"name":`` of each name, remembered by the tuple (a model's groups, in its order)."""
    found = _KEYS.get(names)
    if found is None:
        found = remember(_KEYS, names, tuple(f"{_key(name)}:" for name in names), _TEXTS_LIMIT)
    return found


def rounded_groups_json(score: LeadScore) -> str:
    """``json.dumps(score.rounded_groups(), ensure_ascii=False, separators=(",", ":"))``, remembered."""
    return _remembered(score, "_rounded_groups_json", _rounded_groups_json)


def _rounded_groups_json(score: LeadScore) -> str:
    groups = score.groups
    values = groups.values()
    if 0.0 in values and -1.0 in map(copysign, _ONES, values):  # maybe a -0.0: see _explanation_json
        return _groups_text(groups)
    key = tuple(groups.items())  # perf, issue #3: the same few groups, remembered
    found = _ROUNDED_GROUPS.get(key)
    if found is None:
        found = remember(_ROUNDED_GROUPS, key, _groups_text(groups), _TEXTS_LIMIT)
    return found


def _groups_text(groups: Mapping[str, float]) -> str:
    return "{" + ",".join([name + _rounded(value)
                           for name, value in zip(_keys(tuple(groups)), groups.values(), strict=True)]) + "}"


_ROUNDED_GROUPS: dict[tuple[tuple[str, float], ...], str] = {}


def grades_json(grades: Mapping[str, str | None]) -> str:
    """``json.dumps(dict(grades), ensure_ascii=False, separators=(",", ":"))`` of a score's grades, remembered."""
    key = tuple(grades.items())
    found = _GRADES.get(key)
    if found is None:
        found = remember(_GRADES, key, "{" + ",".join([
            name + _name(grade) for name, grade in zip(_keys(tuple(grades)), grades.values(), strict=True)
        ]) + "}", _TEXTS_LIMIT)
    return found


_GRADES: dict[tuple[tuple[str, str | None], ...], str] = {}  # grades are texts or None: equal keys, equal texts


def public_fields_json(score: LeadScore) -> str:
    """``"score":..,"stage":..,"groups":{..},"grades":{..}``: the members of the JSON object
    ``{"score": score.score, "stage": score.stage, "groups": score.rounded_groups(), "grades":
    dict(score.grades)}`` (what the service answers for a scored lead), as json writes them."""
    return (f'"score":{_value(score.score)},"stage":{_name(score.stage)},'
            f'"groups":{rounded_groups_json(score)},"grades":{grades_json(score.grades)}')
