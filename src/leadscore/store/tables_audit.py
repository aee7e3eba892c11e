"""Tables of the audit log (docs/security.md): who changed the model, erased or exported a
lead, created or revoked a key, purged events - and how much each API key is used.

Defined on the same ``metadata`` as :mod:`leadscore.store.tables`; migration ``0009``.
An audit row never holds a lead's id: only a keyed hash of it (:mod:`leadscore.service.audit`).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from leadscore.store.tables import ID_LENGTH, Base, BigId


class AuditRow(Base):
    """One audited action: ``action`` by ``actor`` on ``subject`` at ``at_us``."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))  # see leadscore.service.audit.ACTIONS
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))  # "key 3 (crm-sync)", "cli", "start-up"
    subject: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # "lead:<hash>", "key 3", "model version 2"
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index(None, "action", "id"), Index(None, "subject"))


class KeyUsageRow(Base):
    """How much an API key is used: counted in memory, written every few seconds (not per request)."""

    __tablename__ = "api_key_usage"

    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_used_us: Mapped[int] = mapped_column(BigInteger)
    last_used_us: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)


audit_log: Table = cast(Table, AuditRow.__table__)
api_key_usage: Table = cast(Table, KeyUsageRow.__table__)
