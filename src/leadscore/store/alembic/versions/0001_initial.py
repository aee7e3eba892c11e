"""The first schema: leads with their current score, events, history, transitions,
model versions, rescore jobs and API keys.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Document = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String(255), nullable=False),
        sa.Column("attributes", Document, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float()),
        sa.Column("score", sa.Float()),
        sa.Column("stage", sa.String(255)),
        sa.Column("groups", Document),
        sa.Column("grades", Document),
        sa.Column("explanation", Document),
        sa.Column("model_version_id", sa.Integer()),
        sa.Column("scored_us", sa.BigInteger()),
        sa.Column("next_change_us", sa.BigInteger()),
        sa.Column("recorded_score", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
        sa.UniqueConstraint("lead_id", name="uq_leads_lead_id"),
    )
    op.create_index("ix_leads_score_id", "leads", ["score", "id"])
    op.create_index("ix_leads_updated_us_id", "leads", ["updated_us", "id"])
    op.create_index("ix_leads_stage", "leads", ["stage"])
    op.create_index("ix_leads_next_change_us", "leads", ["next_change_us"])
    op.create_index("ix_leads_model_version_id", "leads", ["model_version_id"])

    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(255)),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
        sa.ForeignKeyConstraint(
            ["lead_pk"], ["leads.id"], name="fk_events_lead_pk_leads", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_lead_pk_id", "events", ["lead_pk", "id"])

    op.create_table(
        "score_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(1024)),
        sa.Column("model_version_id", sa.Integer()),
        sa.Column("old_score", sa.Float()),
        sa.Column("new_score", sa.Float(), nullable=False),
        sa.Column("old_stage", sa.String(255)),
        sa.Column("new_stage", sa.String(255)),
        sa.Column("old_grades", sa.JSON()),
        sa.Column("new_grades", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_score_history"),
        sa.ForeignKeyConstraint(
            ["lead_pk"], ["leads.id"], name="fk_score_history_lead_pk_leads", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_score_history_lead_pk_id", "score_history", ["lead_pk", "id"])
    op.create_index("ix_score_history_at_us", "score_history", ["at_us"])

    op.create_table(
        "stage_transitions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("from_stage", sa.String(255)),
        sa.Column("to_stage", sa.String(255)),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stage_transitions"),
        sa.ForeignKeyConstraint(
            ["lead_pk"], ["leads.id"], name="fk_stage_transitions_lead_pk_leads", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_stage_transitions_lead_pk_id", "stage_transitions", ["lead_pk", "id"])
    op.create_index("ix_stage_transitions_to_stage_at_us", "stage_transitions", ["to_stage", "at_us"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("activated_us", sa.BigInteger()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
    )
    op.create_index(
        "uq_model_versions_one_active",
        "model_versions",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "rescore_jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("started_us", sa.BigInteger(), nullable=False),
        sa.Column("finished_us", sa.BigInteger()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_rescore_jobs"),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name="fk_rescore_jobs_model_version_id_model_versions",
        ),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )


def downgrade() -> None:
    for table in (
        "api_keys", "rescore_jobs", "model_versions", "stage_transitions", "score_history",
        "events", "leads",
    ):
        op.drop_table(table)
