"""``leadscore model check|schema`` and ``leadscore init``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import Exit, err, out
from leadscore.errors import ModelError, UsageError
from leadscore.model import document_warnings, load_model, model_json_schema

model_app = typer.Typer(help="Check and describe scoring models.", no_args_is_help=True)


@model_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
) -> None:
    """Validate a model file: exit 0 when valid, 2 when not (problems on stderr)."""
    try:
        model = load_model(file)
    except ModelError as exc:
        err.print(f"error: {exc}", markup=False)
        raise Exit(2) from None
    for warning in document_warnings(model):
        err.print(f"warning: {file}: {warning}", markup=False)
    groups = ", ".join(model.group_names()) or "none"
    stages = ", ".join(s.name for s in model.stages or []) or "none"
    err.print(
        f"ok: {file}: model '{model.name}', {len(model.rules)} rules, groups: {groups}; stages: {stages}",
        markup=False,
    )


@model_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the model language (for editor autocompletion)."""
    out.print(json.dumps(model_json_schema(), indent=2, ensure_ascii=False), markup=False)


def starter_text() -> str:
    """The commented starter model."""
    return resources.files("leadscore.model").joinpath("starter.yaml").read_text(encoding="utf-8")


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the model.")] = Path("model.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter B2B scoring model."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    path.write_text(starter_text(), encoding="utf-8")
    err.print(f"wrote {path}: edit it, then `leadscore model check {path}`", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
    app.command("init")(init)
