"""``leadscore webhooks``, ``segments`` and ``audience``: the outbox, segments and ad audiences."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import DbOption, database_url, err, now_us
from leadscore.errors import UsageError

webhooks_app = typer.Typer(help="The outbox of webhooks and e-mails: list, retry, replay, dispatch.",
                           no_args_is_help=True)
segments_app = typer.Typer(help="Segments of the active model: list, members, refresh.",
                           no_args_is_help=True)
audience_app = typer.Typer(help="Hashed customer lists for ad platforms.", no_args_is_help=True)


def _store(db: str | None):  # type: ignore[no-untyped-def]
    from leadscore.store.db import Store

    return Store.open(database_url(db))


@webhooks_app.command("list")
def webhooks_list(
    db: DbOption = None,
    status: Annotated[str | None, typer.Option("--status", help="pending, delivered, dead or skipped.")] = None,
    deliveries: Annotated[bool, typer.Option("--deliveries", help="List delivery attempts instead.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows, newest first.")] = 50,
) -> None:
    """List outbox rows (or delivery attempts), newest first, as tab-separated lines after a header line."""
    from leadscore.actions.outbox import counts, list_deliveries, list_rows

    store = _store(db)
    try:
        with store.read() as session:
            if deliveries:
                print("outbox_id\tattempt\tresult\tstatus_code\tlatency\tat\terror")
                for d in list_deliveries(session, limit=limit):
                    print(f"{d['outbox_id']}\t#{d['attempt']}\t{'ok' if d['ok'] else 'failed'}\t"
                              f"{d['status_code'] or '-'}\t{d['latency_ms']:.1f} ms\t{d['at']}\t"
                              f"{d['error'] or ''}"
                      )
                return
            rows = list_rows(session, status=status, limit=limit)
            summary = counts(session)
    finally:
        store.dispose()
    print("id\tkind\tstatus\tattempts\ttrigger\tlead_id\ttarget\tlast_error")
    for r in rows:
        print(f"{r['id']}\t{r['kind']}\t{r['status']}\t{r['attempts']}/{r['max_attempts']}\t"
                  f"{r['trigger']}\t{r['lead_id']}\t{r['target']}\t{r['last_error'] or ''}")
    err.print(", ".join(f"{k}: {v}" for k, v in sorted(summary.items())) or "the outbox is empty",
              markup=False)


def _requeue(ids: list[int] | None, db: str | None, statuses: tuple[str, ...], verb: str) -> None:
    from leadscore.actions.outbox import requeue

    store = _store(db)
    try:
        with store.write() as session:
            n = requeue(session, ids, now_us(), statuses=statuses)
    finally:
        store.dispose()
    err.print(f"{verb} {n} outbox row(s); the dispatcher of `leadscore serve` sends them",
              markup=False)


@webhooks_app.command("retry")
def webhooks_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Outbox row ids (from `webhooks list`).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead-lettered row.")] = False,
    db: DbOption = None,
) -> None:
    """Send dead-lettered rows again (attempts start over; same idempotency key)."""
    if not ids and not all_dead:
        raise UsageError("give outbox ids or --all-dead")
    _requeue(None if all_dead else ids, db, ("dead",), "queued again")


@webhooks_app.command("replay")
def webhooks_replay(
    ids: Annotated[list[int], typer.Argument(help="Outbox row ids (from `webhooks list`).")],
    db: DbOption = None,
) -> None:
    """Send rows again whatever their status (delivered too), with the same idempotency key."""
    _requeue(ids, db, ("delivered", "dead", "skipped", "pending"), "replaying")


@webhooks_app.command("dispatch")
def webhooks_dispatch(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then exit.")] = False,
) -> None:
    """Run a dispatcher in this process (besides or instead of the one in `serve`)."""
    from leadscore.actions.dispatcher import Dispatcher

    store = _store(db)
    dispatcher = Dispatcher(store)
    try:
        if once:
            n = dispatcher.run_once()
            err.print(f"made {n} delivery attempt(s)", markup=False)
            dispatcher.close()
            return
        dispatcher.start()
        err.print("dispatching; Ctrl-C to stop", markup=False)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        dispatcher.stop()
    finally:
        store.dispose()


def _model(session):  # type: ignore[no-untyped-def]
    from leadscore.service.models import ModelCache, active_model

    return active_model(session, ModelCache()).model


@segments_app.command("list")
def segments_list(db: DbOption = None) -> None:
    """The active model's segments with their current sizes."""
    from leadscore.actions.segments import list_segments

    store = _store(db)
    try:
        with store.read() as session:
            rows = list_segments(session, _model(session))
    finally:
        store.dispose()
    for r in rows:
        print(f"{r['name']}\t{r['members']}\t{json.dumps(r['filter'], sort_keys=True)}")


@segments_app.command("members")
def segments_members(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    db: DbOption = None,
    history: Annotated[bool, typer.Option("--history", help="Also leads that left, with left_at.")] = False,
    output: Annotated[Path | None, typer.Option("--out", help="Write CSV to this file (default: stdout).")] = None,
) -> None:
    """A segment's members as CSV: lead_id, score, stage, entered_at, left_at."""
    from leadscore.actions.segments import members, members_csv, segment_of

    store = _store(db)
    try:
        with store.read() as session:
            segment_of(_model(session), name)
            text = members_csv(members(session, name, include_left=history))
    finally:
        store.dispose()
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")


@segments_app.command("refresh")
def segments_refresh(db: DbOption = None) -> None:
    """Re-evaluate every lead against every segment (for filters time alone changes, such
    as active_within_days; run it from cron like `leadscore rescore`)."""
    from leadscore.actions.segments import refresh

    store = _store(db)
    try:
        with store.write() as session:
            n = refresh(session, _model(session), now_us())
    finally:
        store.dispose()
    err.print(f"{n} membership change(s)", markup=False)


@audience_app.command("export")
def audience_export(
    segment: Annotated[str, typer.Option("--segment", help="The segment to export.")],
    output: Annotated[Path, typer.Option("--out", help="CSV file to write (columns email, phone).")],
    db: DbOption = None,
    platform: Annotated[str, typer.Option("--platform", help="meta (phone digits, no '+') or google (E.164 with '+', gmail dots removed).")] = "meta",
    consent_attribute: Annotated[str, typer.Option("--consent-attribute", help="Lead attribute that must be true.")] = "consent_ads",
    email_attribute: Annotated[str, typer.Option("--email-attribute", help="Lead attribute with the e-mail.")] = "email",
    phone_attribute: Annotated[str, typer.Option("--phone-attribute", help="Lead attribute with the phone.")] = "phone",
    default_country_code: Annotated[str | None, typer.Option("--default-country-code", help="Calling code for numbers written without one (e.g. 1); without it they are left out.")] = None,
) -> None:
    """Export a segment's consenting members, e-mails and phones normalised and SHA-256 hashed."""
    from leadscore.actions.audience import AudienceOptions, export_audience
    from leadscore.actions.segments import segment_of

    options = AudienceOptions(platform, consent_attribute, email_attribute, phone_attribute,
                              default_country_code)
    store = _store(db)
    try:
        with store.read() as session:
            segment_of(_model(session), segment)
            summary = export_audience(session, segment, output, options)
    finally:
        store.dispose()
    err.print(
        f"exported {summary.exported} of {summary.members} member(s) to {output} ({platform}); "
        f"left out {summary.without_consent} without {consent_attribute}, "
        f"{summary.without_identifier} without a usable e-mail or phone", markup=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
    app.add_typer(segments_app, name="segments")
    app.add_typer(audience_app, name="audience")
