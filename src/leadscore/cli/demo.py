"""``leadscore demo-data``: write the simulated B2B funnel (the demo world) to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.cli.common import out
from leadscore.engine.timestamps import parse_timestamp
from leadscore.errors import UsageError

# Kept here (not imported) so that `leadscore --help` does not load numpy and pyarrow;
# tests/test_demo.py checks they equal leadscore.demo.DEFAULT_END and FORMATS.
_DEFAULT_END_TEXT = "2026-11-01T00:00:00Z"
FORMATS = ("csv", "parquet")


def demo_data(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the files into (created if missing).")],
    leads: Annotated[int, typer.Option("--leads", help="Number of leads.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same arguments, same bytes.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help=f"File format: {' or '.join(FORMATS)}.")] = "csv",
    end: Annotated[
        str, typer.Option("--end", help="The world's 'now' (ISO 8601); nothing happens after it.")
    ] = _DEFAULT_END_TEXT,
    months: Annotated[int, typer.Option("--months", help="Leads are created over the M months before --end.")] = 12,
) -> None:
    """Generate demo data: leads, their events and outcomes of a simulated B2B funnel."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    try:
        as_of = parse_timestamp(end)
    except ValueError as exc:
        raise UsageError(f"--end: {exc}") from None
    from leadscore.demo import write_world

    summary = write_world(out_dir, leads, seed, as_of, months, fmt)
    _print_summary(summary)


def _print_summary(summary: Any) -> None:
    table = Table(title=f"demo world (seed {summary.seed}, as of {summary.as_of:%Y-%m-%dT%H:%M:%SZ})",
                  show_header=True, header_style="bold", title_justify="left")
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_column("path")
    table.add_row("leads", f"{summary.n_leads:,}", str(summary.files["leads"]))
    table.add_row("events", f"{summary.n_events:,}", str(summary.files["events"]))
    table.add_row("outcomes", f"{summary.n_leads:,}", str(summary.files["outcomes"]))
    table.add_row("world", "", str(summary.files["world"]))
    out.print(table)
    out.print(
        f"converted: {summary.n_converted:,} ({summary.conversion_rate:.1%}); "
        f"opportunities: {summary.n_opportunities:,} ({summary.opportunity_rate:.1%})",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``demo-data`` to the ``leadscore`` command."""
    app.command("demo-data")(demo_data)
