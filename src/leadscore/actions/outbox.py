"""The transactional outbox: rows written in the transaction of the score change that
causes them, claimed by dispatchers (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a lease
column on both), delivered at least once, retried with backoff, dead-lettered."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.service.errors import InvalidRequest, NotFound
from leadscore.store.queries import insert_ignoring, supports_row_locks
from leadscore.store.tables_automation import deliveries, outbox

MICROS = 1_000_000
_wake_hooks: list[Callable[[], None]] = []


def on_enqueued(hook: Callable[[], None]) -> None:
    """Call ``hook()`` after a transaction that wrote outbox rows commits (wakes dispatchers)."""
    if hook not in _wake_hooks:
        _wake_hooks.append(hook)


def remove_enqueued_hook(hook: Callable[[], None]) -> None:
    if hook in _wake_hooks:
        _wake_hooks.remove(hook)


def _wake(_session: Any) -> None:
    for hook in list(_wake_hooks):
        hook()


def idempotency_key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def enqueue(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows (``idempotency_key`` given twice is stored once)."""
    if not rows:
        return
    session.execute(insert_ignoring(session, outbox, ["idempotency_key"]), rows)
    if not sa_event.contains(session, "after_commit", _wake):
        sa_event.listen(session, "after_commit", _wake, once=True)


def new_row(
    *, key: str, kind: str, trigger_id: str, lead_pk: int | None, lead_id: str | None,
    target: str, payload: dict[str, Any], max_attempts: int, now_us: int,
) -> dict[str, Any]:
    return {
        "idempotency_key": key, "kind": kind, "trigger_id": trigger_id, "lead_pk": lead_pk,
        "lead_id": lead_id, "target": target, "payload": payload, "status": "pending",
        "attempts": 0, "max_attempts": max_attempts, "created_us": now_us,
        "next_attempt_us": now_us, "lease_until_us": 0, "finished_us": None, "last_error": None,
    }


def any_due(session: Session, now_us: int) -> bool:
    query = select(outbox.c.id).where(
        outbox.c.status == "pending", outbox.c.next_attempt_us <= now_us,
        outbox.c.lease_until_us < now_us,
    ).limit(1)
    return session.execute(query).first() is not None


def claim(session: Session, now_us: int, limit: int, lease_us: int) -> list[Any]:
    """Take up to ``limit`` due rows for ``lease_us``: no other dispatcher gets them meanwhile."""
    query = (
        select(outbox.c.id)
        .where(outbox.c.status == "pending", outbox.c.next_attempt_us <= now_us,
               outbox.c.lease_until_us < now_us)
        .order_by(outbox.c.next_attempt_us, outbox.c.id)
        .limit(limit)
    )
    if supports_row_locks(session):
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if not ids:
        return []
    session.execute(update(outbox).where(outbox.c.id.in_(ids)).values(lease_until_us=now_us + lease_us))
    return list(session.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)))


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt."""

    ok: bool
    status_code: int | None
    latency_ms: float
    error: str | None = None
    permanent: bool = False  # no point retrying (e.g. the lead withdrew consent)
    skipped: bool = False  # not sent on purpose


def backoff_us(attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> int:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    delay = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    jitter = (rng or random).random()
    return int(delay * (0.5 + jitter / 2) * MICROS)


def record_attempt(
    session: Session, row: Any, attempt: Attempt, now_us: int, *, base_s: float, cap_s: float,
) -> str:
    """Store the attempt and the row's new state; returns the new status."""
    attempts = row.attempts + 1
    session.execute(deliveries.insert().values(
        outbox_id=row.id, lead_pk=row.lead_pk, attempt=attempts, at_us=now_us, ok=attempt.ok,
        status_code=attempt.status_code, latency_ms=round(attempt.latency_ms, 3),
        error=attempt.error[:2000] if attempt.error else None,
    ))
    values: dict[str, Any] = {"attempts": attempts, "lease_until_us": 0, "last_error": attempt.error}
    if attempt.skipped:
        values.update(status="skipped", finished_us=now_us)
    elif attempt.ok:
        values.update(status="delivered", finished_us=now_us, last_error=None)
    elif attempt.permanent or attempts >= row.max_attempts:
        values.update(status="dead", finished_us=now_us)
    else:
        values.update(next_attempt_us=now_us + backoff_us(attempts, base_s, cap_s))
    session.execute(
        update(outbox).where(outbox.c.id == row.id, outbox.c.status == "pending").values(**values)
    )
    return str(values.get("status", "pending"))


STATUSES = ("pending", "delivered", "dead", "skipped")


def row_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "trigger": row.trigger_id, "lead_id": row.lead_id,
        "status": row.status, "attempts": row.attempts, "max_attempts": row.max_attempts,
        "target": row.target, "idempotency_key": row.idempotency_key,
        "created_at": iso(row.created_us),
        "next_attempt_at": iso(row.next_attempt_us) if row.status == "pending" else None,
        "finished_at": iso(row.finished_us) if row.finished_us is not None else None,
        "last_error": row.last_error,
    }


def list_rows(session: Session, *, status: str | None = None, kind: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got '{status}'", "status")
    query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if kind is not None:
        query = query.where(outbox.c.kind == kind)
    return [row_public(r) for r in session.execute(query)]


def list_deliveries(session: Session, *, outbox_id: int | None = None, failed: bool | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    query = (
        select(deliveries, outbox.c.kind, outbox.c.trigger_id, outbox.c.lead_id, outbox.c.target)
        .join(outbox, outbox.c.id == deliveries.c.outbox_id, isouter=True)
        .order_by(deliveries.c.id.desc()).limit(limit)
    )
    if outbox_id is not None:
        query = query.where(deliveries.c.outbox_id == outbox_id)
    if failed is not None:
        query = query.where(deliveries.c.ok.is_(not failed))
    return [
        {"id": r.id, "outbox_id": r.outbox_id, "kind": r.kind, "trigger": r.trigger_id,
         "lead_id": r.lead_id, "target": r.target, "attempt": r.attempt, "at": iso(r.at_us),
         "ok": bool(r.ok), "status_code": r.status_code, "latency_ms": r.latency_ms,
         "error": r.error}
        for r in session.execute(query)
    ]


def requeue(session: Session, ids: list[int] | None, now_us: int, *, statuses: tuple[str, ...]) -> int:
    """Make rows pending again (attempts reset, same idempotency key). ``ids=None``: every
    row in ``statuses``. Returns how many rows changed."""
    query = update(outbox).where(outbox.c.status.in_(statuses))
    if ids is not None:
        found = set(session.scalars(select(outbox.c.id).where(outbox.c.id.in_(ids))))
        missing = sorted(set(ids) - found)
        if missing:
            raise NotFound(f"no outbox row with id {missing[0]}", "id")
        query = query.where(outbox.c.id.in_(ids))
    result = session.execute(query.values(
        status="pending", attempts=0, next_attempt_us=now_us, lease_until_us=0, finished_us=None,
    ))
    if result.rowcount and not sa_event.contains(  # type: ignore[attr-defined]
        session, "after_commit", _wake
    ):
            sa_event.listen(session, "after_commit", _wake, once=True)
    return int(result.rowcount)  # type: ignore[attr-defined]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {str(s): int(n) for s, n in rows}


def erase_lead_rows(session: Session, lead_pk: int) -> None:
    session.execute(delete(deliveries).where(deliveries.c.lead_pk == lead_pk))
    session.execute(delete(outbox).where(outbox.c.lead_pk == lead_pk))
