"""docs/automation.md: the worked example is a valid model, and every option of the
automation commands and every model keyword of automation is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from leadscore.cli.automation import audience_app, segments_app, webhooks_app
from leadscore.model import parse_model
from leadscore.model.automation import (
    Action,
    AssignOwnerAction,
    EmailSettings,
    Segment,
    TriggerOn,
    WebhookAction,
)

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "automation.md").read_text()


def test_the_worked_example_is_a_valid_model() -> None:
    example = re.search(r"```yaml\n(.*?)```", DOCS, re.S)
    assert example is not None
    model = parse_model(example.group(1))
    assert [t.id for t in model.triggers or []] == ["mql-to-crm", "sql-to-rep"]


def test_every_cli_option_is_documented() -> None:
    checked = 0
    for sub in (webhooks_app, segments_app, audience_app):
        group = typer.main.get_group(sub)
        for command in group.commands.values():
            for param in command.params:
                # options by what they are, not by class: Typer bundles its own click, whose
                # Option is not click.Option (an isinstance test matched nothing)
                if getattr(param, "param_type_name", None) == "option":
                    for flag in param.opts:
                        if flag != "--help":
                            checked += 1
                            assert flag in DOCS, f"{command.name} {flag} is not in docs/automation.md"
    assert checked > 10


def test_every_keyword_is_documented() -> None:
    for cls in (TriggerOn, Action, WebhookAction, AssignOwnerAction, Segment, EmailSettings):
        for name, info in cls.model_fields.items():
            assert f"{info.alias or name}" in DOCS, f"{cls.__name__}.{name}"
