"""``leadscore score``: batch scoring from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TaskID
from rich.table import Table

from leadscore.batch import AUTO, ENGINES, score_files
from leadscore.cli.common import AsOfOption, err, parse_as_of, progress_bar
from leadscore.errors import UsageError
from leadscore.model import load_model


def score(
    model: Annotated[Path, typer.Option("--model", help="Scoring model (.yaml, .yml or .json).")],
    leads: Annotated[
        str,
        typer.Option("--leads", help="Leads file (.csv, .jsonl, .ndjson, .parquet); with --engine spark any "
                     "path Spark reads (hdfs://, s3a://)."),
    ],
    events: Annotated[
        str | None, typer.Option("--events", help="Events file (.csv, .jsonl, .ndjson, .parquet).")
    ] = None,
    as_of: AsOfOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Output file; format by extension. Default: CSV on stdout."),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add an 'explain' column (JSON).")] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help=f"Scoring engine: {', '.join(ENGINES)} (default: duckdb; python with --explain "
            "or when the model needs it).",
            show_default=False,
        ),
    ] = AUTO,
    master: Annotated[
        str | None,
        typer.Option("--master", help="Spark master URL for --engine spark (default: local[*]).",
                     show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary or progress on stderr.")] = False,
    top: Annotated[
        int, typer.Option("--top", help="Show the N best-scored leads on stderr (with --output).")
    ] = 0,
) -> None:
    """Score every lead of a file with a scoring model; one output row per lead."""
    if engine not in (*ENGINES, AUTO):
        raise UsageError(f"--engine: unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
    if master is not None and engine != "spark":
        raise UsageError("--master is only for --engine spark")
    scoring_model = load_model(model)
    moment = parse_as_of(as_of)
    with progress_bar(quiet) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = score_files(
            scoring_model, leads, events, moment, output, explain=explain, progress=progress,
            top=top if output is not None and not quiet else 0, engine=engine, master=master,
        )
    for warning in summary.warnings():
        err.print(f"warning: {warning}", markup=False)
    if not quiet and output is not None:
        table = Table(title=None, show_header=True, header_style="bold")
        table.add_column("stage")
        table.add_column("leads", justify="right")
        for stage in (s.name for s in scoring_model.stages or []):
            table.add_row(stage, str(summary.stage_counts.get(stage, 0)))
        err.print(f"scored {summary.leads} leads ({summary.events_read} events) -> {output}")
        if scoring_model.stages:
            err.print(table)
        if summary.top:
            err.print(_top_table(summary.top, scoring_model.graded_groups()))


def _top_table(rows: list[dict[str, Any]], graded: list[str]) -> Table:
    """The best-scored leads with the attributes a sales rep looks at first."""
    table = Table(title=f"Top {len(rows)} leads", header_style="bold")
    for column in ("lead", "name", "job title", "company", "score", "stage", *graded):
        table.add_column(column, justify="right" if column == "score" else "left")
    for row in rows:
        attrs = row["attributes"]
        table.add_row(
            row["lead_id"],
            str(attrs.get("name") or ""),
            str(attrs.get("job_title") or ""),
            str(attrs.get("company") or ""),
            f"{row['score']:.2f}",
            row["stage"] or "",
            *[row.get(f"grade_{g}") or "" for g in graded],
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("score")(score)
