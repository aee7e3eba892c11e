"""The tables of automation (triggers, outbox, deliveries, segments, owners, tags), on
the same metadata as :mod:`leadscore.store.tables`. Migration: ``0003_automation``.

Rows about a lead carry ``lead_pk`` without a foreign key on purpose: erasure deletes
them explicitly (``on_lead_erased``), and an outbox row must survive until delivered
even while its lead is being rewritten.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadscore.store.tables import ID_LENGTH, Base, BigId

OUTBOX_STATUSES = ("pending", "delivered", "dead", "skipped")


class OutboxRow(Base):
    """A message to send (webhook or e-mail), written in the transaction of its cause."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # webhook | email
    trigger_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    lead_pk: Mapped[int | None] = mapped_column(BigInteger)
    lead_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    target: Mapped[str] = mapped_column(Text)  # URL template (${VAR} kept) or address
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # one of OUTBOX_STATUSES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_us: Mapped[int] = mapped_column(BigInteger)
    next_attempt_us: Mapped[int] = mapped_column(BigInteger)
    lease_until_us: Mapped[int] = mapped_column(BigInteger, default=0)
    finished_us: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(None, "status", "next_attempt_us"),
        Index(None, "lead_pk"),
        Index(None, "kind", "lead_pk", "created_us"),
    )


class DeliveryRow(Base):
    """One delivery attempt of an outbox row: status, latency, error."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    lead_pk: Mapped[int | None] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    at_us: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "outbox_id"), Index(None, "at_us"), Index(None, "lead_pk"))


class SegmentMemberRow(Base):
    """A lead in a segment from ``entered_us`` until ``left_us`` (None: still in it)."""

    __tablename__ = "segment_members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment: Mapped[str] = mapped_column(String(ID_LENGTH))
    lead_pk: Mapped[int] = mapped_column(BigInteger)
    entered_us: Mapped[int] = mapped_column(BigInteger)
    left_us: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "segment", "left_us", "lead_pk"), Index(None, "lead_pk"))


class LeadTagRow(Base):
    """A tag on a lead."""

    __tablename__ = "lead_tags"

    lead_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tag: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    added_us: Mapped[int] = mapped_column(BigInteger)


class LeadOwnerRow(Base):
    """A lead's current owner (a rep)."""

    __tablename__ = "lead_owners"

    lead_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(ID_LENGTH))
    assigned_us: Mapped[int] = mapped_column(BigInteger)
    trigger_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class RuleFiredRow(Base):
    """The first moment a rule gave a lead points (for ``on: {rule_fired: ...}``)."""

    __tablename__ = "rules_fired"

    lead_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_us: Mapped[int] = mapped_column(BigInteger)


class AutomationLogRow(Base):
    """A lead's automation history: triggers fired, owners assigned, tags changed."""

    __tablename__ = "automation_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_pk: Mapped[int] = mapped_column(BigInteger)
    at_us: Mapped[int] = mapped_column(BigInteger)
    trigger_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "lead_pk", "id"),)


class CounterRow(Base):
    """Named counters (the round-robin position of each assign_owner action)."""

    __tablename__ = "automation_counters"

    name: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


outbox: Table = cast(Table, OutboxRow.__table__)
deliveries: Table = cast(Table, DeliveryRow.__table__)
segment_members: Table = cast(Table, SegmentMemberRow.__table__)
lead_tags: Table = cast(Table, LeadTagRow.__table__)
lead_owners: Table = cast(Table, LeadOwnerRow.__table__)
rules_fired: Table = cast(Table, RuleFiredRow.__table__)
automation_log: Table = cast(Table, AutomationLogRow.__table__)
automation_counters: Table = cast(Table, CounterRow.__table__)
