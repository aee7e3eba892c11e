"""Bulk loading of lead and event files into the store, then scoring every touched lead.

The fast path: the event file is read column-wise with Arrow when it can be
(:func:`leadscore.ingest.files.read_events`; the row reader otherwise, which names the
first bad row), deduplicated by ``event_id`` (the first copy in the file wins, and an
event already in the store wins over the file's), written lead by lead in key order with
driver-level ``executemany`` (SQLite) or ``COPY`` (PostgreSQL), ``BATCH`` events per
transaction, and the touched leads are then scored in chunks with the engine. When the
store held no event before, the events read are scored from memory (each lead's stored
count is checked first, in the scoring transaction) instead of being read back.
Each batch is its own transaction: an interrupted import can be run again, and leaves
no duplicate (a row without an ``event_id`` gets one derived from what it says:
:mod:`leadscore.ingest.ids`, as ``leadscore send`` does).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import operator
import os
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import Event, iso
from leadscore.errors import InputError
from leadscore.ingest.columnar import EventColumns, LateRow, read_event_columns
from leadscore.ingest.files import EventStats, iter_events, iter_leads, iter_records, read_events
from leadscore.ingest.normalise import RecordError, make_event
from leadscore.model import parse_model
from leadscore.service.ingest import DEFAULT_TOLERANCE_US, future_refusal
from leadscore.service.models import ActiveModel, ModelCache, active_model
from leadscore.service.scoring import (
    LeadState,
    ScoreChange,
    ScoringPolicy,
    chunks,
    decode_properties,
    encode_results,
    load_events,
    load_state_rows,
    load_states,
    record_scores,
    score_states,
    state_from_raw,
)
from leadscore.store.db import Store, create_db_engine, in_memory
from leadscore.store.raw import marks, properties_json, raw, to_json
from leadscore.store.tables import ModelVersionRow, leads

Progress = Callable[[str, int, int | None], None]
BATCH = 50_000  # events a transaction (SQLite, 2M events: 60,000 took ~12 % less CPU than 20,000)
SCORE_CHUNK = 2_000


@dataclass
class ImportSummary:
    leads_read: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    events_read: int = 0
    events_stored: int = 0
    duplicates: int = 0
    leads_scored: int = 0


def _lead_keys(session: Session, lead_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    db = raw(session)
    for part in chunks(lead_ids):
        found.update(db.all(f"SELECT lead_id, id FROM leads WHERE lead_id IN ({marks(len(part))})", part))
    return found


BULK_LEADS = 10_000  # this many new leads into an empty table (SQLite): indexes built after


def _drop_lead_indexes(session: Session) -> list[str]:
    """SQLite, an empty leads table: drop its secondary indexes and return their DDL, to be
    run again once the rows are in, in the same transaction (no other connection ever
    sees the table without them). Built from sorted rows, the indexes (several on JSON
    attributes) cost about half of inserting into them row by row."""
    db = raw(session)
    if db.postgresql or db.all("SELECT 1 FROM leads LIMIT 1"):
        return []
    found = db.all("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' "
                   "AND sql IS NOT NULL ORDER BY rowid")
    for name, _ in found:
        db.execute(f'DROP INDEX "{name}"').close()
    return [ddl for _, ddl in found]


def _create_leads(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new leads (driver-level ``executemany``; a lead_id already there is kept)."""
    db = raw(session)
    rebuild = _drop_lead_indexes(session) if len(rows) >= BULK_LEADS else []
    for start in range(0, len(rows), BATCH):
        db.many(
            "INSERT INTO leads (lead_id, attributes, created_us, updated_us) VALUES (?, {jsonb}, ?, ?) "
            "ON CONFLICT (lead_id) DO NOTHING",
            [(r["lead_id"], to_json(r["attributes"]), r["created_us"], r["updated_us"])
             for r in rows[start : start + BATCH]],
        )
    for ddl in rebuild:
        db.execute(ddl).close()


class _PropertiesJson:
    """``to_json`` of event properties, remembered: a file repeats the same few property
    sets (``{"url": "/pricing"}``) over and over, and encoding is most of writing an event.
    Keys hold each value's class (``1``, ``1.0`` and ``True`` are equal in Python, not in
    JSON); property sets with a float are not remembered (``0.0 == -0.0``)."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self.texts: dict[tuple[Any, ...], str] = {}

    def __call__(self, properties: Mapping[str, Any]) -> str:
        key = tuple([(k, v.__class__, v) for k, v in properties.items()])
        text = self.texts.get(key)
        if text is None:
            text = properties_json(properties)
            if len(self.texts) < self.LIMIT and not any(item[1] is float for item in key):
                self.texts[key] = text
        return text


_EVENT_COLUMNS = ("event_id", "lead_pk", "type", "ts_us", "properties", "received_us")


def import_leads(store: Store, path: str | Path, now_us: int, summary: ImportSummary,
                 progress: Progress | None = None, before_write: Callable[[], None] | None = None) -> set[int]:
    """Create or update the leads of a file (attributes merged); returns the touched keys.
    ``before_write()`` is called once the whole file is read and checked, before anything
    is written (it raises to write nothing)."""
    records: dict[str, dict[str, Any]] = {}
    # the reader of `score` and `send` (the same checks and messages; ids the store holds)
    for _row, lead in iter_leads(path, None if progress is None else lambda n: progress("reading leads", n, None),
                                 stored=True):
        records[lead.lead_id] = {k: v for k, v in lead.attributes.items() if v is not None}
    summary.leads_read = len(records)
    if before_write is not None:
        before_write()
    touched: set[int] = set()
    ids = list(records)
    created_at = iso(now_us)
    with store.write() as session:
        existing = _lead_keys(session, ids)
        new_rows = [
            {"lead_id": lead_id, "attributes": {"created_at": created_at, **records[lead_id]},
             "created_us": now_us, "updated_us": now_us}
            for lead_id in ids if lead_id not in existing
        ]
        _create_leads(session, new_rows)
        summary.leads_created = len(new_rows)
        if existing:
            current = dict(session.execute(
                select(leads.c.id, leads.c.attributes).where(leads.c.id.in_(list(existing.values())))
            ).all()) if len(existing) < 30_000 else {
                pk: attrs for pk, attrs in session.execute(select(leads.c.id, leads.c.attributes))
            }
            updates = []
            for lead_id, pk in existing.items():
                merged = {**(current.get(pk) or {}), **records[lead_id]}
                if merged != current.get(pk):
                    updates.append({"b_id": pk, "p_attributes": merged, "p_updated": now_us})
            from sqlalchemy import bindparam

            for start in range(0, len(updates), BATCH):
                session.execute(
                    update(leads).where(leads.c.id == bindparam("b_id"))
                    .values(attributes=bindparam("p_attributes"), updated_us=bindparam("p_updated")),
                    updates[start : start + BATCH],
                )
            summary.leads_updated = len(updates)
        touched.update(_lead_keys(session, ids).values())
    return touched


def _store_is_empty_of_events(store: Store) -> bool:
    with store.read() as session:
        return not raw(session).all("SELECT 1 FROM events LIMIT 1")


Batch = tuple[list[tuple[Any, ...]], int, int]  # rows, the last lead key, events done


class _Prepared:
    """An event file read, deduplicated, and its leads created: ready to be stored lead by
    lead in key order (appends to the ``(lead_pk, id)`` index), whole leads per batch."""

    keys: dict[str, int]  # lead_id -> key, for every lead of the file
    rows: int  # events read (duplicates within the file included)

    def batches(self, now_us: int) -> Iterator[Batch]:
        raise NotImplementedError

    def events(self, pks: Sequence[int], types: Container[str] | None = None) -> dict[int, list[Event]]:
        """The file's events of these leads (of ``types`` only when given), in file order."""
        raise NotImplementedError

    def counts(self, pks: Sequence[int]) -> dict[int, int]:
        """How many events of each of these leads the file holds (deduplicated)."""
        raise NotImplementedError


class _RowsPrepared(_Prepared):
    """Events read by :func:`leadscore.ingest.read_events` (any file it reads)."""

    def __init__(self, by_lead: dict[str, list[Event]], keys: dict[str, int], rows: int) -> None:
        self.by_lead, self.keys, self.rows = by_lead, keys, rows
        self.by_pk = {keys[lead_id]: evs for lead_id, evs in by_lead.items()}

    def batches(self, now_us: int) -> Iterator[Batch]:
        batch: list[tuple[Any, ...]] = []
        properties_json = _PropertiesJson()
        done = 0
        for pk in sorted(self.by_pk):
            lead_events = self.by_pk[pk]
            for e in lead_events:
                batch.append((e.event_id, pk, e.type, e.ts, properties_json(e.properties), now_us))
            done += len(lead_events)
            if len(batch) >= BATCH:
                yield batch, pk, done
                batch = []
        if batch:
            yield batch, max(self.by_pk), done

    def events(self, pks: Sequence[int], types: Container[str] | None = None) -> dict[int, list[Event]]:
        return {pk: [e for e in self.by_pk[pk] if types is None or e.type in types]
                for pk in pks if pk in self.by_pk}

    def counts(self, pks: Sequence[int]) -> dict[int, int]:
        return {pk: len(self.by_pk.get(pk, ())) for pk in pks}


class _LazyDecoded(Sequence[Mapping[str, Any]]):
    """Property texts decoded when asked (through the service's bounded cache): many
    distinct property sets are not all held decoded at once."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: Any) -> Any:
        return decode_properties(self.texts[index])


class _ColumnsPrepared(_Prepared):
    """Events read as columns (:func:`leadscore.ingest.columnar.read_event_columns`), kept
    sorted by lead key; Python objects are made only for a batch or a chunk being scored.
    Types and property texts are held as codes into their few distinct values: each is
    made (or decoded) once, not once per event."""

    DECODED = 100_000  # up to this many distinct property sets are decoded up front

    def __init__(self, columns: EventColumns, keys: dict[str, int], lead_pks: np.ndarray) -> None:
        import pyarrow as pa

        self.keys, self.rows = keys, columns.rows
        self.lead_ids = {pk: lead_id for lead_id, pk in keys.items()}
        order = np.argsort(lead_pks, kind="stable")
        self.pks = lead_pks[order]
        take = pa.array(order)
        self.event_id = columns.event_id.take(take)
        self.ts = columns.ts[order]
        types = columns.type.dictionary_encode()
        self.type_names: list[str] = types.dictionary.to_pylist()
        self.type_codes = np.asarray(types.indices)[order]
        texts = columns.properties.dictionary_encode()
        self.property_texts: list[str] = texts.dictionary.to_pylist()
        self.property_codes = np.asarray(texts.indices)[order]
        self._decoded: np.ndarray | _LazyDecoded | None = None  # the property sets, by code
        self._names = np.array(self.type_names, dtype=object)

    def _span(self, first: int, last: int) -> tuple[int, int]:
        return (int(np.searchsorted(self.pks, first, "left")),
                int(np.searchsorted(self.pks, last, "right")))

    def batches(self, now_us: int) -> Iterator[Batch]:
        total = len(self.pks)
        start = 0
        names, texts = self.type_names, self.property_texts
        while start < total:
            end = min(total, start + BATCH)
            last = int(self.pks[end - 1])
            end = self._span(last, last)[1]  # the batch ends with a whole lead
            rows = list(zip(
                self.event_id.slice(start, end - start).to_pylist(), self.pks[start:end].tolist(),
                [names[c] for c in self.type_codes[start:end].tolist()], self.ts[start:end].tolist(),
                [texts[c] for c in self.property_codes[start:end].tolist()],
                itertools.repeat(now_us, end - start), strict=False,
            ))
            yield rows, last, end
            start = end

    def events(self, pks: Sequence[int], types: Container[str] | None = None) -> dict[int, list[Event]]:
        ordered = sorted(pks)
        out: dict[int, list[Event]] = {pk: [] for pk in ordered if pk in self.lead_ids}
        if not ordered:
            return out
        if self._decoded is None:  # a few distinct property sets: each decoded once
            texts = self.property_texts
            if len(texts) <= self.DECODED:
                decoded = np.empty(len(texts), dtype=object)  # filled one by one: a mapping
                for n, text in enumerate(texts):  # is not taken for a sequence of values
                    decoded[n] = decode_properties(text)
                self._decoded = decoded
            else:
                self._decoded = _LazyDecoded(texts)
        lo, hi = self._span(ordered[0], ordered[-1])
        rows = np.arange(lo, hi)
        if types is not None:
            wanted = np.array([name in types for name in self.type_names], dtype=bool)
            rows = rows[wanted[self.type_codes[lo:hi]]]
        if not len(rows):
            return out
        # the values of every event as lists (codes turned into their objects by numpy's
        # take, not a Python loop), then each lead's run of rows (they are sorted by key)
        # made into events at once (perf, issue #3: this took a tenth of the import's CPU)
        pks_of = self.pks[rows]
        kinds = self._names[self.type_codes[rows]].tolist()
        codes = self.property_codes[rows]
        properties = (self._decoded[codes].tolist() if isinstance(self._decoded, np.ndarray)
                      else [self._decoded[c] for c in codes.tolist()])
        stamps = self.ts[rows].tolist()
        event_ids = self.event_id.take(rows).to_pylist()
        starts = np.flatnonzero(np.concatenate(([True], pks_of[1:] != pks_of[:-1])))
        ends = np.append(starts[1:], len(rows)).tolist()
        lead_ids, repeat = self.lead_ids, itertools.repeat
        for pk, start, end in zip(pks_of[starts].tolist(), starts.tolist(), ends, strict=True):
            bucket = out.get(pk)
            if bucket is not None:
                bucket.extend(map(Event, repeat(lead_ids[pk], end - start), kinds[start:end],
                                  stamps[start:end], properties[start:end], event_ids[start:end]))
        return out

    def counts(self, pks: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for pk in pks:
            lo, hi = self._span(pk, pk)
            out[pk] = hi - lo
        return out


def _new_lead_rows(first_ts: Mapping[str, int], now_us: int) -> list[dict[str, Any]]:
    return [{"lead_id": lead_id, "attributes": {"created_at": iso(min(first, now_us))},
             "created_us": now_us, "updated_us": now_us} for lead_id, first in first_ts.items()]


def _lead_keys_creating(store: Store, ids: list[str], first_ts: Callable[[list[str]], dict[str, int]],
                        now_us: int, summary: ImportSummary) -> dict[str, int]:
    """The keys of these leads, creating those not stored (created_at: their first event)."""
    keys: dict[str, int] = {}
    with store.write() as session:
        keys.update(_lead_keys(session, ids))
        unknown = [lead_id for lead_id in ids if lead_id not in keys]
        if unknown:
            _create_leads(session, _new_lead_rows(first_ts(unknown), now_us))
            summary.leads_created += len(unknown)
            keys.update(_lead_keys(session, unknown))
    return keys


EventFile = EventColumns | tuple[dict[str, list[Event]], EventStats]


def _read_event_file(path: str | Path, now_us: int, tolerance_us: int = DEFAULT_TOLERANCE_US,
                     progress: Progress | None = None) -> EventFile:
    """An event file as columns when it can be read so (plain values), else as events by
    the row reader (which names the row of any error). A file of a header alone is refused
    as ``leadscore score`` refuses it (by the row reader's error), and so is an event
    stamped more than ``tolerance_us`` after ``now_us``, in the API's words
    (:func:`leadscore.service.ingest.parse_events`): nothing is written before this."""
    if progress is not None:
        progress("reading events", 0, None)
    latest = now_us + tolerance_us
    if Path(path).is_file():
        try:
            columns = read_event_columns(Path(path), latest_us=latest)
        except LateRow as late:
            raise _late_event(path, now_us, tolerance_us, late.ts_us, late.index) from None
        if columns is not None:
            return columns
    try:
        by_lead, stats = read_events(path, derive_ids=True)
    except InputError as exc:
        if exc.message.startswith("missing column(s) "):  # without the readers' "(events need ...)"
            raise InputError(exc.message.replace(" (events need lead_id, type, timestamp)", "", 1),
                             file=str(path), row=exc.row, column=exc.column) from None
        raise
    # the events read (the first copy of each event_id), Arrow's table path or the row reader's
    last = max(map(_TS, itertools.chain.from_iterable(by_lead.values())))
    if last > latest:
        raise _late_event(path, now_us, tolerance_us, last)
    return by_lead, stats


_TS = operator.attrgetter("ts")


def _late_event(path: str | Path, now_us: int, tolerance_us: int, ts_us: int,
                index: int | None = None) -> InputError:
    """The refusal of an event file with an event stamped more than ``tolerance_us`` after
    ``now_us``, naming the first such row as the row reader numbers it (found again only
    now, on the way to the error): the record at ``index`` (Arrow's row) when given, else
    the first event the row reader reads stamped so late. ``ts_us``: a late timestamp, told
    should no row be found (the readers disagree)."""
    latest = now_us + tolerance_us
    if index is not None:
        for row, record in itertools.islice(iter_records(path), index, index + 1):
            with contextlib.suppress(RecordError):
                if (ts := make_event(record).ts) > latest:
                    return InputError(future_refusal(ts, now_us, tolerance_us), file=str(path), row=row,
                                      column="timestamp")
    for row, event in iter_events(path, stored=True):
        if event.ts > latest:
            return InputError(future_refusal(event.ts, now_us, tolerance_us), file=str(path), row=row,
                              column="timestamp")
    return InputError(future_refusal(ts_us, now_us, tolerance_us), file=str(path), column="timestamp")


def _prepare_events(store: Store, path: str | Path, now_us: int, summary: ImportSummary,
                    progress: Progress | None = None, read: EventFile | None = None) -> _Prepared:
    """Read an event file (unless ``read``) and create its unknown leads."""
    read = read if read is not None else _read_event_file(path, now_us, progress=progress)
    if isinstance(read, EventColumns):
        return _prepare_columns(store, read, now_us, summary)
    by_lead, stats = read
    summary.events_read += stats.rows
    summary.duplicates += stats.duplicates
    keys = _lead_keys_creating(
        store, list(by_lead), lambda unknown: {i: min(e.ts for e in by_lead[i]) for i in unknown},
        now_us, summary)
    return _RowsPrepared(by_lead, keys, stats.rows)


def _prepare_columns(store: Store, columns: EventColumns, now_us: int,
                     summary: ImportSummary) -> _Prepared:
    import pyarrow.compute as pc

    summary.events_read += columns.rows
    summary.duplicates += columns.rows - len(columns.lead_id)
    distinct = pc.unique(columns.lead_id)
    index = np.asarray(pc.index_in(columns.lead_id, value_set=distinct))
    ids = distinct.to_pylist()

    def first_ts(unknown: list[str]) -> dict[str, int]:
        first = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, index, columns.ts)
        position = {lead_id: n for n, lead_id in enumerate(ids)}
        return {lead_id: int(first[position[lead_id]]) for lead_id in unknown}

    keys = _lead_keys_creating(store, ids, first_ts, now_us, summary)
    lead_pks = np.array([keys[lead_id] for lead_id in ids], dtype=np.int64)[index]
    return _ColumnsPrepared(columns, keys, lead_pks)


@dataclass
class _Stored:
    stored: int = 0
    duplicates: int = 0
    complete: bool = True  # every event written was new to the store
    scored: int = 0  # leads scored (by the pipeline's writer, once its events are in)


def _store_events(store: Store, prepared: _Prepared, now_us: int,
                  on_batch: Callable[[int, int, bool], None] | None = None) -> _Stored:
    """Write the prepared events, one transaction per batch. ``on_batch(done, last_key,
    complete)`` is called after each commit: every event of the leads up to key
    ``last_key`` is then stored."""
    result = _Stored()
    for rows, last, done in prepared.batches(now_us):
        with store.write() as session:
            stored = _insert_event_rows(session, rows)
        result.stored += stored
        result.duplicates += len(rows) - stored
        if stored != len(rows):
            result.complete = False
        if on_batch is not None:
            on_batch(done, last, result.complete)
    return result


def _import_prepared(store: Store, prepared: _Prepared, now_us: int, summary: ImportSummary,
                     progress: Progress | None, loaded: dict[int, list[Event]] | None) -> set[int]:
    """Store the prepared events in this process, lead by lead in key order, ``BATCH`` per
    transaction; returns the touched keys. When ``loaded`` is given (the store held no event
    before), it receives each lead's events as stored, for scoring without reading them
    back; it is emptied when any event was already stored."""
    total = prepared.rows

    def on_batch(done: int, _last: int, _complete: bool) -> None:
        if progress is not None:
            progress("loading events", done, total)

    result = _store_events(store, prepared, now_us, on_batch)
    summary.events_stored += result.stored
    summary.duplicates += result.duplicates
    if loaded is not None:
        if result.complete:
            loaded.update(prepared.events(list(prepared.keys.values())))
        else:
            loaded.clear()
    return set(prepared.keys.values())


def _insert_event_rows(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """Insert (event_id, lead_pk, type, ts_us, properties JSON, received_us) rows, skipping
    event_ids already stored; returns how many were stored."""
    columns = ", ".join(_EVENT_COLUMNS)
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        result = connection.exec_driver_sql(
            f"INSERT OR IGNORE INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
        return int(result.rowcount)
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor:
        # rows are numbered: ORDER BY ctid is not the order of COPY once an aborted import
        # left dead rows in the table (pruning frees their space for later rows)
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_event_rows "
            "(n bigint, event_id text, lead_pk bigint, type text, ts_us bigint, properties text, "
            "received_us bigint) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY import_event_rows (n, {columns}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((n, *row))
        cursor.execute(
            f"INSERT INTO events ({columns}) SELECT event_id, lead_pk, type, ts_us, "
            "properties::json, received_us FROM import_event_rows ORDER BY n "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        stored = int(cursor.rowcount)
        cursor.execute("TRUNCATE import_event_rows")
    return stored


# scoring in worker processes: each parses the model once (one ScoringModel per version)
_WORKER_MODELS: dict[int, ActiveModel] = {}


def _worker_score(
    version_id: int, document: str, fmt: str, states: list[LeadState],
    by_pk: dict[int, list[Event]], now_us: int, policy: ScoringPolicy,
) -> list[ScoreChange]:
    model = _WORKER_MODELS.get(version_id)
    if model is None:
        model = ActiveModel.of(version_id, parse_model(document, fmt=fmt, stored=True))
        _WORKER_MODELS[version_id] = model
    return score_states(model, states, by_pk, now_us, "import", policy=policy)


def _pool(workers: int) -> Any:
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def score_all(store: Store, pks: set[int], now_us: int, summary: ImportSummary, *,
              policy: ScoringPolicy = ScoringPolicy(), progress: Progress | None = None,
              loaded: dict[int, list[Event]] | None = None, workers: int | None = None) -> None:
    """Score the touched leads in chunks (cause ``import``). ``loaded`` holds events known
    to be exactly a lead's stored ones (checked by count in the scoring transaction:
    a lead that received other events meanwhile is read from the store).

    ``workers`` > 1 runs the engine in that many processes (this one included); the
    changes are recorded here, in the chunk's transaction, so listeners see them as usual.
    Off by default: on the 2 shared CPUs measured it was slower (pickling the events)."""
    ordered = sorted(pks)
    cache = ModelCache()
    loaded = loaded or {}
    if workers is None:
        workers = 1  # measured: on 2 shared CPUs the pickling cost more than it saved
    pool = _pool(workers - 1) if workers > 1 else None
    chunk = SCORE_CHUNK * max(1, workers)
    try:
        for start in range(0, len(ordered), chunk):
            part = ordered[start : start + chunk]
            with store.write() as session:
                model = active_model(session, cache)
                states = load_states(session, part, lock=True)
                by_pk = _events_for(session, model, states, loaded)
                if pool is None:
                    changes = score_states(model, states, by_pk, now_us, "import", policy=policy)
                else:
                    changes = _score_parallel(session, pool, workers, model, states, by_pk, now_us, policy)
                record_scores(session, changes, updated={s.pk: s.updated_us for s in states})
            summary.leads_scored += len(states)
            if progress is not None:
                progress("scoring", summary.leads_scored, len(ordered))
    finally:
        if pool is not None:
            pool.shutdown()


def _events_for(session: Session, model: ActiveModel, states: list[LeadState],
                loaded: dict[int, list[Event]]) -> dict[int, list[Event]]:
    known = [s.pk for s in states if s.pk in loaded]
    by_pk: dict[int, list[Event]] = {}
    if known:
        counts: dict[int, int] = {}
        for piece in chunks(known):
            counts.update(raw(session).all(
                f"SELECT lead_pk, count(*) FROM events WHERE lead_pk IN ({marks(len(piece))}) "
                "GROUP BY lead_pk", list(piece)))
        types = model.event_types
        for pk in known:
            if counts.get(pk, 0) == len(loaded[pk]):
                by_pk[pk] = [e for e in loaded[pk] if e.type in types]
    others = {s.pk: s.lead_id for s in states if s.pk not in by_pk}
    if others:
        by_pk.update(load_events(session, others, model.event_types))
    return by_pk


def _picklable(lead_events: list[Event]) -> list[Event]:
    """Events whose properties pickle (stored ones are read-only mappings, which do not)."""
    return [e if e.properties.__class__ is dict else
            Event(e.lead_id, e.type, e.ts, dict(e.properties), e.event_id) for e in lead_events]


def _score_parallel(session: Session, pool: Any, workers: int, model: ActiveModel,
                    states: list[LeadState], by_pk: dict[int, list[Event]], now_us: int,
                    policy: ScoringPolicy) -> list[ScoreChange]:
    row = session.get(ModelVersionRow, model.version_id)
    assert row is not None
    size = -(-len(states) // workers)
    parts = [states[i : i + size] for i in range(0, len(states), size)]
    futures = [
        pool.submit(_worker_score, model.version_id, row.document, row.format, p,
                    {s.pk: _picklable(by_pk[s.pk]) for s in p}, now_us, policy)
        for p in parts[1:]
    ]
    changes = score_states(model, parts[0], by_pk, now_us, "import", policy=policy)
    for future in futures:
        changes.extend(future.result())
    return changes


# --- the pipeline: events stored by a forked process while this one scores ---------------

PIPELINE_MIN_EVENTS = 50_000  # smaller imports run in one process (a fork costs ~0.1 s)
PIPELINE_MIN_BYTES = 4_000_000  # an event file this large: its lead file is read meanwhile
PIPELINE_CHUNK = 5_000  # leads scored, then recorded in one transaction


def _event_counts(session: Session, pks: list[int]) -> dict[int, int]:
    """Each lead's number of stored events (0 included)."""
    counts = dict.fromkeys(pks, 0)
    for piece in chunks(pks):
        counts.update(raw(session).all(
            f"SELECT lead_pk, count(*) FROM events WHERE lead_pk IN ({marks(len(piece))}) "
            "GROUP BY lead_pk", list(piece)))
    return counts


def _can_fork(store: Store) -> bool:
    """Whether a forked process can work on this store: a fork exists here, and the
    database is not one process's memory."""
    return (hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()
            and not in_memory(store.engine))


class _Forked:
    """A function run in a forked process (it shares this one's memory as it was: nothing
    is copied or pickled on the way in), which tells how far it got in a shared page of
    integers (:meth:`set` there, :meth:`get` here) and hands back its result, or its
    exception, pickled through a pipe. It never uses this process's database connections
    (it opens its own)."""

    SLOTS = 8

    def __init__(self, store: Store, work: Callable[[_Forked, Store], Any],
                 slots: Mapping[int, int] | None = None) -> None:
        import mmap

        self.page = mmap.mmap(-1, 8 * (self.SLOTS + 1))  # the last slot: ended
        for slot, value in (slots or {}).items():  # set before the fork: both see them
            self.set(slot, value)
        self.read_end, write_end = os.pipe()
        self.outcome: tuple[str, Any] | None = None
        self.status: int | None = None  # its exit status, once it is reaped
        store.before_fork()  # no SQLite state for the child to inherit
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child (coverage of forks is not collected)
            os.close(self.read_end)
            self._child(store, work, write_end)
        os.close(write_end)

    def set(self, slot: int, value: int) -> None:
        self.page[8 * slot : 8 * slot + 8] = value.to_bytes(8, "little", signed=True)

    def get(self, slot: int) -> int:
        return int.from_bytes(self.page[8 * slot : 8 * slot + 8], "little", signed=True)

    @property
    def ended(self) -> bool:
        """It said it ended, or it is gone without a word (killed)."""
        if self.get(self.SLOTS):
            return True
        if self.status is None and self.pid:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def _child(self, store: Store, work: Callable[[_Forked, Store], Any],
               write_end: int) -> None:  # pragma: no cover - runs in the child
        import pickle

        code = 0
        try:
            # its own engine: the parent's connections are never touched here (not even
            # closed: os._exit below runs no finalizer), as SQLite asks of a fork
            url = store.engine.url.render_as_string(hide_password=False)
            payload = pickle.dumps(("ok", work(self, Store(create_db_engine(url, pool_size=1)))))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
            code = 1
            try:
                payload = pickle.dumps(("error", exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                payload = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        try:
            self.set(self.SLOTS, 1)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(code)

    def wait_for(self, slot: int, value: int) -> None:
        """Wait until ``slot`` reaches ``value`` or the process ended (its exception is
        raised here)."""
        import time

        while self.get(slot) < value and not self.ended:
            time.sleep(0.005)
        if self.ended:
            self.finish()

    def finish(self) -> Any:
        """Wait for the process to end; its result, or its exception raised here."""
        import pickle

        if self.outcome is None:
            with os.fdopen(self.read_end, "rb") as pipe:
                payload = pipe.read()
            if self.status is None:
                _, self.status = os.waitpid(self.pid, 0)
            self.pid = 0
            self.outcome = pickle.loads(payload) if payload else (  # noqa: S301 - our child's bytes
                "error", RuntimeError(f"a process of the import ended without a word (status {self.status})"))
        kind, value = self.outcome
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        """End the process if it still runs (this one failed): its open transaction rolls back."""
        import signal

        if self.pid:
            if self.status is None:  # not reaped yet: the pid is still its own
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = 0
            os.close(self.read_end)


# the writer's slots: events done, the last lead key whose events are all committed,
# and 1 once a batch met an event already stored (set before the key: read after it);
# the chunks of leads to score: this process claims them from the front (the next one
# it takes), the writer from the back once its events are in (the first one it took),
# under a lock created before the fork; and how many leads the writer scored
_DONE, _LAST, _INCOMPLETE, _FRONT, _BACK, _SCORED = 0, 1, 2, 3, 4, 5


class _Chunks:
    """The chunks of the touched leads, in key order, claimed by the two processes of the
    pipeline: this one takes them from the front, the writer from the back once it stored
    every event (work stealing: the two end together, neither waits for the other). A
    claim is a few reads and writes of the shared page under a lock of both processes."""

    def __init__(self, ordered: list[int], size: int) -> None:
        self.ordered, self.size = ordered, size
        self.count = -(-len(ordered) // size)
        self.lock = multiprocessing.get_context("fork").Lock()  # before the fork

    def part(self, index: int) -> list[int]:
        return self.ordered[index * self.size : (index + 1) * self.size]

    def claim(self, page: _Forked, front: bool, check: Callable[[], None]) -> int | None:
        """The index of the next chunk from the front (or the back), None once every chunk
        is claimed; ``check()`` is called while the lock is held by the other process (it
        raises should that one be gone: a killed process holds it for ever)."""
        while not self.lock.acquire(timeout=0.05):
            check()
        try:
            first, end = page.get(_FRONT), page.get(_BACK)
            if first >= end:
                return None
            if front:
                page.set(_FRONT, first + 1)
                return first
            page.set(_BACK, end - 1)
            return end - 1
        finally:
            self.lock.release()


@dataclass
class _Scored:
    """A chunk of leads scored from memory, not recorded yet."""

    part: list[int]
    model: ActiveModel
    rows: dict[int, tuple[Any, ...]]  # the states as read, by key (driver-level rows)
    before: dict[int, LeadState]
    early: list[ScoreChange]


def _score_early(store: Store, prepared: _Prepared, part: list[int], now_us: int,
                 policy: ScoringPolicy, cache: ModelCache) -> _Scored:
    """Score a chunk of leads from memory with the states read now (their events may not
    all be stored yet); nothing is written."""
    with store.read() as session:
        model = active_model(session, cache)
        rows = {row[0]: row for row in load_state_rows(session, part)}
    before = {pk: state_from_raw(row) for pk, row in rows.items()}
    early = score_states(model, list(before.values()), prepared.events(part, model.event_types),
                         now_us, "import", policy=policy)
    encode_results(early)  # out of the write transaction: the writer lock is held less
    return _Scored(part, model, rows, before, early)


def _record_chunk(store: Store, prepared: _Prepared, scored: _Scored, now_us: int,
                  policy: ScoringPolicy, cache: ModelCache, incomplete: bool) -> int:
    """Record a chunk scored by :func:`_score_early` once every event of its leads is
    stored (``incomplete``: an event of the file was found already stored), in a
    transaction that reads the states again and checks each lead's event count; a lead
    that changed meanwhile (or any, when ``incomplete``) is scored there again from the
    store, as :func:`score_all` does. Returns the number of leads scored."""
    part, rows, before = scored.part, scored.rows, scored.before
    with store.write() as session:
        current = active_model(session, cache)
        # the states read again, compared as rows (one unchanged is not decoded again)
        now_rows = load_state_rows(session, part, lock=True)
        unchanged = {row[0] for row in now_rows if rows.get(row[0]) == row}
        states = [before[row[0]] if row[0] in unchanged else state_from_raw(row) for row in now_rows]
        counts = {} if incomplete or current.version_id != scored.model.version_id else (
            _event_counts(session, part))
        expected = prepared.counts(part)
        kept = {c.lead_pk: c for c in scored.early
                if c.lead_pk in counts and counts[c.lead_pk] == expected[c.lead_pk]
                and c.lead_pk in unchanged}
        again = [s for s in states if s.pk not in kept]
        if again:
            by_pk = load_events(session, {s.pk: s.lead_id for s in again}, current.event_types)
            for change in score_states(current, again, by_pk, now_us, "import", policy=policy):
                kept[change.lead_pk] = change
        record_scores(session, [kept[s.pk] for s in states],
                      updated={s.pk: s.updated_us for s in states})
    return len(states)


def _write_events(prepared: _Prepared, now_us: int, claims: _Chunks,
                  policy: ScoringPolicy) -> Callable[[_Forked, Store], _Stored]:
    parent = os.getpid()

    def work(child: _Forked, store: Store) -> _Stored:  # pragma: no cover - runs in the child
        def on_batch(done: int, last: int, complete: bool) -> None:
            if not complete:
                child.set(_INCOMPLETE, 1)
            child.set(_LAST, last)
            child.set(_DONE, done)

        def check() -> None:
            if os.getppid() != parent:
                raise RuntimeError("the importing process is gone")

        result = _store_events(store, prepared, now_us, on_batch)
        # every event is in: score chunks from the back while the parent scores from the front
        cache = ModelCache()
        while (index := claims.claim(child, False, check)) is not None:
            scored = _score_early(store, prepared, claims.part(index), now_us, policy, cache)
            result.scored += _record_chunk(store, prepared, scored, now_us, policy, cache,
                                           not result.complete)
            child.set(_SCORED, result.scored)
        return result

    return work


PIPELINE_AHEAD = 4  # chunks this process scores ahead while the writer has not stored their events


def _pipelined(store: Store, prepared: _Prepared, pks: set[int], now_us: int,
               summary: ImportSummary, *, policy: ScoringPolicy,
               progress: Progress | None) -> None:
    """Store the events in a forked process while this one scores the touched leads (the
    store held no event before), chunk by chunk from the first: each scored from memory
    (:func:`_score_early`), then recorded once the writer stored its events
    (:func:`_record_chunk`); while the writer is behind, up to :data:`PIPELINE_AHEAD`
    chunks are scored ahead. The writer, once every event is stored, scores and records
    chunks from the last, until the two meet (work stealing)."""
    # on SQLite the two processes take turns to write on the store's writer lock (a flock,
    # released by the kernel should the writer be killed inside its transaction; see
    # store/locks.py), not in SQLite's busy handler (under load, a writer of one process
    # failed now and then with "locking protocol" after 10 s of retries)
    from collections import deque

    ordered = sorted(pks)
    work = _Chunks(ordered, PIPELINE_CHUNK)
    writer = _Forked(store, _write_events(prepared, now_us, work, policy), {_BACK: work.count})

    def check() -> None:  # the writer holds the claims' lock: it may be gone
        if writer.ended:
            writer.finish()  # raises its exception (it never ends holding the lock otherwise)

    try:
        cache = ModelCache()
        pending: deque[_Scored] = deque()
        claiming = True
        while True:
            ready = bool(pending) and writer.get(_LAST) >= pending[0].part[-1]
            if not ready and claiming and len(pending) < PIPELINE_AHEAD:
                index = work.claim(writer, True, check)
                if index is not None:
                    pending.append(_score_early(store, prepared, work.part(index), now_us, policy, cache))
                    continue
                claiming = False
            if not pending:
                break
            scored = pending.popleft()
            writer.wait_for(_LAST, scored.part[-1])  # every event of these leads is committed
            if progress is not None:
                progress("loading events", writer.get(_DONE), prepared.rows)
            summary.leads_scored += _record_chunk(store, prepared, scored, now_us, policy, cache,
                                                  bool(writer.get(_INCOMPLETE)))
            if progress is not None:
                progress("scoring", summary.leads_scored + writer.get(_SCORED), len(ordered))
        result: _Stored = writer.finish()
    except BaseException:
        writer.stop()
        raise
    summary.events_stored += result.stored
    summary.duplicates += result.duplicates
    summary.leads_scored += result.scored
    if progress is not None:
        progress("loading events", prepared.rows, prepared.rows)
        progress("scoring", summary.leads_scored, len(ordered))


ANALYSIS_LIMIT = 1000  # SQLite: index entries ANALYZE reads per index of the events table


def analyze(store: Store) -> None:
    """Refresh the planner's statistics of the tables an import fills. On SQLite, those of
    the events table from a sample of each index (as ``PRAGMA optimize`` does): its indexes
    (lead key, event_id) are searched by equality, and reading all of 2M events' took 0.8 s;
    the leads' low-cardinality indexes (stage) need every row for a fair estimate."""
    with store.write() as session:
        connection = session.connection()
        connection.exec_driver_sql("ANALYZE leads")
        if connection.dialect.name != "sqlite":
            connection.exec_driver_sql("ANALYZE events")
            return
        connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        try:
            connection.exec_driver_sql("ANALYZE events")
        finally:
            connection.exec_driver_sql("PRAGMA analysis_limit=0")


def import_files(store: Store, leads_path: str | Path | None, events_path: str | Path | None,
                 now_us: int, *, policy: ScoringPolicy = ScoringPolicy(),
                 progress: Progress | None = None, tolerance_us: int = DEFAULT_TOLERANCE_US) -> ImportSummary:
    """``leadscore import``: leads first (so events find them), then events, then scores.
    Both files are read and checked before anything is written: a bad row, an event file of
    a header alone or an event stamped more than ``tolerance_us`` after ``now_us`` (the
    API's limit) raises an :class:`~leadscore.errors.InputError` and leaves the store as
    it was."""
    # the import holds every event of the file in memory: the cyclic garbage collector would
    # walk those millions of objects again and again for nothing (they are freed by
    # reference counting), which cost a fifth of the import; it is off while importing
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _import_files(store, leads_path, events_path, now_us, policy=policy, progress=progress,
                             tolerance_us=tolerance_us)
    finally:
        if was_enabled:
            gc.enable()


def _import_files(store: Store, leads_path: str | Path | None, events_path: str | Path | None,
                  now_us: int, *, policy: ScoringPolicy, progress: Progress | None,
                  tolerance_us: int) -> ImportSummary:
    summary = ImportSummary()
    touched: set[int] = set()
    analyze(store)  # fresh statistics, or the planner may scan instead of using indexes
    # a large import reads its lead file in a forked process (which stores the leads) while
    # this one reads the event file; the leads are stored before any event, as in one process
    big = (events_path is not None and Path(events_path).is_file()
           and Path(events_path).stat().st_size >= PIPELINE_MIN_BYTES and _can_fork(store))
    # nothing is written before both files are read and checked: a bad event row leaves
    # the store as it was (the forked reader of the leads waits for the word to write them)
    reading_leads: _Forked | None = None
    read: EventFile | None = None
    if leads_path is not None:
        if big:
            reading_leads = _Forked(store, _import_leads_work(leads_path, now_us))
        else:
            def read_events_first() -> None:  # the lead file is read and checked: now the event file
                nonlocal read
                if events_path is not None:
                    read = _read_event_file(events_path, now_us, tolerance_us, progress)

            touched |= import_leads(store, leads_path, now_us, summary, progress, before_write=read_events_first)
            analyze(store)
    loaded: dict[int, list[Event]] | None = None
    if events_path is not None:
        try:
            if read is None:
                read = _read_event_file(events_path, now_us, tolerance_us, progress)
        except BaseException:
            if reading_leads is not None:
                reading_leads.set(_WRITE_LEADS, -1)
                with contextlib.suppress(_LeadsNotWritten):
                    reading_leads.finish()  # its error first, as when the leads are read first
            raise
        if reading_leads is not None:
            reading_leads.set(_WRITE_LEADS, 1)
            keys, leads_summary = reading_leads.finish()
            touched |= keys
            summary.leads_read = leads_summary.leads_read
            summary.leads_created += leads_summary.leads_created
            summary.leads_updated = leads_summary.leads_updated
            if progress is not None:
                progress("reading leads", summary.leads_read, summary.leads_read)
            analyze(store)
        empty = _store_is_empty_of_events(store)
        prepared = _prepare_events(store, events_path, now_us, summary, read=read)
        if empty and prepared.rows >= PIPELINE_MIN_EVENTS and _can_fork(store):
            touched |= set(prepared.keys.values())
            _pipelined(store, prepared, touched, now_us, summary, policy=policy, progress=progress)
            analyze(store)
            return summary
        loaded = {} if empty else None
        touched |= _import_prepared(store, prepared, now_us, summary, progress, loaded)
        analyze(store)
    score_all(store, touched, now_us, summary, policy=policy, progress=progress, loaded=loaded)
    return summary


_WRITE_LEADS = 6  # the forked lead reader's slot: 1 write them, -1 do not (the event file was bad)


class _LeadsNotWritten(Exception):
    """The forked lead reader was told not to write (or lost its parent)."""


def _import_leads_work(path: str | Path,
                       now_us: int) -> Callable[[_Forked, Store], tuple[set[int], ImportSummary]]:
    def work(child: _Forked, store: Store) -> tuple[set[int], ImportSummary]:  # pragma: no cover
        import time

        parent = os.getppid()

        def wait_for_the_word() -> None:
            while (word := child.get(_WRITE_LEADS)) == 0:
                if os.getppid() != parent:
                    raise _LeadsNotWritten
                time.sleep(0.005)
            if word < 0:
                raise _LeadsNotWritten

        summary = ImportSummary()
        return import_leads(store, path, now_us, summary, before_write=wait_for_the_word), summary

    return work
