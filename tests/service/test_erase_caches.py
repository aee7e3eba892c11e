"""Erasing a lead empties the in-memory caches of values (decoded event properties,
results of `matches` tests), and these caches keep no large texts (bounded in bytes)."""

from __future__ import annotations

from typing import Any

from leadscore.engine import iso, parse_timestamp, to_micros
from leadscore.engine import scoring as engine_scoring
from leadscore.engine import values as engine_values
from leadscore.engine.values import value_test
from leadscore.service import scoring
from leadscore.service.ingest import ingest_events, upsert_lead
from leadscore.service.leads import erase_lead
from leadscore.service.models import ActiveModel, ModelCache, activate_document, active_model
from leadscore.store.db import Store

DAY = 86_400_000_000
NOW = to_micros(parse_timestamp("2026-05-01T12:00:00Z"))
SECRET = "jane.secretperson@example.org"
CREATED = "2026-04-17T09:13:57.123456Z"  # a moment this lead alone has
MODEL = """
version: 1
name: caches
rules:
  - {id: chief, points: 10, when: {attribute: title, matches: "(?i)chief"}}
  - {id: form, points: 5, when: {event: form_submit, where: {email: {matches: "@example"}}}}
  - {id: silent, points: -5, when: {no_event: page_view, within_days: 30}}  # reads created_at
stages:
  - {name: New, min_score: 0}
"""


def _model(store: Store) -> ActiveModel:
    with store.write() as session:
        activate_document(session, MODEL, "yaml", NOW - DAY)
    with store.read() as session:
        return active_model(session, ModelCache())


def _cached_texts() -> list[str]:
    texts = list(scoring._PROPERTIES) + list(engine_scoring._CREATED)
    for memo in list(engine_values._memos.values()):
        texts.extend(memo)
    return texts


def _event(i: int, **props: Any) -> dict[str, Any]:
    return {"event_id": f"c{i}", "lead_id": "L-secret", "type": "form_submit",
            "timestamp": iso(NOW - DAY + i), "properties": props}


def test_erasing_a_lead_empties_the_caches_of_its_values(store: Store) -> None:
    model = _model(store)
    with store.write() as session:
        upsert_lead(session, model, "L-secret", {"title": f"Chief of {SECRET}",
                                                 "created_at": CREATED}, NOW - DAY)
    with store.write() as session:  # two batches: the second one reads the first one's events
        ingest_events(session, model, [_event(1, email=SECRET)], NOW)
    with store.write() as session:
        ingest_events(session, model, [_event(2, email=SECRET)], NOW)
    if store.engine.dialect.name == "sqlite":  # PostgreSQL hands over decoded documents
        assert any(SECRET in text for text in _cached_texts())
    assert CREATED in _cached_texts()
    assert store.event_cache is not None and len(store.event_cache) == 1  # the lead's events, decoded
    with store.write() as session:
        erase_lead(session, "L-secret", NOW)
    assert not [text for text in _cached_texts() if SECRET in text or text == CREATED]
    assert len(store.event_cache) == 0


def test_large_texts_are_not_cached() -> None:
    check = value_test("bio", "matches", "needle")
    small, large = "a needle", "needle " + "x" * 10_000
    assert check({"bio": small}) and check({"bio": large})
    texts = _cached_texts()
    assert small in texts and large not in texts
    small_json, large_json = '{"k": "v"}', '{"k": "' + "v" * 10_000 + '"}'
    assert scoring.decode_properties(large_json) == {"k": "v" * 10_000}
    assert scoring.decode_properties(small_json) == {"k": "v"}
    assert small_json in scoring._PROPERTIES and large_json not in scoring._PROPERTIES


def test_the_caches_stop_at_their_budget_of_characters(monkeypatch: Any) -> None:
    monkeypatch.setattr(scoring, "_PROPERTIES_CHARS", 100)
    scoring.forget_properties()
    texts = [f'{{"n": "{i:020d}"}}' for i in range(20)]  # 29 characters each
    for text in texts:
        scoring.decode_properties(text)
    assert len(scoring._PROPERTIES) == 3 and scoring._properties_chars <= 100
    monkeypatch.setattr(engine_values, "_MEMO_CHARS", 100)
    check = value_test("v", "matches", "7")
    for i in range(20):
        check({"v": f"{i:020d}"})
    memo = next(m for m in engine_values._memos.values() if any(len(t) == 20 for t in m))
    assert len(memo) == 5 and memo.chars <= 100
    scoring.forget_properties()
