"""The service's scoring steps made cheaper for issue #3 give what the plain steps give:
each lead's stored events (load_events), a change's score (change_of)."""

from __future__ import annotations

from typing import Any

import pytest

from leadscore.engine import Event, iso, parse_timestamp, round_score, to_micros
from leadscore.engine.scoring import LeadScore
from leadscore.service.ingest import ingest_events
from leadscore.service.models import ModelCache, active_model, ensure_model
from leadscore.service.scoring import LeadState, ScoringPolicy, change_of, load_events
from leadscore.store.db import Store
from leadscore.store.raw import from_json, raw

DAY = 86_400_000_000
NOW = to_micros(parse_timestamp("2026-05-01T12:00:00Z"))


def _result(total: float) -> LeadScore:
    return LeadScore("L1", total, {"fit": total}, {"fit": total}, {}, None, ())


@pytest.mark.parametrize("total", [0.0, 1.005, 2.675, 0.125, -0.375, 12.3456, 1e16, -1e13 - 0.125])
def test_change_of_gives_the_score_the_property_gives(total: float) -> None:
    result = _result(total)
    change = change_of(type("M", (), {"version_id": 1})(), LeadState(1, "L1", {}, 0, 0), (result, None, False),
                       NOW, "event", policy=ScoringPolicy(), detail=None)
    assert change.score == result.score == _result(total).score == round_score(total)
    assert change.changed and change.recorded


def test_change_of_keeps_a_score_already_computed() -> None:
    result = _result(2.675)
    first = result.score
    result.__dict__["score"] = marker = object()  # what the cached property holds is kept
    change_of(type("M", (), {"version_id": 1})(), LeadState(1, "L1", {}, 0, 0, 2.68), (result, None, False),
              NOW, "event", policy=ScoringPolicy(), detail=None)
    assert result.__dict__["score"] is marker
    assert first == round_score(2.675)


def test_load_events_gives_each_lead_its_events_in_stored_order(store: Store) -> None:
    with store.write() as session:
        ensure_model(session, None, NOW - DAY)
    cache = ModelCache()
    records: list[dict[str, Any]] = []
    for i in range(300):  # leads interleaved, some events without id, properties or repeated ones
        lead = f"L{(i * 7) % 23}"
        record: dict[str, Any] = {"lead_id": lead, "type": ("page_view", "email_open", "download")[i % 3],
                                  "timestamp": iso(NOW - DAY + i * 1_000_000)}
        if i % 5:
            record["event_id"] = f"E{i}"
        if i % 4:
            record["properties"] = {"url": f"/p{i % 6}", "n": i % 3}
        records.append(record)
    with store.write() as session:
        ingest_events(session, active_model(session, cache), records, NOW)
    with store.read() as session:
        db = raw(session)
        pks = dict(db.all("SELECT id, lead_id FROM leads"))
        some = dict(list(pks.items())[::2])
        for types in (None, {"page_view", "download"}):
            got = load_events(session, some, types)
            assert set(got) == set(some)
            for pk, lead_id in some.items():
                expected = [
                    Event(lead_id, kind, ts, from_json(props) or {}, event_id)
                    for kind, ts, props, event_id in db.all(
                        "SELECT type, ts_us, properties, event_id FROM events WHERE lead_pk = ? ORDER BY id", [pk])
                    if types is None or kind in types
                ]
                assert [(e.lead_id, e.type, e.ts, dict(e.properties), e.event_id) for e in got[pk]] == [
                    (e.lead_id, e.type, e.ts, dict(e.properties), e.event_id) for e in expected]
                assert expected


def test_only_events_a_window_can_still_count_are_read_back_and_scores_stay_exact(store: Store) -> None:
    """A batch rescores a lead from its events since the longest window on each type
    (ActiveModel.oldest_counted): a year of history reads back only the recent part, and
    every stored score is the engine's on all of the lead's events."""
    from leadscore.engine import Lead, score_lead

    store.event_cache = None  # every batch reads its leads' events back
    with store.write() as session:
        ensure_model(session, None, NOW - DAY)
    cache = ModelCache()
    kinds = ("page_view", "email_open", "download", "unsubscribe", "noise")
    records = [{"event_id": f"E{i}", "lead_id": f"L{i % 7}", "type": kinds[i % 5],
                "timestamp": iso(NOW - (i * 37 % 400) * DAY - i), "properties": {"url": "/pricing"}}
               for i in range(400)]
    # and leads whose one event is just inside (or just outside) a window: only it decides
    records += [{"event_id": f"W{days}", "lead_id": f"W{days}", "type": kind, "timestamp": iso(NOW - int(days * DAY)),
                 "properties": {"url": "/pricing", "asset": "case-study-x"}}
                for kind, days in (("page_view", 89.99), ("page_view", 90.1), ("download", 179),
                                   ("email_open", 59), ("webinar_attended", 150))]
    again = [{**r, "event_id": f"again-{r['event_id']}", "type": "noise"} for r in records[-5:]]
    for start in range(0, len(records), 50):
        with store.write() as session:
            ingest_events(session, active_model(session, cache), records[start:start + 50], NOW)
    with store.write() as session:  # the W leads again: now rescored from what is read back
        ingest_events(session, active_model(session, cache), again, NOW)
    with store.read() as session:
        model = active_model(session, cache)
        oldest = model.oldest_counted(NOW)
        assert oldest["page_view"] is not None and oldest["unsubscribe"] is None  # the starter's windows
        db = raw(session)
        pks = dict(db.all("SELECT id, lead_id FROM leads"))
        kept = load_events(session, pks, model.event_types, oldest)
        every = load_events(session, pks, None)
        assert sum(map(len, kept.values())) < sum(len([e for e in evs if e.type in model.event_types])
                                                  for evs in every.values()) / 2
        for pk, evs in kept.items():
            assert all(oldest[e.type] is None or e.ts >= oldest[e.type] for e in evs)
            assert [e.event_id for e in evs] == [e.event_id for e in every[pk] if e.type in model.event_types
                                                 and (oldest[e.type] is None or e.ts >= oldest[e.type])]
        for pk, lead_id, score, attributes in db.all("SELECT id, lead_id, score, attributes FROM leads"):
            lead = Lead(lead_id, from_json(attributes) or {})
            assert score == score_lead(model.model, lead, every[pk], NOW).score, lead_id
