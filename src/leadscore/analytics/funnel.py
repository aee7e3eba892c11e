"""Funnel KPIs as SQL aggregates over the store (SQLite and PostgreSQL).

Every function takes a read session and returns plain, JSON-ready data. Only the
durations of won leads are read row by row (one integer each, for the median).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Integer,
    MetaData,
    Table,
    and_,
    case,
    cast,
    func,
    inspect,
    literal_column,
    or_,
    select,
    union,
)
from sqlalchemy.orm import Session

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


# The JSON attributes the funnel reads, as literal SQL: the same text is indexed by
# migration 0007 (an expression index is only used when the query spells the expression
# exactly as the index, constants included; SQLAlchemy would send the JSON path as a bound
# parameter). ``CREATED_US_SQLITE``: when a lead was created (microseconds), its
# ``created_at`` attribute (set by imports and the demo world) when present, else when the
# store created it.
ATTRIBUTE_SQL: dict[str, Callable[[str], str]] = {
    "sqlite": lambda name: f"json_extract(leads.attributes, '$.\"{name}\"')",
    "postgresql": lambda name: f"(leads.attributes ->> '{name}')",
}
CREATED_US_SQLITE = ("coalesce(CAST(strftime('%s', json_extract(leads.attributes, '$.\"created_at\"')) AS INTEGER)"
                     " * 1000000, leads.created_us)")
WON_TEXTS_SQL = "(" + ", ".join(f"'{t}'" for t in TRUE_TEXTS) + ")"


def _dialect(session: Session) -> str:
    name = str(session.get_bind().dialect.name)
    if name not in ATTRIBUTE_SQL:
        raise NotImplementedError(f"no analytics SQL for dialect '{name}'")
    return name


def _attribute(session: Session, name: str) -> Any:
    return literal_column(ATTRIBUTE_SQL[_dialect(session)](name))


def created_us(session: Session) -> Any:
    """SQL: when each lead was created (its ``created_at`` attribute, else its row's creation)."""
    if _dialect(session) == "sqlite":
        return literal_column(CREATED_US_SQLITE)
    return func.coalesce(
        cast(func.extract("epoch", cast(_attribute(session, "created_at"), TIMESTAMP(timezone=True)))
             * 1_000_000, BigInteger),
        leads.c.created_us)


def _month_col(session: Session, column: Any) -> Any:
    dialect = session.get_bind().dialect.name
    month_of_column = _MONTH_OF.get(dialect)
    if month_of_column is None:
        raise NotImplementedError(f"no month expression for dialect '{dialect}'")
    return month_of_column(column)


def _attribute_won_ids(session: Session) -> list[Any]:
    """Queries of the ids of leads marked as won by their attributes (``converted: true``, a
    ``won_at``); each is one index range (migration 0007) instead of a scan of every lead."""
    converted: Any = literal_column(f"lower({ATTRIBUTE_SQL[_dialect(session)]('converted')}) IN {WON_TEXTS_SQL}")
    return [select(leads.c.id).where(converted),
            select(leads.c.id).where(_attribute(session, "won_at").is_not(None))]


def _outcome_ids(kind: str) -> Any:
    return select(outcomes.c.lead_pk.label("id")).where(outcomes.c.outcome == kind)


def won_ids(session: Session) -> Any:
    """Ids of the leads that became customers: an outcome, or the attributes say so."""
    return union(_outcome_ids("customer"), *_attribute_won_ids(session))


def opportunity_ids(session: Session) -> Any:
    """Ids of the leads that reached the opportunity stage (every customer did)."""
    return union(_outcome_ids("opportunity"), _outcome_ids("customer"), *_attribute_won_ids(session))


def _band(session: Session, low: float, high: float, bands: int) -> Any:
    """SQL: the score band of each lead, rounded down (PostgreSQL's CAST rounds to nearest;
    SQLite's truncates, the same for the scores at or above ``low`` that stay unclamped)."""
    width = (high - low) / bands or 1.0
    position = (leads.c.score - low) / width
    return cast(func.floor(position) if _dialect(session) == "postgresql" else position, Integer)


def lead_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(leads)).scalar_one())


def score_distribution(session: Session, low: float = 0.0, high: float = 100.0, bands: int = 10) -> list[dict[str, Any]]:
    """How many scored leads fall in each of ``bands`` equal score bands."""
    index = _band(session, low, high, bands)
    rows = session.execute(
        select(index.label("band"), func.count()).where(leads.c.score.is_not(None)).group_by(index)
    )
    counts = [0] * bands
    for band, n in rows:
        counts[min(bands - 1, max(0, int(band)))] += int(n)
    return [{"from": a, "to": b, "leads": n} for (a, b), n in zip(band_edges(low, high, bands), counts, strict=True)]


Cell = tuple[int | None, str | None]  # score band (None: not scored), stage


@dataclass(frozen=True)
class Facts:
    """Leads counted by score band and stage: all of them, the customers, and the leads that
    reached the opportunity stage (customers included); and the leads created recently."""

    low: float
    high: float
    bands: int
    leads: dict[Cell, int]
    customers: dict[Cell, int]
    opportunities: dict[Cell, int]
    recent: int

    def by_band(self, bands: int) -> list[dict[str, Any]]:
        """Leads, customers and conversion per band (``bands`` must divide the facts' bands)."""
        step = self.bands // bands
        totals = [[0, 0] for _ in range(bands)]
        for (band, stage), n in self.leads.items():
            if band is None:
                continue
            i = min(bands - 1, max(0, band // step))
            totals[i][0] += n
            totals[i][1] += self.customers.get((band, stage), 0)
        return [{"from": a, "to": b, "leads": n, "customers": w, "conversion": rate(w, n)}
                for (a, b), (n, w) in zip(band_edges(self.low, self.high, bands), totals, strict=True)]

    def by_stage(self) -> list[dict[str, Any]]:
        totals: dict[str | None, list[int]] = {}
        for (band, stage), n in self.leads.items():
            entry = totals.setdefault(stage, [0, 0])
            entry[0] += n
            entry[1] += self.customers.get((band, stage), 0)
        return [{"stage": stage, "leads": n, "customers": w, "conversion": rate(w, n)}
                for stage, (n, w) in sorted(totals.items(), key=lambda kv: -kv[1][0])]

    def funnel(self) -> dict[str, Any]:
        total = sum(self.leads.values())
        n_won = sum(self.customers.values())
        n_opp = sum(self.opportunities.values())
        return {"leads": total, "opportunities": n_opp, "customers": n_won,
                "lead_to_opportunity": rate(n_opp, total), "opportunity_to_customer": rate(n_won, n_opp),
                "lead_to_customer": rate(n_won, total)}

    def created_recently(self) -> int:
        return self.recent


def created_between(session: Session, since_us: int, until_us: int) -> int:
    """Leads created from ``since_us`` to ``until_us`` (one index range on SQLite)."""
    created = created_us(session)
    return int(session.execute(
        select(func.count()).select_from(leads).where(created >= since_us, created <= until_us)
    ).scalar_one())


def lead_facts(session: Session, now_us: int, low: float = 0.0, high: float = 100.0, bands: int = 10,
               days: int = 30) -> Facts:
    """Band x stage counts of every lead, of the customers and of the opportunities, in one
    statement: the leads (read from the (stage, score) index) joined to the set of won ids
    (outcome and attribute indexes, read once) and to the opportunity outcomes; and the
    leads created in the last ``days`` days (an index range on SQLite)."""
    band = _band(session, low, high, bands)
    won = won_ids(session).cte("won_leads")
    opportunity = outcomes.alias("opportunity")
    query = (
        select(band, leads.c.stage, func.count(), func.count(won.c.id),
               func.count(case((or_(won.c.id.is_not(None), opportunity.c.id.is_not(None)), 1))))
        .select_from(leads.outerjoin(won, won.c.id == leads.c.id)
                     .outerjoin(opportunity, and_(opportunity.c.lead_pk == leads.c.id,
                                                  opportunity.c.outcome == "opportunity")))
        .group_by(band, leads.c.stage)
    )
    every: dict[Cell, int] = {}
    customers: dict[Cell, int] = {}
    opportunities: dict[Cell, int] = {}
    for b, stage, n, n_won, n_opp in session.execute(query):
        key = (None if b is None else min(bands - 1, max(0, int(b))), stage)
        for target, value in ((every, n), (customers, n_won), (opportunities, n_opp)):
            if value:
                target[key] = target.get(key, 0) + int(value)
    return Facts(low, high, bands, every, customers, opportunities,
                 created_between(session, now_us - days * DAY_US, now_us))


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
    won_at = _attribute(session, "won_at")
    by_attributes = session.execute(select(leads.c.id, created_us(session), won_at).where(won_at.is_not(None)))
    for pk, created, won in by_attributes:
        if pk in out:
            continue
        try:
            out[pk] = (created, to_micros(parse_timestamp(str(won))))
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
    created = created_between(session, since, now_us) if facts is None else facts.created_recently()
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
        rows = session.execute(select(month, func.count()).select_from(leads).group_by(month))
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


def segment_activity(session: Session, now_us: int, days: Sequence[int] = (7, 30)) -> dict[str, dict[str, int]] | None:
    """Per segment: members now, and leads that entered and left in each of the last
    ``days`` windows (``entered_7``, ``left_7``, ...); the size ``d`` days ago is
    ``now - entered_d + left_d``. None when the segments feature's table does not exist."""
    table = existing_table(session, "segment_members")
    if table is None:
        return None
    columns: list[Any] = [func.sum(case((table.c.left_us.is_(None), 1), else_=0))]
    for d in days:
        since = now_us - d * DAY_US
        columns.append(func.sum(case((table.c.entered_us >= since, 1), else_=0)))
        columns.append(func.sum(case((table.c.left_us >= since, 1), else_=0)))
    out: dict[str, dict[str, int]] = {}
    for name, *counts in session.execute(select(table.c.segment, *columns).group_by(table.c.segment)):
        entry = {"now": int(counts[0] or 0)}
        for i, d in enumerate(days):
            entry[f"entered_{d}"] = int(counts[1 + 2 * i] or 0)
            entry[f"left_{d}"] = int(counts[2 + 2 * i] or 0)
        out[str(name)] = entry
    return out
