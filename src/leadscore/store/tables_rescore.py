"""Scores a new model version gives, computed in the background before it is activated.

A model change is applied in two steps (:mod:`leadscore.service.rescore`): every lead is
scored by the new version into ``pending_scores`` in small transactions (the old version
stays active and keeps scoring incoming events), then one transaction activates the new
version and applies every pending score. Readers therefore see the old model's scores or
the new model's, never a mix; a crash before the last step leaves the old model active.

Defined on the same ``metadata`` as :mod:`leadscore.store.tables`; migration ``0008``.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadscore.store.tables import Base


class PendingScoreRow(Base):
    """What a rescore job's model version gives a lead (a serialised score change)."""

    __tablename__ = "pending_scores"

    job_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("rescore_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    lead_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    change: Mapped[str] = mapped_column(Text)  # JSON, see leadscore.service.scoring.change_to_json

    # record_scores forgets a lead's pending score when the lead is scored again
    __table_args__ = (Index("ix_pending_scores_lead_pk", "lead_pk"),)


pending_scores: Table = cast(Table, PendingScoreRow.__table__)
