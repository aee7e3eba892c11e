"""Automation: triggers, the outbox and its dispatcher, webhooks, e-mail, owners, tags,
segments and audience exports (docs/automation.md).

:func:`install` registers the score-change and erasure listeners (idempotent); the API
calls it at start-up, and so does every CLI command that scores leads through the service.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

__all__ = ["erase_lead_rows", "install", "uninstall"]


def erase_lead_rows(session: Session, lead_pk: int, lead_id: str) -> None:
    """Erasure: the lead's outbox rows, deliveries, memberships, tags, owner, log."""
    from leadscore.actions import outbox
    from leadscore.store.tables_automation import (
        automation_log,
        lead_owners,
        lead_tags,
        rules_fired,
        segment_members,
    )

    outbox.erase_lead_rows(session, lead_pk)
    for table in (segment_members, lead_tags, lead_owners, rules_fired, automation_log):
        session.execute(delete(table).where(table.c.lead_pk == lead_pk))


def install() -> None:
    from leadscore.actions.triggers import on_changes
    from leadscore.service.leads import on_lead_erased
    from leadscore.service.scoring import on_score_change

    on_score_change(on_changes)
    on_lead_erased(erase_lead_rows)


def uninstall() -> None:
    from leadscore.actions.triggers import on_changes
    from leadscore.service.scoring import remove_score_listener

    remove_score_listener(on_changes)
