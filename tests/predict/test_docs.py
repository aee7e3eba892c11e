"""Every option of the predictive commands is documented in docs/predictive.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from leadscore.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "predictive.md"


def test_every_option_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    root: Any = typer.main.get_command(app)  # typer ships its own click: no isinstance checks
    ctx = root.context_class(root)
    model = root.get_command(ctx, "model")
    commands = {name: root.get_command(ctx, name) for name in ("train", "predict", "evaluate", "thresholds", "compare")}
    commands["model learn"] = model.get_command(ctx, "learn")
    service = root.get_command(ctx, "predictive")
    for name in ("activate", "deactivate", "status"):
        commands[f"predictive {name}"] = service.get_command(ctx, name)
    missing = []
    for name, command in commands.items():
        assert command is not None, name
        assert f"leadscore {name}" in text
        for param in command.params:
            for option in param.opts:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{name} {option}")
    assert not missing, f"undocumented: {missing}"
