"""A model change is atomic for readers: while the new version's scores are prepared, the
old version stays active and every lead shows its score; one transaction then switches.
Interrupted at any moment, the store holds one model's scores, and the next run resumes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from leadscore.engine import Event, Lead, iso, parse_timestamp, round_score, score_lead, to_micros
from leadscore.model import parse_model
from leadscore.service.ingest import ingest_events
from leadscore.service.models import ModelCache, activate_document, active_model, active_version_id
from leadscore.service.rescore import rescore_all_pending, rescore_stale, running_job
from leadscore.service.scoring import on_score_change, remove_score_listener
from leadscore.store.db import Store
from leadscore.store.tables import leads, score_history, stage_transitions
from leadscore.store.tables_rescore import pending_scores

DAY = 86_400_000_000
NOW = to_micros(parse_timestamp("2026-05-01T12:00:00Z"))
OLD = """
version: 1
name: old
rules:
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 7}, repeat: each}
stages:
  - {name: Hot, min_score: 40}
  - {name: New, min_score: 0}
"""
NEW = OLD.replace("name: old", "name: new").replace("points: 15", "points: 25")
LEADS = [f"L{i:02d}" for i in range(12)]


def _event(i: int, lead: str, ts: int = NOW - DAY) -> dict[str, Any]:
    return {"event_id": f"e{i}", "lead_id": lead, "type": "page_view", "timestamp": iso(ts),
            "properties": {"url": "/pricing"}}


def _world(store: Store) -> int:
    """Twelve leads scored by OLD (lead i has i % 3 + 1 pricing views); OLD's version id."""
    with store.write() as session:
        old = activate_document(session, OLD, "yaml", NOW - 2 * DAY).id
        model = active_model(session, ModelCache())
        batch = [_event(100 * n + k, lead) for n, lead in enumerate(LEADS) for k in range(n % 3 + 1)]
        ingest_events(session, model, batch, NOW - DAY)
    return old


def _versions(store: Store) -> tuple[int | None, set[int], dict[str, float]]:
    """(active version, versions the leads were scored by, score by lead)."""
    with store.read() as session:
        rows = session.execute(select(leads.c.lead_id, leads.c.model_version_id, leads.c.score)).all()
        return active_version_id(session), {r.model_version_id for r in rows}, {r.lead_id: r.score for r in rows}


def _engine_scores(store: Store, document: str, now: int) -> dict[str, float]:
    """What the pure engine gives every stored lead under ``document``."""
    from leadscore.store.tables import events

    model = parse_model(document)
    with store.read() as session:
        rows = session.execute(
            select(leads.c.lead_id, events.c.type, events.c.ts_us, events.c.properties, events.c.event_id)
            .join(events, events.c.lead_pk == leads.c.id).order_by(events.c.id)
        ).all()
    by_lead: dict[str, list[Event]] = {lead: [] for lead in LEADS}
    for lead_id, kind, ts, props, event_id in rows:
        by_lead.setdefault(lead_id, []).append(Event(lead_id, kind, ts, props or {}, event_id))
    return {lead: round_score(score_lead(model, Lead(lead, {}), evs, now).total) for lead, evs in by_lead.items()}


class _StopAfter:
    """``should_stop`` that lets ``n`` chunks through."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_an_interrupted_model_change_leaves_the_old_model_and_resumes(store: Store) -> None:
    old = _world(store)
    before = _versions(store)
    assert before[1] == {old}
    with store.write() as session:
        new = activate_document(session, NEW, "yaml", NOW, inline_limit=0).id
    # nothing switched yet: the old model is active and every score is the old model's
    assert _versions(store) == before

    # a run stopped after two chunks of five: partly prepared, nothing switched
    rescore_stale(store, ModelCache(), lambda: NOW + 1, chunk=5, should_stop=_StopAfter(2))
    with store.read() as session:
        prepared = session.execute(select(func.count()).select_from(pending_scores)).scalar_one()
        job = running_job(session)
    assert prepared == 10 and job is not None and (job.done, job.total) == (10, 12)
    assert _versions(store) == before

    # meanwhile an event arrives: the old (active) model scores it, the prepared score of
    # that lead is dropped, and the switch recomputes it with everything the lead did
    with store.write() as session:
        result = ingest_events(session, active_model(session, ModelCache()), [_event(999, "L00")], NOW + 2)
    assert result.public()["leads"][0]["score"] == 30.0  # 2 views x 15 (old model)
    assert _versions(store)[0] == old

    seen: list[tuple[str, int]] = []

    def hook(session: Any, changes: Any) -> None:
        seen.extend((c.cause, c.model_version_id) for c in changes)

    on_score_change(hook)
    try:
        summary = rescore_all_pending(store, ModelCache(), lambda: NOW + 3, chunk=5)
    finally:
        remove_score_listener(hook)
    active, scored_by, scores = _versions(store)
    assert (active, scored_by) == (new, {new})
    assert scores == _engine_scores(store, NEW, NOW + 3)
    assert scores["L00"] == 50.0
    assert summary.model == 12 and seen == [("model", new)] * 12
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(pending_scores)).scalar_one() == 0
        job = running_job(session)
        history = session.execute(
            select(score_history.c.at_us, score_history.c.model_version_id)
            .where(score_history.c.cause == "model")
        ).all()
        hot = session.execute(
            select(func.count()).select_from(stage_transitions).where(stage_transitions.c.cause == "model")
        ).scalar_one()
    assert job is None
    # every lead's change is stamped with the moment of the switch, by the new version
    assert {(at, version) for at, version in history} == {(NOW + 3, new)} and len(history) == 12
    # 2 and 3 views give 50 and 75 under NEW (Hot from 40): those leads entered Hot at the switch
    assert hot == sum(1 for s in scores.values() if s >= 40) - sum(1 for s in before[2].values() if s >= 40)


def test_a_newer_model_change_supersedes_the_prepared_one(store: Store) -> None:
    _world(store)
    with store.write() as session:
        activate_document(session, NEW, "yaml", NOW, inline_limit=0)
    rescore_stale(store, ModelCache(), lambda: NOW + 1, chunk=5, should_stop=_StopAfter(1))
    third = NEW.replace("name: new", "name: third").replace("points: 25", "points: 5")
    with store.write() as session:
        latest = activate_document(session, third, "yaml", NOW + 2, inline_limit=0).id
        assert session.execute(select(func.count()).select_from(pending_scores)).scalar_one() == 0
    rescore_all_pending(store, ModelCache(), lambda: NOW + 3, chunk=5)
    active, scored_by, scores = _versions(store)
    assert (active, scored_by) == (latest, {latest})
    assert scores == _engine_scores(store, third, NOW + 3)


def test_a_store_without_leads_switches_at_once(store: Store) -> None:
    with store.write() as session:
        first = activate_document(session, OLD, "yaml", NOW).id
        second = activate_document(session, NEW, "yaml", NOW + 1).id
        assert active_version_id(session) == second != first
        assert running_job(session) is None


def test_a_small_store_switches_in_the_same_transaction(store: Store) -> None:
    _world(store)
    with store.write() as session:
        new = activate_document(session, NEW, "yaml", NOW).id  # 12 leads: at most 500
        assert running_job(session) is None
    active, scored_by, scores = _versions(store)
    assert (active, scored_by) == (new, {new})
    assert scores == _engine_scores(store, NEW, NOW)
