"""Batch scoring from files: read leads and events, score every lead, write one row each.

This is the service behind ``leadscore score``; the CLI only parses options.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from leadscore.engine.scoring import Event, Lead, LeadScore, round_score, score_lead
from leadscore.engine.timestamps import to_micros
from leadscore.ingest.files import read_events, read_leads, write_csv, write_rows
from leadscore.model.schema import (
    AbsenceCondition,
    AllCondition,
    AnyCondition,
    EventCondition,
    NotCondition,
    ScoringModel,
)

ENGINES = ("python",)


@dataclass
class BatchSummary:
    """What a batch run did, for the user."""

    leads: int = 0
    events_read: int = 0
    duplicate_events: int = 0
    unknown_lead_events: int = 0
    unknown_leads: int = 0
    stage_counts: dict[str, int] = field(default_factory=dict)
    output: str | None = None
    engine: str = "python"
    top: list[dict[str, Any]] = field(default_factory=list)  # best-scored rows, for display

    def warnings(self) -> list[str]:
        out = []
        if self.unknown_lead_events:
            out.append(
                f"{self.unknown_lead_events} event(s) belong to {self.unknown_leads} lead(s) "
                "that are not in the leads file; they were not scored"
            )
        if self.duplicate_events:
            out.append(f"{self.duplicate_events} duplicate event_id(s) counted once")
        return out


def _conditions(condition: Any) -> Iterable[Any]:
    yield condition
    for child in getattr(condition, "all", None) or getattr(condition, "any", None) or ():
        yield from _conditions(child)
    if isinstance(condition, NotCondition):
        yield from _conditions(condition.not_)


def model_inputs(model: ScoringModel) -> tuple[set[str], set[str]]:
    """The event types and event properties a model can look at."""
    types: set[str] = set()
    properties: set[str] = set()
    for rule in model.rules:
        for condition in _conditions(rule.when):
            if isinstance(condition, (EventCondition, AbsenceCondition)):
                types.update(condition.types)
                properties.update((condition.where or {}).keys())
    return types, properties


def output_columns(model: ScoringModel, explain: bool) -> list[str]:
    """``lead_id, score, stage, score_<group>..., grade_<group>..., [explain]``."""
    columns = ["lead_id", "score", "stage"]
    columns += [f"score_{g}" for g in model.group_names()]
    columns += [f"grade_{g}" for g in model.graded_groups()]
    if explain:
        columns.append("explain")
    return columns


def output_types(model: ScoringModel) -> dict[str, str]:
    """Column types for typed outputs (Parquet)."""
    types = {"lead_id": "str", "score": "float", "stage": "str", "explain": "json"}
    types.update({f"score_{g}": "float" for g in model.group_names()})
    types.update({f"grade_{g}": "str" for g in model.graded_groups()})
    return types


def result_row(model: ScoringModel, result: LeadScore, explain: bool) -> dict[str, Any]:
    """One output row for a scored lead."""
    row: dict[str, Any] = {"lead_id": result.lead_id, "score": result.score, "stage": result.stage}
    for name, value in result.groups.items():
        row[f"score_{name}"] = round_score(value)
    for name, grade in result.grades.items():
        row[f"grade_{name}"] = grade
    if explain:
        row["explain"] = result.explanation()
    return row


def score_leads(
    model: ScoringModel,
    leads: Sequence[Lead],
    events_by_lead: dict[str, list[Event]],
    as_of: datetime,
    on_lead: Callable[[int], None] | None = None,
) -> list[LeadScore]:
    """Score leads with the per-lead engine, in the leads' order."""
    as_of_us = to_micros(as_of)
    results = []
    for index, lead in enumerate(leads, start=1):
        results.append(score_lead(model, lead, events_by_lead.get(lead.lead_id, ()), as_of_us))
        if on_lead is not None and index % 5_000 == 0:
            on_lead(index)
    return results


def score_files(
    model: ScoringModel,
    leads_path: str | Path,
    events_path: str | Path | None,
    as_of: datetime,
    output: str | Path | None,
    *,
    explain: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
    top: int = 0,
) -> BatchSummary:
    """Score the leads of a file and write one row per lead (stdout CSV when no output)."""
    summary = BatchSummary(output=str(output) if output else None)

    def report(stage: str) -> Callable[[int], None] | None:
        if progress is None:
            return None
        return lambda n: progress(stage, n, None)

    leads = read_leads(leads_path, report("reading leads"))
    summary.leads = len(leads)
    events_by_lead: dict[str, list[Event]] = {}
    if events_path is not None:
        types, properties = model_inputs(model)
        known = {lead.lead_id: None for lead in leads}
        events_by_lead, stats = read_events(
            events_path, known, keep_types=types, keep_properties=properties,
            progress=report("reading events"),
        )
        summary.events_read = stats.rows
        summary.duplicate_events = stats.duplicates
        summary.unknown_lead_events = stats.unknown_lead_events
        summary.unknown_leads = len(stats.unknown_leads)
    on_lead = None if progress is None else (lambda n: progress("scoring", n, len(leads)))
    results = score_leads(model, leads, events_by_lead, as_of, on_lead)
    for result in results:
        key = result.stage or ""
        summary.stage_counts[key] = summary.stage_counts.get(key, 0) + 1
    columns = output_columns(model, explain)
    rows = [result_row(model, r, explain) for r in results]
    if top:
        by_id = {lead.lead_id: lead for lead in leads}
        best = sorted(rows, key=lambda r: -r["score"])[:top]
        summary.top = [{**r, "attributes": dict(by_id[r["lead_id"]].attributes)} for r in best]
    if output is None:
        write_csv(sys.stdout, columns, rows)
    else:
        write_rows(output, columns, rows, output_types(model))
    return summary


def explain_json(result: LeadScore) -> str:
    """The explanation as compact JSON text."""
    return json.dumps(result.explanation(), ensure_ascii=False, separators=(",", ":"))
