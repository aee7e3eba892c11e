"""The FastAPI application: ``create_app(settings)``.

Errors become JSON here and only here (:data:`STATUS_OF`): ``{"error": code,
"message": text, "field": path}``. ``/`` is left free (a dashboard will live there).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadscore import __version__, web
from leadscore.api.bodies import MalformedBody
from leadscore.api.deps import NUL_IN_URL, AppContext, url_nul_error
from leadscore.api.jobs import BackgroundJobs
from leadscore.api.routes import (
    analytics,
    audit_log,
    events,
    health,
    keys,
    leads,
    model,
    outcomes,
    predictive,  # predict: /v1/predictive
    segment,
    segments,
    webhooks,
)
from leadscore.config import Settings, get_settings
from leadscore.errors import InputError, LeadscoreError, ModelError, UsageError
from leadscore.service import audit
from leadscore.service.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unauthenticated,
)
from leadscore.service.keys import RateLimiter, SharedRateLimiter
from leadscore.service.models import ModelCache, ensure_model
from leadscore.service.retention import Housekeeper
from leadscore.service.scoring import ScoringPolicy
from leadscore.store.db import Store
from leadscore.store.event_cache import EventCache
from leadscore.web.security import OPEN_PATHS as WEB_OPEN_PATHS

log = logging.getLogger("leadscore.api")

# error type -> (HTTP status, code); the first matching class (most specific first) wins
STATUS_OF: list[tuple[type[Exception], int, str]] = [
    (MalformedBody, 400, "malformed_body"),
    (InvalidRequest, 422, "invalid_request"),
    (NotFound, 404, "not_found"),
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (RateLimited, 429, "rate_limited"),
    (ModelError, 422, "invalid_model"),
    (InputError, 422, "invalid_input"),
    (UsageError, 400, "bad_request"),
    (LeadscoreError, 400, "bad_request"),
]
RETRY_AFTER_SECONDS = 1  # what a 503 (database unavailable) asks clients to wait
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}


def error_response(exc: LeadscoreError) -> JSONResponse:
    status, code = next((s, c) for kind, s, c in STATUS_OF if isinstance(exc, kind))
    body: dict[str, Any] = {"error": code, "message": exc.one_line(), "field": None}
    if isinstance(exc, ServiceError):
        body["message"], body["field"] = exc.message, exc.field
    elif isinstance(exc, ModelError):
        body["message"] = str(exc)
        body["field"] = (exc.issues[0].path or None) if exc.issues else None  # "": the document
        body["issues"] = [{"path": i.path, "message": i.message, "line": i.line} for i in exc.issues]
    elif isinstance(exc, InputError):
        body["message"], body["field"] = exc.message, exc.column
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LeadscoreError)
    async def _leadscore(_: Request, exc: LeadscoreError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_of(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return error_response(InvalidRequest(message, field or None))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse({"error": code, "message": str(exc.detail), "field": None},
                            status_code=exc.status_code, headers=exc.headers)

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # the error's kind and the driver's first line only: never the statement or its values
        orig = getattr(exc, "orig", None)
        first = str(orig if orig is not None else exc).strip().splitlines()[:1]
        kind = type(orig or exc).__name__
        if not database_unavailable(exc):
            # an error of the statement (SQLite names many kinds OperationalError: malformed
            # JSON, no such table, ...): retrying would fail the same way
            log.error("database error (%s: %s)", kind, first[0][:200] if first else "")
            return JSONResponse(
                {"error": "internal_error", "message": "the database refused the request "
                 f"({kind}); retrying will not help", "field": None}, status_code=500,
            )
        log.error("database unavailable (%s: %s)", kind, first[0][:200] if first else "")
        return JSONResponse(
            {"error": "unavailable", "message": "the database is unavailable or busy; retry",
             "field": None},
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # unreachable, restarting, locked or busy (OperationalError); a connection that broke
    # under the driver (InterfaceError). Nothing was written: the transaction rolled back.
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(InterfaceError, _database)
    # the hot paths run statements on the driver's connection (leadscore.store.raw): its own
    # errors arrive unwrapped
    for driver_error in _driver_unavailable_errors():
        app.add_exception_handler(driver_error, _database)


# SQLite's primary result codes of a database that is busy, locked or cannot be reached
# now: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN,
# SQLITE_PROTOCOL
SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 10, 13, 14, 15})
_SQLITE_UNAVAILABLE_TEXTS = ("locked", "busy", "unable to open", "disk i/o", "disk is full")


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error says the database is unavailable, busy or locked (503 and
    Retry-After: retrying is the answer), rather than that the statement failed. SQLite
    reports both kinds as OperationalError: its result code (or, for the errors leadscore
    raises itself, store.locks, the text) tells them apart. Every error psycopg calls
    operational (connection lost, server shutting down, lock and statement timeouts,
    deadlocks) is one to retry."""
    import sqlite3

    orig = getattr(exc, "orig", None)
    error = orig if isinstance(orig, BaseException) else exc
    if not isinstance(error, sqlite3.Error):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in SQLITE_UNAVAILABLE
    text = str(error).lower()
    return any(part in text for part in _SQLITE_UNAVAILABLE_TEXTS)


def _driver_unavailable_errors() -> list[type[Exception]]:
    import sqlite3

    found: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return found
    return [*found, psycopg.OperationalError, psycopg.InterfaceError]


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """The application. ``settings`` default to the environment; ``store`` to one opened
    from ``settings.database_url`` (schema upgraded at start-up)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        db = store or Store.open(settings.database_url)
        if own_store:
            db.event_cache = EventCache(settings.event_cache_events) if settings.event_cache_events else None
        audit.acting_as("start-up")
        with db.write() as session:
            ensure_model(session, settings.model_file, AppContext.now_us())
        if settings.webhook_allow:
            from leadscore.actions.webhooks import set_allow_list

            set_allow_list(settings.webhook_allow)
        policy = ScoringPolicy.from_settings(settings)
        cache = ModelCache()
        from leadscore.actions import install

        install()  # the model's triggers, in every process (they write outbox rows)
        # the background jobs run in the one process of the store that holds its job lock
        jobs = BackgroundJobs(db, settings, cache, policy, dispatcher=True)
        ctx = AppContext(settings, db, cache, policy, jobs=jobs, limiter=_shared_limiter(settings))
        app.state.ctx = ctx
        # key usage is flushed by every process (its own counts); purging, by the job holder
        housekeeper = Housekeeper(
            db, ctx.usage, retention_days=settings.retention_days,
            flush_seconds=settings.key_usage_flush_seconds, purge_seconds=settings.retention_check_seconds,
            purge_when=lambda: jobs.leader,
        )
        jobs.start()
        housekeeper.start()
        # what start-up built (modules, the model, the app) lives as long as the process: move it
        # out of the collector's reach, so the full collections that collector_paused forces while
        # batches overlap walk only the objects of requests (they took ~130 ms with it; see
        # service/scoring.py)
        gc.freeze()
        try:
            yield
        finally:
            housekeeper.stop()
            jobs.stop()
            if own_store:
                db.dispose()

    app = FastAPI(
        title="leadscore",
        version=__version__,
        description="Real-time lead scoring: leads, events, scores, stages and history. "
        "Every route except GET /health needs `Authorization: Bearer <key>`.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        responses={
            400: {"model": _error_model(), "description": "Malformed request (a body that is not JSON, ...)"},
            401: {"model": _error_model(), "description": "Missing, unknown or revoked API key"},
            403: {"model": _error_model(), "description": "The key's scope does not allow this"},
            413: {"model": _error_model(), "description": "The request body is too large"},
            422: {"model": _error_model(), "description": "Invalid data"},
            429: {"model": _error_model(), "description": "Over the key's rate limit; see Retry-After",
                  "headers": {"Retry-After": {"description": "Seconds to wait",
                                              "schema": {"type": "integer", "minimum": 1}}}},
            503: {"model": _error_model(), "description": "The database is unavailable or busy; "
                  "see Retry-After"},
        },
    )
    _install_error_handlers(app)
    app.add_middleware(RefuseNulInUrl)
    for module in (health, leads, events, segment, model, segments, webhooks, analytics, outcomes, keys,
                   predictive, web):  # predict: predictive
        app.include_router(module.router)
    app.include_router(audit_log.router)
    _document_bodies(app)
    return app


class RefuseNulInUrl:
    """422 for a URL whose path or query holds a NUL character (``%00``), naming the
    parameter: PostgreSQL cannot take one as a parameter (psycopg refuses it: a 500), SQLite
    can; on both the request is refused. A request for a route behind an API key or the
    dashboard's sign-in is refused by that guard, once the caller is known (a missing or bad
    key is a 401 first, a key of too small a scope a 403, a visitor is sent to the sign-in
    page: :func:`leadscore.api.deps.nul_in_url`); one for an open path (:data:`OPEN_PATHS`)
    here, at once. Plain ASGI: two searches of the URL a request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            path = scope.get("path", "")
            if "\x00" in path or b"%00" in query:
                field = _nul_parameter(query.decode("latin-1")) or "path"
                if not _open_path(path):
                    scope[NUL_IN_URL] = field  # the guard refuses it, after the caller
                else:
                    await error_response(url_nul_error(field))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


# the paths that neither a key nor the sign-in guards (a NUL in their URL is refused at once;
# every other route checks the caller first: tests/api/test_bad_values.py walks them all)
OPEN_PATHS = ("/health", "/docs", "/openapi.json", *WEB_OPEN_PATHS)


def _open_path(path: str) -> bool:
    """Whether ``path`` is one of :data:`OPEN_PATHS` or below one."""
    return any(path == open_path or path.startswith(open_path.rstrip("/") + "/") for open_path in OPEN_PATHS)


def _nul_parameter(query: str) -> str | None:
    """The first query parameter whose name or value holds a NUL character."""
    from urllib.parse import parse_qsl

    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name
    return None


def _shared_limiter(settings: Settings) -> RateLimiter | None:
    """The rate limiter the worker processes of ``serve --workers N`` share (None: the
    context makes one of this process)."""
    if settings.rate_limit_file is None:
        return None
    return SharedRateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst,
                             settings.rate_limit_file)


def create_app_from_environment() -> FastAPI:
    """The application of a worker process of ``serve --workers N`` (a uvicorn factory): its
    settings are the ones ``serve`` resolved, passed in :data:`SETTINGS_VARIABLE`."""
    import os

    return create_app(Settings.model_validate_json(os.environ[SETTINGS_VARIABLE]))


SETTINGS_VARIABLE = "LEADSCORE_SERVE_SETTINGS_JSON"


def _document_bodies(app: FastAPI) -> None:
    """Add the request-body schemas the write routes refer to (they read bodies themselves,
    to report errors with their field paths) to the OpenAPI document."""
    from leadscore.api.schemas import EventBatch, EventIn, LeadCreate

    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = default()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for body in (EventIn, EventBatch, LeadCreate):
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.pop("$defs", None)
            schemas.setdefault(body.__name__, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _error_model() -> Any:
    from leadscore.api.schemas import ErrorPublic

    return ErrorPublic
