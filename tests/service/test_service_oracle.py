"""The service against the engine, its oracle: a stateful property test.

Random models (tests/strategies.py: every construct of the language, windows, decay,
absence rules, stages, grades) and random sequences of what users and the scheduler do:
batches of events (duplicates, old and recent timestamps, several leads at once), attribute
changes, the clock moving on with time rescoring, erasures, model switches (inline and in
the background). Two stores on one database write in turn, as two ``serve --workers``
processes do, each with its own event cache.

After every step, every lead's row holds exactly what the pure engine gives from the
lead's stored attributes and events at the moment it was scored: score, total, stage,
groups, grades, explanation, next change. After the clock moves and the due leads are
rescored, no lead's score has moved without it being rescored (nothing due is left, and a
lead that does not decay scores now what it scored then). History and stage transitions
end where the row is. The service's shortcuts (the event cache, reading back only the
events a window can count, new leads scored before their insert, columns left out of an
UPDATE when unchanged) must all be invisible here.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from tests.conftest import _schema_url

from leadscore.engine import Event, Lead, iso, parse_timestamp, to_micros
from leadscore.engine.explain import explanation_json
from leadscore.engine.scoring import score_and_schedule, score_lead
from leadscore.service.errors import NotFound
from leadscore.service.ingest import ingest_events, upsert_lead
from leadscore.service.leads import erase_lead
from leadscore.service.models import ModelCache, activate_document, active_model
from leadscore.service.rescore import rescore_all_pending
from leadscore.service.scoring import ScoringPolicy
from leadscore.store.db import Store
from leadscore.store.raw import from_json
from leadscore.store.tables import events, leads, model_versions, score_history, stage_transitions
from strategies import EVENT_TYPES, PROPERTIES, model_documents, texts, to_model

DAY = 86_400_000_000
START = to_micros(parse_timestamp("2026-03-01T00:00:00Z"))
POLICY = ScoringPolicy()
LEADS = ("L1", "L2", "Lê Văn Tám", "L4")
ATTRIBUTES = ("country", "job_title", "employees", "revenue", "opted_in", "chức_vụ")

# values the service stores as they are (NaN and infinities are refused at its doors)
values = st.one_of(texts, st.sampled_from((-7.5, 0, 1, 3, 7, 42, 120, 1000)), st.integers(-200, 200),
                   st.booleans(), st.none())
properties = st.dictionaries(st.sampled_from(PROPERTIES), values, max_size=2)
HOUR = 3_600_000_000
# ages of an event when it arrives: on a window's edge (0.5, 1, 7, 30, 90 days), a microsecond
# either side, or half an hour or an hour short of it; or anywhere in the last 120 days
ages = st.one_of(
    st.tuples(st.sampled_from((0, DAY // 2, DAY, 7 * DAY, 30 * DAY, 90 * DAY)),
              st.sampled_from((-1, 0, 1, -HOUR // 2, -HOUR + 1)))
    .map(lambda edge: max(0, edge[0] + edge[1])),
    st.integers(0, 120 * DAY),
)
event_ids = st.none() | st.sampled_from([f"e{i}" for i in range(12)])
incoming = st.tuples(st.sampled_from(LEADS), st.sampled_from((*EVENT_TYPES, "page_view", "unscored")),
                     ages, properties, event_ids)
# how far the clock moves: a microsecond, half an hour, an hour (a decaying score's
# rescoring), half a day, a day, a week, a month, each give or take a microsecond
steps = st.tuples(st.sampled_from((1, HOUR // 2, HOUR, DAY // 2, DAY, 7 * DAY, 30 * DAY)),
                  st.sampled_from((-1, 0, 1))).map(lambda step: max(1, step[0] + step[1]))
documents = model_documents(max_rules=4)


class ServiceAgainstEngine(RuleBasedStateMachine):
    """One database, two stores (two worker processes), one clock."""

    url: str = ""  # set by each test: a fresh database per run
    drop: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.stores = [Store.open(self.url)]
        self.stores.append(Store.open(self.url, upgrade=False))
        self.caches = [ModelCache(), ModelCache()]
        self.moved = False  # the last step moved the clock and rescored

    def teardown(self) -> None:
        for store in self.stores:
            store.dispose()
        if self.drop is not None:
            self.drop()

    # ---- steps ----

    @initialize(document=documents)
    def first_model(self, document: dict[str, Any]) -> None:
        self._activate(0, document, 1000)

    @rule(worker=st.integers(0, 1), batch=st.lists(incoming, min_size=1, max_size=4))
    def send_events(self, worker: int, batch: list[tuple[Any, ...]]) -> None:
        self.moved = False
        self.now += 1
        records = [{"lead_id": lead, "type": kind, "timestamp": iso(self.now - age), "properties": props}
                   | ({"event_id": event_id} if event_id else {})
                   for lead, kind, age, props, event_id in batch]
        store, cache = self.stores[worker], self.caches[worker]
        with store.write() as session:
            ingest_events(session, active_model(session, cache), records, self.now, policy=POLICY)

    @rule(worker=st.integers(0, 1), lead=st.sampled_from(LEADS),
          attributes=st.dictionaries(st.sampled_from(ATTRIBUTES), values, max_size=3))
    def change_attributes(self, worker: int, lead: str, attributes: dict[str, Any]) -> None:
        self.moved = False
        self.now += 1
        store, cache = self.stores[worker], self.caches[worker]
        with store.write() as session:
            upsert_lead(session, active_model(session, cache), lead, attributes, self.now, policy=POLICY)

    @rule(worker=st.integers(0, 1), step=steps)
    def time_passes(self, worker: int, step: int) -> None:
        self.now += step
        rescore_all_pending(self.stores[worker], self.caches[worker], lambda: self.now, policy=POLICY)
        self.moved = True

    @rule(worker=st.integers(0, 1), lead=st.sampled_from(LEADS))
    def erase(self, worker: int, lead: str) -> None:
        self.moved = False
        self.now += 1
        with self.stores[worker].write() as session, contextlib.suppress(NotFound):  # not stored (yet, or any more)
            erase_lead(session, lead, self.now)

    @rule(worker=st.integers(0, 1), document=documents, inline_limit=st.sampled_from((0, 1000)))
    def switch_model(self, worker: int, document: dict[str, Any], inline_limit: int) -> None:
        self._activate(worker, document, inline_limit)

    def _activate(self, worker: int, document: dict[str, Any], inline_limit: int) -> None:
        self.moved = False
        self.now += 1
        to_model(document)  # a valid document
        store = self.stores[worker]
        with store.write() as session:
            activate_document(session, json.dumps(document), "json", self.now, policy=POLICY,
                              inline_limit=inline_limit)
        # the background part of a switch (what the scheduler runs next): every lead scored
        # by the new version before it is active
        rescore_all_pending(store, self.caches[worker], lambda: self.now, policy=POLICY)

    # ---- what must hold ----

    @invariant()
    def rows_are_the_engines(self) -> None:
        with self.stores[0].read() as session:
            active = session.execute(select(model_versions.c.id, model_versions.c.document)
                                     .where(model_versions.c.active)).one_or_none()
            if active is None:
                return
            model = to_model(json.loads(active.document))
            rows = session.execute(select(leads).order_by(leads.c.id)).all()
            stored: dict[int, list[Event]] = {row.id: [] for row in rows}
            for e in session.execute(select(events).order_by(events.c.id)):
                stored[e.lead_pk].append(Event(
                    "", e.type, e.ts_us, from_json(e.properties) or {}, e.event_id))
            history = {row.id: session.execute(
                select(score_history.c.new_score, score_history.c.new_stage)
                .where(score_history.c.lead_pk == row.id).order_by(score_history.c.id)).all() for row in rows}
            moves = {row.id: session.execute(
                select(stage_transitions.c.from_stage, stage_transitions.c.to_stage)
                .where(stage_transitions.c.lead_pk == row.id).order_by(stage_transitions.c.id)).all()
                for row in rows}
        for row in rows:
            where = f"lead {row.lead_id!r} at {self.now}"
            assert row.model_version_id == active.id, where  # every lead scored by the active version
            lead = Lead(row.lead_id, from_json(row.attributes) or {})
            own = [Event(row.lead_id, e.type, e.ts, e.properties, e.event_id) for e in stored[row.id]]
            result, moment, decays = score_and_schedule(model, lead, own, row.scored_us)
            assert (row.score, row.total, row.stage) == (result.score, result.total, result.stage), where
            assert from_json(row.groups) == result.rounded_groups(), where
            assert from_json(row.grades) == dict(result.grades), where
            assert from_json(row.explanation) == json.loads(explanation_json(result)), where
            if decays:
                tick = row.scored_us + POLICY.decay_rescore_us
                moment = tick if moment is None else min(moment, tick)
            assert row.next_change_us == moment, where
            # history and stage transitions end where the row is
            assert history[row.id], where
            assert history[row.id][-1] == (row.recorded_score, row.stage), where
            chain = moves[row.id]
            for before, after in zip(chain, chain[1:], strict=False):
                assert after.from_stage == before.to_stage, where
            if chain:
                assert chain[-1].to_stage == row.stage, where
            if self.moved:
                # nothing due is left, and a score that cannot have moved since it was
                # computed (no decay, no discrete change before now) is the score of now
                assert row.next_change_us is None or row.next_change_us > self.now, where
                if not decays:
                    now = score_lead(model, lead, own, self.now)
                    assert (now.score, now.stage, dict(now.grades)) == (result.score, result.stage,
                                                                          dict(result.grades)), where


SETTINGS = {"stateful_step_count": 12, "deadline": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def test_the_service_on_sqlite_gives_the_engines_numbers(tmp_path: Path) -> None:
    class Fresh(ServiceAgainstEngine):
        def __init__(self) -> None:
            self.url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
            super().__init__()

    examples = int(os.environ.get("LEADSCORE_ORACLE_EXAMPLES", "30"))
    run_state_machine_as_test(Fresh, settings=settings(max_examples=examples, **SETTINGS))


@pytest.mark.postgres
def test_the_service_on_postgresql_gives_the_engines_numbers(postgres_url: str) -> None:
    import psycopg

    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")

    class Fresh(ServiceAgainstEngine):
        def __init__(self) -> None:
            schema = f"o_{worker}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')

            def drop() -> None:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

            self.url = _schema_url(postgres_url, schema)
            self.drop = drop
            super().__init__()

    examples = int(os.environ.get("LEADSCORE_ORACLE_EXAMPLES_PG", "10"))
    run_state_machine_as_test(Fresh, settings=settings(max_examples=examples, **SETTINGS))
