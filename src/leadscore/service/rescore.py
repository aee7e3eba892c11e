"""Rescoring without new events: leads whose score can have changed with time, and every
lead after a model change. Work is done in chunks, each its own transaction, so that
ingestion is never blocked for long.

A model change is atomic for readers: the new version's scores are prepared in
``pending_scores`` while the old version stays active, then one transaction activates
the new version and applies them (:func:`apply_pending`). Killed at any moment, the
store shows the old model's scores or the new model's, never a mix; the next run
resumes the job.

On PostgreSQL the switch is set-based (:mod:`leadscore.service.switch`: the pending scores
written with one UPDATE and two INSERT ... SELECT, the listeners called only where they
act; the same rows as the per-lead switch), and a model change over many leads is also
prepared set-based (:func:`prepare_set_based`: two compiled queries, the engine's exact
results); the per-lead passes then handle only what it left. Time-driven rescoring
(:func:`rescore_due`) stays per lead: it touches few leads at a time (docs/scale.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import case, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from leadscore.engine import LeadScore
from leadscore.service.models import (
    ActiveModel,
    ModelCache,
    activate,
    active_model,
    active_version_id,
    lock_model_switch,
)
from leadscore.service.scoring import (
    LeadState,
    ScoreChange,
    ScoringPolicy,
    change_from_json,
    change_of,
    change_to_json,
    chunks,
    load_events,
    load_states,
    record_scores,
    rescore_states,
    score_states,
)
from leadscore.service.switch import apply_set_based, pending_text
from leadscore.store.db import Store
from leadscore.store.raw import raw
from leadscore.store.tables import leads, rescore_jobs
from leadscore.store.tables_rescore import pending_scores

log = logging.getLogger(__name__)
Clock = Callable[[], int]


def _text_form(value: Any) -> str | None:
    from leadscore.engine.values import is_missing, text_form

    return None if is_missing(value) else text_form(value)


def due_leads(session: Session, now_us: int, limit: int) -> list[int]:
    """Keys of leads whose next change is due (an index range scan on next_change_us)."""
    return list(session.scalars(
        select(leads.c.id).where(leads.c.next_change_us <= now_us)
        .order_by(leads.c.next_change_us).limit(limit)
    ))


def stale_leads(session: Session, version_id: int, limit: int) -> list[int]:
    """Keys of leads scored by another model version (or never scored)."""
    return list(session.scalars(
        select(leads.c.id).where(
            or_(leads.c.model_version_id.is_(None), leads.c.model_version_id != version_id)
        ).order_by(leads.c.id).limit(limit)
    ))


def rescore_pks(
    session: Session, model: ActiveModel, pks: Sequence[int], now_us: int, cause: str,
    *, policy: ScoringPolicy = ScoringPolicy(), detail: str | None = None,
) -> list[ScoreChange]:
    """Lock, score and record these leads."""
    states = load_states(session, pks, lock=True)
    return rescore_states(session, model, states, now_us, cause, policy=policy, detail=detail)


@dataclass
class RescoreSummary:
    time: int = 0  # leads rescored because time moved
    model: int = 0  # leads rescored because the model changed
    changed: int = 0  # of those, leads whose score, stage or a grade changed


def rescore_due(
    store: Store, cache: ModelCache, clock: Clock, *, policy: ScoringPolicy = ScoringPolicy(),
    chunk: int = 500, summary: RescoreSummary | None = None,
) -> RescoreSummary:
    """Rescore every lead whose next change is due now, chunk by chunk."""
    summary = summary or RescoreSummary()
    while True:
        now = clock()
        with store.write() as session:
            pks = due_leads(session, now, chunk)
            if not pks:
                return summary
            model = active_model(session, cache)
            changes = rescore_pks(session, model, pks, now, "time", policy=policy)
        summary.time += len(changes)
        summary.changed += sum(1 for c in changes if c.changed)


def running_job(session: Session) -> Any:
    return session.execute(
        select(rescore_jobs).where(rescore_jobs.c.status == "running")
        .order_by(rescore_jobs.c.id.desc()).limit(1)
    ).first()


def _unprepared(session: Session, job_id: int, version_id: int, after_pk: int, limit: int | None) -> list[int]:
    """Keys (above ``after_pk``, in order) of leads not scored by ``version_id`` and without a
    pending score of the job."""
    query = (
        select(leads.c.id)
        .where(leads.c.id > after_pk)
        .where(or_(leads.c.model_version_id.is_(None), leads.c.model_version_id != version_id))
        .where(~exists().where(pending_scores.c.job_id == job_id, pending_scores.c.lead_pk == leads.c.id))
        .order_by(leads.c.id)
    )
    return list(session.scalars(query if limit is None else query.limit(limit)))


def prepare_chunk(
    session: Session, model: ActiveModel, job_id: int, pks: Sequence[int], now_us: int,
    *, policy: ScoringPolicy = ScoringPolicy(),
) -> int:
    """Score these leads with the job's (not yet active) model into ``pending_scores``."""
    states = load_states(session, pks)
    events_by_pk = load_events(session, {s.pk: s.lead_id for s in states}, model.event_types,
                               model.oldest_counted(now_us))
    changes = score_states(model, states, events_by_pk, now_us, "model", policy=policy,
                           detail=f"model version {model.version_id}")
    updated = {s.pk: s.updated_us for s in states}
    db = raw(session)
    # with the row the set-based switch writes on PostgreSQL; SQLite switches lead by lead
    encode = pending_text if db.postgresql else change_to_json
    db.many(
        "INSERT INTO pending_scores (job_id, lead_pk, change) VALUES (?, ?, ?)",
        [(job_id, c.lead_pk, encode(c, updated[c.lead_pk])) for c in changes],
    )
    return len(changes)


# a model change over at least this many leads on PostgreSQL is prepared set-based.
# bench/model_switch.py, 2026-12-03 afternoon (load 5-14), against the per-lead preparation
# as it is now (event properties decoded once per distinct text, scoring.load_events):
# 20,000 leads 23.0-25.5 s set-based vs 8.5-17.7 s per lead; 100,000 leads 92.5 s vs
# 49.4-55.0 s. It lost at every size measured, so it is kept out of them (larger stores are
# not measured). Before that loader it measured 0.73x-0.87x the per-lead time at 100,000.
# The switch is set-based at any size (service/switch.py).
SET_BASED_MIN_LEADS = 1_000_000
_RESCORE_LEADS, _RESCORE_EVENTS = "ls_rescore_leads", "ls_rescore_events"


def prepare_set_based(
    store: Store, cache: ModelCache, job: Any, clock: Clock, *, policy: ScoringPolicy = ScoringPolicy(),
    chunk: int = 500, min_leads: int | None = None,
) -> bool:
    """Prepare the job's pending scores of every unprepared lead with two set-based queries
    inside PostgreSQL (:mod:`leadscore.sql.explain`: the same scores, explanations and next
    changes as the engine, exactly), then write them chunk by chunk with the job's progress.

    False (nothing done) where the per-lead path must do it: SQLite, fewer than
    ``min_leads`` (default :data:`SET_BASED_MIN_LEADS`) leads, a model PostgreSQL cannot compute exactly, or an event property
    the model reads holding an object or array. A pending score is written only while the
    lead is as it was read (its ``scored_us``): a lead scored again meanwhile is left to
    the next pass."""
    with store.write() as session:
        if not raw(session).postgresql:
            return False
        model = cache.get(session, job.model_version_id)
        pks = _unprepared(session, job.id, model.version_id, 0, None)
        if len(pks) < (SET_BASED_MIN_LEADS if min_leads is None else min_leads):
            return False
        now = clock()
        states = load_states(session, pks)
        scored_us = dict(raw(session).all("SELECT id, scored_us FROM leads WHERE id = ANY(?)", [list(pks)]))
        scored = score_set_based(session, model, states, now)
        if scored is None:
            session.rollback()
            return False
    changes = changes_of(model, states, scored, now, "model", policy=policy,
                         detail=f"model version {model.version_id}")
    updated = {s.pk: s.updated_us for s in states}
    for part in chunks(changes, 4 * chunk):
        with store.write() as session:
            current = running_job(session)
            if current is None or current.id != job.id:
                return True  # superseded by a newer model change
            # one set-based statement per chunk; leads scored again since they were read are left out
            raw(session).execute(
                "INSERT INTO pending_scores (job_id, lead_pk, change) SELECT ?, u.pk, u.change "
                "FROM unnest(CAST(? AS bigint[]), CAST(? AS text[]), CAST(? AS bigint[])) AS u(pk, change, seen) "
                "JOIN leads l ON l.id = u.pk AND l.scored_us IS NOT DISTINCT FROM u.seen",
                [job.id, [c.lead_pk for c in part], [pending_text(c, updated[c.lead_pk]) for c in part],
                 [scored_us.get(c.lead_pk) for c in part]],
            ).close()
            session.execute(
                update(rescore_jobs).where(rescore_jobs.c.id == job.id)
                .values(done=case((rescore_jobs.c.done + len(part) > rescore_jobs.c.total, rescore_jobs.c.total),
                                  else_=rescore_jobs.c.done + len(part)))
            )
    return True


def score_set_based(
    session: Session, model: ActiveModel, states: Sequence[LeadState], now_us: int,
) -> dict[str, tuple[LeadScore, int | None, bool]] | None:
    """``score_and_schedule`` of these leads at ``now_us`` (with their stored events), by lead
    id, computed set-based inside PostgreSQL (:mod:`leadscore.sql.explain`): exactly the
    engine's numbers, explanations and next changes. None where it cannot be done exactly
    (the caller scores lead by lead): SQLite, a model PostgreSQL cannot compute exactly, an
    event property the model reads holding an object or array (no SQL text form). Uses
    temporary objects dropped at commit; run it in a write transaction."""
    from leadscore.sql import UnsupportedOnEngine, model_columns
    from leadscore.sql.explain import score_explained
    from leadscore.sql.postgres import nested_values, store_events_view

    db = raw(session)
    if not db.postgresql:
        return None
    columns = model_columns(model.model)
    people = {s.lead_id: s.lead() for s in states}
    rows = [
        (s.pk, s.lead_id, people[s.lead_id].created_us() if columns.needs_created else None,
         *[_text_form(s.attributes.get(a)) for a in columns.attributes])
        for s in states
    ]
    attrs = "".join(f', "attr_{a.replace(chr(34), chr(34) * 2)}" text' for a in columns.attributes)

    def fetch(sql: str) -> tuple[list[str], Any]:  # generated SQL, run as it is
        with db.driver.cursor() as cursor:
            cursor.execute(sql)
            if cursor.description is None:
                return [], []
            return [d.name for d in cursor.description], cursor.fetchall()

    fetch(f"CREATE TEMPORARY TABLE {_RESCORE_LEADS} (pk bigint, lead_id text, created_us bigint{attrs}) "
          "ON COMMIT DROP")
    with db.driver.cursor() as cursor, cursor.copy(f"COPY {_RESCORE_LEADS} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    fetch(f"ANALYZE {_RESCORE_LEADS}")
    fetch(store_events_view(columns, _RESCORE_LEADS, _RESCORE_EVENTS))
    result: dict[str, tuple[LeadScore, int | None, bool]] | None = None
    nested: Any = []
    if columns.properties and columns.event_types:
        types = ", ".join("'" + t.replace("'", "''") + "'" for t in columns.event_types)
        _, nested = fetch(
            f"SELECT 1 FROM events e JOIN {_RESCORE_LEADS} t ON t.pk = e.lead_pk WHERE e.type IN ({types}) "
            f"AND ({nested_values('e.properties', columns.properties)}) LIMIT 1")
    if not nested:
        try:
            result = score_explained(fetch, model.model, "postgres", people, leads=_RESCORE_LEADS,
                                     events=_RESCORE_EVENTS, as_of_us=now_us, dedupe=False)
        except UnsupportedOnEngine as exc:  # raised before any query runs
            log.info("model version %s is scored lead by lead: %s", model.version_id, exc)
    fetch(f"DROP VIEW {_RESCORE_EVENTS}")
    fetch(f"DROP TABLE {_RESCORE_LEADS}")
    return result


def changes_of(
    model: ActiveModel, states: Sequence[LeadState], scored: dict[str, tuple[LeadScore, int | None, bool]],
    now_us: int, cause: str, *, policy: ScoringPolicy, detail: str | None,
) -> list[ScoreChange]:
    """:func:`leadscore.service.scoring.score_states` of results already computed (the
    engine's ``score_and_schedule`` triple by lead id): the same change objects."""
    return [change_of(model, state, scored[state.lead_id], now_us, cause, policy=policy, detail=detail)
            for state in states]


def apply_pending(
    session: Session, cache: ModelCache, job: Any, now_us: int,
    *, policy: ScoringPolicy = ScoringPolicy(), chunk: int = 500, set_based: bool = True,
) -> list[int]:
    """The switch, in the caller's transaction: score what is not prepared yet, activate the
    job's version, and write every pending score (history, transitions and listeners as
    for any change, stamped ``now_us``). Returns the keys of the leads rescored.

    On PostgreSQL the pending scores are written set-based (:func:`leadscore.service.switch.apply_set_based`,
    unless ``set_based=False``): the same rows; lead by lead where it declines."""
    lock_model_switch(session, exclusive=True)
    model = cache.get(session, job.model_version_id)
    missing = _unprepared(session, job.id, model.version_id, 0, None)
    for part in chunks(missing, chunk):
        prepare_chunk(session, model, job.id, part, now_us, policy=policy)
    activate(session, model.version_id, now_us)
    written = apply_set_based(session, model, job.id, now_us, chunk=chunk) if set_based else None
    if written is not None:
        _finish_job(session, job.id, now_us, len(written))
        return written
    done: list[int] = []
    after = -1
    while True:
        rows = session.execute(
            select(pending_scores.c.lead_pk, pending_scores.c.change)
            .where(pending_scores.c.job_id == job.id, pending_scores.c.lead_pk > after)
            .order_by(pending_scores.c.lead_pk).limit(chunk)
        ).all()
        if not rows:
            break
        after = rows[-1][0]
        decoded = [change_from_json(text) for _, text in rows]
        changes = [replace(c, at_us=now_us) for c, _ in decoded]
        record_scores(session, changes, updated={c.lead_pk: u for c, u in decoded})
        done.extend(c.lead_pk for c in changes)
    session.execute(delete(pending_scores).where(pending_scores.c.job_id == job.id))
    _finish_job(session, job.id, now_us, len(done))
    return done


def _finish_job(session: Session, job_id: int, now_us: int, count: int) -> None:
    session.execute(
        update(rescore_jobs).where(rescore_jobs.c.id == job_id)
        .values(status="done", finished_us=now_us, total=count, done=count)
    )


def rescore_stale(
    store: Store, cache: ModelCache, clock: Clock, *, policy: ScoringPolicy = ScoringPolicy(),
    chunk: int = 500, summary: RescoreSummary | None = None,
    should_stop: Callable[[], bool] | None = None, set_based: bool = True,
) -> RescoreSummary:
    """Carry out the running rescore job (a model change): score every lead with the job's
    version into ``pending_scores``, chunk by chunk (the active model keeps scoring what
    arrives meanwhile; a lead scored again loses its pending score), then switch in one
    transaction (:func:`apply_pending`). Interrupted, it resumes where it stopped.

    On PostgreSQL the leads are first scored set-based (:func:`prepare_set_based`, unless
    ``set_based=False``); the per-lead passes then only see what it left."""
    summary = summary or RescoreSummary()
    with store.read() as session:
        job = running_job(session)
        active = active_version_id(session)
    if job is None:
        return summary
    if job.model_version_id == active:  # the first model of a store: no old scores to keep
        return _rescore_active(store, cache, clock, job, policy=policy, chunk=chunk,
                               summary=summary, should_stop=should_stop)
    if set_based:
        prepare_set_based(store, cache, job, clock, policy=policy, chunk=chunk)
    for _ in range(2):  # a second pass catches leads scored again or created meanwhile
        after = 0
        while True:
            if should_stop and should_stop():
                return summary
            with store.write() as session:
                current = running_job(session)
                if current is None or current.id != job.id:
                    return summary  # superseded by a newer model change
                model = cache.get(session, job.model_version_id)
                pks = _unprepared(session, job.id, model.version_id, after, chunk)
                if not pks:
                    break
                prepare_chunk(session, model, job.id, pks, clock(), policy=policy)
                session.execute(
                    update(rescore_jobs).where(rescore_jobs.c.id == job.id)
                    .values(done=case((rescore_jobs.c.done + len(pks) > rescore_jobs.c.total, rescore_jobs.c.total),
                                      else_=rescore_jobs.c.done + len(pks)))
                )
                after = pks[-1]
    with store.write() as session:
        current = running_job(session)
        if current is None or current.id != job.id:
            return summary
        done = apply_pending(session, cache, current, clock(), policy=policy, chunk=chunk, set_based=set_based)
    summary.model += len(done)
    return summary


def _rescore_active(
    store: Store, cache: ModelCache, clock: Clock, job: Any, *, policy: ScoringPolicy,
    chunk: int, summary: RescoreSummary, should_stop: Callable[[], bool] | None,
) -> RescoreSummary:
    """Score the leads not yet scored by the active version (a store's first model)."""
    while not (should_stop and should_stop()):
        now = clock()
        with store.write() as session:
            model = active_model(session, cache)
            pks = stale_leads(session, model.version_id, chunk)
            if not pks:
                session.execute(
                    update(rescore_jobs).where(rescore_jobs.c.id == job.id, rescore_jobs.c.status == "running")
                    .values(status="done", finished_us=now, done=rescore_jobs.c.total)
                )
                return summary
            changes = rescore_pks(
                session, model, pks, now, "model", policy=policy,
                detail=f"model version {model.version_id}",
            )
            session.execute(
                update(rescore_jobs).where(rescore_jobs.c.id == job.id)
                .values(done=rescore_jobs.c.done + len(pks))
            )
        summary.model += len(changes)
        summary.changed += sum(1 for c in changes if c.changed)
    return summary


def rescore_all_pending(
    store: Store, cache: ModelCache, clock: Clock, *, policy: ScoringPolicy = ScoringPolicy(),
    chunk: int = 500,
) -> RescoreSummary:
    """What ``leadscore rescore`` and every scheduler tick do: model changes first, then time."""
    summary = RescoreSummary()
    rescore_stale(store, cache, clock, policy=policy, chunk=chunk, summary=summary)
    rescore_due(store, cache, clock, policy=policy, chunk=chunk, summary=summary)
    return summary


def job_public(row: Any) -> dict[str, Any]:
    from leadscore.engine import iso

    if row is None:
        return {"status": "idle", "model_version": None, "total": 0, "done": 0, "progress": 1.0}
    total, done = int(row.total), min(int(row.done), int(row.total))
    return {
        "job": row.id,
        "status": row.status,
        "model_version": row.model_version_id,
        "total": total,
        "done": done,
        "progress": round(done / total, 4) if total else 1.0,
        "started_at": iso(row.started_us),
        "finished_at": iso(row.finished_us) if row.finished_us is not None else None,
        "error": row.error,
    }


def latest_job(session: Session) -> Any:
    return session.execute(select(rescore_jobs).order_by(rescore_jobs.c.id.desc()).limit(1)).first()


def fail_job(session: Session, job_id: int, message: str, now_us: int) -> None:
    session.execute(
        update(rescore_jobs).where(rescore_jobs.c.id == job_id)
        .values(status="failed", error=message[:2000], finished_us=now_us)
    )
