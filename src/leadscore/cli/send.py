"""``leadscore send``: post lead and event files to a running service through its API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.cli.common import err, progress_bar
from leadscore.errors import UsageError

if TYPE_CHECKING:
    from leadscore.client.send import SendSummary

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 300.0  # a batch of 10,000 events takes seconds to store and score; a busy SQLite waits 30 s


def send(
    events: Annotated[
        Path | None, typer.Option("--events", help="Events file (.csv, .jsonl, .ndjson, .parquet).")
    ] = None,
    leads: Annotated[
        Path | None, typer.Option("--leads", help="Leads file (.csv, .jsonl, .ndjson, .parquet); sent first.")
    ] = None,
    url: Annotated[
        str, typer.Option("--url", envvar="LEADSCORE_URL", help="The service's address.")
    ] = DEFAULT_URL,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="LEADSCORE_API_KEY", show_default=False,
                     help="API key of scope ingest or admin (better: the environment variable, "
                     "which stays out of the shell history)."),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=10_000, help="Leads per POST /v1/leads request, events per POST /v1/events request.")
    ] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Post lead and event files to a running service (POST /v1/leads, POST /v1/events), in file order."""
    import httpx

    from leadscore.client.send import EventScan, Sender, event_rows, read_lead_rows, scan_events

    if leads is None and events is None:
        raise UsageError("give --events FILE, --leads FILE or both")
    if not key:
        raise UsageError("give --key KEY or set LEADSCORE_API_KEY (a key of scope ingest or admin: "
                         "`leadscore keys create --name NAME --scope ingest`)")
    address = httpx.URL(url.rstrip("/")) if "://" in url else None
    if address is None or address.scheme not in ("http", "https") or not address.host:
        raise UsageError(f"--url must be http://HOST[:PORT] or https://..., got '{url}'")
    lead_rows = read_lead_rows(leads) if leads is not None else []
    scan = scan_events(events) if events is not None else EventScan(0)  # every row checked first
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "leadscore-send"}
    started = time.perf_counter()
    with httpx.Client(base_url=address, headers=headers, timeout=TIMEOUT_S) as client, progress_bar(quiet) as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        sender = Sender(client)
        if leads is not None:
            sender.send_leads(leads, lead_rows, batch, progress)
        leads_done = time.perf_counter()
        if events is not None:
            sender.send_events(events, event_rows(events, scan.repeated), batch, scan.count, progress)
    ended = time.perf_counter()
    err.print(_summary(sender.summary, leads is not None, events is not None,
                       leads_done - started, ended - leads_done, url), markup=False)


def _summary(summary: SendSummary, leads: bool, events: bool, lead_s: float, event_s: float,
             url: str) -> str:
    """One line: what was sent, what the service answered, how long each part took."""
    parts = []
    if leads:
        parts.append(f"sent {summary.leads_sent} lead(s) ({summary.leads_created} new) in {lead_s:.1f} s")
    if events:
        rate = summary.events_sent / event_s if event_s > 0 else 0.0
        parts.append(f"{summary.events_sent} event(s) in {summary.batches} batch(es) in {event_s:.1f} s "
                     f"({rate:,.0f} events/s): {summary.accepted} accepted, {summary.duplicates} "
                     f"duplicate(s); {len(summary.touched)} lead(s) touched")
    retried = f"; {summary.retries} request(s) sent again" if summary.retries else ""
    return f"{', '.join(parts)}{retried} (to {url})"


def register(app: typer.Typer) -> None:
    """Add ``send`` to the ``leadscore`` command."""
    app.command("send")(send)
