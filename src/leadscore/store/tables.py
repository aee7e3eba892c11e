"""The tables of the store (SQLAlchemy 2 ORM). Migrations in ``alembic/versions`` mirror them.

Every moment is an integer: microseconds since the Unix epoch, UTC (``*_us``), the unit
the engine computes in, so that no time zone or precision is lost on either database.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from leadscore.ingest.normalise import (
    ID_LENGTH as ID_LENGTH,  # re-exported: the readers of import and send refuse longer ids
)
from leadscore.scopes import SCOPES as SCOPES  # re-exported

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit primary key that is still SQLite's rowid alias (INTEGER PRIMARY KEY).
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Document = JSON().with_variant(JSONB(), "postgresql")

CAUSES = ("event", "attributes", "time", "model", "import")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class LeadRow(Base):
    """A lead, its attributes and its current score (one row per lead)."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(Document, default=dict)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    # the current score (None until first scored)
    total: Mapped[float | None] = mapped_column(Float)  # exact
    score: Mapped[float | None] = mapped_column(Float)  # rounded to 2 decimals, as reported
    stage: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    groups: Mapped[dict[str, float] | None] = mapped_column(Document)  # rounded
    grades: Mapped[dict[str, str | None] | None] = mapped_column(Document)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(Document)
    model_version_id: Mapped[int | None] = mapped_column(Integer)
    scored_us: Mapped[int | None] = mapped_column(BigInteger)
    # the earliest moment the score can change without new events (None: never)
    next_change_us: Mapped[int | None] = mapped_column(BigInteger)
    # the score as of the last history row (time-driven drift is recorded in steps)
    recorded_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index(None, "score", "id"),
        Index(None, "updated_us", "id"),
        Index(None, "next_change_us"),
        # no index of (stage) nor of (model_version_id): migration 0012 (perf, issue #3)
    )


class EventRow(Base):
    """One event; ``event_id`` is unique across the store (the first stored wins)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), unique=True)
    lead_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(ID_LENGTH))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "lead_pk", "id"),)


class HistoryRow(Base):
    """A change of a lead's score or stage, and what caused it."""

    __tablename__ = "score_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="CASCADE"))
    at_us: Mapped[int] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(16))  # one of CAUSES
    detail: Mapped[str | None] = mapped_column(String(1024))
    model_version_id: Mapped[int | None] = mapped_column(Integer)
    old_score: Mapped[float | None] = mapped_column(Float)
    new_score: Mapped[float] = mapped_column(Float)
    old_stage: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    new_stage: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    old_grades: Mapped[dict[str, str | None] | None] = mapped_column(JSON)
    new_grades: Mapped[dict[str, str | None] | None] = mapped_column(JSON)

    # read by lead only: no index of at_us (migration 0012, perf, issue #3)
    __table_args__ = (Index(None, "lead_pk", "id"),)


class TransitionRow(Base):
    """A lead moved from one stage to another."""

    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="CASCADE"))
    at_us: Mapped[int] = mapped_column(BigInteger)
    from_stage: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    to_stage: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    cause: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index(None, "lead_pk", "id"), Index(None, "to_stage", "at_us"))


class ModelVersionRow(Base):
    """A stored scoring-model document; exactly one version is active."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(ID_LENGTH))
    document: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(8))  # yaml | json
    checksum: Mapped[str] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger)
    activated_us: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )


class RescoreJobRow(Base):
    """Rescoring every lead after a model change, with its progress."""

    __tablename__ = "rescore_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id"))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    started_us: Mapped[int] = mapped_column(BigInteger)
    finished_us: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(ID_LENGTH))
    scope: Mapped[str] = mapped_column(String(16))  # one of SCOPES
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise a key
    created_us: Mapped[int] = mapped_column(BigInteger)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger)


class EventChangesRow(Base):
    """One row (id 1): how many times ``events`` rows were deleted or updated, counted by
    the database's triggers (migration 0014). A process's cache of stored events is
    valid while this number stays the same (store/event_cache.py)."""

    __tablename__ = "event_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    changes: Mapped[int] = mapped_column(BigInteger)


leads: Table = cast(Table, LeadRow.__table__)
events: Table = cast(Table, EventRow.__table__)
score_history: Table = cast(Table, HistoryRow.__table__)
stage_transitions: Table = cast(Table, TransitionRow.__table__)
model_versions: Table = cast(Table, ModelVersionRow.__table__)
rescore_jobs: Table = cast(Table, RescoreJobRow.__table__)
api_keys: Table = cast(Table, ApiKeyRow.__table__)
