"""The audit log: model changes, erasures, exports, key creation and revocation, purges
of old events - and the use of each API key (docs/security.md).

* :func:`record` writes one row in the caller's transaction, so an action and its audit row
  are committed together or not at all.
* The actor is the API key of the request (set by the API for each request with
  :func:`acting_as`), ``dashboard: key ...`` for the dashboard, ``cli`` for commands.
* A lead appears only as ``lead:<hash>``: HMAC-SHA256 of its id under a secret kept in the
  store (``settings_kv``), so the log proves an erasure happened without keeping the id, and
  the hash cannot be reversed by hashing a list of likely ids (e-mail addresses) without
  that secret. :func:`lead_subject` gives the hash of an id to look it up.
* Key use is counted in memory (:class:`KeyUsage`) and written every few seconds as one
  row per key (first and last use, request count): never one row per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.service.errors import InvalidRequest
from leadscore.store.queries import insert_ignoring
from leadscore.store.tables import api_keys
from leadscore.store.tables_analytics import settings_kv
from leadscore.store.tables_audit import api_key_usage, audit_log

ACTIONS = (
    "model_activated",  # a model version was stored and activated (or its rescoring started)
    "lead_erased",
    "lead_exported",
    "key_created",
    "key_revoked",
    "events_purged",  # retention
    "predictive_activated",  # a predictive model was stored and activated (every lead's score may change)
    "predictive_deactivated",  # the predictive model was deactivated (scores are rule scores again)
)
HASH_SETTING = "audit_hash_secret"
MAX_LIMIT = 1000

_actor: ContextVar[str] = ContextVar("leadscore_audit_actor", default="system")


def acting_as(actor: str) -> None:
    """Name who acts in this context (a request, a command); :func:`record` uses it."""
    _actor.set(actor[:255])


def current_actor() -> str:
    return _actor.get()


def key_actor(key_id: int, name: str, *, via: str = "key") -> str:
    return f"{via} {key_id} ({name})"


def _secret(session: Session, now_us: int, *, create: bool = True) -> bytes | None:
    query = select(settings_kv.c.value).where(settings_kv.c.name == HASH_SETTING)
    found = session.execute(query).scalar_one_or_none()
    if found is None and not create:
        return None
    if found is None:
        session.execute(
            insert_ignoring(session, settings_kv, ["name"]),
            {"name": HASH_SETTING, "value": secrets.token_urlsafe(32), "created_us": now_us},
        )
        found = session.execute(query).scalar_one()
    return str(found).encode()


def lead_subject(session: Session, lead_id: str, now_us: int = 0, *, create: bool = False) -> str:
    """``lead:<hex>``: how the audit log names a lead (never by its id). The secret is made
    on first use when ``create`` (a write session); else a store without it names no lead."""
    secret = _secret(session, now_us, create=create)
    if secret is None:
        return "lead:-"
    mac = hmac.new(secret, lead_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"lead:{mac[:32]}"


def record(
    session: Session, action: str, now_us: int, *, subject: str | None = None,
    detail: dict[str, Any] | None = None, actor: str | None = None,
) -> None:
    """Add an audit row in ``session``'s transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action '{action}'")
    session.execute(audit_log.insert().values(
        at_us=now_us, action=action, actor=(actor or current_actor())[:255],
        subject=subject, detail=detail,
    ))


def _public(row: Any) -> dict[str, Any]:
    return {"id": row.id, "at": iso(row.at_us), "action": row.action, "actor": row.actor,
            "subject": row.subject, "detail": row.detail}


def entries(
    session: Session, *, action: str | None = None, subject: str | None = None,
    before: int | None = None, limit: int = 100,
) -> tuple[list[dict[str, Any]], int | None]:
    """Audit rows, newest first; returns the page and the ``before`` of the next page."""
    if action is not None and action not in ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(ACTIONS)}, got '{action}'", "action")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", "limit")
    query = select(audit_log)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if subject is not None:
        query = query.where(audit_log.c.subject == subject)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    rows = list(session.execute(query.order_by(audit_log.c.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return [_public(r) for r in page], (page[-1].id if len(rows) > limit else None)


def key_usage(session: Session) -> list[dict[str, Any]]:
    """Every key with its recorded use (``requests`` 0 and no dates when never used)."""
    rows = session.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.scope, api_keys.c.revoked_us,
               api_key_usage.c.first_used_us, api_key_usage.c.last_used_us, api_key_usage.c.requests)
        .select_from(api_keys.outerjoin(api_key_usage, api_key_usage.c.key_id == api_keys.c.id))
        .order_by(api_keys.c.id)
    )
    return [
        {"key_id": r.id, "name": r.name, "scope": r.scope, "revoked": r.revoked_us is not None,
         "requests": int(r.requests or 0),
         "first_used_at": iso(r.first_used_us) if r.first_used_us is not None else None,
         "last_used_at": iso(r.last_used_us) if r.last_used_us is not None else None}
        for r in rows
    ]


class KeyUsage:
    """Request counts per API key, kept in memory and written by :meth:`flush`."""

    def __init__(self) -> None:
        self._pending: dict[int, list[int]] = {}  # key id -> [requests, first_us, last_us]
        self._lock = threading.Lock()

    def count(self, key_id: int, now_us: int) -> None:
        with self._lock:
            seen = self._pending.get(key_id)
            if seen is None:
                self._pending[key_id] = [1, now_us, now_us]
            else:
                seen[0] += 1
                seen[2] = now_us

    def pending(self) -> int:
        with self._lock:
            return sum(n for n, _, _ in self._pending.values())

    def flush(self, open_write: Callable[[], Any]) -> int:
        """Write the counts (one statement pair per key); returns how many requests were written.
        On failure the counts are kept for the next flush."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with open_write() as session:
                for key_id, (n, first, last) in sorted(batch.items()):
                    session.execute(
                        insert_ignoring(session, api_key_usage, ["key_id"]),
                        {"key_id": key_id, "first_used_us": first, "last_used_us": last, "requests": 0},
                    )
                    session.execute(
                        update(api_key_usage).where(api_key_usage.c.key_id == key_id).values(
                            requests=api_key_usage.c.requests + n,
                            last_used_us=func.max(api_key_usage.c.last_used_us, last)
                            if session.get_bind().dialect.name == "sqlite"
                            else func.greatest(api_key_usage.c.last_used_us, last),
                        )
                    )
        except Exception:
            with self._lock:  # keep them for the next attempt
                for key_id, (n, first, last) in batch.items():
                    seen = self._pending.setdefault(key_id, [0, first, last])
                    seen[0] += n
                    seen[1], seen[2] = min(seen[1], first), max(seen[2], last)
            raise
        return sum(n for n, _, _ in batch.values())
