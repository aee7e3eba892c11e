"""The ``leadscore`` command: one Typer app, one module per noun.

Every module here is a thin adapter: it parses options, calls a service function,
and prints. A :class:`~leadscore.errors.LeadscoreError` becomes one line on stderr
and exit code 2 in exactly one place, :func:`main`.
"""

from __future__ import annotations

import sys

import typer

from leadscore.cli import common
from leadscore.errors import LeadscoreError

app = typer.Typer(
    name="leadscore",
    help="Open-source lead scoring: rules, prediction, real time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # One module per noun; each has register(app).
    for name in ("model", "score", "demo", "service", "send", "predict", "automation", "analytics"):
        try:
            module = __import__(f"leadscore.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"leadscore.cli.{name}":
                raise
            continue
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``leadscore`` command."""
    try:
        app(args=argv)  # standalone: Typer reports usage errors itself (exit 2)
    except common.Exit as exc:
        sys.exit(exc.code)
    except LeadscoreError as exc:  # the single place our errors become exit codes
        sys.exit(common.report_error(exc))
    except KeyboardInterrupt:
        sys.exit(common.report_error(KeyboardInterrupt()))


__all__ = ["app", "main"]
