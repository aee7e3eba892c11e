"""Predictive models in the store, and each lead's latest prediction.

Revision ID: 0011
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "predictive_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("files", sa.LargeBinary(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("manifest", Document, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("stages", Document, nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("activated_us", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_predictive_models"),
    )
    op.create_index("uq_predictive_models_one_active", "predictive_models", ["active"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))
    op.create_table(
        "lead_predictions",
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rule_score", sa.Float(), nullable=True),
        sa.Column("reasons", Document, nullable=False),
        sa.Column("scored_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lead_pk"], ["leads.id"], name="fk_lead_predictions_lead_pk_leads",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["predictive_models.id"],
                                name="fk_lead_predictions_model_id_predictive_models", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lead_pk", name="pk_lead_predictions"),
    )
    op.create_index("ix_lead_predictions_model_id", "lead_predictions", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_lead_predictions_model_id", table_name="lead_predictions")
    op.drop_table("lead_predictions")
    op.drop_index("uq_predictive_models_one_active", table_name="predictive_models")
    op.drop_table("predictive_models")
