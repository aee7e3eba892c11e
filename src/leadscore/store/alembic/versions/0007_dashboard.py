"""Dashboard: shared settings (the session secret kept by the first process) and indexes
for the analytics aggregates and the leads list.

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


# Partial expression indexes of the funnel analytics (leadscore.analytics.funnel spells the same
# expressions): a lead's creation moment, and the attributes that mark it as won. SQLite
# matches an expression index only when the query has the same expression, constants included;
# partial indexes (their WHERE is the query's condition) hold only the few leads that match,
# and the planner picks them whether or not ANALYZE has run.
_SQLITE_WON_AT = "json_extract(attributes, '$.\"won_at\"')"
_SQLITE_CONVERTED = "lower(json_extract(attributes, '$.\"converted\"'))"
# name -> (indexed expression, WHERE of a partial index or None)
SQLITE_INDEXES: dict[str, tuple[str, str | None]] = {
    "ix_leads_created_at_us": (
        "coalesce(CAST(strftime('%s', json_extract(attributes, '$.\"created_at\"')) AS INTEGER) * 1000000, "
        "created_us)", None),
    "ix_leads_won_at": (_SQLITE_WON_AT, f"{_SQLITE_WON_AT} IS NOT NULL"),
    "ix_leads_converted": (_SQLITE_CONVERTED, f"{_SQLITE_CONVERTED} IN ('true', '1', 'yes')"),
}
# PostgreSQL reads JSONB fast enough to scan (see docs/benchmarks.md), and casting text to
# a timestamp is not immutable (not indexable): no expression index there.


def _indexes() -> dict[str, tuple[str, str | None]]:
    return SQLITE_INDEXES if op.get_bind().dialect.name == "sqlite" else {}


def upgrade() -> None:
    op.create_table(
        "settings_kv",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_settings_kv"),
    )
    for name, (expression, where) in _indexes().items():
        op.execute(f"CREATE INDEX {name} ON leads ({expression})" + (f" WHERE {where}" if where else ""))
    # the leads list sorted by "newest leads" walks this index (keyset pages)
    op.create_index("ix_leads_created_us_id", "leads", ["created_us", "id"])


def downgrade() -> None:
    op.drop_index("ix_leads_created_us_id", table_name="leads")
    for name in _indexes():
        op.execute(f"DROP INDEX {name}")
    op.drop_table("settings_kv")
