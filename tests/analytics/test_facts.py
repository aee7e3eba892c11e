"""The set-based funnel aggregates (indexes of migration 0007) give what a lead-by-lead
reading of the same rows gives, on both databases; on SQLite they read the indexes."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import func, select

from leadscore.analytics import funnel
from leadscore.analytics.helpers import DAY_US, band_index, median, rate
from leadscore.engine import iso, parse_timestamp, to_micros
from leadscore.store.db import Store
from leadscore.store.tables import leads
from leadscore.store.tables_analytics import outcomes

NOW = to_micros(datetime(2026, 11, 1, tzinfo=UTC))
STAGES = ("Hot", "Warm", "Nguội", None)


def _fill(store: Store, n: int = 400) -> list[dict[str, object]]:
    """Leads with every way of being won or created: outcomes, ``converted`` in several
    spellings, ``won_at``, a ``created_at`` attribute or none, unscored leads."""
    rng = random.Random(7)
    made: list[dict[str, object]] = []
    with store.write() as session:
        for i in range(n):
            attributes: dict[str, object] = {"name": f"Lê Văn {i}"}
            created_row = NOW - rng.randrange(0, 90) * DAY_US
            if rng.random() < 0.7:
                attributes["created_at"] = iso(NOW - rng.randrange(0, 90) * DAY_US - rng.randrange(0, 86_400) * 1_000_000)  # whole seconds
            converted = rng.choice([None, None, None, True, False, "yes", "YES", "no", "1", 1])
            if converted is not None:
                attributes["converted"] = converted
            if rng.random() < 0.1:
                attributes["won_at"] = iso(NOW - rng.randrange(0, 40) * DAY_US)
            score = None if rng.random() < 0.05 else round(rng.uniform(0, 100), 2)
            stage = rng.choice(STAGES) if score is not None else None
            pk = session.execute(leads.insert().values(
                lead_id=f"L{i}", attributes=attributes, created_us=created_row, updated_us=created_row,
                score=score, stage=stage)).inserted_primary_key[0]
            kinds = [k for k in ("opportunity", "customer") if rng.random() < 0.2]
            for kind in kinds:
                session.execute(outcomes.insert().values(lead_pk=pk, outcome=kind, at_us=NOW - rng.randrange(0, 60) * DAY_US,
                                                         received_us=NOW))
            made.append({"pk": pk, "attributes": attributes, "created_row": created_row, "score": score,
                         "stage": stage, "outcomes": {k: None for k in kinds}})
        at = {pk: us for pk, us in session.execute(
            select(outcomes.c.lead_pk, outcomes.c.at_us).where(outcomes.c.outcome == "customer"))}
        for lead in made:
            if "customer" in lead["outcomes"]:  # type: ignore[operator]
                lead["outcomes"]["customer"] = at[lead["pk"]]  # type: ignore[index]
    return made


def _won_by_attributes(attributes: dict[str, object]) -> bool:
    converted = attributes.get("converted")
    text = None if converted is None else ("true" if converted is True else "false" if converted is False
                                           else str(converted).lower())
    return text in ("true", "1", "yes") or attributes.get("won_at") is not None


def _created(lead: dict[str, object]) -> int:
    attributes = lead["attributes"]
    assert isinstance(attributes, dict)
    if "created_at" in attributes:
        return to_micros(parse_timestamp(str(attributes["created_at"])))
    return int(lead["created_row"])  # type: ignore[call-overload]


def test_set_based_facts_match_a_lead_by_lead_reading(store: Store) -> None:
    made = _fill(store)
    won = [m for m in made if "customer" in m["outcomes"] or _won_by_attributes(m["attributes"])]  # type: ignore[arg-type, operator]
    opp = [m for m in made if m["outcomes"] or _won_by_attributes(m["attributes"])]  # type: ignore[arg-type]
    with store.read() as session:
        facts = funnel.lead_facts(session, NOW, 0.0, 100.0, 10, 30)
        moments = funnel.won_moments(session)
        recent = funnel.conversion_last_days(session, NOW, 30)
    assert facts.funnel() == {
        "leads": len(made), "opportunities": len(opp), "customers": len(won),
        "lead_to_opportunity": rate(len(opp), len(made)), "opportunity_to_customer": rate(len(won), len(opp)),
        "lead_to_customer": rate(len(won), len(made)),
    }
    for band in facts.by_band(5):
        inside = [m for m in made if m["score"] is not None and band_index(m["score"], 0, 100, 5) * 20 == band["from"]]  # type: ignore[arg-type]
        assert band["leads"] == len(inside)
        assert band["customers"] == sum(1 for m in inside if m in won)
    assert {s["stage"]: (s["leads"], s["customers"]) for s in facts.by_stage()} == {
        stage: (sum(1 for m in made if m["stage"] == stage), sum(1 for m in won if m["stage"] == stage))
        for stage in {m["stage"] for m in made}
    }
    assert facts.created_recently() == recent["leads_created"] == sum(
        1 for m in made if NOW - 30 * DAY_US <= _created(m) <= NOW)
    expected_moments = []
    for m in won:
        at = m["outcomes"].get("customer")  # type: ignore[attr-defined]
        if at is None:
            at = to_micros(parse_timestamp(str(m["attributes"]["won_at"]))) if "won_at" in m["attributes"] else None  # type: ignore[index, operator]
        if at is not None:
            expected_moments.append((_created(m), at))
    assert sorted(moments) == sorted(expected_moments)
    assert median([max(0, w - c) / DAY_US for c, w in moments]) == median(
        [max(0, w - c) / DAY_US for c, w in expected_moments])


def test_sqlite_reads_the_indexes_of_migration_0007(tmp_path: object) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/plans.db")
    with store.read() as session:
        def plan(query: object) -> str:
            sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
            return " | ".join(str(r[-1]) for r in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql))

        won = plan(funnel.won_ids(session))
        assert "ix_leads_converted" in won and "ix_leads_won_at" in won
        assert "SCAN leads |" not in won + " |"  # no step reads every lead
        created = funnel.created_us(session)
        recent = plan(select(func.count()).select_from(leads).where(created >= 0, created <= NOW))
        assert "ix_leads_created_at_us" in recent
    store.dispose()
