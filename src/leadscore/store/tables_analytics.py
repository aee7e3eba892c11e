"""Tables of the funnel analytics: known outcomes of leads (opportunity, customer, lost).

Defined on the same ``metadata`` as :mod:`leadscore.store.tables`; migration ``0004``
(outcomes) and ``0007`` (shared settings, dashboard indexes).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import BigInteger, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadscore.store.tables import ID_LENGTH, Base, BigId, leads

# what a lead became, in funnel order; "won"/"converted" are accepted as "customer"
OUTCOMES = ("opportunity", "customer", "lost")


class OutcomeRow(Base):
    """A known outcome of a lead: it became an opportunity, a customer, or was lost."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(16))  # one of OUTCOMES
    at_us: Mapped[int] = mapped_column(BigInteger)
    received_us: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "lead_pk", "outcome", unique=True), Index(None, "outcome", "at_us"))


outcomes: Table = cast(Table, OutcomeRow.__table__)

# the dashboard lists the leads of a stage best first: without it, a rare stage scans the score index
Index("ix_leads_stage_score_id", leads.c.stage, leads.c.score, leads.c.id)


class SettingRow(Base):
    """A value the processes sharing a store must agree on (the dashboard's session secret).

    Migration ``0007``. Written once, by whichever process needs it first."""

    __tablename__ = "settings_kv"

    name: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger)


settings_kv: Table = cast(Table, SettingRow.__table__)
# the leads list sorted by "newest leads" (keyset pages). Migration 0007 also creates
# expression indexes for the analytics (see its SQLITE_INDEXES / POSTGRESQL_INDEXES); they
# are not declared here because their SQL differs per database (migration 0013 changed the
# condition of ix_leads_converted to ``... IS NOT NULL``, which the funnel's query implies).
Index("ix_leads_created_us_id", leads.c.created_us, leads.c.id)
