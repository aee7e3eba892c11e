"""Settings of the service and the store, read from ``LEADSCORE_*`` environment variables.

Settings are read by :func:`get_settings` when asked for, never at import time; tests
build a :class:`Settings` directly and pass it to ``create_app``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///leadscore.db"


class Settings(BaseSettings):
    """Everything the service can be told. Each field is ``LEADSCORE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite:///file.db (default) or postgresql+psycopg://...",
    )
    model_file: Path | None = Field(
        default=None, description="Scoring model to activate at start-up when it differs from the active one."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=16 * 1024 * 1024, description="Larger request bodies get 413.")
    max_batch_events: int = Field(default=10_000, description="Most events in one POST /v1/events.")
    future_tolerance_seconds: int = Field(
        default=300, description="Events stamped further ahead of the server clock are refused."
    )
    scheduler: bool = Field(default=True, description="Run the time-driven rescoring scheduler in serve.")
    rescore_interval_seconds: float = Field(
        default=60.0, description="How often the scheduler looks for leads whose score can have changed."
    )
    decay_rescore_seconds: int = Field(
        default=3600, description="Leads with decaying points are rescored at least this often."
    )
    history_min_delta: float = Field(
        default=1.0,
        description="A time-driven change is recorded in the history when the stage or a grade "
        "changes, or the score moved at least this much since the last recorded change.",
    )
    rescore_chunk: int = Field(default=500, description="Leads rescored per transaction in background jobs.")
    recent_events: int = Field(default=50, description="Events shown in GET /v1/leads/{lead_id}.")
    event_cache_events: int = Field(
        default=200_000, ge=0,
        description="Stored events a server process keeps decoded, by lead, for the leads it "
        "touched lately (about 200 bytes each; 0 turns the cache off). A batch then reads "
        "only those leads' counts of events, not the events (store/event_cache.py).",
    )
    # security limits (docs/security.md); a rate of 0 turns rate limiting off
    rate_limit_per_second: float = Field(
        default=1000.0, ge=0, description="Requests per second allowed per API key (token bucket); 0 = no limit."
    )
    rate_limit_burst: int = Field(
        default=2000, ge=0, description="Requests a key may make at once before the per-second rate applies."
    )
    rate_limit_file: Path | None = Field(
        default=None,
        description="Set by `serve --workers N` (N > 1): the file through which the worker processes "
        "share each key's rate limit. Unset: each process keeps its own.",
    )
    max_attributes: int = Field(
        default=200, ge=1, description="Most attributes in one lead update, or properties in one event."
    )
    max_key_length: int = Field(default=128, ge=1, description="Longest attribute or property name (characters).")
    max_value_bytes: int = Field(
        default=8192, ge=1, description="Longest text value of an attribute or property (UTF-8 bytes, after NFC)."
    )
    max_nesting_depth: int = Field(
        default=8, ge=1, description="Deepest nesting of objects and lists in attributes or properties."
    )
    # privacy (docs/security.md)
    retention_days: float | None = Field(
        default=None, gt=0,
        description="Purge events whose timestamp is more than this many days old (hourly, by the "
        "service; or `leadscore purge-events`). Unset: events are kept. Current scores are kept "
        "until each lead is next rescored.",
    )
    retention_check_seconds: float = Field(
        default=3600.0, gt=0, description="How often the service purges old events when retention_days is set."
    )
    key_usage_flush_seconds: float = Field(
        default=10.0, gt=0, description="How often the per-key request counts are written to the store."
    )
    predictive_upload: bool = Field(
        default=True,
        description="Allow PUT /v1/predictive (an admin key). A predictive model is a Python pickle: "
        "whoever may upload one can run code on the server. false: the route answers 403 and "
        "models are activated only by `leadscore predictive activate` on the server itself.",
    )
    webhook_allow: str = Field(
        default="",
        description="Webhook targets allowed although not public: comma-separated host names, "
        "addresses and networks (127.0.0.1,10.0.0.0/8,crm.internal). Others on private, loopback "
        "or link-local addresses are refused.",
    )


def get_settings() -> Settings:
    """The settings from the environment (read now, not at import time)."""
    return Settings()
