"""``leadscore report`` (the analytics as one HTML file) and ``leadscore outcomes`` (import
what leads became)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import DbOption, database_url, err, now_us, out


def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
    db: DbOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Compute 'this month' and 'last 30 days' at this ISO 8601 moment (default: now).",
                                 show_default=False)
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Title of the report.")] = "leadscore analytics",
    qualified: Annotated[
        str | None, typer.Option("--qualified", help="Stages (comma-separated) whose first entry counts as a qualified "
                                 "lead for the LVR; 'created' counts every lead when created (default: every "
                                 "stage of the model but the lowest).", show_default=False)
    ] = None,
) -> None:
    """Write the funnel analytics as one self-contained HTML file (opens offline)."""
    from leadscore.analytics.summary import analytics_summary
    from leadscore.cli.common import parse_as_of
    from leadscore.engine import to_micros
    from leadscore.service.errors import NotFound
    from leadscore.service.models import ModelCache, active_model
    from leadscore.store.db import Store
    from leadscore.web.report import render_report

    now = to_micros(parse_as_of(as_of)) if as_of else now_us()
    store = Store.open(database_url(db))
    try:
        with store.read() as session:
            try:
                model = active_model(session, ModelCache()).model
            except NotFound:
                model = None
            stages = None if qualified is None else (
                [] if qualified.strip() == "created" else [s.strip() for s in qualified.split(",") if s.strip()])
            summary = analytics_summary(session, now, model, qualified=stages)
    finally:
        store.dispose()
    out_file.write_text(render_report(summary, title=title), encoding="utf-8")
    err.print(f"wrote {out_file} ({summary['leads']:,} leads, {out_file.stat().st_size // 1024} KiB)", markup=False)


def outcomes(
    file: Annotated[Path, typer.Argument(help="CSV with lead_id,outcome,at or lead_id,converted,converted_at,opportunity_at.")],
    db: DbOption = None,
) -> None:
    """Import what leads became (opportunity, customer, lost) for the funnel analytics."""
    import csv

    from leadscore.analytics.outcomes import import_outcome_rows
    from leadscore.errors import InputError
    from leadscore.store.db import Store

    if not file.exists():
        raise InputError(f"{file}: no such file")
    store = Store.open(database_url(db))
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle, store.write() as session:
            counts = import_outcome_rows(session, csv.DictReader(handle), now_us())
    finally:
        store.dispose()
    out.print(f"{counts['recorded']:,} outcomes recorded from {counts['rows']:,} rows"
              f" ({counts['unknown_leads']:,} rows of unknown leads skipped)", markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("outcomes")(outcomes)
