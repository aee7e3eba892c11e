"""Scoring leads held in the store, and recording every change of score.

:func:`record_scores` is the one function that writes a score change: it updates the
lead's current score, appends to the score history and the stage transitions, and then
calls every listener registered with :func:`on_score_change` *in the same transaction*
(so that a later outbox row is written atomically with the change it announces).

Semantics come only from the pure engine (:func:`leadscore.engine.score_lead`);
:func:`leadscore.engine.changes.next_change` says when each lead must be looked at again
(both computed in one pass by :func:`leadscore.engine.scoring.score_and_schedule`).
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from leadscore.engine import Event, Lead, LeadScore, iso
from leadscore.engine.explain import explanation_json, grades_json, rounded_groups_json
from leadscore.engine.memo import remember
from leadscore.engine.records import direct_init
from leadscore.engine.scoring import Contribution, CountedEvent, score_and_schedule
from leadscore.service import predictive  # predict: the predictive hook in record_scores
from leadscore.service.models import ActiveModel
from leadscore.store.raw import exact_floats, from_json, marks, raw
from leadscore.store.tables import leads

MICROS = 1_000_000
_CHUNK = 900  # ids per IN (...) list


@dataclass(frozen=True)
class ScoringPolicy:
    """How time-driven changes are handled (see docs/api.md, "Time-driven rescoring")."""

    decay_rescore_us: int = 3600 * MICROS
    history_min_delta: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> ScoringPolicy:
        return cls(int(settings.decay_rescore_seconds * MICROS), float(settings.history_min_delta))


@dataclass
class LeadState:
    """A lead as stored, before (re)scoring."""

    pk: int
    lead_id: str
    attributes: dict[str, Any]
    created_us: int
    updated_us: int
    score: float | None = None
    stage: str | None = None
    grades: dict[str, str | None] | None = None
    recorded_score: float | None = None
    model_version_id: int | None = None
    next_change_us: int | None = None

    def lead(self) -> Lead:
        return Lead(self.lead_id, self.attributes)


STATE_COLUMNS = (
    leads.c.id, leads.c.lead_id, leads.c.attributes, leads.c.created_us, leads.c.updated_us,
    leads.c.score, leads.c.stage, leads.c.grades, leads.c.recorded_score, leads.c.model_version_id,
    leads.c.next_change_us,
)


def state_of(row: Any) -> LeadState:
    return LeadState(*row)


@direct_init  # one for every lead scored: built without object.__setattr__ (engine/records.py)
@dataclass(frozen=True)
class ScoreChange:
    """A lead scored again: before and after. ``recorded`` when it made a history row."""

    lead_pk: int
    lead_id: str
    at_us: int
    cause: str  # event | attributes | time | model | import
    detail: str | None
    model_version_id: int
    old_score: float | None
    old_stage: str | None
    old_grades: dict[str, str | None] | None
    result: LeadScore
    next_change_us: int | None
    recorded: bool = False
    changed: bool = False  # the reported score, stage or a grade changed
    # predict: the lead's last recorded (final) score and the policy's time threshold, so that
    # the predictive hook applies the time rule to the *final* score (service/predictive.py)
    recorded_score: float | None = None
    history_min_delta: float = ScoringPolicy.history_min_delta

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def stage(self) -> str | None:
        return self.result.stage

    @property
    def stage_changed(self) -> bool:
        return self.old_score is not None and self.old_stage != self.result.stage or (
            self.old_score is None and self.result.stage is not None
        )


ScoreListener = Callable[[Session, Sequence[ScoreChange]], None]
_listeners: list[ScoreListener] = []


def on_score_change(listener: ScoreListener) -> ScoreListener:
    """Register ``listener(session, changes)``: called by :func:`record_scores` inside the
    transaction that writes the changes (every rescored lead, changed or not; filter on
    ``change.changed`` / ``change.stage_changed``). Usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def remove_score_listener(listener: ScoreListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


_collector_lock = threading.Lock()
_collector_depth = threading.local()  # pauses of this thread, nested
_collector_users = 0
_collector_restore = True
YOUNG_EVERY = 1.0  # seconds between collections of the young generations while paused
FULL_EVERY = 10.0  # seconds between full collections while paused, at most (about)
# when a collection of the young generations / of the whole heap was last seen or made,
# and the counts of such collections (gc.get_stats) then
_young_at = _full_at = time.monotonic()
_young_seen = _full_seen = -1


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while scoring a batch.

    A batch allocates a few hundred thousand objects that live until it ends (events,
    states, results) and are then freed by reference counting; collections during the batch
    walked them again and again for nothing: a quarter of the server's CPU time on batches
    of 1,000 events (full collections of the whole heap). The collector is paused while any
    batch runs (a count across threads) and restored as it was after the last one.

    Pause only synchronous, CPU-bound work, never across an ``await``. Batches of several
    threads can still overlap without end under steady load, so that the count never drops
    to 0 and the collector never runs by itself: so as a batch starts or ends, the young
    generations are collected when no collection ran for :data:`YOUNG_EVERY` seconds, and
    the whole heap when no full one ran for :data:`FULL_EVERY` seconds (cyclic garbage that
    reached the oldest generation is freed by nothing else). A collector disabled by the
    application stays so. A pause inside a pause of the same thread (the route's around the
    service's) changes nothing: counted as a batch, its end collected the young generations
    while its whole batch was still alive (perf, issue #3: 3 % of a batch's time)."""
    depth = getattr(_collector_depth, "value", 0)
    if depth:
        _collector_depth.value = depth + 1
        try:
            yield
        finally:
            _collector_depth.value = depth
        return
    _collector_depth.value = 1
    try:
        with _paused():
            yield
    finally:
        _collector_depth.value = 0


@contextmanager
def _paused() -> Iterator[None]:
    """The pause of :func:`collector_paused` (the outermost one of a thread)."""
    global _collector_users, _collector_restore
    with _collector_lock:
        if _collector_users == 0:
            _collector_restore = gc.isenabled()
            gc.disable()
            _restore_young()
        _collector_users += 1
        generation = _due_collection()
    if generation is not None:
        gc.collect(generation)
    try:
        yield
    finally:
        with _collector_lock:
            _collector_users -= 1
            generation = None
            if _collector_users == 0:
                if _collector_restore:
                    _defer_young()
                    gc.enable()
            else:
                generation = _due_collection()
        if generation is not None:
            gc.collect(generation)


def _due_collection() -> int | None:
    """The generation to collect now that batches are paused (called under the lock): 2 when
    no full collection ran for FULL_EVERY seconds, 1 when no collection at all ran for
    YOUNG_EVERY seconds, else None. Collections that ran by themselves (between batches) or
    by the application count: they are seen in the counts of gc.get_stats()."""
    global _young_at, _young_seen, _full_at, _full_seen
    if not _collector_restore:
        return None
    now = time.monotonic()
    if now - _young_at < YOUNG_EVERY and now - _full_at < FULL_EVERY:
        return None
    stats = gc.get_stats()
    full = stats[2]["collections"]
    young = stats[1]["collections"] + full
    if full != _full_seen:  # one ran since the last look
        _full_at, _full_seen = now, full
    if young != _young_seen:
        _young_at, _young_seen = now, young
    if now - _full_at >= FULL_EVERY:
        _full_at, _full_seen = now, full + 1
        _young_at, _young_seen = now, young + 1
        return 2
    if now - _young_at >= YOUNG_EVERY:
        _young_at, _young_seen = now, young + 1
        return 1
    return None


# the collector's first threshold while raised by _defer_young, and the thresholds to restore
_young_raised: tuple[int, tuple[int, int, int]] | None = None


def _defer_young() -> None:
    """As the last batch ends (under the lock, the collector still disabled): the first
    threshold raised by the objects the batch left in the youngest generation, for its next
    collection only (:func:`_restore_young` after it).

    A batch leaves the count of that generation in the thousands (its records and result,
    alive until the caller drops them a moment later, then freed by reference counting):
    enabled as it was, the collector walked them all at the next allocation, and found
    nothing (perf, issue #3: 2 ms a batch of 1,000 events, 2 % of its time). Raised by that
    count, the next collection comes after as many new objects as usual beyond those; the
    cyclic garbage it can miss in the meantime is bounded by one batch's objects."""
    global _young_raised
    first, second, third = gc.get_threshold()
    if _young_raised is not None and first == _young_raised[0]:  # still raised: from the original
        first, second, third = _young_raised[1]
    count = gc.get_count()[0]
    if first <= 0 or count <= first:
        _young_raised = None
        return
    raised = first + count
    gc.set_threshold(raised, second, third)
    _young_raised = (raised, (first, second, third))
    if _restore_after_collection not in gc.callbacks:
        gc.callbacks.append(_restore_after_collection)


def _restore_young() -> None:
    """The thresholds :func:`_defer_young` raised, back as they were (unless the application
    set others since)."""
    global _young_raised
    raised = _young_raised
    if raised is None:
        return
    _young_raised = None
    if gc.get_threshold()[0] == raised[0]:
        gc.set_threshold(*raised[1])


def _restore_after_collection(phase: str, info: dict[str, Any]) -> None:
    """A ``gc.callbacks`` entry: the first collection after a batch restores the thresholds
    (no lock: it may run in a thread that holds it)."""
    if phase == "stop" and _young_raised is not None:
        _restore_young()


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_STATE_SQL = (
    "SELECT id, lead_id, attributes, created_us, updated_us, score, stage, grades, "
    "recorded_score, model_version_id, next_change_us FROM leads"
)


def state_from_raw(row: Sequence[Any]) -> LeadState:
    """A LeadState of a driver-level row of :data:`_STATE_SQL`."""
    pk, lead_id, attributes, created, updated, score, stage, grades, recorded, version, moment = row
    return LeadState(pk, lead_id, from_json(attributes) or {}, created, updated, score, stage,
                     _decode_grades(grades), recorded, version, moment)


_GRADES: dict[str, dict[str, str | None]] = {}


def _decode_grades(value: Any) -> dict[str, str | None] | None:
    """Stored grades as a dict of their own: SQLite's JSON text decoded once per distinct text
    (a lead's grades are one of a few combinations; perf, issue #3), then copied."""
    if value.__class__ is not str:
        return from_json(value)  # type: ignore[no-any-return]
    found = _GRADES.get(value)
    if found is None:
        found = from_json(value)
        if found.__class__ is not dict or len(value) > 4096:
            return found  # type: ignore[no-any-return]
        remember(_GRADES, value, found)
    return dict(found)


def load_states(session: Session, pks: Sequence[int], *, lock: bool = False) -> list[LeadState]:
    """Leads by primary key, in key order; ``lock`` takes row locks on PostgreSQL."""
    return [state_from_raw(row) for row in load_state_rows(session, pks, lock=lock)]


def load_state_rows(session: Session, pks: Sequence[int], *, lock: bool = False) -> list[tuple[Any, ...]]:
    """The driver-level rows of :func:`load_states` (:func:`state_from_raw` makes a state
    of one): equal rows are equal states, compared without decoding their JSON."""
    out: list[tuple[Any, ...]] = []
    db = raw(session)
    suffix = " FOR UPDATE" if lock and db.postgresql else ""
    for part in chunks(sorted(pks)):
        out.extend(tuple(row) for row in db.all(
            f"{_STATE_SQL} WHERE id IN ({marks(len(part))}) ORDER BY id{suffix}", part))
    return out


def load_events(
    session: Session, lead_ids: Mapping[int, str], event_types: Iterable[str] | None = None,
    since: Mapping[str, int | None] | None = None,
) -> dict[int, list[Event]]:
    """Each lead's stored events in the order they were stored (of ``event_types`` only;
    with ``since``, of a type it bounds only those stamped at or after its bound: what can
    still count, :meth:`ActiveModel.oldest_counted`).

    ``lead_ids`` maps the leads' keys to their ids. Properties are read as their stored
    JSON text and decoded by :func:`decode_properties`, once per distinct text: on
    PostgreSQL the ``json`` column is cast to its (verbatim) text, since psycopg's own
    decoding of every event was a third of a model change's preparation (cProfile, 20,000
    leads); ``json.loads`` of the same text gives the same documents.
    """
    by_pk: dict[int, list[Event]] = {pk: [] for pk in lead_ids}
    types = sorted(event_types) if event_types is not None else None
    if types is not None and not types:
        return by_pk
    db = raw(session)
    type_filter = f" AND type IN ({marks(len(types))})" if types is not None else ""
    type_params: list[Any] = list(types or ())
    if types is not None and since is not None:
        # perf, issue #3: a lead's events older than every window that reads them are not read
        # (unbounded types first, then the bounded ones grouped by their bound)
        unbounded = [t for t in types if since.get(t) is None]
        bounded: dict[int, list[str]] = {}
        for kind in types:
            bound = since.get(kind)
            if bound is not None:
                bounded.setdefault(bound, []).append(kind)
        clauses = [f"type IN ({marks(len(unbounded))})"] if unbounded else []
        type_params = list(unbounded)
        for bound, kinds in sorted(bounded.items()):
            clauses.append(f"(type IN ({marks(len(kinds))}) AND ts_us >= ?)")
            type_params += [*kinds, bound]
        type_filter = f" AND ({' OR '.join(clauses)})"
    properties = "CAST(properties AS text)" if db.postgresql else "properties"
    for part in chunks(sorted(lead_ids)):
        params = [*part, *type_params]
        rows = db.all(
            f"SELECT lead_pk, type, ts_us, {properties}, event_id FROM events "
            f"WHERE lead_pk IN ({marks(len(part))}){type_filter} ORDER BY lead_pk, id",
            params,
        )
        known = _PROPERTIES  # (decode_properties' cache, looked at here first: one call less a row)
        last: int | None = None
        bucket: list[Event] = []
        lead_id = ""
        for pk, kind, ts, props, event_id in rows:
            if pk != last:  # rows come by lead: its list and id looked up once (perf, issue #3)
                last, bucket, lead_id = pk, by_pk[pk], lead_ids[pk]
            found = known.get(props) if props.__class__ is str else None
            bucket.append(Event(lead_id, kind, ts, decode_properties(props) if found is None else found, event_id))
    return by_pk


_PROPERTIES: dict[str, Mapping[str, Any]] = {}
_PROPERTIES_LIMIT = 50_000  # property sets remembered
_PROPERTIES_TEXT_LIMIT = 4096  # characters: a longer JSON text is decoded each time
_PROPERTIES_CHARS = 4_000_000  # characters of all the texts remembered
_properties_chars = 0
_NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


def decode_properties(value: Any) -> Mapping[str, Any]:
    """Stored event properties as a read-only mapping. The JSON text of SQLite is decoded
    once per distinct text (events repeat a few property sets; decoding them was a seventh
    of a batch): small texts only, a few MB in all (texts and decoded mappings), emptied
    when a lead is erased (:func:`forget_properties`). A document already decoded (psycopg
    decodes a ``json`` column that is not cast to text) is taken as it is."""
    global _properties_chars
    if value is None:
        return _NO_PROPERTIES
    if not isinstance(value, str):
        return from_json(value) or {}  # type: ignore[no-any-return]
    found = _PROPERTIES.get(value)
    if found is None:
        found = MappingProxyType(from_json(value) or {})
        size = len(value)
        if (size <= _PROPERTIES_TEXT_LIMIT and len(_PROPERTIES) < _PROPERTIES_LIMIT
                and _properties_chars + size <= _PROPERTIES_CHARS):
            _PROPERTIES[value] = found
            _properties_chars += size
    return found


def forget_properties() -> None:
    """Empty the cache of decoded event properties (a lead was erased: keep none of its data)."""
    global _properties_chars
    _PROPERTIES.clear()
    _properties_chars = 0


def score_changed(
    old_score: float | None, old_stage: str | None, old_grades: dict[str, Any] | None, result: LeadScore,
) -> bool:
    """The reported score, stage or a grade differs from what the lead had."""
    return (
        old_score is None or result.score != old_score or result.stage != old_stage
        or (result.grades if result.grades.__class__ is dict else dict(result.grades)) != (old_grades or {})
    )


def should_record(
    old_score: float | None, old_stage: str | None, old_grades: dict[str, Any] | None,
    recorded: float | None, result: LeadScore, cause: str, min_delta: float,
) -> bool:
    """Whether the change gets a history row: any change of stage or grade; for the
    passage of time, a score ``min_delta`` away from the last recorded one; else any change."""
    if old_score is None:
        return True
    if result.stage != old_stage or dict(result.grades) != (old_grades or {}):
        return True
    if cause == "time":
        base = recorded if recorded is not None else old_score
        return abs(result.score - base) >= min_delta
    return result.score != old_score


def score_states(
    model: ActiveModel,
    states: Sequence[LeadState],
    events_by_pk: dict[int, list[Event]],
    now_us: int,
    cause: str,
    *,
    policy: ScoringPolicy = ScoringPolicy(),
    detail: str | dict[int, str] | None = None,
    scored: Mapping[int, Scored] | None = None,
) -> list[ScoreChange]:
    """Score leads with the engine (pure: nothing is written). ``detail`` may differ per lead.
    ``scored`` holds the ``score_and_schedule`` triples of leads already scored (by key)."""
    known = scored or {}
    engine_model = model.model
    details, plain = (detail, None) if isinstance(detail, dict) else (None, detail)
    out: list[ScoreChange] = []
    for state in states:  # a loop with the per-batch look-ups made once (perf, issue #3)
        pk = state.pk
        triple = known.get(pk)
        if triple is None:
            # score_lead, next_change and decays in one pass (the same numbers, property-tested)
            triple = score_and_schedule(engine_model, state.lead(), events_by_pk.get(pk, []), now_us)
        out.append(change_of(model, state, triple, now_us, cause, policy=policy,
                             detail=details.get(pk) if details is not None else plain))
    return out


Scored = tuple[LeadScore, int | None, bool]  # what score_and_schedule gives


def change_of(
    model: ActiveModel, state: LeadState, scored: tuple[LeadScore, int | None, bool], now_us: int,
    cause: str, *, policy: ScoringPolicy, detail: str | None,
) -> ScoreChange:
    """The change of one lead from its ``score_and_schedule`` triple (computed here or
    set-based in SQL): the next rescoring moment (a decaying score is looked at again
    after ``policy.decay_rescore_us``), whether history records it, whether it changed."""
    result, moment, decaying = scored
    if decaying:
        tick = now_us + policy.decay_rescore_us
        moment = tick if moment is None else min(moment, tick)
    changed = score_changed(state.score, state.stage, state.grades, result)
    recorded = should_record(
        state.score, state.stage, state.grades, state.recorded_score, result, cause, policy.history_min_delta
    )
    return ScoreChange(
        state.pk, state.lead_id, now_us, cause, detail, model.version_id, state.score, state.stage,
        state.grades, result, moment, recorded, changed, state.recorded_score, policy.history_min_delta,
    )


def explanation_text(result: LeadScore) -> str:
    """The explanation as stored: the engine's JSON, floats exact (store.raw.exact_floats: an
    attribute value of 1e23 must come back from PostgreSQL's jsonb as that float)."""
    return exact_floats(explanation_json(result))


def encode_results(changes: Iterable[ScoreChange]) -> None:
    """Write ahead the JSON texts :func:`record_scores` stores of each change's result (they
    are remembered on the result, engine/explain.py): called outside the write transaction,
    which then holds the database's writer lock for less (perf, issue #3)."""
    for change in changes:
        rounded_groups_json(change.result)
        explanation_json(change.result)
        _grades_json(change.result.grades)


def record_scores(
    session: Session, changes: Sequence[ScoreChange], *, updated: dict[int, int] | None = None,
    stored: Mapping[int, tuple[str | None, int | None, float | None, int | None]] | None = None,
    written: Mapping[int, LeadScore] | None = None,
) -> None:
    """Write score changes: current score, history, stage transitions, then the listeners.

    ``updated`` maps lead keys to their previous ``updated_us`` (kept when nothing changed).
    ``stored`` maps lead keys to their stored ``(stage, model_version_id, score,
    next_change_us)``: an indexed column that keeps its value is then left out of the
    UPDATE, and so are its index's entries (perf, issue #3: every indexed column set is an
    index entry deleted and inserted again; most events of a lead already scored leave its
    score as it was, and many its next change).
    ``written`` maps the keys of leads created in this transaction to the score their row
    was inserted with (:func:`new_lead_columns`): a change of that very score is not
    written again (a change the predictive hook replaced is).
    """
    if not changes:
        return
    # predict: the active predictive model's prediction and the final score policy (service/predictive.py)
    changes = predictive.apply(session, changes)
    previous_updated = updated or {}
    before = stored or {}
    inserted = written or {}
    # the UPDATE rows by the columns they set beyond the always-set ones (see _update_sql)
    groups: dict[tuple[bool, bool, bool, bool, bool, bool], list[tuple[Any, ...]]] = {}
    history: list[tuple[Any, ...]] = []
    transitions: list[tuple[Any, ...]] = []
    for change in changes:
        result = change.result
        score, stage, at_us = result.score, result.stage, change.at_us
        grades = _grades_json(result.grades)
        if change.recorded:
            history.append((
                change.lead_pk, at_us, change.cause,
                change.detail[:1024] if change.detail else None, change.model_version_id,
                change.old_score, score, change.old_stage, stage, _grades_json(change.old_grades), grades,
            ))
        if change.stage_changed:
            transitions.append((change.lead_pk, at_us, change.old_stage, stage, change.cause))
        written_score = inserted.get(change.lead_pk)
        if written_score is result:  # its row already holds it: no UPDATE
            continue
        previous = previous_updated.get(change.lead_pk)
        row: list[Any] = [result.total, rounded_groups_json(result), grades, explanation_text(result), at_us]
        # a created lead's row holds what it was inserted with (another score: the hook's)
        old = before.get(change.lead_pk) if written_score is None else (
            written_score.stage, change.model_version_id, written_score.score, change.next_change_us)
        set_score = old is None or old[2] != score
        set_next = old is None or old[3] != change.next_change_us
        set_stage = old is None or old[0] != stage
        set_version = old is None or old[1] != change.model_version_id
        set_updated = change.changed or previous is None
        if set_score:
            row.append(score)
        if set_next:
            row.append(change.next_change_us)
        if set_stage:
            row.append(stage)
        if set_version:
            row.append(change.model_version_id)
        if set_updated:
            row.append(at_us)
        if change.recorded:
            row.append(score)
        row.append(change.lead_pk)
        groups.setdefault((set_score, set_next, set_stage, set_version, set_updated, change.recorded),
                          []).append(tuple(row))
    db = raw(session)
    # a lead scored again no longer has the pending score a model change computed for it
    # earlier (service/rescore.py recomputes it before the change is applied); on SQLite,
    # whose writers are serial, not looked for when there is none (perf, issue #3: the
    # DELETE of a batch's leads, hundreds of keys, found nothing but between model changes)
    if db.postgresql or db.all("SELECT 1 FROM pending_scores LIMIT 1"):
        for part in chunks([c.lead_pk for c in changes]):
            db.execute(f"DELETE FROM pending_scores WHERE lead_pk IN ({marks(len(part))})", part)
    for columns, rows in groups.items():
        db.many(_update_sql(*columns), rows)
    db.many(
        "INSERT INTO score_history (lead_pk, at_us, cause, detail, model_version_id, old_score, "
        "new_score, old_stage, new_stage, old_grades, new_grades) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {json}, {json})",
        history,
    )
    db.many(
        "INSERT INTO stage_transitions (lead_pk, at_us, from_stage, to_stage, cause) "
        "VALUES (?, ?, ?, ?, ?)",
        transitions,
    )
    for listener in list(_listeners):
        listener(session, changes)


def _grades_json(grades: Mapping[str, str | None] | None) -> str | None:
    """``to_json(grades)``: the text of :func:`leadscore.engine.explain.grades_json`, which
    remembers it (a lead's grades are one of a few combinations; encoding them was a fifth
    of the JSON encoding of a batch)."""
    return None if grades is None else grades_json(grades)


@lru_cache(maxsize=64)
def _update_sql(score: bool, moment: bool, stage: bool, version: bool, updated: bool, recorded: bool) -> str:
    """The UPDATE of a scored lead that also sets the score, ``next_change_us``, the stage,
    the model version, ``updated_us`` and ``recorded_score`` as asked (the row's values are
    in that order, then the key)."""
    extra = "".join(f", {name} = ?" for name, wanted in (
        ("score", score), ("next_change_us", moment), ("stage", stage), ("model_version_id", version),
        ("updated_us", updated), ("recorded_score", recorded)) if wanted)
    return ("UPDATE leads SET total = ?, \"groups\" = {jsonb}, grades = {jsonb}, "
            f"explanation = {{jsonb}}, scored_us = ?{extra} WHERE id = ?")


def rescore_states(
    session: Session,
    model: ActiveModel,
    states: Sequence[LeadState],
    now_us: int,
    cause: str,
    *,
    policy: ScoringPolicy = ScoringPolicy(),
    detail: str | dict[int, str] | None = None,
    events_by_pk: dict[int, list[Event]] | None = None,
    created: Mapping[int, Scored] | None = None,
) -> list[ScoreChange]:
    """Load the leads' events (unless given), score them and record the changes.

    ``created`` maps the keys of leads this transaction inserted with the columns of
    :func:`new_lead_columns` to the triple these were made of: not scored nor written again."""
    if events_by_pk is None:
        events_by_pk = load_events(session, {s.pk: s.lead_id for s in states}, model.event_types,
                                   model.oldest_counted(now_us))
    changes = score_states(model, states, events_by_pk, now_us, cause, policy=policy, detail=detail,
                           scored=created)
    record_scores(session, changes, updated={s.pk: s.updated_us for s in states},
                  stored={s.pk: (s.stage, s.model_version_id, s.score, s.next_change_us) for s in states},
                  written={pk: triple[0] for pk, triple in created.items()} if created else None)
    return changes


NEW_LEAD_COLUMNS = ("total", "score", "\"groups\"", "grades", "explanation", "scored_us", "next_change_us",
                    "stage", "model_version_id", "recorded_score")
NEW_LEAD_MARKS = "?, ?, {jsonb}, {jsonb}, {jsonb}, ?, ?, ?, ?, ?"  # their placeholders (raw's, JSON as jsonb)


def new_lead_columns(
    model: ActiveModel, lead_id: str, attributes: dict[str, Any], events: Sequence[Event], now_us: int,
    cause: str, *, policy: ScoringPolicy,
) -> tuple[Scored, tuple[Any, ...]]:
    """A lead about to be inserted, scored: the ``score_and_schedule`` triple and the values
    of :data:`NEW_LEAD_COLUMNS` that :func:`record_scores` would set on its row (JSON as
    text). Inserted with them, the row need not be updated again (perf, issue #3: half the
    leads of a batch are new); ``rescore_states(created=...)`` then records the rest."""
    scored = score_and_schedule(model.model, Lead(lead_id, attributes), events, now_us)
    change = change_of(model, LeadState(0, lead_id, attributes, now_us, now_us), scored, now_us, cause,
                       policy=policy, detail=None)
    result = change.result
    assert change.changed and change.recorded  # a lead without a score: both, always
    return scored, (result.total, result.score, rounded_groups_json(result), _grades_json(result.grades),
                    explanation_text(result), now_us, change.next_change_us, result.stage,
                    change.model_version_id, result.score)


def change_to_json(change: ScoreChange, updated_us: int) -> str:
    """A score change as JSON text (exact numbers), with the lead's ``updated_us`` before it;
    :func:`change_from_json` gives both back."""
    r = change.result
    return json.dumps({
        "lead_pk": change.lead_pk, "lead_id": change.lead_id, "at": change.at_us,
        "cause": change.cause, "detail": change.detail, "version": change.model_version_id,
        "old": [change.old_score, change.old_stage, change.old_grades], "next": change.next_change_us,
        "recorded": change.recorded, "changed": change.changed, "updated": updated_us,
        "recorded_score": change.recorded_score, "min_delta": change.history_min_delta,
        "total": r.total, "groups": r.groups, "raw_groups": r.raw_groups, "grades": r.grades,
        "stage": r.stage,
        "rules": [
            [c.rule_id, c.label, c.group, c.points, dict(c.attributes),
             [[e.event_id, e.type, e.ts, e.age_days, e.factor] for e in c.events]]
            for c in r.contributions
        ],
    }, ensure_ascii=False, allow_nan=False)


def change_from_json(text: str) -> tuple[ScoreChange, int]:
    """The change and the lead's previous ``updated_us`` of :func:`change_to_json`'s text."""
    d = json.loads(text)
    result = LeadScore(
        d["lead_id"], d["total"], d["groups"], d["raw_groups"], d["grades"], d["stage"],
        tuple(
            Contribution(rule, label, group, points, tuple(CountedEvent(*e) for e in counted), attributes)
            for rule, label, group, points, attributes, counted in d["rules"]
        ),
    )
    old_score, old_stage, old_grades = d["old"]
    change = ScoreChange(
        d["lead_pk"], d["lead_id"], d["at"], d["cause"], d["detail"], d["version"], old_score,
        old_stage, old_grades, result, d["next"], d["recorded"], d["changed"],
        d.get("recorded_score"), d.get("min_delta", ScoringPolicy.history_min_delta),
    )
    return change, int(d["updated"])


def score_public(change_or_row: ScoreChange | Any) -> dict[str, Any]:
    """``{score, stage, groups, grades}`` of a change or a stored lead row."""
    if isinstance(change_or_row, ScoreChange):
        result = change_or_row.result
        return {
            "score": result.score, "stage": result.stage,
            "groups": result.rounded_groups(), "grades": dict(result.grades),
        }
    row = change_or_row
    return {"score": row.score, "stage": row.stage, "groups": row.groups or {}, "grades": row.grades or {}}


def moment(us: int | None) -> str | None:
    """ISO 8601 text of epoch microseconds (None stays None)."""
    return None if us is None else iso(us)


__all__ = [
    "LeadState", "ScoreChange", "change_from_json", "change_to_json", "ScoreListener", "ScoringPolicy", "load_events", "load_states",
    "encode_results", "load_state_rows", "on_score_change", "record_scores", "remove_score_listener", "rescore_states",
    "score_changed", "score_public", "score_states", "should_record",
]
