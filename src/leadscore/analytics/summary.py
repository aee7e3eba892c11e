"""Every KPI of the analytics page, report and API in one call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from leadscore.analytics import funnel
from leadscore.engine import iso
from leadscore.model import ScoringModel
from leadscore.service.leads import stage_counts


def model_bounds(model: ScoringModel | None) -> tuple[float, float, list[str]]:
    """Score range and stage names (highest first) of the active model."""
    if model is None:
        return 0.0, 100.0, []
    return float(model.score.min), float(model.score.max), [s.name for s in model.stages or []]


def analytics_summary(
    session: Session, now_us: int, model: ScoringModel | None = None, *, qualified: list[str] | None = None,
) -> dict[str, Any]:
    """Score distribution, funnel rates, conversion by band and stage, LVR, sales cycle,
    stage counts over time and webhook health.

    ``qualified``: the stages whose first entry makes a lead qualified (for the LVR);
    None: every stage of the model but the lowest; ``[]``: every lead, when created.
    """
    low, high, stages = model_bounds(model)
    if qualified is None:
        qualified = funnel.qualified_stages(stages)
    facts = funnel.lead_facts(session, now_us, low, high, 10, 30)
    moments = funnel.won_moments(session)
    return {
        "as_of": iso(now_us),
        "leads": funnel.lead_count(session),
        "stage_counts": stage_counts(session),
        "score_distribution": funnel.score_distribution(session, low, high),
        "funnel": facts.funnel(),
        "conversion_by_band": facts.by_band(5),
        "conversion_by_stage": facts.by_stage(),
        "conversion_last_30_days": funnel.conversion_last_days(session, now_us, 30, facts=facts, moments=moments),
        "lead_velocity": funnel.lead_velocity(session, now_us, qualified),
        "sales_cycle": funnel.sales_cycle(session, moments),
        "stages_over_time": funnel.stage_counts_history(session, 12, now_us),
        "webhooks": funnel.webhook_health(session, now_us),
    }


class SummaryCache:
    """The last summary, served for ``ttl_s`` seconds; an older one is still served while
    a fresh one is computed in the background (the aggregates read every lead: seconds at
    100k leads on SQLite, so the page never waits for them but the first time)."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._value: dict[str, Any] | None = None
        self._key: Any = None
        self._at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def get(self, key: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            value, fresh = self._value, now - self._at < self.ttl_s and self._key == key
            if value is not None and self._key == key and not fresh and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
        if value is not None and self._key == key:
            return value
        return self.store(key, compute())

    def store(self, key: Any, value: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._value, self._key, self._at = value, key, time.monotonic()
        return value

    def _refresh(self, key: Any, compute: Callable[[], dict[str, Any]]) -> None:
        try:
            self.store(key, compute())
        finally:
            with self._lock:
                self._refreshing = False

    def clear(self) -> None:
        with self._lock:
            self._value, self._key = None, None
