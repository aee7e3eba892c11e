"""Shared dependencies of the routes, as ``Annotated`` aliases: ``CtxDep``, ``SessionDep``
(a read transaction), ``CurrentKey`` (the API key of the request) and the scope guards."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import Limits
from leadscore.config import Settings
from leadscore.service import audit
from leadscore.service.errors import Unauthenticated
from leadscore.service.keys import KeyCache, KeyInfo, RateLimiter, require_scope
from leadscore.service.models import ActiveModel, ModelCache, active_model
from leadscore.service.scoring import ScoringPolicy
from leadscore.service.worker import Worker
from leadscore.store.db import Store, WriterBusy


@dataclass
class AppContext:
    """What every request can use; built once by ``create_app``'s lifespan."""

    settings: Settings
    store: Store
    models: ModelCache
    policy: ScoringPolicy
    worker: Worker | None = None
    keys: KeyCache = field(default_factory=KeyCache)  # API keys, remembered a few seconds
    limiter: RateLimiter | None = None  # per-key token buckets; from the settings when None
    usage: audit.KeyUsage = field(default_factory=audit.KeyUsage)  # requests per key, written in batches

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(self.settings.rate_limit_per_second, self.settings.rate_limit_burst)

    @staticmethod
    def now_us() -> int:
        return time.time_ns() // 1000

    def model(self, session: Session) -> ActiveModel:
        return active_model(session, self.models)

    @cached_property
    def limits(self) -> Limits:
        """Input limits on attributes and properties, from the settings."""
        return Limits.from_settings(self.settings)

    @property
    def tolerance_us(self) -> int:
        return self.settings.future_tolerance_seconds * 1_000_000


async def get_ctx(request: Request) -> AppContext:  # async: no thread hop
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def read_session(ctx: CtxDep) -> Iterator[Session]:
    with ctx.store.read() as session:
        yield session


SessionDep = Annotated[Session, Depends(read_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `leadscore keys create`.")


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None:
        return credentials.credentials.strip()
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:  # Segment/RudderStack webhooks: the key as user name
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials", "Authorization") from None
        return user or None
    if header and scheme.lower() != "bearer":
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <key>'", "Authorization"
        )
    return None


async def current_key(
    request: Request, ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> KeyInfo:
    """The request's key; looked up at most every few seconds per key (see KeyCache:
    a revoked key stops working within ``KEY_CACHE_SECONDS``). A cached key costs no
    thread hop and no database statement; a lookup runs in the thread pool.

    Each request then takes a token of the key's rate limit (429 with Retry-After when
    there is none: settings ``rate_limit_per_second``/``rate_limit_burst``), is counted
    in the key's usage (written every few seconds, not per request) and names the key as
    the actor of what it audits."""
    token = _token(request, credentials)
    key = ctx.keys.cached(token)
    if key is None:
        key = await run_in_threadpool(ctx.keys.authenticate, ctx.store.read, token)
    if ctx.limiter is not None:
        ctx.limiter.check(key)
    ctx.usage.count(key.id, ctx.now_us())
    audit.acting_as(audit.key_actor(key.id, key.name))
    return key


CurrentKey = Annotated[KeyInfo, Depends(current_key)]


def _scope(needed: str) -> Any:
    async def guard(key: CurrentKey) -> KeyInfo:
        require_scope(key, needed)
        return key

    guard.__name__ = f"require_{needed}"
    return Depends(guard)


RequireIngest = _scope("ingest")
RequireRead = _scope("read")
RequireAdmin = _scope("admin")


T = TypeVar("T")
_RETRY_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


async def run_write(ctx: AppContext, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction from async code.

    On SQLite a write is short, CPU-bound work that holds the one write lock: when the lock
    is free it runs right here on the event loop (a thread hop costs about a quarter of a
    single-event request); when another thread writes (the rescoring worker, another
    request) it waits in the thread pool so that the event loop is never blocked on the
    lock. On PostgreSQL, where a write waits on the network, it always runs in the pool."""
    if ctx.store.serial_writes:
        try:
            return write(ctx, work, wait=False)
        except WriterBusy:
            pass
    return await run_in_threadpool(write, ctx, work)


def write(ctx: AppContext, work: Callable[[Session], T], *, attempts: int = 3, wait: bool = True) -> T:
    """Run ``work`` in one write transaction; retry when PostgreSQL reports a deadlock."""
    for attempt in range(attempts):
        try:
            with ctx.store.write(wait=wait) as session:
                return work(session)
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in _RETRY_SQLSTATES or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
