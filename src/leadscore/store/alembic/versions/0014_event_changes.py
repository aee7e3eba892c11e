"""``event_changes``: the number of deletions and updates of ``events`` rows, kept by
triggers, so that a process may cache the events it has read (perf, issue #3;
leadscore.store.event_cache explains why that number and each lead's count of events
make such a cache exact).

SQLite has only row triggers: each deleted or updated row adds one (a purge of 5,000
events runs 5,000 one-row UPDATEs, a few milliseconds). PostgreSQL counts statements
(``FOR EACH STATEMENT``), TRUNCATE included. A cascade from a deleted lead fires them too.

Revision ID: 0014
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = None

_BUMP = "UPDATE event_changes SET changes = changes + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "event_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_changes"),
    )
    op.execute("INSERT INTO event_changes (id, changes) VALUES (1, 0)")
    if op.get_bind().dialect.name == "sqlite":
        for kind in ("DELETE", "UPDATE"):
            op.execute(f"CREATE TRIGGER events_{kind.lower()}_counted AFTER {kind} ON events "
                       f"BEGIN {_BUMP}; END")
    else:
        op.execute("CREATE FUNCTION leadscore_count_event_changes() RETURNS trigger "
                   f"LANGUAGE plpgsql AS $$ BEGIN {_BUMP}; RETURN NULL; END $$")
        op.execute("CREATE TRIGGER events_changes_counted AFTER DELETE OR UPDATE OR TRUNCATE ON events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION leadscore_count_event_changes()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for kind in ("delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS events_{kind}_counted")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_changes_counted ON events")
        op.execute("DROP FUNCTION IF EXISTS leadscore_count_event_changes()")
    op.drop_table("event_changes")
