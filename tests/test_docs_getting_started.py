"""docs/getting-started.md: its files, scored by its command, give the rows it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli_run import run_cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"


def _blocks(text: str, kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def test_the_documented_files_and_command_give_the_documented_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DOC.read_text(encoding="utf-8")
    leads, events, scored = _blocks(text, "csv")
    (tmp_path / "leads.csv").write_text(leads, encoding="utf-8")
    (tmp_path / "events.csv").write_text(events, encoding="utf-8")
    assert run_cli(["init", str(tmp_path / "model.yaml")], capsys)[0] == 0
    (command,) = [b for b in _blocks(text, "bash") if b.startswith("leadscore score")]
    args = shlex.split(command.replace("\\\n", " "))[1:]
    args = [str(tmp_path / a) if a.endswith((".csv", ".yaml")) else a for a in args]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    got = (tmp_path / "scored.csv").read_text(encoding="utf-8").splitlines()
    shown = scored.splitlines()
    assert got[0] == shown[0]
    assert len(got) == len(shown)
    for real, documented in zip(got[1:], shown[1:], strict=True):
        # the columns before the explanation, which the doc cuts short
        assert real.split(",")[:7] == documented.split(",")[:7]
        assert real.split(",", 7)[7].startswith(documented.split(",", 7)[7].split("...")[0])
