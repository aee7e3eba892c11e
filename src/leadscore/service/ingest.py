"""Taking in events and lead attributes, and scoring the leads they touch at once.

Every door (``POST /v1/events``, ``/v1/leads``, ``/v1/segment``) goes through
:func:`ingest_events` and :func:`upsert_lead`. Records are normalised by
:mod:`leadscore.ingest.normalise`, the same rules the file readers apply.

Concurrency: the leads a request touches are locked (row locks on PostgreSQL, the
database write lock on SQLite) before their events are read, so concurrent requests for
one lead are applied one after the other and give the score of the events sent one by one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import Event, iso
from leadscore.engine.explain import public_fields_json
from leadscore.ingest.normalise import (
    RecordError,
    check_event_lengths,
    id_text,
    make_attributes,
    make_event,
    plain_event,
)
from leadscore.service.errors import InvalidRequest
from leadscore.service.models import ActiveModel
from leadscore.service.scoring import (
    _STATE_SQL,
    NEW_LEAD_COLUMNS,
    NEW_LEAD_MARKS,
    LeadState,
    ScoreChange,
    Scored,
    ScoringPolicy,
    chunks,
    collector_paused,
    load_events,
    new_lead_columns,
    rescore_states,
    score_public,
    state_from_raw,
)
from leadscore.store.event_cache import CHANGES_SQL, Entry, EventCache, cache_of
from leadscore.store.raw import marks, properties_json, raw, to_json
from leadscore.store.tables import ID_LENGTH, leads

MICROS = 1_000_000
DEFAULT_TOLERANCE_US = 300 * MICROS


@dataclass
class IngestResult:
    """What one request did: events stored, duplicates ignored, leads created and rescored."""

    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    lead_order: list[str] = field(default_factory=list)
    changes: dict[str, ScoreChange] = field(default_factory=dict)
    unchanged: dict[str, LeadState] = field(default_factory=dict)  # only duplicates arrived
    stored_scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        out = []
        for lead_id in self.lead_order:
            change = self.changes.get(lead_id)
            score = score_public(change) if change is not None else self.stored_scores[lead_id]
            out.append({"lead_id": lead_id, **score, "created": lead_id in self.created})
        return {"accepted": self.accepted, "duplicates": len(self.duplicates),
                "duplicate_event_ids": self.duplicates, "leads": out}

    def public_json(self) -> str:
        """``json.dumps(self.public(), ensure_ascii=False, allow_nan=False, separators=(",",
        ":"))``, the response's text, built without the dictionaries (perf, issue #3: encoding
        them was 5 % of a batch). A rescored lead's numbers come from ``round_score``, which
        refuses NaN and infinities: there are none here for ``allow_nan`` to refuse."""
        out = []
        changes, created_ids = self.changes, self.created
        for lead_id in self.lead_order:
            change = changes.get(lead_id)
            created = "true" if lead_id in created_ids else "false"
            if change is None:
                out.append(_public_dumps({"lead_id": lead_id, **self.stored_scores[lead_id],
                                          "created": lead_id in created_ids}))
            else:
                out.append(f'{{"lead_id":{encode_basestring(lead_id)},{public_fields_json(change.result)},'
                           f'"created":{created}}}')
        return (f'{{"accepted":{self.accepted},"duplicates":{len(self.duplicates)},'
                f'"duplicate_event_ids":{_public_dumps(self.duplicates)},"leads":[{",".join(out)}]}}')


_public_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _place(where: str, index: int) -> str:
    """How a message names the event ``index`` of a request (made only for a message)."""
    return f"{where}[{index}]." if where != "body" else ""


def _check_lengths(event: Event, where: str, index: int) -> None:
    """Refuse an id or type longer than the store holds."""
    event_id = event.event_id
    if (len(event.lead_id) <= ID_LENGTH and len(event.type) <= ID_LENGTH
            and (event_id is None or len(event_id) <= ID_LENGTH)):
        return
    place = _place(where, index)
    try:
        check_event_lengths(event)  # the check of import and send, with its message
    except RecordError as exc:
        raise InvalidRequest(f"{place}{exc}", f"{place}{exc.column}") from None


def future_refusal(ts_us: int, now_us: int, tolerance_us: int = DEFAULT_TOLERANCE_US) -> str:
    """Why an event stamped ``ts_us``, more than ``tolerance_us`` after ``now_us``, is
    refused: the API's words, which ``leadscore import`` says too."""
    return (f"{iso(ts_us)} is more than {tolerance_us // MICROS} seconds ahead of the server clock "
            f"({iso(now_us)}); events from the future are refused")


def parse_events(
    records: Sequence[Mapping[str, Any]],
    now_us: int,
    *,
    tolerance_us: int = DEFAULT_TOLERANCE_US,
    where: str = "events",
    nul_free: bool = False,
) -> list[Event]:
    """Normalise event records; the first bad one refuses the whole batch, naming the field.
    ``nul_free``: the caller knows that no text of the records holds a NUL character (the
    JSON body they were read from has none: :func:`leadscore.api.bodies.nul_free`), so the
    fast path does not search them for one."""
    out: list[Event] = []
    limit = now_us + tolerance_us
    for index, record in enumerate(records):
        try:
            # the common record read without the general path's calls (the same event)
            event = plain_event(record, now_us, nul_free) or make_event(record, default_ts=now_us)
        except RecordError as exc:
            column = f"{_place(where, index)}{exc.column or 'event'}"
            raise InvalidRequest(f"{column}: {exc.detail}", column) from None
        if event.ts > limit:
            raise InvalidRequest(
                f"{_place(where, index)}timestamp: {future_refusal(event.ts, now_us, tolerance_us)}",
                f"{_place(where, index)}timestamp",
            )
        _check_lengths(event, where, index)
        out.append(event)
    return out


def lock_leads(
    session: Session, lead_ids: Sequence[str], now_us: int,
    new_attributes: Mapping[str, dict[str, Any]] | None = None,
    new_columns: Callable[[str, dict[str, Any]], Sequence[Any]] | None = None,
) -> tuple[dict[str, LeadState], set[str]]:
    """The leads with these ids, locked for this transaction; missing ones are created
    (with ``new_attributes[lead_id]``, default ``{}``). Returns ``(states, created ids)``.

    ``new_columns(lead_id, attributes)`` (SQLite only) gives the values of
    :data:`~leadscore.service.scoring.NEW_LEAD_COLUMNS` a missing lead is inserted with."""
    wanted = sorted(set(lead_ids))
    states: dict[str, LeadState] = {}
    db = raw(session)
    suffix = " ORDER BY lead_id FOR UPDATE" if db.postgresql else ""

    def fetch(ids: Sequence[str]) -> None:
        for part in chunks(ids):
            for row in db.all(f"{_STATE_SQL} WHERE lead_id IN ({marks(len(part))}){suffix}", part):
                state = state_from_raw(row)
                states[state.lead_id] = state

    fetch(wanted)
    missing = [lead_id for lead_id in wanted if lead_id not in states]
    created: set[str] = set()
    if missing:
        attributes = new_attributes or {}
        # RETURNING names the leads this transaction created (a concurrent creator wins the
        # conflict, and its events must then be read); on SQLite, whose writer is alone,
        # the keys after the largest one before do (Raw.inserted). On SQLite a created lead's state is
        # known without reading it back (perf, issue #3): no score yet, and its attributes
        # are those just stored as JSON text (normalised attributes are flat: texts, numbers,
        # booleans, so the text reads back as the same dict); PostgreSQL's jsonb is read
        # back as it normalises it
        scored = new_columns is not None and not db.postgresql
        names = f", {', '.join(NEW_LEAD_COLUMNS)}" if scored else ""
        marks_ = "(?, {jsonb}, ?, ?" + (f", {NEW_LEAD_MARKS})" if scored else ")")
        for part in chunks(missing, 200):
            params: list[Any] = []
            given: dict[str, dict[str, Any]] = {}
            for lead_id in part:
                given[lead_id] = document = dict(attributes.get(lead_id, {}))
                params += [lead_id, to_json(document), now_us, now_us]
                if scored:
                    assert new_columns is not None
                    params += new_columns(lead_id, document)
            values = ", ".join([marks_] * len(part))
            insert = (f"INSERT INTO leads (lead_id, attributes, created_us, updated_us{names}) "
                      f"VALUES {values} ON CONFLICT (lead_id) DO NOTHING")
            rows = None if db.postgresql else db.inserted("leads", "lead_id", insert, params, part)
            if rows is None:
                rows = db.all(f"{insert} RETURNING id, lead_id", params)
            for pk, lead_id in rows:
                created.add(lead_id)
                if not db.postgresql:
                    states[lead_id] = LeadState(pk, lead_id, given[lead_id], now_us, now_us)
        fetch([lead_id for lead_id in missing if lead_id not in states])
    return states, created


def ingest_events(
    session: Session,
    model: ActiveModel,
    records: Sequence[Mapping[str, Any]],
    now_us: int,
    *,
    policy: ScoringPolicy = ScoringPolicy(),
    tolerance_us: int = DEFAULT_TOLERANCE_US,
    max_events: int = 10_000,
    where: str = "events",
    nul_free: bool = False,
) -> IngestResult:
    """Store events (the first copy of an ``event_id`` wins) and rescore the leads they touch.

    Raises :class:`InvalidRequest` before anything is written when any record is bad.
    ``nul_free``: no text of the records holds a NUL character (see :func:`parse_events`).
    """
    if not records:
        raise InvalidRequest(f"{where}: the batch is empty; send at least one event", where)
    if len(records) > max_events:
        raise InvalidRequest(
            f"{where}: {len(records)} events in one batch; at most {max_events} are allowed", where
        )
    parsed = parse_events(records, now_us, tolerance_us=tolerance_us, where=where, nul_free=nul_free)
    return store_events(session, model, parsed, now_us, policy=policy)


class _NewLeadAttributes(Mapping[str, dict[str, Any]]):
    """The attributes a lead gets when a request creates it: ``created_at`` = the moment it
    was first seen (capped at now), plus ``extra``; computed only for the leads created."""

    def __init__(self, first_seen: dict[str, int], now_us: int,
                 extra: Mapping[str, dict[str, Any]]) -> None:
        self.first_seen, self.now_us, self.extra = first_seen, now_us, extra

    def __getitem__(self, lead_id: str) -> dict[str, Any]:
        extra = self.extra.get(lead_id)
        created = {"created_at": iso(self.first_seen.get(lead_id, self.now_us))}
        return {**created, **extra} if extra else created

    def get(self, lead_id: str, default: Any = None) -> dict[str, Any]:  # type: ignore[override]
        """``self[lead_id]``: every id has attributes (Mapping.get's try/except around
        ``__getitem__`` was a second call for each created lead; perf, issue #3)."""
        return self[lead_id]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self.first_seen, *self.extra]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self.first_seen, *self.extra]))


def store_events(
    session: Session,
    model: ActiveModel,
    parsed: Sequence[Event],
    now_us: int,
    *,
    policy: ScoringPolicy = ScoringPolicy(),
    new_attributes: Mapping[str, dict[str, Any]] | None = None,
) -> IngestResult:
    """Store normalised events and rescore their leads (see :func:`ingest_events`)."""
    with collector_paused():
        return _store_events(session, model, parsed, now_us, policy, new_attributes)


def _store_events(
    session: Session, model: ActiveModel, parsed: Sequence[Event], now_us: int,
    policy: ScoringPolicy, new_attributes: Mapping[str, dict[str, Any]] | None,
) -> IngestResult:
    result = IngestResult()
    fresh: list[Event] = []
    result.lead_order = list(dict.fromkeys([event.lead_id for event in parsed]))  # first seen first
    ids = [e.event_id for e in parsed if e.event_id is not None]
    stored: set[str] = set()
    db = raw(session)
    for part in chunks(sorted(set(ids))):
        stored.update(row[0] for row in db.all(
            f"SELECT event_id FROM events WHERE event_id IN ({marks(len(part))})", part))
    batch_ids: set[str] = set()
    # one pass over the events (perf, issue #3): the fresh ones (the first copy of an id),
    # each lead's first moment (a lead created here gets created_at = the moment it was first
    # seen, capped at now), its first event id (the detail of its change), and its events of
    # the model's types (a lead created here has no other events than those of this request,
    # in the order they are stored: on SQLite it is scored before it is inserted, and
    # inserted with its score)
    first_seen: dict[str, int] = {}
    first_id: dict[str, str] = {}
    types = model.event_types
    own: dict[str, list[Event]] = {}
    counted: dict[str, int] = {}  # fresh events by lead, every type (the event cache's counts)
    duplicates = result.duplicates
    for event in parsed:
        event_id, lead_id, ts = event.event_id, event.lead_id, event.ts
        if event_id is not None:
            if event_id in stored or event_id in batch_ids:
                duplicates.append(event_id)
                continue
            batch_ids.add(event_id)
            if lead_id not in first_id:
                first_id[lead_id] = event_id
        fresh.append(event)
        seen = first_seen.get(lead_id)
        if seen is None:
            first_seen[lead_id] = ts if ts < now_us else now_us
            counted[lead_id] = 1
        else:
            counted[lead_id] += 1
            if ts < seen:
                first_seen[lead_id] = ts
        if event.type in types:
            mine = own.get(lead_id)
            if mine is None:
                own[lead_id] = [event]
            else:
                mine.append(event)
    attributes = _NewLeadAttributes(first_seen, now_us, new_attributes or {})
    prescored: dict[str, Scored] = {}

    def new_columns(lead_id: str, document: dict[str, Any]) -> Sequence[Any]:
        prescored[lead_id], columns = new_lead_columns(
            model, lead_id, document, own.get(lead_id, []), now_us, "event", policy=policy)
        return columns

    states, result.created = lock_leads(session, result.lead_order, now_us, attributes, new_columns)
    pk_of = {lead_id: state.pk for lead_id, state in states.items()}
    if fresh:
        db.many(
            "INSERT INTO events (event_id, lead_pk, type, ts_us, properties, received_us) "
            "VALUES (?, ?, ?, ?, {json}, ?)",
            [(e.event_id, pk_of[e.lead_id], e.type, e.ts, properties_json(e.properties), now_us)
             for e in fresh],
        )
    result.accepted = len(fresh)
    touched = first_seen.keys() | result.created  # the leads of the fresh events, and those created
    to_score = [states[lead_id] for lead_id in result.lead_order if lead_id in touched]
    for lead_id in result.lead_order:
        if lead_id not in touched:
            state = states[lead_id]
            result.unchanged[lead_id] = state
    if result.unchanged:
        rows = session.execute(
            select(leads.c.lead_id, leads.c.score, leads.c.stage, leads.c.groups, leads.c.grades)
            .where(leads.c.lead_id.in_(list(result.unchanged)))
        )
        for row in rows:
            result.stored_scores[row.lead_id] = score_public(row)
    if to_score:
        detail = {pk_of[lead_id]: event_id for lead_id, event_id in first_id.items()}
        # a lead created here has no other events than those of this request
        old = {s.pk: s.lead_id for s in to_score if s.lead_id not in result.created}
        new = {states[lead_id].pk: lead_id for lead_id in result.created}
        cache = cache_of(session)
        since = model.oldest_counted(now_us)
        if cache is not None:
            by_pk = _stored_events(session, cache, model, since, old, new, own, counted)
        else:
            by_pk = _read_back(session, model, since, old, new, own)
        created = {states[lead_id].pk: prescored[lead_id] for lead_id in result.created if lead_id in prescored}
        changes = rescore_states(
            session, model, to_score, now_us, "event", policy=policy, detail=detail or None,
            events_by_pk=by_pk, created=created or None,
        )
        result.changes = {c.lead_id: c for c in changes}
    return result


def _read_back(
    session: Session, model: ActiveModel, since: Mapping[str, int | None], old: Mapping[int, str],
    new: Mapping[int, str], own: Mapping[str, list[Event]],
) -> dict[int, list[Event]]:
    """Each touched lead's events without the cache: the stored ones of the leads that were
    there before (this batch's included), and this batch's of those it created."""
    by_pk = load_events(session, old, model.event_types, since) if old else {}
    by_pk.update({pk: own.get(lead_id, []) for pk, lead_id in new.items()})
    return by_pk


def _stored_events(
    session: Session, cache: EventCache, model: ActiveModel, since: Mapping[str, int | None],
    old: Mapping[int, str], new: Mapping[int, str], own: Mapping[str, list[Event]], counted: Mapping[str, int],
) -> dict[int, list[Event]]:
    """Each touched lead's stored events (of the model's types, in the order stored, at or
    after ``since``; this batch's ``own`` are stored already): those of the leads the
    store's event cache holds, as it holds them plus this batch's; the others read back
    (:func:`load_events`). Staged in the cache for when the batch commits
    (store/event_cache.py: why a count is enough). An entry read back with an earlier
    bound holds events that no longer count: the engine passes over them."""
    types = model.event_types
    # the cache holds the events of these types within these windows: another model's
    # types or longer windows empty it
    shape = frozenset((kind, model.horizons.get(kind)) for kind in types)
    db = raw(session)
    # the counts and the number of deletions read by one statement each (PostgreSQL, read
    # committed: one statement sees one snapshot; a purge committed between two statements
    # would leave counts that match an older entry with the number of before)
    readings: set[Any] = set()
    stored: dict[int, int] = {}
    for part in chunks(sorted(old)) if old else [[]]:
        counts = (f" UNION ALL SELECT lead_pk, count(*) FROM events WHERE lead_pk IN ({marks(len(part))}) "
                  "GROUP BY lead_pk") if part else ""
        for pk, number in db.all(f"SELECT NULL, ({CHANGES_SQL}){counts}", part):
            if pk is None:
                readings.add(number)
            else:
                stored[pk] = number
    if len(readings) != 1 or None in readings:  # no migration 0014 (nothing counted), or moved
        return _read_back(session, model, since, old, new, own)
    changes = readings.pop()
    cache.valid_for(changes, shape)
    # an entry holds a lead's events before this batch: as many as stored now, less the batch's
    held = cache.get({pk: (lead_id, stored.get(pk, 0) - counted.get(lead_id, 0)) for pk, lead_id in old.items()})
    missing = {pk: lead_id for pk, lead_id in old.items() if pk not in held}
    by_pk = load_events(session, missing, types, since) if missing else {}
    entries: dict[int, Entry] = {}
    for pk, lead_id in old.items():
        before = held.get(pk)
        if before is not None:
            mine = own.get(lead_id)
            by_pk[pk] = [*before, *mine] if mine else list(before)
        entries[pk] = Entry(lead_id, stored.get(pk, 0), tuple(by_pk[pk]))
    for pk, lead_id in new.items():
        by_pk[pk] = mine = own.get(lead_id, [])
        entries[pk] = Entry(lead_id, counted.get(lead_id, 0), tuple(mine))
    cache.stage(session, changes, shape, entries)
    return by_pk


def clean_lead_id(value: Any, where: str = "lead_id") -> str:
    try:
        lead_id = id_text(value, where)
    except RecordError as exc:
        raise InvalidRequest(f"{where}: {exc.detail}", where) from None
    assert lead_id is not None
    if len(lead_id) > ID_LENGTH:
        raise InvalidRequest(f"{where} is longer than {ID_LENGTH} characters", where)
    return lead_id


def clean_attributes(values: Mapping[str, Any], where: str = "attributes") -> dict[str, Any]:
    """Normalised attributes (NFC, nested values as JSON text); null means "remove"."""
    try:
        return make_attributes(values, skip=())
    except RecordError as exc:
        field = where if exc.column in (None, "attributes") else f"{where}.{exc.column}"
        raise InvalidRequest(f"{field}: {exc.detail}", field) from None


@dataclass
class UpsertResult:
    lead_id: str
    created: bool
    changed: list[str]  # attribute names whose value changed
    state: LeadState
    change: ScoreChange | None


def upsert_lead(
    session: Session,
    model: ActiveModel,
    lead_id: Any,
    attributes: Mapping[str, Any],
    now_us: int,
    *,
    policy: ScoringPolicy = ScoringPolicy(),
    where: str = "",
) -> UpsertResult:
    """Create a lead or merge attributes into it (null removes one); a change rescores it."""
    prefix = f"{where}." if where else ""
    clean_id = clean_lead_id(lead_id, f"{prefix}lead_id")
    given = clean_attributes(attributes, f"{prefix}attributes")
    initial = {k: v for k, v in given.items() if v is not None}
    initial.setdefault("created_at", iso(now_us))
    states, created = lock_leads(session, [clean_id], now_us, {clean_id: initial})
    state = states[clean_id]
    if clean_id in created:
        changed = sorted(initial)
    else:
        merged = dict(state.attributes)
        for key, value in given.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        changed = sorted(k for k in set(merged) | set(state.attributes)
                         if merged.get(k, _ABSENT) != state.attributes.get(k, _ABSENT))
        if not changed:
            return UpsertResult(clean_id, False, [], state, None)
        session.execute(
            update(leads).where(leads.c.id == state.pk).values(attributes=merged, updated_us=now_us)
        )
        state.attributes = merged
    changes = rescore_states(
        session, model, [state], now_us, "attributes", policy=policy,
        detail=",".join(changed) or None,
    )
    return UpsertResult(clean_id, clean_id in created, changed, state, changes[0])


_ABSENT = object()
