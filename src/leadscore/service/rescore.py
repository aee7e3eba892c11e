"""Rescoring without new events: leads whose score can have changed with time, and every
lead after a model change. Work is done in chunks, each its own transaction, so that
ingestion is never blocked for long."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from leadscore.service.models import ActiveModel, ModelCache, active_model
from leadscore.service.scoring import ScoreChange, ScoringPolicy, load_states, rescore_states
from leadscore.store.db import Store
from leadscore.store.tables import leads, rescore_jobs

log = logging.getLogger(__name__)
Clock = Callable[[], int]


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


def rescore_stale(
    store: Store, cache: ModelCache, clock: Clock, *, policy: ScoringPolicy = ScoringPolicy(),
    chunk: int = 500, summary: RescoreSummary | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RescoreSummary:
    """Rescore the leads not scored by the active model; advance the running job's progress."""
    summary = summary or RescoreSummary()
    while not (should_stop and should_stop()):
        now = clock()
        with store.write() as session:
            model = active_model(session, cache)
            job = running_job(session)
            pks = stale_leads(session, model.version_id, chunk)
            if not pks:
                if job is not None:
                    session.execute(
                        update(rescore_jobs).where(rescore_jobs.c.id == job.id)
                        .values(status="done", finished_us=now, done=rescore_jobs.c.total)
                    )
                return summary
            changes = rescore_pks(
                session, model, pks, now, "model", policy=policy,
                detail=f"model version {model.version_id}",
            )
            if job is not None:
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
