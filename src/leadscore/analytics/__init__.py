"""Funnel analytics: KPIs computed with SQL aggregates over the store, pure helpers,
outcomes, and the self-contained HTML report."""

from __future__ import annotations

from leadscore.analytics.helpers import lead_velocity_rate, median, rate
from leadscore.analytics.summary import analytics_summary

__all__ = ["analytics_summary", "lead_velocity_rate", "median", "rate"]
