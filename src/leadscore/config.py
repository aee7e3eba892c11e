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


def get_settings() -> Settings:
    """The settings from the environment (read now, not at import time)."""
    return Settings()
