"""Automation: outbox, deliveries, segment members, tags, owners, rules fired, log.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger_id", sa.String(255), nullable=False),
        sa.Column("lead_pk", sa.BigInteger()),
        sa.Column("lead_id", sa.String(255)),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_us", sa.BigInteger(), nullable=False),
        sa.Column("finished_us", sa.BigInteger()),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_status_next_attempt_us", "outbox", ["status", "next_attempt_us"])
    op.create_index("ix_outbox_lead_pk", "outbox", ["lead_pk"])
    op.create_index("ix_outbox_kind_lead_pk_created_us", "outbox", ["kind", "lead_pk", "created_us"])

    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("lead_pk", sa.BigInteger()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_outbox_id", "deliveries", ["outbox_id"])
    op.create_index("ix_deliveries_at_us", "deliveries", ["at_us"])
    op.create_index("ix_deliveries_lead_pk", "deliveries", ["lead_pk"])

    op.create_table(
        "segment_members",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("segment", sa.String(255), nullable=False),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("left_us", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_segment_members"),
    )
    op.create_index("ix_segment_members_segment_left_us_lead_pk", "segment_members",
                    ["segment", "left_us", "lead_pk"])
    op.create_index("ix_segment_members_lead_pk", "segment_members", ["lead_pk"])

    op.create_table(
        "lead_tags",
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("added_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_pk", "tag", name="pk_lead_tags"),
    )
    op.create_table(
        "lead_owners",
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("assigned_us", sa.BigInteger(), nullable=False),
        sa.Column("trigger_id", sa.String(255)),
        sa.PrimaryKeyConstraint("lead_pk", name="pk_lead_owners"),
    )
    op.create_table(
        "rules_fired",
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(255), nullable=False),
        sa.Column("first_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lead_pk", "rule_id", name="pk_rules_fired"),
    )
    op.create_table(
        "automation_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("lead_pk", sa.BigInteger(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("trigger_id", sa.String(255)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_automation_log"),
    )
    op.create_index("ix_automation_log_lead_pk_id", "automation_log", ["lead_pk", "id"])
    op.create_table(
        "automation_counters",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_automation_counters"),
    )


def downgrade() -> None:
    for table in ("automation_counters", "automation_log", "rules_fired", "lead_owners",
                  "lead_tags", "segment_members", "deliveries", "outbox"):
        op.drop_table(table)
