"""Tables of predictive scoring in the service: stored models and each lead's prediction.

A trained model directory (``leadscore train --out DIR``) is stored whole, as a zip blob,
so that every process sharing the store loads the same model; at most one is active.
Each scored lead keeps its latest prediction beside its rule score.

Defined on the same ``metadata`` as :mod:`leadscore.store.tables`; migration ``0011``.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from leadscore.store.tables import ID_LENGTH, Base, Document

POLICIES = ("rules", "predictive", "blend")


class PredictiveModelRow(Base):
    """A trained predictive model (its directory's files) and how it sets the final score."""

    __tablename__ = "predictive_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(ID_LENGTH))
    files: Mapped[bytes] = mapped_column(LargeBinary)  # zip of the model directory
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of files
    manifest: Mapped[dict[str, Any]] = mapped_column(Document)
    policy: Mapped[str] = mapped_column(String(16))  # one of POLICIES
    weight: Mapped[float] = mapped_column(Float)  # blend: share of the predictive score
    stages: Mapped[list[Any] | None] = mapped_column(Document)  # [[name, min_score], ...] or None
    created_us: Mapped[int] = mapped_column(BigInteger)
    activated_us: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("uq_predictive_models_one_active", "active", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )


class LeadPredictionRow(Base):
    """A lead's latest prediction: probability, 0-100 score, reasons, and the rule score."""

    __tablename__ = "lead_predictions"

    lead_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[int] = mapped_column(Integer, ForeignKey("predictive_models.id", ondelete="CASCADE"))
    probability: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    rule_score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[dict[str, Any]] = mapped_column(Document)  # {"positive": [...], "negative": [...]}
    scored_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "model_id"),)


predictive_models: Table = cast(Table, PredictiveModelRow.__table__)
lead_predictions: Table = cast(Table, LeadPredictionRow.__table__)
