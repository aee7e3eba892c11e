"""Shared dependencies of the routes: ``CtxDep``, ``SessionDep`` (a read transaction) as
``Annotated`` aliases, and the scope guards ``RequireIngest``/``RequireRead``/``RequireAdmin``
(the request's API key, of a scope that allows the route)."""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import Limits
from leadscore.api.jobs import BackgroundJobs
from leadscore.config import Settings
from leadscore.service import audit
from leadscore.service.errors import InvalidRequest, Unauthenticated
from leadscore.service.keys import KeyCache, KeyInfo, RateLimiter, require_scope
from leadscore.service.models import ActiveModel, ModelCache, active_model
from leadscore.service.scoring import ScoringPolicy
from leadscore.store.db import Store, WriterBusy


@dataclass
class AppContext:
    """What every request can use; built once by ``create_app``'s lifespan."""

    settings: Settings
    store: Store
    models: ModelCache
    policy: ScoringPolicy
    jobs: BackgroundJobs | None = None  # the background jobs (run here when this process holds their lock)
    keys: KeyCache = field(default_factory=KeyCache)  # API keys, remembered a few seconds
    limiter: RateLimiter | None = None  # per-key token buckets; from the settings when None
    usage: audit.KeyUsage = field(default_factory=audit.KeyUsage)  # requests per key, written in batches
    closers: Any = None  # anyio.CapacityLimiter of the threads that end read sessions (PostgreSQL)

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


async def read_session(ctx: CtxDep) -> AsyncIterator[Session]:
    """A read transaction for the request.

    Opened on the event loop (no I/O: the connection is taken at the first statement); a
    sync route closes it in its own thread as it returns (:class:`ReleasingRoute`),
    so that ending it here does no I/O; otherwise it ends here without needing a thread of
    the request pool: on the event loop on SQLite (ending a read transaction never waits
    for a lock), on PostgreSQL (a network round trip) in a thread of a separate limiter."""
    manager = ctx.store.read()
    session = manager.__enter__()
    try:
        yield session
    except BaseException as exc:
        await _close(ctx, session, manager, exc)
        raise
    else:
        await _close(ctx, session, manager, None)


async def _close(ctx: AppContext, session: Session, manager: Any, exc: BaseException | None) -> None:
    args = (type(exc), exc, exc.__traceback__) if exc is not None else (None, None, None)
    if ctx.store.serial_writes or not session.in_transaction():  # SQLite, or already closed
        manager.__exit__(*args)
        return
    if ctx.closers is None:
        ctx.closers = anyio.CapacityLimiter(CLOSER_THREADS)
    with anyio.CancelScope(shield=True):  # a client gone away must not leak the connection
        await anyio.to_thread.run_sync(lambda: manager.__exit__(*args), limiter=ctx.closers)


SessionDep = Annotated[Session, Depends(read_session)]


class ReleasingRoute(APIRoute):
    """The route class of every router with :data:`SessionDep`: a sync route ends its read
    sessions in its own thread, as it returns.

    FastAPI ends a dependency's session after the response is serialised, and serialises
    a sync route's response in a thread of the request thread pool: a finished request
    kept its database connection until a thread was free. Under overload every thread
    could be waiting for a connection while every connection was held by a finished
    request waiting for a thread - a deadlock (the service stopped answering at 500
    requests/s on a busy machine; tests/api/test_overload.py). Closing the session in the
    route's thread returns the connection before the thread is released."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _releasing(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _releasing(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def route(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()  # ends the read transaction, returns the connection

    return route

BEARER_DESCRIPTION = "An API key: `leadscore keys create`."


def _token(request: Request) -> str | None:
    """The key sent in the Authorization header: ``Bearer <key>``, or ``Basic`` with the key
    as user name (Segment/RudderStack webhooks); None without a header or a credential."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value:
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


async def current_key(request: Request, ctx: AppContext) -> KeyInfo:
    """The request's key; looked up at most every few seconds per key (see KeyCache:
    a revoked key stops working within ``KEY_CACHE_SECONDS``). A cached key costs no
    thread hop and no database statement; a lookup runs in the thread pool.

    Each request then takes a token of the key's rate limit (429 with Retry-After when
    there is none: settings ``rate_limit_per_second``/``rate_limit_burst``), is counted
    in the key's usage (written every few seconds, not per request) and names the key as
    the actor of what it audits."""
    token = _token(request)
    key = ctx.keys.cached(token)
    if key is None:
        key = await run_in_threadpool(ctx.keys.authenticate, ctx.store.read, token)
    if ctx.limiter is not None:
        ctx.limiter.check(key)
    ctx.usage.count(key.id, ctx.now_us())
    audit.acting_as(audit.key_actor(key.id, key.name))
    return key


# the scope key under which leadscore.api.app.RefuseNulInUrl leaves the parameter of a URL
# that holds a NUL character, for the route's guard to refuse once the caller is known
NUL_IN_URL = "leadscore.nul_in_url"


def url_nul_error(field: str) -> InvalidRequest:
    """The error of a URL whose parameter ``field`` (``path`` for the path) holds a NUL."""
    return InvalidRequest(f"{field}: contains a NUL character (%00)", field)


def nul_in_url(request: Request) -> InvalidRequest | None:
    """The error of the request's URL when it holds a NUL character, else None. The guards
    (:class:`KeyGuard`, the dashboard's ``require``) ask once they know the caller."""
    field = request.scope.get(NUL_IN_URL)
    return None if field is None else url_nul_error(field)


class KeyGuard(HTTPBearer):
    """The dependency of every route behind a key: the request's key (:func:`current_key`)
    must have scope ``needed``.

    One dependency, not a chain (bearer scheme -> key -> scope): FastAPI resolves each
    dependency of each request, and the chain cost more than a cached key's lookup. As
    an ``HTTPBearer`` it still declares the bearer scheme in the OpenAPI document (under
    the same name)."""

    def __init__(self, needed: str) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=BEARER_DESCRIPTION)
        self.needed = needed

    async def __call__(self, request: Request) -> KeyInfo:  # type: ignore[override]
        key = await current_key(request, request.app.state.ctx)
        require_scope(key, self.needed)
        problem = nul_in_url(request)  # after the key: 401 and 403 come first
        if problem is not None:
            raise problem
        return key


RequireIngest = Depends(KeyGuard("ingest"))
RequireRead = Depends(KeyGuard("read"))
RequireAdmin = Depends(KeyGuard("admin"))


CLOSER_THREADS = 8
T = TypeVar("T")
_RETRY_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


async def run_write(ctx: AppContext, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction from async code.

    On SQLite a write is short, CPU-bound work that holds the one write lock: when the lock
    is free it runs right here on the event loop (a thread hop costs about a quarter of a
    single-event request); when another thread writes (the rescoring worker, another
    request) it waits in the thread pool so that the event loop is never blocked on the
    lock. On PostgreSQL, where a write waits on the network, it always runs in the pool.

    The event loop also does not wait for a database connection: with none idle in the
    pool, the write goes to the thread pool (see :class:`ReleasingRoute`)."""
    if ctx.store.serial_writes and _connection_free(ctx.store):
        try:
            return write(ctx, work, wait=False)
        except WriterBusy:
            pass
    return await run_in_threadpool(write, ctx, work)


def _connection_free(store: Store) -> bool:
    """True when the pool can give a connection at once (an idle one, or room for a new one)."""
    pool: Any = store.engine.pool
    try:
        if pool.checkedin() > 0:
            return True
        return bool(pool.checkedout() < pool.size() + getattr(pool, "_max_overflow", 0))
    except (AttributeError, TypeError):  # a pool without these counters (not QueuePool)
        return True


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
