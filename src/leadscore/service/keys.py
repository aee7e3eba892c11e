"""API keys: long random tokens; only their SHA-256 is stored, compared in constant time.

A fast hash is right here: the keys have 256 bits of randomness, so there is nothing
to brute-force, and every request checks one.

The service remembers a key it looked up for :data:`KEY_CACHE_SECONDS` (5 s)
(:class:`KeyCache`): a key revoked with ``leadscore keys revoke`` (another process) stops
working at most that long after the revocation; an unknown key is never remembered, so a
new key works at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.service.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from leadscore.store.tables import SCOPES, ApiKeyRow, api_keys

KEY_PREFIX = "lsk_"
# scope -> what it may do; admin may do everything
ALLOWED = {"ingest": {"ingest"}, "read": {"read"}, "admin": {"ingest", "read", "admin"}}


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str, scope: str, now_us: int) -> tuple[ApiKeyRow, str]:
    """Store a new key; returns the row and the token (shown once, never stored)."""
    if scope not in SCOPES:
        raise InvalidRequest(f"unknown scope '{scope}'; use one of {', '.join(SCOPES)}", "scope")
    if not name.strip():
        raise InvalidRequest("a key needs a name (who or what uses it)", "name")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        name=name.strip(), scope=scope, key_hash=hash_key(token), prefix=token[:12],
        created_us=now_us, revoked_us=None,
    )
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str | None) -> ApiKeyRow:
    """The key row of a token; Unauthenticated when missing, unknown or revoked."""
    if not token:
        raise Unauthenticated(
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(create a key with `leadscore keys create`)", "Authorization"
        )
    digest = hash_key(token)
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthenticated("unknown API key", "Authorization")
    if row.revoked_us is not None:
        raise Unauthenticated(f"API key '{row.name}' was revoked", "Authorization")
    return row


KEY_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class KeyInfo:
    """What a request needs of its key (detached from any session)."""

    id: int
    name: str
    scope: str


class KeyCache:
    """Keys looked up by hash, remembered for ``ttl`` seconds (revocation is seen within
    that time: the entry expires and the next request reads the key row again)."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._keys: dict[str, tuple[float, KeyInfo]] = {}
        self._lock = threading.Lock()

    def authenticate(self, open_session: Callable[[], object], token: str | None) -> KeyInfo:
        """The key of ``token``: from the cache when fresh, else read in ``open_session()``
        (a context manager giving a Session). Raises Unauthenticated like :func:`authenticate`."""
        if not token:
            return self._lookup(open_session, token)
        digest = hash_key(token)
        hit = self._keys.get(digest)
        now = self.clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self._lookup(open_session, token)
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (now + self.ttl, info)
        return info

    def cached(self, token: str | None) -> KeyInfo | None:
        """The key of ``token`` when remembered and fresh (no I/O), else None."""
        if not token:
            return None
        hit = self._keys.get(hash_key(token))
        return hit[1] if hit is not None and hit[0] > self.clock() else None

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()

    @staticmethod
    def _lookup(open_session: Callable[[], object], token: str | None) -> KeyInfo:
        with open_session() as session:  # type: ignore[attr-defined]
            row = authenticate(session, token)
            return KeyInfo(row.id, row.name, row.scope)


def require_scope(key: ApiKeyRow | KeyInfo, needed: str) -> None:
    """Forbidden unless the key's scope allows ``needed`` (ingest, read or admin)."""
    if needed not in ALLOWED.get(key.scope, set()):
        raise Forbidden(
            f"API key '{key.name}' has scope '{key.scope}'; this needs scope '{needed}'"
            + (" or 'admin'" if needed != "admin" else ""),
            "Authorization",
        )


def list_keys(session: Session) -> list[ApiKeyRow]:
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)))


def revoke_key(session: Session, ident: str, now_us: int) -> ApiKeyRow:
    """Revoke a key by id, name or the prefix shown by ``keys list``."""
    rows = [r for r in list_keys(session) if ident in (str(r.id), r.name, r.prefix)]
    if not rows:
        raise NotFound(f"no API key with id, name or prefix '{ident}'", "key")
    if len(rows) > 1:
        raise InvalidRequest(f"'{ident}' names {len(rows)} keys; give the id instead", "key")
    row = rows[0]
    session.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_us=now_us))
    row.revoked_us = now_us
    return row


def key_public(row: ApiKeyRow) -> dict[str, object]:
    return {
        "id": row.id, "name": row.name, "scope": row.scope, "prefix": row.prefix,
        "created_at": iso(row.created_us),
        "revoked_at": iso(row.revoked_us) if row.revoked_us is not None else None,
    }
