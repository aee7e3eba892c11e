"""Request and response schemas of the API, kept apart from the ORM tables.

Request bodies of the write routes are checked by :mod:`leadscore.api.bodies` (same
rules as the file readers, with field paths in every message); these classes describe
them in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeadCreate(Strict):
    """Create a lead or merge attributes into it; a null attribute removes it."""

    lead_id: str | int = Field(examples=["L-1001"])
    attributes: dict[str, Any] = Field(
        default_factory=dict, examples=[{"job_title": "VP Sales", "industry": "software"}]
    )


class EventIn(Strict):
    """One event. Without ``timestamp`` the server's clock is used; without ``event_id``
    the event cannot be deduplicated."""

    event_id: str | int | None = Field(None, examples=["e-1"])
    lead_id: str | int = Field(examples=["L-1001"])
    type: str = Field(examples=["page_view"])
    timestamp: str | None = Field(None, examples=["2026-05-01T10:00:00Z"])
    properties: dict[str, Any] | None = Field(None, examples=[{"url": "/pricing"}])


class EventBatch(Strict):
    """Up to 10,000 events; a batch with one bad event stores nothing."""

    events: list[EventIn]


class LeadScorePublic(BaseModel):
    lead_id: str
    score: float | None
    stage: str | None
    groups: dict[str, float]
    grades: dict[str, str | None]
    created: bool = False


class IngestPublic(BaseModel):
    accepted: int
    duplicates: int
    duplicate_event_ids: list[str]
    leads: list[LeadScorePublic]


class LeadSummary(BaseModel):
    lead_id: str
    score: float | None
    stage: str | None
    groups: dict[str, float]
    grades: dict[str, str | None]
    attributes: dict[str, Any]
    updated_at: str | None
    owner: str | None = None
    tags: list[str] = []


class LeadsPublic(BaseModel):
    leads: list[LeadSummary]
    next_cursor: str | None


class EventPublic(BaseModel):
    event_id: str | None
    type: str
    timestamp: str
    properties: dict[str, Any]
    received_at: str


class HistoryPublic(BaseModel):
    at: str
    cause: str
    detail: str | None
    model_version: int | None
    old_score: float | None
    new_score: float
    old_stage: str | None
    new_stage: str | None
    old_grades: dict[str, str | None] | None
    new_grades: dict[str, str | None] | None


class TransitionPublic(BaseModel):
    at: str
    from_stage: str | None
    to_stage: str | None
    cause: str


class LeadFields(BaseModel):
    """A lead's own row: attributes and current score."""

    lead_id: str
    attributes: dict[str, Any]
    score: float | None
    stage: str | None
    groups: dict[str, float]
    grades: dict[str, str | None]
    explain: dict[str, Any] | None
    model_version: int | None
    created_at: str | None
    updated_at: str | None
    scored_at: str | None
    next_change_at: str | None


class LeadPublic(LeadFields):
    owner: str | None = None  # given by a trigger's assign_owner action (docs/automation.md)
    tags: list[str] = []  # given by a trigger's tag action
    events: list[EventPublic] = []
    history: list[HistoryPublic] = []
    # predict: the active predictive model's probability, score and reasons (docs/predictive.md)
    predictive: dict[str, Any] | None = None


class LeadHistoryPublic(BaseModel):
    lead_id: str
    history: list[HistoryPublic]
    transitions: list[TransitionPublic]


class AuditEntryPublic(BaseModel):
    """One audited action. A lead is named only by ``lead:<hash>`` (never its id)."""

    id: int
    at: str
    action: str
    actor: str
    subject: str | None
    detail: dict[str, Any] | None


class LeadExported(LeadFields):
    """The lead in an export: its row (events, history, owner and tags are the export's own
    sections and ``records``, not repeated here)."""

    # predict: the active predictive model's probability, score and reasons (docs/predictive.md)
    predictive: dict[str, Any] | None = None


class LeadExport(BaseModel):
    """Everything held about one person."""

    lead: LeadExported
    events: list[EventPublic]
    history: list[HistoryPublic]
    transitions: list[TransitionPublic]
    records: dict[str, list[dict[str, Any]]] = Field(
        description="Every other table's rows about the lead, by table name (outcomes, segment "
        "memberships, tags, owner, rules fired, automation log, outbox messages, deliveries, ...)"
    )
    audit: list[AuditEntryPublic] = Field(description="Audit entries about the lead (erasures, exports)")


class ModelVersionPublic(BaseModel):
    version: int
    name: str
    active: bool
    format: str
    checksum: str
    created_at: str
    activated_at: str | None
    document: str | None = None
    model: dict[str, Any] | None = None


class RescorePublic(BaseModel):
    status: str
    model_version: int | None
    total: int
    done: int
    progress: float
    job: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


class ModelChangePublic(BaseModel):
    version: ModelVersionPublic
    rescore: RescorePublic
    unchanged: bool = False  # the active model's document again: no new version, no rescoring


class ErrorPublic(BaseModel):
    """Every error: a code, a message for people, and the field at fault (when one is)."""

    error: str
    message: str
    field: str | None = None
    issues: list[dict[str, Any]] | None = None


class SegmentPublic(BaseModel):
    accepted: int
    duplicates: int
    identified: int
    ignored: int
    leads: list[LeadScorePublic]


class KeyPublic(BaseModel):
    """An API key as listed: never the key itself, only its first characters."""

    id: int
    name: str
    scope: str
    prefix: str
    created_at: str
    revoked_at: str | None


class KeysPublic(BaseModel):
    keys: list[KeyPublic]


class KeyCreated(KeyPublic):
    key: str = Field(description="The key: shown in this response only, never again")


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such lead, segment, key or model"}
}


class KeyUsagePublic(BaseModel):
    """How much a key was used (written every few seconds, so the last seconds may be missing)."""

    key_id: int
    name: str
    scope: str
    revoked: bool
    requests: int
    first_used_at: str | None
    last_used_at: str | None


class AuditPublic(BaseModel):
    entries: list[AuditEntryPublic]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page")
    key_usage: list[KeyUsagePublic]
