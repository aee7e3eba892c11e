"""Three indexes that no query uses, dropped (perf, issue #3: each batch of 1,000 events
inserts ~400 leads, rescores ~200 and adds ~450 rows of history, each index updated for each).

- ``ix_leads_stage``: a prefix of ``ix_leads_stage_score_id`` (migration 0004), which the
  planners already chose for every query on the stage (the lists and the dashboard's
  filtered by stage, the counts per stage, the stages in use);
- ``ix_leads_model_version_id``: the queries on the column (the leads a model change has
  still to score) ask for ``model_version_id IS NULL OR model_version_id <> ?`` in key
  order, which neither database answers from an index on the column (they walk the key);
- ``ix_score_history_at_us``: the history is read by lead (``ix_score_history_lead_pk_id``),
  never by moment.

Revision ID: 0012
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0004"  # after the (stage, score, id) index that replaces (stage)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_leads_stage", table_name="leads")
    op.drop_index("ix_leads_model_version_id", table_name="leads")
    op.drop_index("ix_score_history_at_us", table_name="score_history")


def downgrade() -> None:
    op.create_index("ix_score_history_at_us", "score_history", ["at_us"])
    op.create_index("ix_leads_model_version_id", "leads", ["model_version_id"])
    op.create_index("ix_leads_stage", "leads", ["stage"])
