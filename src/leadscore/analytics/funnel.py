"""Funnel KPIs as SQL aggregates over the store (SQLite and PostgreSQL).

Every function takes a read session and returns plain, JSON-ready data. Only the
durations of won leads are read row by row (one integer each, for the median).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from leadscore.analytics.helpers import (
    DAY_US,
    band_edges,
    fill_months,
    lead_velocity_rate,
    mean,
    median,
    month_of,
    previous_month,
    rate,
    stage_counts_over_time,
    velocity_series,
)
from leadscore.engine import iso, parse_timestamp, to_micros
from leadscore.store.tables import leads, stage_transitions
from leadscore.store.tables_analytics import outcomes

# dialect -> 'YYYY-MM' (UTC) of a column of microseconds
_MONTH_OF: dict[str, Callable[[Any], Any]] = {
    "sqlite": lambda col: func.strftime("%Y-%m", col / 1_000_000, "unixepoch"),
    "postgresql": lambda col: func.to_char(func.timezone("UTC", func.to_timestamp(col / 1_000_000.0)), "YYYY-MM"),
}
TRUE_TEXTS = ("true", "1", "yes")


# dialect -> the moment a lead was created (microseconds): its ``created_at`` attribute (set by
# imports and the demo world) when present, else when the store created it
_CREATED_US: dict[str, Callable[[], Any]] = {
    "sqlite": lambda: func.coalesce(
        cast(func.strftime("%s", leads.c.attributes["created_at"].as_string()), Integer) * 1_000_000,
        leads.c.created_us),
    "postgresql": lambda: func.coalesce(
        cast(func.extract("epoch", cast(leads.c.attributes["created_at"].as_string(), TIMESTAMP(timezone=True)))
             * 1_000_000, BigInteger),
        leads.c.created_us),
}


def created_us(session: Session) -> Any:
    """SQL: when each lead was created (its ``created_at`` attribute, else its row's creation)."""
    return _CREATED_US[session.get_bind().dialect.name]()


def _month_col(session: Session, column: Any) -> Any:
    dialect = session.get_bind().dialect.name
    month_of_column = _MONTH_OF.get(dialect)
    if month_of_column is None:
        raise NotImplementedError(f"no month expression for dialect '{dialect}'")
    return month_of_column(column)


def _attr_text(name: str) -> Any:
    return func.lower(cast(leads.c.attributes[name].as_string(), String))


def _attribute_won() -> ColumnElement[bool]:
    """A lead marked as won by its attributes (``converted: true`` or a ``won_at``)."""
    return or_(_attr_text("converted").in_(TRUE_TEXTS), leads.c.attributes["won_at"].as_string().is_not(None))


def _has_outcome(kind: str) -> ColumnElement[bool]:
    return exists().where(and_(outcomes.c.lead_pk == leads.c.id, outcomes.c.outcome == kind))


def won_condition() -> ColumnElement[bool]:
    """A lead that became a customer: an outcome, or the attributes say so."""
    return or_(_has_outcome("customer"), _attribute_won())


def opportunity_condition() -> ColumnElement[bool]:
    """A lead that reached the opportunity stage (every customer did)."""
    return or_(_has_outcome("opportunity"), won_condition())


def lead_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(leads)).scalar_one())


def score_distribution(session: Session, low: float = 0.0, high: float = 100.0, bands: int = 10) -> list[dict[str, Any]]:
    """How many scored leads fall in each of ``bands`` equal score bands."""
    width = (high - low) / bands or 1.0
    index = cast((leads.c.score - low) / width, Integer)
    rows = session.execute(
        select(index.label("band"), func.count()).where(leads.c.score.is_not(None)).group_by(index)
    )
    counts = [0] * bands
    for band, n in rows:
        counts[min(bands - 1, max(0, int(band)))] += int(n)
    return [{"from": a, "to": b, "leads": n} for (a, b), n in zip(band_edges(low, high, bands), counts, strict=True)]


@dataclass(frozen=True)
class Facts:
    """Leads counted by score band, stage, outcome and recency, in one scan of the table."""

    low: float
    high: float
    bands: int
    rows: list[tuple[int | None, str | None, bool, bool, bool, int]]  # band, stage, won, opp, recent, n

    def by_band(self, bands: int) -> list[dict[str, Any]]:
        """Leads, customers and conversion per band (``bands`` must divide the facts' bands)."""
        step = self.bands // bands
        totals = [[0, 0] for _ in range(bands)]
        for band, _, won, _, _, n in self.rows:
            if band is None:
                continue
            i = min(bands - 1, max(0, band // step))
            totals[i][0] += n
            totals[i][1] += n if won else 0
        return [{"from": a, "to": b, "leads": n, "customers": w, "conversion": rate(w, n)}
                for (a, b), (n, w) in zip(band_edges(self.low, self.high, bands), totals, strict=True)]

    def by_stage(self) -> list[dict[str, Any]]:
        totals: dict[str | None, list[int]] = {}
        for _, stage, won, _, _, n in self.rows:
            entry = totals.setdefault(stage, [0, 0])
            entry[0] += n
            entry[1] += n if won else 0
        return [{"stage": stage, "leads": n, "customers": w, "conversion": rate(w, n)}
                for stage, (n, w) in sorted(totals.items(), key=lambda kv: -kv[1][0])]

    def funnel(self) -> dict[str, Any]:
        total = sum(r[5] for r in self.rows)
        n_won = sum(r[5] for r in self.rows if r[2])
        n_opp = sum(r[5] for r in self.rows if r[2] or r[3])
        return {"leads": total, "opportunities": n_opp, "customers": n_won,
                "lead_to_opportunity": rate(n_opp, total), "opportunity_to_customer": rate(n_won, n_opp),
                "lead_to_customer": rate(n_won, total)}

    def created_recently(self) -> int:
        return sum(r[5] for r in self.rows if r[4])


def lead_facts(session: Session, now_us: int, low: float = 0.0, high: float = 100.0, bands: int = 10,
               days: int = 30) -> Facts:
    """One aggregate over the leads: band x stage x customer x opportunity x created in the
    last ``days`` days (the leads table is read once)."""
    width = (high - low) / bands or 1.0
    band = cast((leads.c.score - low) / width, Integer)
    created = created_us(session)
    since = now_us - days * DAY_US
    won = case((won_condition(), 1), else_=0)
    opp = case((_has_outcome("opportunity"), 1), else_=0)
    recent = case((and_(created >= since, created <= now_us), 1), else_=0)
    rows = session.execute(
        select(band, leads.c.stage, won, opp, recent, func.count()).group_by(band, leads.c.stage, won, opp, recent)
    )
    return Facts(low, high, bands, [
        (None if b is None else min(bands - 1, max(0, int(b))), stage, bool(w), bool(o), bool(r), int(n))
        for b, stage, w, o, r, n in rows
    ])


def conversion_by_band(session: Session, low: float = 0.0, high: float = 100.0, bands: int = 5) -> list[dict[str, Any]]:
    """Leads, customers and conversion rate per score band."""
    return lead_facts(session, 0, low, high, bands).by_band(bands)


def conversion_by_stage(session: Session) -> list[dict[str, Any]]:
    """Leads, customers and conversion rate per current stage."""
    return lead_facts(session, 0).by_stage()


def funnel_rates(session: Session) -> dict[str, Any]:
    """Lead -> opportunity -> customer counts and rates."""
    return lead_facts(session, 0).funnel()


def won_moments(session: Session) -> list[tuple[int, int]]:
    """``(created_us, won_us)`` of every won lead (outcomes first, else the attributes)."""
    recorded = session.execute(
        select(leads.c.id, created_us(session), outcomes.c.at_us)
        .join(outcomes, outcomes.c.lead_pk == leads.c.id).where(outcomes.c.outcome == "customer")
    )
    out: dict[int, tuple[int, int]] = {pk: (created, at) for pk, created, at in recorded}
    by_attributes = session.execute(
        select(leads.c.id, created_us(session), leads.c.attributes["won_at"].as_string())
        .where(leads.c.attributes["won_at"].as_string().is_not(None))
    )
    for pk, created, won_at in by_attributes:
        if pk in out:
            continue
        try:
            out[pk] = (created, to_micros(parse_timestamp(str(won_at))))
        except ValueError:
            continue
    return list(out.values())


def sales_cycle(session: Session, moments: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Days from a lead's creation to its win: average and median over won leads."""
    moments = won_moments(session) if moments is None else moments
    days = [max(0, won - created) / DAY_US for created, won in moments]
    average, middle = mean(days), median(days)
    return {"customers": len(days),
            "average_days": None if average is None else round(average, 1),
            "median_days": None if middle is None else round(middle, 1)}


def conversion_last_days(session: Session, now_us: int, days: int = 30, *, facts: Facts | None = None,
                         moments: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Leads created and customers won in the last ``days`` days, and their ratio."""
    since = now_us - days * DAY_US
    if facts is None:
        created_at = created_us(session)
        created = int(session.execute(
            select(func.count()).select_from(leads).where(created_at >= since, created_at <= now_us)
        ).scalar_one())
    else:
        created = facts.created_recently()
    moments = won_moments(session) if moments is None else moments
    won = sum(1 for _, at in moments if since <= at <= now_us)
    return {"days": days, "leads_created": created, "customers_won": won, "conversion": rate(won, created)}


def qualified_stages(stage_names: list[str]) -> list[str]:
    """The stages that count as qualified: every stage of the model but the lowest (the last)."""
    return stage_names[:-1] if len(stage_names) > 1 else list(stage_names)


def monthly_qualified(session: Session, stages: list[str] | None) -> dict[str, int]:
    """Leads qualified per month: first entry into one of ``stages`` (stage transitions);
    with no stages, every lead counts as qualified when it was created."""
    if not stages:
        month = _month_col(session, created_us(session))
        rows = session.execute(select(month, func.count()).group_by(month))
        return fill_months({m: int(n) for m, n in rows if m})
    first = (
        select(stage_transitions.c.lead_pk, func.min(stage_transitions.c.at_us).label("at_us"))
        .where(stage_transitions.c.to_stage.in_(stages)).group_by(stage_transitions.c.lead_pk).subquery()
    )
    month = _month_col(session, first.c.at_us)
    rows = session.execute(select(month, func.count()).group_by(month))
    return fill_months({m: int(n) for m, n in rows if m})


def lead_velocity(session: Session, now_us: int, stages: list[str] | None) -> dict[str, Any]:
    """Lead Velocity Rate: qualified leads this month against last month, in %."""
    monthly = monthly_qualified(session, stages)
    this = month_of(now_us)
    last = previous_month(this)
    return {
        "month": this, "qualified_this_month": monthly.get(this, 0),
        "qualified_last_month": monthly.get(last, 0),
        "lvr": lead_velocity_rate(monthly.get(this, 0), monthly.get(last, 0)),
        "stages": stages or [], "monthly": velocity_series(monthly),
    }


def stage_counts_history(session: Session, months: int = 12, now_us: int | None = None) -> dict[str, Any]:
    """Leads in each stage at the end of each of the last ``months`` months (from transitions)."""
    month = _month_col(session, stage_transitions.c.at_us)
    rows = list(session.execute(
        select(month, stage_transitions.c.from_stage, stage_transitions.c.to_stage, func.count())
        .group_by(month, stage_transitions.c.from_stage, stage_transitions.c.to_stage)
    ))
    if not rows:
        return {"months": [], "stages": {}}
    last = month_of(now_us) if now_us is not None else max(r[0] for r in rows)
    series: list[str] = [last]
    while len(series) < months:
        series.insert(0, previous_month(series[0]))
    moves = [(str(m), f, t, int(n)) for m, f, t, n in rows if f != t]
    return {"months": series, "stages": stage_counts_over_time(moves, series)}


def existing_table(session: Session, name: str) -> Table | None:
    """A table another feature owns, reflected when it exists in this database."""
    bind = session.get_bind()
    if name not in inspect(bind).get_table_names():
        return None
    return Table(name, MetaData(), autoload_with=bind)


def webhook_health(session: Session, now_us: int, days: int = 7) -> dict[str, Any] | None:
    """Webhook deliveries of the last ``days`` days: attempts, failures, latency
    (None when the deliveries table of the automation feature does not exist)."""
    table = existing_table(session, "deliveries")
    if table is None or not {"ok", "at_us"} <= set(table.c.keys()):
        return None
    since = now_us - days * DAY_US
    failed = case((table.c.ok.is_(False), 1), else_=0)
    latency = func.avg(table.c.latency_ms) if "latency_ms" in table.c else func.avg(None)
    total, n_failed, avg_ms, last_us = session.execute(
        select(func.count(), func.sum(failed), latency, func.max(table.c.at_us)).where(table.c.at_us >= since)
    ).one()
    total, n_failed = int(total), int(n_failed or 0)
    return {"days": days, "attempts": total, "failed": n_failed, "failure_rate": rate(n_failed, total),
            "average_latency_ms": None if avg_ms is None else round(float(avg_ms), 1),
            "last_attempt_at": None if last_us is None else iso(int(last_us))}


def segment_sizes(session: Session) -> list[dict[str, Any]] | None:
    """Current members per segment (None when the segments feature's table does not exist)."""
    table = existing_table(session, "segment_members")
    if table is None:
        return None
    rows = session.execute(
        select(table.c.segment, func.count()).where(table.c.left_us.is_(None))
        .group_by(table.c.segment).order_by(table.c.segment)
    )
    return [{"segment": name, "leads": int(n)} for name, n in rows]
