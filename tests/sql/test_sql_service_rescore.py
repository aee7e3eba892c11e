"""A model change prepared set-based inside PostgreSQL (service/rescore.prepare_set_based)
stores exactly what the per-lead path stores: every lead's score, stage, groups, grades,
explanation, next change and updated_us, and the same history rows and stage transitions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from leadscore.demo import write_world
from leadscore.engine import Event
from leadscore.service import rescore
from leadscore.service.importer import import_files
from leadscore.service.models import ModelCache, activate_document, ensure_model, starter_document
from leadscore.store.db import Store
from leadscore.store.tables import leads, rescore_jobs, score_history, stage_transitions

NOW = 1_796_000_000_000_000
# every construct the service meets: absence (created_at), multiple types, once with
# min_count, each with max_times and decay, a nested event condition, attributes
OTHER = """
version: 1
name: other
score: {min: -50, max: 80}
groups:
  fit: {max: 30, grades: {A: 20, B: 0}}
  engagement: {min: -10, grades: {hot: 30, warm: 5, cold: -10}}
rules:
  - {id: title, group: fit, points: 12, when: {attribute: job_title, matches: '(?i)\\b(vp|chief|head)'}}
  - {id: size, group: fit, points: 7.5, when: {attribute: company_size, gte: 100}}
  - {id: views, group: engagement, points: 2.5, when: {event: [page_view, download], within_days: 30},
     repeat: each, max_times: 4, decay: {half_life_days: 10}}
  - {id: clicks, group: engagement, points: 6, when: {event: email_click, min_count: 2, within_days: 60}}
  - {id: silent, group: engagement, points: -8, when: {no_event: [email_open, email_click], within_days: 14}}
  - {id: both, group: engagement, points: 4,
     when: {all: [{event: webinar_attended}, {not: {attribute: country, in: [US]}}]}}
  - {id: pricing, group: engagement, points: 9, when: {event: page_view, where: {url: {contains: pricing}}},
     decay: {half_life_days: 3}}
stages:
  - {name: Hot, min_score: 30}
  - {name: Warm, min_score: 5}
  - {name: Cold, min_score: -50}
"""


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    import psycopg

    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    schemas: list[str] = []

    def make() -> str:
        schema = f"t_setbased_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return f"{postgres_url}?options=-csearch_path%3D{schema}"

    yield make  # type: ignore[misc]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def _set_based_from_one_lead() -> Iterator[list[bool]]:
    """``prepare_set_based`` with no minimum of leads (the tests' stores are small); yields
    the list of what each call answered (True: it prepared set-based)."""
    used: list[bool] = []
    original = rescore.prepare_set_based

    def prepare(*args: Any, **kwargs: Any) -> bool:
        used.append(original(*args, **{**kwargs, "min_leads": 1}))
        return used[-1]

    rescore.prepare_set_based = prepare  # type: ignore[assignment]
    try:
        yield used
    finally:
        rescore.prepare_set_based = original  # type: ignore[assignment]


def _imported(url: str, world: Any) -> Store:
    """A store on ``url`` holding ``world`` imported under the starter model (the caller
    disposes of it)."""
    store = Store.open(url)
    try:
        with store.write() as session:
            ensure_model(session, None, NOW - 10)
        import_files(store, world.files["leads"], world.files["events"], NOW - 5)
    except BaseException:
        store.dispose()
        raise
    return store


def _switched(url: str, world: Any, document: str, *, set_based: bool) -> dict[str, Any]:
    store = _imported(url, world)
    try:
        with store.write() as session:
            activate_document(session, document, "yaml", NOW, inline_limit=0)
        with _set_based_from_one_lead() as used:
            summary = rescore.rescore_stale(store, ModelCache(), lambda: NOW + 7, chunk=40, set_based=set_based)
        with store.read() as session:
            rows = session.execute(select(leads).order_by(leads.c.lead_id)).mappings().all()
            history = session.execute(
                select(score_history.c.lead_pk, score_history.c.at_us, score_history.c.cause,
                       score_history.c.detail, score_history.c.old_score, score_history.c.new_score,
                       score_history.c.old_stage, score_history.c.new_stage, score_history.c.new_grades)
                .order_by(score_history.c.lead_pk, score_history.c.id)).all()
            moves = session.execute(
                select(stage_transitions.c.lead_pk, stage_transitions.c.from_stage, stage_transitions.c.to_stage,
                       stage_transitions.c.cause).order_by(stage_transitions.c.lead_pk, stage_transitions.c.id)).all()
            job = session.execute(select(rescore_jobs).order_by(rescore_jobs.c.id.desc())).first()
        return {"used": used, "rescored": summary.model, "leads": [dict(r) for r in rows],
                "history": history, "moves": moves, "job": (job.status, job.total, job.done)}
    finally:
        store.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("document", [starter_document().replace("points: 15", "points: 16", 1), OTHER],
                         ids=["starter", "other"])
def test_set_based_switch_stores_what_the_per_lead_switch_stores(pg_url: Any, tmp_path: Path, document: str) -> None:
    world = write_world(tmp_path / "world", 150, seed=7)
    per_lead = _switched(pg_url(), world, document, set_based=False)
    set_based = _switched(pg_url(), world, document, set_based=True)
    assert per_lead["used"] == [] and set_based["used"] == [True]
    assert set_based["rescored"] == per_lead["rescored"] == 150
    assert set_based["job"] == per_lead["job"] == ("done", 150, 150)
    for mine, theirs in zip(set_based["leads"], per_lead["leads"], strict=True):
        assert mine == theirs
    assert any(lead["explanation"]["rules"] for lead in set_based["leads"])
    assert any(lead["next_change_us"] is not None for lead in set_based["leads"])
    assert set_based["history"] == per_lead["history"] and len(per_lead["history"]) > 0
    assert set_based["moves"] == per_lead["moves"]


@pytest.mark.postgres
def test_an_object_valued_property_falls_back_to_the_per_lead_path(pg_url: Any, tmp_path: Path) -> None:
    """A property the model reads holding an object has no SQL text form (the engine
    compares Python's str of it): the change is prepared lead by lead, with the same result."""
    from sqlalchemy import text

    world = write_world(tmp_path / "world", 60, seed=3)
    results = []
    for set_based in (False, True):
        url = pg_url()
        store = _imported(url, world)
        try:
            with store.write() as session:  # ingestion stores objects as JSON text; other writers may not
                session.execute(text(
                    "UPDATE events SET properties = CAST(:doc AS json) WHERE id = "
                    "(SELECT min(id) FROM events WHERE type = 'page_view')"), {"doc": '{"url": {"path": "/pricing"}}'})
        finally:
            store.dispose()
        results.append(_switched_again(url, set_based=set_based))
    per_lead, set_based_run = results
    assert set_based_run["used"] == [False]
    assert set_based_run["leads"] == per_lead["leads"]


def _switched_again(url: str, *, set_based: bool) -> dict[str, Any]:
    store = Store.open(url)
    try:
        with store.write() as session:
            activate_document(session, OTHER.replace("contains: pricing", "contains: /pricing"), "yaml", NOW,
                              inline_limit=0)
        with _set_based_from_one_lead() as used:
            rescore.rescore_stale(store, ModelCache(), lambda: NOW + 7, chunk=40, set_based=set_based)
        with store.read() as session:
            rows = session.execute(select(leads).order_by(leads.c.lead_id)).mappings().all()
        return {"used": used, "leads": [dict(r) for r in rows]}
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_lead_scored_again_while_prepared_is_prepared_again(pg_url: Any, tmp_path: Path) -> None:
    """An event arriving between the set-based read and the writing of the pending scores:
    that lead's stale pending score is not written; the next pass prepares it again, and the
    switch shows the event."""
    from leadscore.engine import iso
    from leadscore.service.ingest import ingest_events
    from leadscore.service.models import active_model

    world = write_world(tmp_path / "world", 40, seed=5)
    store = _imported(pg_url(), world)
    try:
        with store.write() as session:
            activate_document(session, OTHER, "yaml", NOW, inline_limit=0)
            lead = session.execute(select(leads.c.lead_id).order_by(leads.c.id).limit(1)).scalar_one()
        original = rescore.changes_of

        def meanwhile(*args: Any, **kwargs: Any) -> Any:
            with store.write() as session:
                ingest_events(session, active_model(session, ModelCache()), [
                    {"event_id": "late", "lead_id": lead, "type": "page_view", "timestamp": iso(NOW + 6),
                     "properties": {"url": "/docs"}}], NOW + 6)
            return original(*args, **kwargs)

        rescore.changes_of = meanwhile  # type: ignore[assignment]
        try:
            with _set_based_from_one_lead() as calls:
                rescore.rescore_stale(store, ModelCache(), lambda: NOW + 7, chunk=10)
        finally:
            rescore.changes_of = original  # type: ignore[assignment]
        with store.read() as session:
            row = session.execute(select(leads).where(leads.c.lead_id == lead)).mappings().one()
    finally:
        store.dispose()
    assert calls == [True]
    views = next(r for r in row["explanation"]["rules"] if r["rule"] == "views")
    assert views["events"][0]["event_id"] == "late"


# the starter model with automation: segments (one on time: last activity) and triggers
# whose actions write outbox rows (webhook), tags, owners and the automation log; the
# stages moved so that leads enter and leave them at the switch
AUTOMATION = starter_document().replace("points: 15", "points: 16", 1).replace(
    "{name: MQL,  min_score: 50}", "{name: MQL,  min_score: 30}").replace(
    "{name: Warm, min_score: 20}", "{name: Warm, min_score: 25}") + """
segments:
  - {name: hot, min_score: 40}
  - {name: recent-execs, rule_fired: exec-title, active_within_days: 30}
triggers:
  - id: mql
    on: {stage_entered: MQL}
    do:
      - webhook: {url: "https://hooks.example.com/mql", secret: "${LS_TEST_HOOK_SECRET}"}
      - assign_owner: {round_robin: [rep1@example.com, rep2@example.com]}
  - id: cooled
    on: {stage_left: Warm}
    do: [{tag: {add: [cooled]}}]
  - id: hot
    on: {segment_entered: hot}
    do: [{webhook: {url: "https://hooks.example.com/hot"}}]
  - id: above
    on: {score_above: 30}
    do: [{tag: {add: [thirty]}}]
  - id: exec
    on: {rule_fired: exec-title}
    do: [{tag: {add: [exec]}}]
"""


def _automation_rows(url: str) -> dict[str, list[Any]]:
    from leadscore.store.tables_automation import (
        automation_counters,
        automation_log,
        lead_owners,
        lead_tags,
        outbox,
        rules_fired,
        segment_members,
    )

    store = Store.open(url)
    try:
        with store.read() as session:
            return {table.name: [tuple(r) for r in session.execute(
                select(table).order_by(*table.primary_key.columns)).all()]
                for table in (outbox, segment_members, lead_tags, lead_owners, rules_fired, automation_log,
                              automation_counters)}
    finally:
        store.dispose()


@contextmanager
def _switch_calls() -> Iterator[list[bool]]:
    """What each call of the set-based switch answered (True: it wrote the pending scores)."""
    calls: list[bool] = []
    original = rescore.apply_set_based

    def spy(*args: Any, **kwargs: Any) -> Any:
        written = original(*args, **kwargs)
        calls.append(written is not None)
        return written

    rescore.apply_set_based = spy  # type: ignore[assignment]
    try:
        yield calls
    finally:
        rescore.apply_set_based = original  # type: ignore[assignment]


@pytest.mark.postgres
def test_set_based_switch_runs_the_automation_as_the_per_lead_switch(
    pg_url: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With triggers and segments, the set-based switch writes the same outbox rows (webhook
    bodies included), segment memberships, tags, owners, fired rules and log as the per-lead
    switch: the listener gets the same changes, in the same order and chunks."""
    from leadscore.actions import install, uninstall

    monkeypatch.setenv("LS_TEST_HOOK_SECRET", "s3cret-for-tests")
    world = write_world(tmp_path / "world", 150, seed=11)
    install()
    try:
        runs = []
        for set_based in (False, True):
            url = pg_url()
            with _switch_calls() as calls:
                runs.append((_switched(url, world, AUTOMATION, set_based=set_based), _automation_rows(url), calls))
    finally:
        uninstall()
    (per_lead, per_lead_rows, per_lead_calls), (set_based_run, set_based_rows, set_based_calls) = runs
    assert per_lead_calls == [] and set_based_calls == [True]
    assert set_based_run["leads"] == per_lead["leads"]
    assert set_based_run["history"] == per_lead["history"]
    assert set_based_run["moves"] == per_lead["moves"] and per_lead["moves"]
    assert set_based_rows == per_lead_rows
    for table in ("outbox", "segment_members", "lead_tags", "lead_owners", "rules_fired"):
        assert per_lead_rows[table], table  # the model change did trigger each kind of action


@pytest.mark.postgres
def test_pending_scores_without_their_row_are_switched_lead_by_lead(pg_url: Any, tmp_path: Path) -> None:
    """Pending scores written by an older version (no "row" to write set-based), e.g. a job
    resumed after an upgrade: the set-based switch declines and the per-lead switch stores
    the same as ever."""
    from leadscore.service.scoring import change_to_json

    world = write_world(tmp_path / "world", 60, seed=13)
    per_lead = _switched(pg_url(), world, OTHER, set_based=False)
    original = rescore.pending_text
    rescore.pending_text = change_to_json  # type: ignore[assignment]
    try:
        with _switch_calls() as calls:
            old_rows = _switched(pg_url(), world, OTHER, set_based=True)
    finally:
        rescore.pending_text = original  # type: ignore[assignment]
    assert calls == [False]
    assert old_rows["leads"] == per_lead["leads"] and old_rows["history"] == per_lead["history"]
    assert old_rows["moves"] == per_lead["moves"]


@pytest.mark.postgres
def test_events_loaded_as_text_are_the_events_psycopg_decodes(pg_url: Any, tmp_path: Path) -> None:
    """``load_events`` on PostgreSQL (properties fetched as json text, decoded once per
    distinct text) gives every lead its events in the stored order, with the properties
    psycopg's own decoding of the json column gives, nested objects and Unicode included."""
    from sqlalchemy import text

    from leadscore.service.scoring import load_events

    world = write_world(tmp_path / "world", 40, seed=17)
    store = _imported(pg_url(), world)
    try:
        with store.write() as session:
            session.execute(text(
                "UPDATE events SET properties = CAST(:doc AS json) WHERE id = (SELECT min(id) FROM events)"),
                {"doc": '{"url": {"path": "/pricing", "q": [1, 2.50, null]}, "note": "Zürich \\u00e9t\\u00e9 1e3"}'})
        with store.read() as session:
            ids = dict(session.execute(select(leads.c.id, leads.c.lead_id)).all())
            types = {t for (t,) in session.execute(text("SELECT DISTINCT type FROM events")).all()}
            expected: dict[int, list[Any]] = {pk: [] for pk in ids}
            for pk, kind, ts, props, event_id in session.execute(text(
                    "SELECT lead_pk, type, ts_us, properties, event_id FROM events ORDER BY lead_pk, id")):
                assert isinstance(props, dict)  # decoded by psycopg
                expected[pk].append(Event(ids[pk], kind, ts, props, event_id))
            got = load_events(session, ids, types)
            partial = load_events(session, ids, {"page_view"})
    finally:
        store.dispose()

    def plain(events: dict[int, list[Any]]) -> dict[int, list[tuple[Any, ...]]]:
        return {pk: [(e.lead_id, e.type, e.ts, dict(e.properties), e.event_id) for e in evs]
                for pk, evs in events.items()}

    assert plain(got) == plain(expected) and sum(map(len, expected.values())) > 100
    assert any(isinstance(e.properties.get("url"), dict) for evs in got.values() for e in evs)
    assert plain(partial) == {pk: [e for e in evs if e[1] == "page_view"] for pk, evs in plain(expected).items()}


@pytest.mark.postgres
def test_a_set_based_switch_failing_midway_leaves_the_old_model_and_resumes(pg_url: Any, tmp_path: Path) -> None:
    """The set-based switch fails after its UPDATE and INSERTs (a listener raises): nothing
    of it stays (the old model active, every lead its old score, no history of the change,
    the pending scores kept); the next run switches, as the per-lead path would."""
    from leadscore.service.models import active_version_id
    from leadscore.service.scoring import on_score_change, remove_score_listener
    from leadscore.store.tables_rescore import pending_scores

    world = write_world(tmp_path / "world", 80, seed=19)
    expected = _switched(pg_url(), world, OTHER, set_based=False)
    url = pg_url()
    store = _imported(url, world)
    try:
        with store.read() as session:
            before = session.execute(select(leads).order_by(leads.c.lead_id)).mappings().all()
            old_version = active_version_id(session)
        with store.write() as session:
            activate_document(session, OTHER, "yaml", NOW, inline_limit=0)

        def crash(session: Any, changes: Any) -> None:
            raise RuntimeError("killed mid-switch")

        on_score_change(crash)
        try:
            with _switch_calls() as calls, pytest.raises(RuntimeError, match="mid-switch"):
                rescore.rescore_stale(store, ModelCache(), lambda: NOW + 7, chunk=40)
        finally:
            remove_score_listener(crash)
        with store.read() as session:
            assert active_version_id(session) == old_version
            assert session.execute(select(leads).order_by(leads.c.lead_id)).mappings().all() == before
            assert session.execute(select(score_history).where(score_history.c.cause == "model")).first() is None
            assert len(session.execute(select(pending_scores.c.lead_pk)).all()) == 80
        assert calls == []  # it raised inside the set-based switch, before answering
        with _switch_calls() as calls:
            rescore.rescore_stale(store, ModelCache(), lambda: NOW + 7, chunk=40)
        assert calls == [True]
        with store.read() as session:
            after = [dict(r) for r in session.execute(select(leads).order_by(leads.c.lead_id)).mappings().all()]
    finally:
        store.dispose()
    assert after == expected["leads"]


@pytest.mark.postgres
def test_big_and_small_float_properties_read_as_text_alike(pg_url: Any, tmp_path: Path) -> None:
    """Text operators on numbers see Python's text of them (``1e+20``, ``2.5e+16``, ``1e-07``)
    on both paths: events.properties keeps the text repr wrote (a json column)."""
    import json
    from types import SimpleNamespace

    amounts = [1e20, 2.5e16, 1e-7, 12.0, -3e18, 1e23]
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(
        json.dumps({"event_id": f"e{n}", "lead_id": f"L{n}", "type": "deal", "timestamp": "2026-10-01T00:00:00Z",
                    "properties": {"amount": amount}}) + "\n" for n, amount in enumerate(amounts)))
    document = """
version: 1
name: float texts
rules:
  - {id: exp, points: 10, when: {event: deal, where: {amount: {starts_with: "1e+"}}}}
  - {id: quarter, points: 5, when: {event: deal, where: {amount: {equals: "2.5e+16"}}}}
  - {id: tiny, points: 3, when: {event: deal, where: {amount: {contains: "e-07"}}}}
  - {id: twelve, points: 2, when: {event: deal, where: {amount: {in: ["12"]}}}}
stages:
  - {name: Hot, min_score: 5}
  - {name: New, min_score: 0}
"""
    world = SimpleNamespace(files={"leads": None, "events": events_file})
    per_lead = _switched(pg_url(), world, document, set_based=False)
    set_based = _switched(pg_url(), world, document, set_based=True)
    assert set_based["used"] == [True]
    scores = [(lead["lead_id"], lead["score"]) for lead in per_lead["leads"]]
    assert scores == [("L0", 10.0), ("L1", 5.0), ("L2", 3.0), ("L3", 2.0), ("L4", 0.0), ("L5", 10.0)]
    assert [(lead["lead_id"], lead["score"]) for lead in set_based["leads"]] == scores
    for mine, theirs in zip(set_based["leads"], per_lead["leads"], strict=True):
        assert mine == theirs
