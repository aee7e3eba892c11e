"""Running the ``leadscore`` command in the test process, as a user's shell would see it."""

from __future__ import annotations

import pytest

from leadscore.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``leadscore ARGS``: its exit code, stdout and stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
