"""Bulk loading of lead and event files into the store, then scoring every touched lead.

The fast path: rows are normalised by the same functions as every other door
(:mod:`leadscore.ingest`), written with Core ``executemany`` in large batches (no ORM
objects), deduplicated by ``event_id`` (the first stored copy wins, also against events
already in the store), and the touched leads are scored in chunks with the engine.
Each batch is its own transaction: an interrupted import can be run again, and leaves
no duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.errors import InputError
from leadscore.ingest import iter_records, make_attributes
from leadscore.ingest.normalise import RecordError, id_text, make_event
from leadscore.service.models import ModelCache, active_model
from leadscore.service.scoring import (
    ScoringPolicy,
    chunks,
    load_events,
    load_states,
    record_scores,
    score_states,
)
from leadscore.store.db import Store
from leadscore.store.queries import insert_ignoring
from leadscore.store.tables import leads

Progress = Callable[[str, int, int | None], None]
BATCH = 20_000
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
    for part in chunks(lead_ids):
        for lead_id, pk in session.execute(
            select(leads.c.lead_id, leads.c.id).where(leads.c.lead_id.in_(part))
        ):
            found[lead_id] = pk
    return found


def _create_leads(session: Session, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        session.execute(insert_ignoring(session, leads, ["lead_id"]), rows[start : start + BATCH])


_EVENT_COLUMNS = ("event_id", "lead_pk", "type", "ts_us", "properties", "received_us")


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert event rows, skipping event_ids already stored: one driver-level executemany on
    SQLite, COPY into a temporary table then one INSERT ... SELECT on PostgreSQL.
    Returns how many were stored."""
    tuples = [
        (r["event_id"], r["lead_pk"], r["type"], r["ts_us"],
         json.dumps(r["properties"], ensure_ascii=False, separators=(",", ":")), r["received_us"])
        for r in rows
    ]
    columns = ", ".join(_EVENT_COLUMNS)
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        result = connection.exec_driver_sql(
            f"INSERT OR IGNORE INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?)", tuples
        )
        return int(result.rowcount)
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_events "
            "(event_id text, lead_pk bigint, type text, ts_us bigint, properties text, "
            "received_us bigint) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY import_events ({columns}) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO events ({columns}) SELECT event_id, lead_pk, type, ts_us, "
            "properties::json, received_us FROM import_events ORDER BY ctid "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        stored = int(cursor.rowcount)
        cursor.execute("TRUNCATE import_events")
    return stored


def import_leads(store: Store, path: str | Path, now_us: int, summary: ImportSummary,
                 progress: Progress | None = None) -> set[int]:
    """Create or update the leads of a file (attributes merged); returns the touched keys."""
    records: dict[str, dict[str, Any]] = {}
    for row, record in iter_records(path, None if progress is None else lambda n: progress("reading leads", n, None)):
        if "lead_id" not in record:
            raise InputError("no 'lead_id' column", file=str(path), row=row, column="lead_id")
        try:
            lead_id = id_text(record.get("lead_id"), "lead_id")
            attributes = make_attributes(record)
        except RecordError as exc:
            raise InputError(str(exc), file=str(path), row=row, column=exc.column) from None
        assert lead_id is not None
        if lead_id in records:
            raise InputError(f"lead_id '{lead_id}' appears twice", file=str(path), row=row, column="lead_id")
        records[lead_id] = {k: v for k, v in attributes.items() if v is not None}
    summary.leads_read = len(records)
    touched: set[int] = set()
    ids = list(records)
    with store.write() as session:
        existing = _lead_keys(session, ids)
        new_rows = [
            {"lead_id": lead_id, "attributes": {"created_at": iso(now_us), **records[lead_id]},
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


def import_events(store: Store, path: str | Path, now_us: int, summary: ImportSummary,
                  progress: Progress | None = None) -> set[int]:
    """Store the events of a file (unknown leads are created); returns the touched keys."""
    touched: set[int] = set()
    seen: set[str] = set()
    keys: dict[str, int] = {}
    pending: list[Any] = []

    def flush() -> None:
        if not pending:
            return
        with store.write() as session:
            wanted = sorted({e.lead_id for e in pending if e.lead_id not in keys})
            if wanted:
                keys.update(_lead_keys(session, wanted))
                first: dict[str, int] = {}
                for e in pending:
                    if e.lead_id not in keys:
                        first[e.lead_id] = min(first.get(e.lead_id, e.ts), e.ts)
                if first:
                    _create_leads(session, [
                        {"lead_id": lead_id, "attributes": {"created_at": iso(min(ts, now_us))},
                         "created_us": now_us, "updated_us": now_us}
                        for lead_id, ts in first.items()
                    ])
                    summary.leads_created += len(first)
                    keys.update(_lead_keys(session, sorted(first)))
            rows = []
            for e in pending:
                pk = keys[e.lead_id]
                touched.add(pk)
                rows.append({"event_id": e.event_id, "lead_pk": pk, "type": e.type, "ts_us": e.ts,
                             "properties": dict(e.properties), "received_us": now_us})
            stored = _insert_events(session, rows)
            summary.events_stored += stored
            summary.duplicates += len(rows) - stored
        pending.clear()

    checked = False
    for row, record in iter_records(path):
        if not checked:
            missing = [c for c in ("lead_id", "type", "timestamp") if c not in record]
            if missing:
                raise InputError(f"missing column(s) {', '.join(missing)}", file=str(path), row=row,
                                 column=missing[0])
            checked = True
        try:
            event = make_event(record)
        except RecordError as exc:
            raise InputError(str(exc), file=str(path), row=row, column=exc.column) from None
        summary.events_read += 1
        if event.event_id is not None:
            if event.event_id in seen:
                summary.duplicates += 1
                continue
            seen.add(event.event_id)
        pending.append(event)
        if len(pending) >= BATCH:
            flush()
            if progress is not None:
                progress("loading events", summary.events_read, None)
    flush()
    if progress is not None:
        progress("loading events", summary.events_read, summary.events_read)
    return touched


def score_all(store: Store, pks: set[int], now_us: int, summary: ImportSummary, *,
              policy: ScoringPolicy = ScoringPolicy(), progress: Progress | None = None) -> None:
    """Score the touched leads in chunks (cause ``import``)."""
    ordered = sorted(pks)
    cache = ModelCache()
    for start in range(0, len(ordered), SCORE_CHUNK):
        with store.write() as session:
            model = active_model(session, cache)
            states = load_states(session, ordered[start : start + SCORE_CHUNK])
            by_pk = load_events(session, {s.pk: s.lead_id for s in states}, model.event_types)
            changes = score_states(model, states, by_pk, now_us, "import", policy=policy)
            record_scores(session, changes, updated={s.pk: s.updated_us for s in states})
        summary.leads_scored += len(states)
        if progress is not None:
            progress("scoring", summary.leads_scored, len(ordered))


def analyze(store: Store) -> None:
    """Refresh the planner's statistics of the tables an import fills."""
    with store.write() as session:
        connection = session.connection()
        for table in ("leads", "events"):
            connection.exec_driver_sql(f"ANALYZE {table}")


def import_files(store: Store, leads_path: str | Path | None, events_path: str | Path | None,
                 now_us: int, *, policy: ScoringPolicy = ScoringPolicy(),
                 progress: Progress | None = None) -> ImportSummary:
    """``leadscore import``: leads first (so events find them), then events, then scores."""
    summary = ImportSummary()
    touched: set[int] = set()
    analyze(store)  # fresh statistics, or the planner may scan instead of using indexes
    if leads_path is not None:
        touched |= import_leads(store, leads_path, now_us, summary, progress)
        analyze(store)
    if events_path is not None:
        touched |= import_events(store, events_path, now_us, summary, progress)
        analyze(store)
    score_all(store, touched, now_us, summary, policy=policy, progress=progress)
    return summary
