"""Outcomes of leads (opportunity, customer, lost) for the funnel analytics, and an index
of leads by stage and score for the dashboard.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lead_pk"], ["leads.id"], name="fk_outcomes_lead_pk_leads",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_outcomes"),
    )
    op.create_index("ix_outcomes_lead_pk_outcome", "outcomes", ["lead_pk", "outcome"], unique=True)
    op.create_index("ix_outcomes_outcome_at_us", "outcomes", ["outcome", "at_us"])
    op.create_index("ix_leads_stage_score_id", "leads", ["stage", "score", "id"])


def downgrade() -> None:
    op.drop_index("ix_leads_stage_score_id", table_name="leads")
    op.drop_index("ix_outcomes_outcome_at_us", table_name="outcomes")
    op.drop_index("ix_outcomes_lead_pk_outcome", table_name="outcomes")
    op.drop_table("outcomes")
