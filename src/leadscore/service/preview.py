"""What a candidate model would do to the stored leads, before it is activated."""

from __future__ import annotations

import math
import statistics
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadscore.engine import score_lead
from leadscore.model import ScoringModel
from leadscore.service.models import ActiveModel
from leadscore.service.scoring import load_events, load_states
from leadscore.store.tables import leads

BUCKETS = 10


def _histogram(scores: list[float], low: float, high: float) -> list[dict[str, Any]]:
    width = (high - low) / BUCKETS
    counts = [0] * BUCKETS
    for score in scores:
        index = min(BUCKETS - 1, max(0, int((score - low) // width))) if width > 0 else 0
        counts[index] += 1
    return [
        {"from": round(low + i * width, 2), "to": round(low + (i + 1) * width, 2), "leads": n}
        for i, n in enumerate(counts)
    ]


def _summary(scores: list[float]) -> dict[str, Any]:
    if not scores:
        return {"mean": None, "p50": None, "p90": None, "min": None, "max": None}
    ordered = sorted(scores)

    def pct(q: float) -> float:  # nearest rank: the smallest score with at least q of them at or below it
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"mean": round(statistics.fmean(scores), 2), "p50": pct(0.5), "p90": pct(0.9),
            "min": ordered[0], "max": ordered[-1]}


def preview_model(
    session: Session, candidate: ScoringModel, now_us: int, *, limit: int = 10_000,
    chunk: int = 1000,
) -> dict[str, Any]:
    """Stage counts and score distribution under ``candidate`` (over at most ``limit`` leads,
    the most recently updated), next to the current ones."""
    total = session.execute(select(func.count()).select_from(leads)).scalar_one()
    pks = list(session.scalars(select(leads.c.id).order_by(leads.c.updated_us.desc()).limit(limit)))
    model = ActiveModel.of(0, candidate)
    new_stages: dict[str, int] = {s.name: 0 for s in candidate.stages or []}
    old_stages: dict[str, int] = {}
    new_scores: list[float] = []
    old_scores: list[float] = []
    moved = 0
    for start in range(0, len(pks), chunk):
        states = load_states(session, pks[start : start + chunk])
        by_pk = load_events(session, {s.pk: s.lead_id for s in states}, model.event_types,
                            model.oldest_counted(now_us))
        for state in states:
            result = score_lead(candidate, state.lead(), by_pk[state.pk], now_us)
            new_scores.append(result.score)
            key = str(result.stage)
            new_stages[key] = new_stages.get(key, 0) + 1
            if state.score is not None:
                old_scores.append(state.score)
                old_key = str(state.stage)
                old_stages[old_key] = old_stages.get(old_key, 0) + 1
            if state.stage != result.stage:
                moved += 1
    return {
        "model": candidate.name,
        "leads": total,
        "leads_scored": len(pks),
        "sampled": len(pks) < total,
        "stages": new_stages,
        "current_stages": old_stages,
        "leads_changing_stage": moved,
        "scores": _summary(new_scores),
        "current_scores": _summary(old_scores),
        "histogram": _histogram(new_scores, candidate.score.min, candidate.score.max),
    }
