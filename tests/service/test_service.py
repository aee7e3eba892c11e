"""The services layer on SQLite and PostgreSQL: scores equal the engine's, duplicates
count once, concurrent writers serialise per lead, time and model changes rescore."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadscore.engine import Event, Lead, iso, parse_timestamp, round_score, score_lead, to_micros
from leadscore.engine.changes import next_change
from leadscore.model import parse_model
from leadscore.service.errors import InvalidRequest
from leadscore.service.importer import import_files
from leadscore.service.ingest import ingest_events, upsert_lead
from leadscore.service.leads import erase_lead, export_lead, lead_history
from leadscore.service.models import (
    ActiveModel,
    ModelCache,
    activate_document,
    active_model,
    ensure_model,
)
from leadscore.service.rescore import rescore_all_pending
from leadscore.service.scoring import on_score_change, remove_score_listener
from leadscore.store.db import Store
from leadscore.store.tables import events, leads, score_history

DAY = 86_400_000_000
NOW = to_micros(parse_timestamp("2026-05-01T12:00:00Z"))
MODEL = """
version: 1
name: test
groups: {fit: {grades: {A: 10, B: 0}}}
rules:
  - {id: vp, group: fit, points: 10, when: {attribute: title, contains: vp}}
  - {id: pricing, points: 15, when: {event: page_view, where: {url: {contains: pricing}}, within_days: 7}, repeat: each}
  - {id: silent, points: -5, when: {no_event: email_open, within_days: 30}}
stages:
  - {name: Hot, min_score: 25}
  - {name: New, min_score: 0}
"""


def _model(store: Store, text: str = MODEL) -> ActiveModel:
    with store.write() as session:
        activate_document(session, text, "yaml", NOW - DAY)
    with store.read() as session:
        return active_model(session, ModelCache())


def _event(i: int, lead: str = "L1", kind: str = "page_view", ts: int = NOW - DAY, **props: Any) -> dict[str, Any]:
    return {"event_id": f"e{i}", "lead_id": lead, "type": kind, "timestamp": iso(ts),
            "properties": props or {"url": "/pricing"}}


def test_the_answer_is_json_of_the_public_result(store: Store) -> None:
    """``public_json`` (the text ``POST /v1/events`` answers) is, byte for byte, the JSON of
    ``public()``: a created lead, a rescored one, one that got only a duplicate, non-ASCII."""
    model = _model(store)
    with store.write() as session:
        ingest_events(session, model, [_event(1, "L1"), _event(2, "Lê\"2")], NOW)
    with store.write() as session:
        result = ingest_events(session, model, [_event(3, "L1"), _event(2, "Lê\"2"), _event(4, "L3", "email_open")],
                               NOW + 1)
    assert result.unchanged and result.created == {"L3"} and result.changes
    assert result.public_json() == json.dumps(result.public(), ensure_ascii=False, allow_nan=False,
                                              separators=(",", ":"))


def _stored_score(store: Store, lead_id: str) -> tuple[float, str]:
    with store.read() as session:
        row = session.execute(select(leads.c.score, leads.c.stage).where(leads.c.lead_id == lead_id)).one()
    return row.score, row.stage


def test_ingest_scores_like_the_engine_and_counts_duplicates_once(store: Store) -> None:
    model = _model(store)
    with store.write() as session:
        result = ingest_events(session, model, [_event(1), _event(2), _event(1)], NOW)
    assert result.public() == {
        "accepted": 2, "duplicates": 1, "duplicate_event_ids": ["e1"],
        "leads": [{"lead_id": "L1", "score": 30.0, "stage": "Hot", "groups": {"fit": 0.0, "default": 30.0},
                   "grades": {"fit": "B"}, "created": True}],
    }
    with store.write() as session:
        again = ingest_events(session, model, [_event(2)], NOW + 1)
    assert again.public()["accepted"] == 0
    assert again.public()["leads"][0]["score"] == 30.0
    # the engine on the stored events gives the stored score
    created_at = NOW - DAY  # first seen
    evs = [Event.at("L1", "page_view", "2026-04-30T12:00:00Z", {"url": "/pricing"}, f"e{i}") for i in (1, 2)]
    expected = score_lead(parse_model(MODEL), Lead("L1", {"created_at": "2026-04-30T12:00:00Z"}), evs, NOW)
    assert _stored_score(store, "L1") == (expected.score, expected.stage)
    assert created_at < NOW


def test_a_bad_event_refuses_the_batch(store: Store) -> None:
    model = _model(store)
    bad = [_event(1), {"lead_id": "L2", "type": "x", "timestamp": "yesterday"}]
    with pytest.raises(InvalidRequest) as info, store.write() as session:
        ingest_events(session, model, bad, NOW)
    assert info.value.field == "events[1].timestamp"
    future = [{"lead_id": "L2", "type": "x", "timestamp": "2026-05-01T12:06:00Z"}]
    with pytest.raises(InvalidRequest, match="more than 300 seconds ahead"), store.write() as session:
        ingest_events(session, model, future, NOW)
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(events)).scalar() == 0
        assert session.execute(select(func.count()).select_from(leads)).scalar() == 0


def test_concurrent_writers_give_the_sequential_score(db_url: str) -> None:
    stores = [Store.open(db_url, pool_size=4) for _ in range(2)]  # two "processes"
    model = _model(stores[0])
    batches = [[_event(i * 10 + j, ts=NOW - DAY + i * 1000 + j) for j in range(3)] for i in range(8)]
    errors: list[BaseException] = []

    def send(batch: list[dict[str, Any]], store: Store) -> None:
        try:
            with store.write() as session:
                ingest_events(session, model, batch, NOW)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b, stores[i % 2])) for i, b in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    all_events = [e for b in batches for e in b]
    evs = [Event.at(e["lead_id"], e["type"], e["timestamp"], e["properties"], e["event_id"]) for e in all_events]
    with stores[0].read() as session:
        created = session.execute(select(leads.c.attributes).where(leads.c.lead_id == "L1")).scalar_one()
    expected = score_lead(parse_model(MODEL), Lead("L1", created), evs, NOW)
    assert _stored_score(stores[0], "L1") == (expected.score, expected.stage)
    assert expected.score == 100.0  # 24 pricing views: 15 * 24, clipped to 100
    for s in stores:
        s.dispose()


def test_the_stored_score_and_next_change_are_the_engines_after_each_batch(store: Store) -> None:
    """Batches that leave a lead's score, stage or next change as they were (an event the
    model does not score, a second pricing view of the same minute) and batches that move
    them: after each one the lead's row holds the engine's score, stage and next change of
    every event stored so far (``record_scores`` leaves a column that keeps its value out
    of the UPDATE)."""
    model = _model(store)
    parsed = parse_model(MODEL)
    sent: list[dict[str, Any]] = []
    batches = [
        [_event(1, ts=NOW - 6 * DAY)],  # created: 15 - 5
        [_event(2, kind="download", ts=NOW - 5 * DAY)],  # unscored type: nothing moves
        [_event(3, ts=NOW - 6 * DAY)],  # the same minute: next change stays, score moves
        [_event(4, kind="email_open", ts=NOW - 2 * DAY)],  # the absence rule stops
        [_event(5, kind="download", ts=NOW - DAY)],
        [_event(6, ts=NOW - 2 * DAY, url="/blog")],  # a page view that gives nothing
        [_event(7, ts=NOW - DAY)],
    ]
    seen: set[tuple[Any, ...]] = set()
    for n, batch in enumerate(batches):
        at = NOW + n
        with store.write() as session:
            ingest_events(session, model, batch, at)
        sent += batch
        with store.read() as session:
            row = session.execute(select(leads.c.score, leads.c.stage, leads.c.next_change_us, leads.c.attributes)
                                  .where(leads.c.lead_id == "L1")).one()
        lead = Lead("L1", row.attributes)
        evs = [Event.at("L1", e["type"], e["timestamp"], e["properties"], e["event_id"]) for e in sent]
        expected = score_lead(parsed, lead, evs, at)
        assert (row.score, row.stage) == (expected.score, expected.stage), n
        assert row.next_change_us == next_change(parsed, lead, evs, at), n
        seen.add((row.score, row.next_change_us))
    assert len(seen) > 2  # the batches did move them, and left them as they were


def test_a_lead_a_batch_creates_is_stored_as_when_it_is_scored_after_its_insert(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a lead created by a batch is scored before it is inserted, and inserted with
    its score (``new_lead_columns``): its row, history and stage transitions are those of
    the same lead inserted bare and then scored (``record_scores``' UPDATE), column for
    column: decaying and absence rules, a stage, a lead with only unscored events, one whose
    only event is a duplicate, one with events after now, a Segment-like attribute."""
    from leadscore.service import ingest
    from leadscore.store.tables import stage_transitions

    text = MODEL.replace("repeat: each}", "repeat: each, decay: {half_life_days: 3}}")
    model = _model(store, text)

    def batch(prefix: str) -> list[dict[str, Any]]:
        return [
            _event(1, f"{prefix}1", ts=NOW - 2 * DAY) | {"event_id": f"{prefix}e1"},
            _event(2, f"{prefix}1", "email_open", ts=NOW - DAY) | {"event_id": f"{prefix}e2"},
            _event(3, f"{prefix}2", "download", ts=NOW - DAY) | {"event_id": f"{prefix}e3"},
            _event(4, f"{prefix}3", ts=NOW - 3 * DAY) | {"event_id": f"{prefix}e4"},
            _event(5, f"{prefix}3", ts=NOW - DAY) | {"event_id": f"{prefix}e5"},
            _event(6, f"{prefix}3", ts=NOW + 60_000_000) | {"event_id": f"{prefix}e6"},
            _event(8, f"{prefix}3", ts=NOW - 3_600_000_000) | {"event_id": f"{prefix}e8"},
            _event(7, f"{prefix}4", ts=NOW - DAY) | {"event_id": "first-e1"},  # a duplicate
        ]

    def rows(prefix: str) -> list[tuple[Any, ...]]:
        with store.read() as session:
            found = [tuple(r) for r in session.execute(select(leads).where(leads.c.lead_id.like(f"{prefix}%"))
                                                        .order_by(leads.c.lead_id))]
            pks = [r[0] for r in found]
            history = [tuple(r)[2:] for r in session.execute(
                select(score_history).where(score_history.c.lead_pk.in_(pks)).order_by(score_history.c.id))]
            moves = [tuple(r)[2:] for r in session.execute(
                select(stage_transitions).where(stage_transitions.c.lead_pk.in_(pks))
                .order_by(stage_transitions.c.id))]
        return [r[2:] for r in found] + history + moves + [(len(found),)]

    def same(prefix: str) -> str:  # the rows with the batch's ids (in explanations, history) unprefixed
        return repr(rows(prefix)).replace(prefix, "")

    with store.write() as session:
        ingest_events(session, model, batch("first-"), NOW)
    created = rows("first-")
    bare = ingest.lock_leads  # inserted without new_columns: bare, then scored and updated

    def lock_bare(session: Any, ids: Any, now: int, attributes: Any = None, new_columns: Any = None) -> Any:
        return bare(session, ids, now, attributes)

    monkeypatch.setattr(ingest, "lock_leads", lock_bare)
    with store.write() as session:
        ingest_events(session, model, batch("again-"), NOW)
    assert same("again-") == same("first-")
    assert created[-1] == (4,) and {r[5] for r in created[:4]} >= {"Hot", "New"}  # score, stage set


def test_a_created_lead_whose_score_the_predictive_hook_changes_is_stored_with_the_hooks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead created by a batch is inserted with its rule score; when the predictive hook
    (``predictive.apply``, called by ``record_scores``) gives another final score and stage,
    the row holds those, also a stage of None where the rules gave one."""
    import dataclasses

    from leadscore.service import scoring

    model = _model(store)

    def final(session: Any, changes: Any) -> list[Any]:
        return [dataclasses.replace(c, result=dataclasses.replace(c.result, total=3.0, stage=None))
                for c in changes]

    monkeypatch.setattr(scoring.predictive, "apply", final)
    with store.write() as session:
        ingest_events(session, model, [_event(1, "P1"), _event(2, "P1")], NOW)
    with store.read() as session:
        row = session.execute(select(leads.c.total, leads.c.score, leads.c.stage, leads.c.recorded_score)
                              .where(leads.c.lead_id == "P1")).one()
    assert tuple(row) == (3.0, 3.0, None, 3.0)  # the rules gave 30.0, Hot


def test_time_moves_scores_and_records_history(store: Store) -> None:
    model = _model(store)
    with store.write() as session:
        ingest_events(session, model, [_event(1, ts=NOW - 6 * DAY)], NOW)
        upsert_lead(session, model, "L1", {"title": "VP", "created_at": "2026-01-01T00:00:00Z"}, NOW)
    assert _stored_score(store, "L1") == (20.0, "New")  # 10 + 15 - 5
    with store.read() as session:
        next_change = session.execute(select(leads.c.next_change_us)).scalar_one()
    assert next_change == NOW - 6 * DAY + 7 * DAY + 1  # the pricing view leaves its window
    later = next_change + 1
    summary = rescore_all_pending(store, ModelCache(), lambda: later)
    assert (summary.time, summary.changed) == (1, 1)
    assert _stored_score(store, "L1") == (5.0, "New")
    with store.read() as session:
        history = lead_history(session, "L1")["history"]
    assert [(h["cause"], h["old_score"], h["new_score"]) for h in history] == [
        ("time", 20.0, 5.0), ("attributes", 15.0, 20.0), ("event", None, 15.0),
    ]
    assert rescore_all_pending(store, ModelCache(), lambda: later).time == 0  # nothing due


def test_a_model_change_rescores_every_lead_and_hooks_see_it(store: Store) -> None:
    model = _model(store)
    with store.write() as session:
        ingest_events(session, model, [_event(i, lead=f"L{i}") for i in range(5)], NOW)
    seen: list[str] = []

    def hook(session: Any, changes: Any) -> None:
        seen.extend(c.cause for c in changes)

    on_score_change(hook)
    try:
        with store.write() as session:
            activate_document(session, MODEL.replace("points: 15", "points: 30"), "yaml", NOW, inline_limit=0)
        summary = rescore_all_pending(store, ModelCache(), lambda: NOW + 1)
    finally:
        remove_score_listener(hook)
    assert summary.model == 5 and seen == ["model"] * 5
    assert _stored_score(store, "L3") == (30.0, "Hot")


def test_erase_removes_every_trace(store: Store) -> None:
    model = _model(store)
    with store.write() as session:
        ingest_events(session, model, [_event(1), _event(2, lead="L2")], NOW)
    with store.read() as session:
        export = export_lead(session, "L1")
    assert [e["event_id"] for e in export["events"]] == ["e1"]
    with store.write() as session:
        erase_lead(session, "L1")
    with store.read() as session:
        assert session.execute(select(func.count()).select_from(events)).scalar() == 1
        assert session.execute(select(func.count()).select_from(score_history)).scalar() == 1
        assert session.execute(select(leads.c.lead_id)).scalars().all() == ["L2"]


def test_import_loads_deduplicates_and_scores(store: Store, tmp_path: Path) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW)
    (tmp_path / "leads.csv").write_text(
        "lead_id,job_title,industry,created_at\nA,VP Sales,software,2026-01-01T00:00:00Z\nB,,,\n"
    )
    (tmp_path / "events.csv").write_text(
        "event_id,lead_id,type,timestamp,url\n"
        "1,A,page_view,2026-04-30T00:00:00Z,/pricing\n1,A,page_view,2026-04-30T00:00:00Z,/pricing\n"
        "2,C,email_open,2026-04-29T00:00:00Z,\n"
    )
    summary = import_files(store, tmp_path / "leads.csv", tmp_path / "events.csv", NOW)
    assert (summary.leads_created, summary.events_stored, summary.duplicates, summary.leads_scored) == (3, 2, 1, 3)
    again = import_files(store, None, tmp_path / "events.csv", NOW)
    assert (again.events_stored, again.duplicates) == (0, 3)
    with store.read() as session:
        scores = dict(session.execute(select(leads.c.lead_id, leads.c.score)).all())
    # fit 35 (title, industry) + the pricing view decayed over 1.5 days - 15 (no e-mail in 90 days)
    assert scores["A"] == round_score(35 + 15 * 0.5 ** (1.5 / 30) - 15) == 34.49
    assert scores["B"] == 0.0


def test_import_scores_in_worker_processes_like_in_one(store: Store, tmp_path: Path) -> None:
    from leadscore.service.importer import ImportSummary, score_all

    with store.write() as session:
        ensure_model(session, None, NOW)
    rows = "".join(f"e{i},L{i % 7},page_view,2026-04-2{i % 9}T00:00:00Z,/pricing\n" for i in range(60))
    (tmp_path / "events.csv").write_text("event_id,lead_id,type,timestamp,url\n" + rows)
    import_files(store, None, tmp_path / "events.csv", NOW)
    with store.read() as session:
        one = dict(session.execute(select(leads.c.lead_id, leads.c.explanation)).all())
        pks = set(session.scalars(select(leads.c.id)))
    score_all(store, pks, NOW, ImportSummary(), workers=2)
    with store.read() as session:
        two = dict(session.execute(select(leads.c.lead_id, leads.c.explanation)).all())
    assert two == one and len(one) == 7


@pytest.mark.parametrize("text", ['{"created_at":"2026-01-01T00:00:00Z","n":1.5}', ' {"a":1} ', "null", "[1,2]x",
                                  '{"a":', "\ufeff{}", '{"é":"Đà Nẵng"}', "1e400"])
def test_stored_attributes_are_read_as_json_reads_them(text: str) -> None:
    """The direct read of a stored JSON column (a lead's attributes) gives json.loads' value or error."""
    from leadscore.store.raw import from_json

    try:
        expected: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as caught:
            from_json(text)
        assert str(caught.value) == str(exc)
    else:
        assert from_json(text) == expected
