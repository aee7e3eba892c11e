"""Chart specifications (read by ``static/app.js``) for the analytics page and report."""

from __future__ import annotations

from typing import Any


def analytics_charts(a: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: {"type", "labels", "datasets"}}`` for each chart of the analytics."""
    monthly = a["lead_velocity"]["monthly"][-13:]
    over_time = a["stages_over_time"]
    return {
        "dist": {"type": "bar", "labels": [f"{b['from']:g}–{b['to']:g}" for b in a["score_distribution"]],
                 "datasets": [{"label": "leads", "data": [b["leads"] for b in a["score_distribution"]]}]},
        "band": {"type": "bar", "percent": True,
                 "labels": [f"{b['from']:g}–{b['to']:g}" for b in a["conversion_by_band"]],
                 "datasets": [{"label": "conversion %", "data": [
                     round((b["conversion"] or 0) * 100, 2) for b in a["conversion_by_band"]]}]},
        "lvr": {"type": "bar", "labels": [m["month"] for m in monthly],
                "datasets": [{"label": "qualified leads", "data": [m["qualified"] for m in monthly]}]},
        "stages": {"type": "line", "labels": over_time["months"],
                   "datasets": [{"label": stage, "data": counts} for stage, counts in over_time["stages"].items()]},
    }
