"""When can a lead's score change without new events? (pure; for time-driven rescoring)

A score depends on time in two ways:

* **discrete changes**: an event leaves a ``within_days`` window; an absence rule starts
  to hold (``created_at + N days``, or the last matching event + N days); an event stamped
  after ``as_of`` starts to count when its moment comes. :func:`next_change` returns the
  earliest such moment after ``as_of``: between ``as_of`` and that moment (exclusive) the
  score of a model without ``decay`` is constant.
* **continuous changes**: a rule with ``decay`` changes a lead's points at every instant
  while it counts an event. :func:`decays` tells whether that is the case; the service
  rescores such leads at a fixed interval (see docs/api.md, "Time-driven rescoring").

Returning a moment that is too early is safe (the lead is rescored and nothing changes);
returning one that is too late is a bug, so every condition that can look at an event
contributes candidates, whatever combinator it sits in.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from leadscore.engine.scoring import Event, Lead, LeadScore
from leadscore.engine.timestamps import MICROS_PER_DAY
from leadscore.engine.values import test_value
from leadscore.model.schema import (
    AbsenceCondition,
    EventCondition,
    ScoringModel,
    walk_conditions,
)


def event_conditions(model: ScoringModel) -> list[EventCondition | AbsenceCondition]:
    """Every event and absence condition of a model, nested ones included."""
    found: list[EventCondition | AbsenceCondition] = []
    for rule in model.rules:
        for condition in walk_conditions(rule.when):
            if isinstance(condition, (EventCondition, AbsenceCondition)):
                found.append(condition)
    return found


# (types, where as (property, op, operand) triples, within_days, is_absence) per condition
_Plan = list[tuple[tuple[str, ...], tuple[tuple[str, str, Any], ...], float | None, bool]]
_plans: dict[int, tuple[ScoringModel, _Plan]] = {}


def _plan(model: ScoringModel) -> _Plan:
    """The event conditions of a model in a form cheap to test (cached per model object)."""
    cached = _plans.get(id(model))
    if cached is not None and cached[0] is model:
        return cached[1]
    plan: _Plan = [
        (
            c.types,
            tuple((prop, f.op, f.value) for prop, f in (c.where or {}).items()),
            c.within_days,
            isinstance(c, AbsenceCondition),
        )
        for c in event_conditions(model)
    ]
    if len(_plans) > 64:
        _plans.clear()
    _plans[id(model)] = (model, plan)
    return plan


def _first_copies(events: Iterable[Event]) -> dict[str, tuple[list[int], list[Event]]]:
    """Events by type, oldest first (with their timestamps, for bisection); later copies
    of an ``event_id`` dropped, as the engine does."""
    seen: set[str] = set()
    by_type: dict[str, list[Event]] = {}
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        by_type.setdefault(event.type, []).append(event)
    out = {}
    for kind, items in by_type.items():
        items.sort(key=lambda e: e.ts)
        out[kind] = ([e.ts for e in items], items)
    return out


def _first_match(
    stamps: list[int], items: list[Event], after: int, until: int | None,
    where: tuple[tuple[str, str, Any], ...],
) -> int | None:
    """The timestamp of the oldest event with ``after < ts (<= until)`` passing ``where``."""
    for index in range(bisect_right(stamps, after), len(stamps)):
        event = items[index]
        if until is not None and event.ts > until:
            return None
        if not where or all(test_value(event.properties, p, op, v) for p, op, v in where):
            return event.ts
    return None


def next_change(
    model: ScoringModel, lead: Lead, events: Iterable[Event], as_of_us: int
) -> int | None:
    """The earliest moment (epoch µs) after ``as_of_us`` at which the lead's score can
    change without new events, or None when it cannot (decay aside: see :func:`decays`)."""
    conditions = _plan(model)
    if not conditions:
        return None
    by_type = _first_copies(events)
    best: int | None = None

    def consider(moment: int | None) -> None:
        nonlocal best
        if moment is not None and moment > as_of_us and (best is None or moment < best):
            best = moment

    created = lead.created_us()
    for types, where, window, absence in conditions:
        if absence and created is not None and window is not None:
            # "does not hold while as_of - created < window": may hold from created + window on
            consider(created + math.ceil(window * MICROS_PER_DAY))
        for kind in types:
            if kind not in by_type:
                continue
            stamps, items = by_type[kind]
            # an event stamped after as_of starts to count at its timestamp
            consider(_first_match(stamps, items, as_of_us, None, where))
            if window is not None:
                # an event leaves the window at the first t with t - ts > window_us,
                # t = ts + leave; it matters when that is after as_of
                leave = math.floor(window * MICROS_PER_DAY) + 1
                oldest = _first_match(stamps, items, as_of_us - leave, as_of_us, where)
                if oldest is not None:
                    consider(oldest + leave)
    return best


def decays(model: ScoringModel, score: LeadScore) -> bool:
    """True when a rule with ``decay`` counts at least one event in ``score``: the points
    then change at every instant, and the lead must be rescored at an interval."""
    decaying = {rule.id for rule in model.rules if rule.decay is not None}
    return any(c.rule_id in decaying and c.events for c in score.contributions)
