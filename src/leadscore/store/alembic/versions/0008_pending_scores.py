"""Pending scores: a model change is scored in the background, then applied atomically.

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_scores",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["rescore_jobs.id"], name="fk_pending_scores_job_id_rescore_jobs",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lead_pk"], ["leads.id"], name="fk_pending_scores_lead_pk_leads",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "lead_pk", name="pk_pending_scores"),
    )
    # record_scores forgets a lead's pending score when the lead is scored again
    op.create_index("ix_pending_scores_lead_pk", "pending_scores", ["lead_pk"])


def downgrade() -> None:
    op.drop_index("ix_pending_scores_lead_pk", table_name="pending_scores")
    op.drop_table("pending_scores")
