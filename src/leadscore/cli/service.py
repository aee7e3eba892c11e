"""``leadscore serve``, ``keys``, ``import`` and ``rescore``: the service and its store."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.cli.common import DbOption, database_url, err, now_us, progress_bar
from leadscore.errors import UsageError
from leadscore.scopes import SCOPES

if TYPE_CHECKING:
    from leadscore.config import Settings

WORKER_HEALTHCHECK_S = 30

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def serve(
    db: DbOption = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Activate this model file at start-up (when it differs from the active one)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run time-driven rescoring in this process.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option("--forwarded-allow-ips",
                     help="Addresses of the reverse proxies whose X-Forwarded-For/-Proto headers are "
                     "trusted (comma-separated, or '*'); default $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64,
                     help="Worker processes serving requests (uvicorn restarts one that dies). One "
                     "process uses about one core: choose the number of cores the service may use "
                     "(2 on a 2-core machine that runs nothing else heavy); more than the cores "
                     "only adds memory. The background jobs run in one of them (docs/api.md, "
                     "\"Capacity\")."),
    ] = 1,
) -> None:
    """Run the HTTP API (OpenAPI document at /docs) and the rescoring scheduler."""
    import uvicorn

    from leadscore.api import create_app
    from leadscore.config import get_settings
    from leadscore.model import load_model

    if model is not None:  # an invalid file: its problems on one line (exit 2), before any server starts
        load_model(model)
    settings = get_settings().model_copy(update={
        "database_url": database_url(db), "host": host, "port": port,
        **({"model_file": model} if model is not None else {}),
        **({"scheduler": False} if no_scheduler else {}),
    })
    _check_database(settings.database_url)  # one line (exit 2), before any server starts, if not reachable
    err.print(f"leadscore: serving http://{host}:{port} (docs: /docs) on {_safe(settings.database_url)}"
              + (f" with {workers} worker processes" if workers > 1 else ""), markup=False)
    # no access log: request paths hold lead ids (docs/security.md, "Logs"); the proxy headers
    # of trusted proxies give the client's address and https scheme (Secure cookies)
    options = {"host": host, "port": port, "log_level": log_level, "access_log": False,
               "proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    with _worker_settings(settings) as variables:
        os.environ.update(variables)
        # uvicorn kills and replaces a worker that does not answer its supervisor's ping within
        # timeout_worker_healthcheck (default 5 s): on a busy machine a starting worker (a fresh
        # interpreter importing leadscore) took longer, was killed at start and started again
        # (seen under load 9); 30 s still replaces a hung worker
        uvicorn.run("leadscore.api.app:create_app_from_environment", factory=True, workers=workers,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_S, **options)  # type: ignore[arg-type]


@contextmanager
def _worker_settings(settings: Settings) -> Iterator[dict[str, str]]:
    """What the worker processes of ``serve --workers N`` start from: the store upgraded
    and its model installed here, once (not by N processes at once: a model file would be
    stored N times), and the settings resolved here, in one environment variable; a
    private folder holds the file of the shared rate limits (removed at the end)."""
    from leadscore.api.app import SETTINGS_VARIABLE
    from leadscore.service.audit import acting_as
    from leadscore.service.keys import create_shared_buckets
    from leadscore.service.models import ensure_model
    from leadscore.store.db import Store

    acting_as("start-up")
    store = Store.open(settings.database_url)
    try:
        with store.write() as session:
            ensure_model(session, settings.model_file, now_us())
    finally:
        store.dispose()
    folder = Path(tempfile.mkdtemp(prefix="leadscore-serve-"))  # mode 0700
    try:
        workers = settings.model_copy(update={
            "model_file": None,  # installed above
            "rate_limit_file": create_shared_buckets(folder / "rate-limits"),
        })
        yield {SETTINGS_VARIABLE: workers.model_dump_json()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_database(url: str) -> None:
    """:func:`~leadscore.store.db.check_reachable` on a connection of its own: a database
    that cannot be reached fails here with one line (exit 2), not in the server's start-up."""
    from leadscore.store.db import check_reachable, create_db_engine

    engine = create_db_engine(url, pool_size=1)
    try:
        check_reachable(engine)
    finally:
        engine.dispose()


def _safe(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    scope: Annotated[str, typer.Option("--scope", help=f"One of: {', '.join(SCOPES)}.")],
    db: DbOption = None,
) -> None:
    """Create a key; it is printed once, alone on the last line of stdout (only its hash is stored)."""
    from leadscore.service.keys import create_key
    from leadscore.store.db import Store

    if scope not in SCOPES:
        raise UsageError(f"--scope: unknown scope '{scope}'; use one of {', '.join(SCOPES)}")
    url = database_url(db)
    store = Store.open(url)
    try:
        with store.write() as session:
            row, token = create_key(session, name, scope, now_us())
    finally:
        store.dispose()
    # the database too: a key is only known to the server of that database (a key made
    # without --db lands in ./leadscore.db, and a server on PostgreSQL refuses it)
    err.print(f"created key {row.id} '{row.name}' (scope {row.scope}) in {_safe(url)}; "
              "it is shown only once:", markup=False)
    print(token)


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List keys (never the keys themselves: their first characters)."""
    from leadscore.service.keys import key_public, list_keys
    from leadscore.store.db import Store

    store = Store.open(database_url(db))
    try:
        with store.read() as session:
            rows = [key_public(r) for r in list_keys(session)]
    finally:
        store.dispose()
    # tab-separated, one key a line (plain print: rich would expand the tabs to spaces)
    print("id\tprefix\tscope\tname\tstate")
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        print(f"{row['id']}\t{row['prefix']}…\t{row['scope']}\t{row['name']}\t{state}")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id, name or prefix (from `keys list`).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from leadscore.service.keys import revoke_key
    from leadscore.store.db import Store

    store = Store.open(database_url(db))
    try:
        with store.write() as session:
            row = revoke_key(session, key, now_us())
    finally:
        store.dispose()
    err.print(f"revoked key {row.id} '{row.name}'", markup=False)


def rescore(db: DbOption = None) -> None:
    """Rescore, once, the leads whose score can have changed with time or a model change (for cron)."""
    from leadscore.actions import install
    from leadscore.config import get_settings
    from leadscore.service.models import ModelCache, ensure_model
    from leadscore.service.rescore import rescore_all_pending
    from leadscore.service.scoring import ScoringPolicy
    from leadscore.store.db import Store

    install()  # score changes fire the model's triggers (outbox rows, sent by the dispatcher)
    settings = get_settings()
    store = Store.open(database_url(db))
    try:
        with store.write() as session:
            ensure_model(session, None, now_us())
        summary = rescore_all_pending(
            store, ModelCache(), now_us, policy=ScoringPolicy.from_settings(settings),
            chunk=settings.rescore_chunk,
        )
    finally:
        store.dispose()
    err.print(
        f"rescored {summary.time + summary.model} lead(s): {summary.time} because time moved, "
        f"{summary.model} for the active model; {summary.changed} changed", markup=False,
    )


def register(app: typer.Typer) -> None:
    from leadscore.service.audit import acting_as

    acting_as("cli")  # what commands of this process change is audited as done by "cli"
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.command("rescore")(rescore)
    app.command("import")(import_command)
    app.command("purge-events")(purge_events_command)


def purge_events_command(
    older_than_days: Annotated[
        float | None,
        typer.Option("--older-than-days", help="Purge events stamped more than this many days ago "
                     "(default: the setting LEADSCORE_RETENTION_DAYS)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Delete events older than N days (retention). Scores are not recomputed: each lead keeps
    its current score until it is next rescored (docs/security.md, "Retention")."""
    from leadscore.config import get_settings
    from leadscore.service.retention import purge_events
    from leadscore.store.db import Store

    days = older_than_days if older_than_days is not None else get_settings().retention_days
    if days is None:
        raise UsageError("give --older-than-days N (or set LEADSCORE_RETENTION_DAYS)")
    if days <= 0:
        raise UsageError(f"--older-than-days must be more than 0, got {days:g}")
    store = Store.open(database_url(db))
    try:
        purged = purge_events(store, days, now_us(), actor="cli")
    finally:
        store.dispose()
    err.print(f"purged {purged} event(s) older than {days:g} day(s); current scores are kept until "
              "each lead is next rescored", markup=False)


def import_command(
    leads: Annotated[
        Path | None, typer.Option("--leads", help="Leads file (.csv, .jsonl, .ndjson, .parquet).")
    ] = None,
    events: Annotated[
        Path | None, typer.Option("--events", help="Events file (.csv, .jsonl, .ndjson, .parquet).")
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    triggers: Annotated[
        bool,
        typer.Option(
            "--triggers/--no-triggers",
            help="Fire the model's triggers for the score changes (off for a historical backfill).",
        ),
    ] = True,
) -> None:
    """Load lead and event files into the store (deduplicated by event_id) and score them."""

    from leadscore.config import get_settings
    from leadscore.service.importer import import_files
    from leadscore.service.ingest import MICROS
    from leadscore.service.models import ensure_model
    from leadscore.service.scoring import ScoringPolicy
    from leadscore.store.db import Store

    if leads is None and events is None:
        raise UsageError("give --leads FILE, --events FILE or both")
    if triggers:
        from leadscore.actions import install

        install()
    settings = get_settings()
    store = Store.open(database_url(db))
    started = time.perf_counter()
    try:
        with store.write() as session:
            ensure_model(session, None, now_us())
        with progress_bar(quiet) as bar:
            tasks: dict[str, object] = {}

            def progress(stage: str, done: int, total: int | None) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

            # events from the future refused as the service refuses them (its setting, same default)
            summary = import_files(store, leads, events, now_us(),
                                   policy=ScoringPolicy.from_settings(settings), progress=progress,
                                   tolerance_us=settings.future_tolerance_seconds * MICROS)
    finally:
        store.dispose()
    seconds = time.perf_counter() - started
    rate = summary.events_read / seconds if seconds > 0 else 0.0
    err.print(
        f"imported {summary.leads_read} lead(s) ({summary.leads_created} new, {summary.leads_updated} "
        f"updated), {summary.events_stored} event(s) stored, {summary.duplicates} duplicate(s) "
        f"skipped; scored {summary.leads_scored} lead(s) in {seconds:.1f} s "
        f"({rate:,.0f} events/s)", markup=False,
    )
