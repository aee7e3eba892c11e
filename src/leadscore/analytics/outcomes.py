"""Recording outcomes: a lead became an opportunity, a customer, or was lost.

One row per lead and outcome (the latest report of the same outcome wins). A lead that
became a customer also counts as an opportunity in the funnel rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from leadscore.engine import iso, parse_timestamp, to_micros
from leadscore.ingest.normalise import kind_of
from leadscore.service.errors import InvalidRequest, NotFound
from leadscore.service.leads import on_lead_erased
from leadscore.store.tables import leads
from leadscore.store.tables_analytics import OUTCOMES, outcomes

ALIASES = {"won": "customer", "converted": "customer", "customer": "customer",
           "opportunity": "opportunity", "sql": "opportunity", "lost": "lost"}


def normalise_outcome(value: str) -> str:
    """``customer``, ``opportunity`` or ``lost`` (``won``/``converted`` mean customer)."""
    found = ALIASES.get(str(value).strip().lower())
    if found is None:
        raise InvalidRequest(
            f"unknown outcome '{value}'; use one of {', '.join(OUTCOMES)} (or won, converted)", "outcome"
        )
    return found


def parse_moment(value: Any, field: str, now_us: int) -> int:
    """The moment of an outcome: an ISO 8601 text (none or empty: now). Any other JSON
    value (a number, ``NaN``, ``Infinity``, an object) is refused as what it is."""
    if value is None or value == "":
        return now_us
    if not isinstance(value, str):
        raise InvalidRequest(
            f"{field}: expected an ISO 8601 timestamp text (e.g. 2025-03-01T14:30:00Z), got {kind_of(value)}",
            field,
        )
    try:
        return to_micros(parse_timestamp(str(value)))
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", field) from None


@dataclass(frozen=True)
class Recorded:
    lead_id: str
    outcome: str
    at_us: int
    created: bool

    def public(self) -> dict[str, Any]:
        return {"lead_id": self.lead_id, "outcome": self.outcome, "at": iso(self.at_us), "created": self.created}


def record_outcome(session: Session, lead_id: str, outcome: str, at_us: int, now_us: int) -> Recorded:
    """Store (or move) one outcome of a known lead."""
    kind = normalise_outcome(outcome)
    pk = session.execute(select(leads.c.id).where(leads.c.lead_id == str(lead_id))).scalar_one_or_none()
    if pk is None:
        raise NotFound(f"no lead with lead_id '{lead_id}'", "lead_id")
    existing = session.execute(
        select(outcomes.c.id).where(outcomes.c.lead_pk == pk, outcomes.c.outcome == kind)
    ).scalar_one_or_none()
    if existing is None:
        session.execute(outcomes.insert().values(lead_pk=pk, outcome=kind, at_us=at_us, received_us=now_us))
    else:
        session.execute(outcomes.update().where(outcomes.c.id == existing).values(at_us=at_us, received_us=now_us))
    return Recorded(str(lead_id), kind, at_us, existing is None)


def import_outcome_rows(session: Session, rows: Iterable[Mapping[str, Any]], now_us: int) -> dict[str, int]:
    """Outcomes from table rows, written in batches. Two shapes are understood:

    - ``lead_id, outcome, at`` (one outcome per row);
    - ``lead_id, converted, converted_at, opportunity_at`` (the demo world's outcomes.csv).

    Unknown leads are counted and skipped; a lead's outcome given again is moved.
    """
    counts = {"recorded": 0, "unknown_leads": 0, "rows": 0}
    pks: dict[str, int] = {str(lead_id): pk for lead_id, pk in session.execute(select(leads.c.lead_id, leads.c.id))}
    existing = {(pk, kind): ident for ident, pk, kind in
                session.execute(select(outcomes.c.id, outcomes.c.lead_pk, outcomes.c.outcome))}
    found: dict[tuple[int, str], int] = {}
    for number, row in enumerate(rows, start=1):
        counts["rows"] += 1
        lead_id = str(row.get("lead_id", ""))
        pk = pks.get(lead_id)
        if pk is None:
            counts["unknown_leads"] += 1
            continue
        pairs: list[tuple[str, Any]] = []
        if row.get("outcome"):
            pairs.append((normalise_outcome(str(row["outcome"])), row.get("at")))
        else:
            if row.get("opportunity_at"):
                pairs.append(("opportunity", row["opportunity_at"]))
            if str(row.get("converted", "")).strip().lower() in ("true", "1", "yes") and row.get("converted_at"):
                pairs.append(("customer", row["converted_at"]))
        for kind, at in pairs:
            found[(pk, kind)] = parse_moment(at, f"row {number}: at", now_us)
            counts["recorded"] += 1
    inserts = [{"lead_pk": pk, "outcome": kind, "at_us": at, "received_us": now_us}
               for (pk, kind), at in found.items() if (pk, kind) not in existing]
    updates = [{"b_id": existing[key], "p_at": at, "p_received": now_us}
               for key, at in found.items() if key in existing]
    if inserts:
        session.execute(outcomes.insert(), inserts)
    if updates:
        session.execute(outcomes.update().where(outcomes.c.id == bindparam("b_id"))
                        .values(at_us=bindparam("p_at"), received_us=bindparam("p_received")), updates)
    return counts


def lead_outcomes(session: Session, lead_id: str) -> list[dict[str, Any]]:
    """A lead's recorded outcomes, oldest first."""
    rows = session.execute(
        select(outcomes.c.outcome, outcomes.c.at_us).join(leads, leads.c.id == outcomes.c.lead_pk)
        .where(leads.c.lead_id == lead_id).order_by(outcomes.c.at_us)
    )
    return [{"outcome": o, "at": iso(at)} for o, at in rows]


@on_lead_erased
def _erase_outcomes(session: Session, lead_pk: int, _lead_id: str) -> None:
    session.execute(delete(outcomes).where(outcomes.c.lead_pk == lead_pk))
