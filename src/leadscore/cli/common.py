"""What every CLI module shares: consoles, error reporting, shared options."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadscore.engine.timestamps import parse_timestamp
from leadscore.errors import InputError, LeadscoreError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def progress_bar(quiet: bool) -> Progress:
    """The progress bar of a long command, on stderr: none with ``--quiet``, nor when stderr
    is not a terminal (a log or a pipe would get a blank line where the bar was)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=quiet or not err.is_terminal,
    )


def now_us() -> int:
    """The present, in epoch microseconds (the store's clock)."""
    return time.time_ns() // 1000


class Exit(Exception):  # noqa: N818 - mirrors typer.Exit
    """Stop the command with an exit code (after the message was printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def report_error(exc: BaseException) -> int:
    """Print an error as one line on stderr; return the exit code."""
    if isinstance(exc, LeadscoreError):
        err.print(f"error: {exc.one_line()}", markup=False)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        err.print("interrupted", markup=False)
        return 130
    raise exc


def parse_as_of(value: str | None) -> datetime:
    """``--as-of``: an ISO 8601 moment, default now (UTC)."""
    if value is None:
        return datetime.now(UTC)
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise InputError(f"--as-of: {exc}") from None


def database_url(value: str | None) -> str:
    """``--db``, else ``LEADSCORE_DATABASE_URL``, else the embedded SQLite file."""
    return value or os.environ.get("LEADSCORE_DATABASE_URL") or "sqlite:///leadscore.db"


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: $LEADSCORE_DATABASE_URL, else sqlite:///leadscore.db).",
        show_default=False,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Score at this ISO 8601 moment (default: now, UTC).", show_default=False),
]
