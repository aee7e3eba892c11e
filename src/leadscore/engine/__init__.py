"""The pure per-lead engine: the reference semantics every other engine is tested against."""

from leadscore.engine.scoring import (
    Contribution,
    CountedEvent,
    Event,
    Lead,
    LeadScore,
    clip,
    round_score,
    score_lead,
)
from leadscore.engine.timestamps import from_micros, iso, parse_timestamp, to_micros

__all__ = [
    "Contribution",
    "CountedEvent",
    "Event",
    "Lead",
    "LeadScore",
    "clip",
    "from_micros",
    "iso",
    "parse_timestamp",
    "round_score",
    "score_lead",
    "to_micros",
]
