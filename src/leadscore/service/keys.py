"""API keys: long random tokens; only their SHA-256 is stored, compared in constant time.

A fast hash is right here: the keys have 256 bits of randomness, so there is nothing
to brute-force, and every request checks one.

The service remembers a key it looked up for :data:`KEY_CACHE_SECONDS` (5 s)
(:class:`KeyCache`): a key revoked through the API (``DELETE /v1/keys/{id}``) stops working
at once in the process that revoked it (its cache entry is dropped); one revoked with
``leadscore keys revoke`` (another process) or through another API process stops working
at most that long after the revocation. An unknown key is never remembered, so a new key
works at once.

:class:`RateLimiter` is the per-key token bucket behind 429 Too Many Requests; with
``serve --workers N`` the worker processes share their buckets (:class:`SharedRateLimiter`).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import math
import mmap
import os
import secrets
import struct
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadscore.engine import iso
from leadscore.service import audit
from leadscore.service.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthenticated,
)
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
    name = unicodedata.normalize("NFC", name)
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        name=name.strip(), scope=scope, key_hash=hash_key(token), prefix=token[:12],
        created_us=now_us, revoked_us=None,
    )
    session.add(row)
    session.flush()
    audit.record(session, "key_created", now_us, subject=f"key {row.id}",
                 detail={"name": row.name, "scope": scope, "prefix": row.prefix})
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

    def forget_key(self, key_id: int) -> None:
        """Drop every remembered token of key ``key_id`` (after revoking it)."""
        with self._lock:
            for digest in [d for d, (_, info) in self._keys.items() if info.id == key_id]:
                del self._keys[digest]

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
    """Revoke a key by id, name or the prefix shown by ``keys list``. Revoking a revoked
    key changes nothing (its revocation time stays)."""
    rows = [r for r in list_keys(session) if ident in (str(r.id), r.name, r.prefix)]
    if not rows:
        raise NotFound(f"no API key with id, name or prefix '{ident}'", "key")
    if len(rows) > 1:
        raise InvalidRequest(f"'{ident}' names {len(rows)} keys; give the id instead", "key")
    return _revoke(session, rows[0], now_us)


def revoke_key_id(session: Session, key_id: int, now_us: int) -> ApiKeyRow:
    """Revoke the key with id ``key_id`` (NotFound when there is none)."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}", "key_id")
    return _revoke(session, row, now_us)


def _revoke(session: Session, row: ApiKeyRow, now_us: int) -> ApiKeyRow:
    if row.revoked_us is not None:
        return row
    session.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_us=now_us))
    row.revoked_us = now_us
    audit.record(session, "key_revoked", now_us, subject=f"key {row.id}",
                 detail={"name": row.name, "scope": row.scope})
    return row


def key_public(row: ApiKeyRow) -> dict[str, object]:
    return {
        "id": row.id, "name": row.name, "scope": row.scope, "prefix": row.prefix,
        "created_at": iso(row.created_us),
        "revoked_at": iso(row.revoked_us) if row.revoked_us is not None else None,
    }


class RateLimiter:
    """A token bucket per API key, in memory (per process): ``burst`` requests at once,
    then ``rate`` per second. ``rate`` 0 turns it off. Thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.capacity = float(burst) if burst >= 1 else max(1.0, self.rate)
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def wait(self, key_id: int) -> float:
        """Take a token for ``key_id``: 0.0 when the request may go, else the seconds
        until a token will be there (nothing is taken then)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            return self._wait_local(key_id, now)

    def _wait_local(self, key_id: int, now: float) -> float:
        """:meth:`wait` on this process's bucket of ``key_id`` (the caller holds ``_lock``)."""
        tokens, wait = self._take(*self._buckets.get(key_id, (self.capacity, now)), now)
        self._buckets[key_id] = (tokens, now)
        return wait

    def _take(self, tokens: float, at: float, now: float) -> tuple[float, float]:
        """A bucket that held ``tokens`` at ``at``, refilled until ``now``, gives a token if it
        has one: its tokens after that, and 0.0 when it gave one, else the seconds to wait."""
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            return tokens - 1.0, 0.0
        return tokens, (1.0 - tokens) / self.rate

    def check(self, key: KeyInfo) -> None:
        """RateLimited (429, Retry-After) when ``key`` has no token left."""
        wait = self.wait(key.id)
        if wait > 0:
            raise RateLimited(
                f"API key '{key.name}' is over its rate limit of {self.rate:g} requests/s "
                f"(burst {self.capacity:g}); retry in {math.ceil(wait)} s",
                math.ceil(wait), "Authorization",
            )


class SharedRateLimiter(RateLimiter):
    """The token buckets of :class:`RateLimiter` in a file mapped by every worker process
    of ``serve --workers N``, so that a key's limit holds for the service as a whole, not
    N times over. The file (created by ``serve``, :func:`create_shared_buckets`) holds
    :data:`SHARED_SLOTS` buckets of (key id, tokens, time); a read-modify-write of one
    takes ``flock`` on the file. ``time.monotonic`` is one clock for every process of the
    machine. Should the table ever be full (more keys in use than slots), the keys that
    find no slot get a bucket per process."""

    def __init__(self, rate: float, burst: int, path: Path) -> None:
        super().__init__(rate, burst)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._map = mmap.mmap(self._fd, SHARED_SLOTS * _SLOT.size)

    def wait(self, key_id: int) -> float:
        if self.rate <= 0:
            return 0.0
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = self.clock()
                slot = self._slot(key_id)
                if slot is None:  # pragma: no cover - more keys in use than slots
                    return self._wait_local(key_id, now)
                _, tokens, at = _SLOT.unpack_from(self._map, slot)
                if at == 0.0:  # a new bucket starts full
                    tokens, at = self.capacity, now
                tokens, wait = self._take(tokens, at, now)
                _SLOT.pack_into(self._map, slot, key_id, tokens, now)
                return wait
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot(self, key_id: int) -> int | None:
        """The offset of ``key_id``'s bucket (claiming a free one); linear probing."""
        start = key_id % SHARED_SLOTS
        for i in range(SHARED_SLOTS):
            offset = ((start + i) % SHARED_SLOTS) * _SLOT.size
            found = _KEY.unpack_from(self._map, offset)[0]
            if found == key_id:
                return offset
            if found == 0:
                _SLOT.pack_into(self._map, offset, key_id, 0.0, 0.0)
                return offset
        return None

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


SHARED_SLOTS = 4096
_SLOT = struct.Struct("=qdd")  # key id (0: free), tokens, monotonic time of the last take
_KEY = struct.Struct("=q")


def create_shared_buckets(path: Path) -> Path:
    """The (empty) file of :class:`SharedRateLimiter`, readable by its owner only."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, SHARED_SLOTS * _SLOT.size)
    finally:
        os.close(fd)
    return path
