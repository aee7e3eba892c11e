"""The service's per-row path gives what the batch (pandas) path gives, to 1e-9."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from tests.predict.conftest import AS_OF
from tests.predict.test_training import _data

from leadscore.engine import Event, Lead
from leadscore.predict.data import engine_inputs
from leadscore.predict.estimators import LeadScorer
from leadscore.predict.predictor import Prediction, Predictor
from leadscore.predict.rowpath import moment_us, number

RULES = """\
version: 1
name: row-path
score: {min: 0, max: 100}
rules:
  - id: pricing
    points: 3
    when: {event: page_view, where: {url: {contains: /pricing}}, within_days: 30}
  - id: forms
    points: 5
    when: {event: [form_submit, webinar_attended], within_days: 60}
  - id: no-url
    points: 1
    when: {event: page_view, where: {url: {exists: false}}}
"""


def _world(n: int = 700) -> tuple[pd.DataFrame, object, np.ndarray]:
    rng = np.random.default_rng(5)
    extra = {
        "budget": np.where(rng.random(n) < 0.2, None, rng.choice([" 12 ", "1e3", ".5", "40", "1_000", "abc", "7."], n)),
        "signed_up": [(AS_OF - timedelta(days=float(d))).strftime("%Y-%m-%dT%H:%M:%S+02:00") if d > 5 else None
                      for d in rng.uniform(0, 90, n)],
        "source": rng.choice(["ads", "seo", "referral", "event", "rare1", "rare2"], n, p=[0.3, 0.3, 0.2, 0.18, 0.01, 0.01]),
    }
    data, y = _data(n, seed=3, **extra)
    return data, y


def _predictor(algorithm: str) -> tuple[Predictor, object]:
    data, y = _world()
    scorer = LeadScorer(algorithm=algorithm, rules=RULES, text_columns=("notes",), max_rounds=40, folds=3,
                        exclude=("converted",)).fit(data, y)
    manifest = {"id_column": "lead_id", "as_of_column": None, "as_of_offset_days": 0.0}
    return Predictor(scorer, manifest), data


@pytest.fixture(scope="module", params=["logistic", "lightgbm"])
def trained(request: pytest.FixtureRequest) -> tuple[Predictor, object]:
    return _predictor(request.param)


def _same(a: Prediction, b: Prediction) -> None:
    assert abs(a.probability - b.probability) <= 1e-9
    assert a.score == b.score
    assert [(r.text, round(r.effect, 9)) for r in a.positive] == [(r.text, round(r.effect, 9)) for r in b.positive]
    assert [(r.text, round(r.effect, 9)) for r in a.negative] == [(r.text, round(r.effect, 9)) for r in b.negative]


def test_row_path_equals_the_batch_path_on_every_lead(trained: tuple[Predictor, object]) -> None:
    predictor, data = trained
    assert predictor.uses_events
    sample = data.subset(np.arange(150))  # type: ignore[attr-defined]
    batch = predictor.predict(sample, explain=True)
    leads, events = engine_inputs(sample)
    assert sum(len(v) for v in events.values()) > 100
    for lead, expected in zip(leads, batch, strict=True):
        got = predictor.predict_lead(lead, events.get(lead.lead_id, []), AS_OF)
        _same(got, expected)
        plain = predictor.predict_lead(lead, events.get(lead.lead_id, []), AS_OF, explain=False)
        assert abs(plain.probability - expected.probability) <= 1e-9


def _tricky_leads() -> list[tuple[Lead, list[Event]]]:
    at = "2026-05-20T10:00:00Z"
    events = [
        Event.at("t1", "page_view", at, {"url": "/pricing"}, "e1"),
        Event.at("t1", "page_view", at, {"url": "/pricing"}, "e1"),  # the same event again: counts once
        Event.at("t1", "page_view", "2026-05-31T23:59:59Z", {"url": "/docs"}, None),
        Event.at("t1", "page_view", "2026-05-31T23:59:59Z", {}, None),
        Event.at("t1", "form_submit", "2026-04-01T00:00:00Z", {"url": None}, "e3"),
        Event.at("t1", "page_view", "2026-07-01T00:00:00Z", {"url": "/pricing"}, "late"),  # after as-of
        Event.at("other", "page_view", at, {"url": "/pricing"}, "e9"),  # another lead's
        Event.at("t1", "webinar_attended", "2026-03-01T00:00:00Z", {"url": 3}, "e4"),
        Event.at("t1", "unknown_type", at, {"url": "/pricing"}, "e5"),
    ]
    cases = [
        (Lead("t1", {"job_title": "CEO", "company_size": "120", "budget": " 12 ", "source": "rare1",
                     "signed_up": "2026-05-01T08:00:00+02:00", "notes": "Wants pricing for the team",
                     "created_at": "2026-04-01T00:00:00Z", "country": "DE"}), events),
        (Lead("t2", {"job_title": "Astronaut", "company_size": 50, "budget": 1e3, "source": None,
                     "signed_up": "2026-05", "country": True}), []),
        (Lead("t3", {"company_size": True, "budget": "1_000", "signed_up": "not a date", "job_title": 7,
                     "created_at": "2026-05-31"}), events[:3]),
        (Lead("t4", {"company_size": "  ", "budget": "inf", "signed_up": "2026-05-01 10:00:00.123456789",
                     "job_title": "Student", "source": "ads", "country": "VN"}), [events[0]]),
        (Lead("t5", {"company_size": 12.5, "budget": -3, "job_title": "Manager", "extra": [1, 2]}), events[-2:]),
    ]
    return cases


def test_row_path_equals_the_batch_path_on_awkward_values(trained: tuple[Predictor, object]) -> None:
    predictor, _ = trained
    for lead, events in _tricky_leads():
        _same(predictor.predict_lead(lead, events, AS_OF), predictor.predict_lead_table(lead, events, AS_OF))


def test_value_readers_match_pandas() -> None:
    texts = ["5", "5.", ".5", "+5", "-5", "1e3", "1E+3", "1_000", "1,000", "0x10", "inf", "nan", "True", "",
             "  ", "1e", "5 ", "１２", "00012", "Infinity", "-0", ".", "+.5e2", "1e400"]
    expected = pd.to_numeric(pd.Series(texts, dtype="str").str.strip(), errors="coerce").to_numpy(dtype=float).copy()
    expected[~np.isfinite(expected)] = np.nan
    got = np.array([number(t) for t in texts])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])
    moments = ["2024-01-01", "2024-01", "2024", "2024-01-01 10:00", "2024-01-01T10:00:00.123456789Z",
               "2024-01-01T10:00+02:00", "20240101", "x", "2024-02-30"]
    parsed = pd.to_datetime(pd.Series(moments, dtype=object), utc=True, format="ISO8601", errors="coerce")
    for text, want in zip(moments, parsed, strict=True):
        got_us = moment_us(text)
        assert (got_us is None) == (want is pd.NaT), text
        if got_us is not None:
            assert got_us == want.value // 1000, text


def test_a_bad_as_of_value_is_refused_by_name(trained: tuple[Predictor, object]) -> None:
    predictor, _ = trained
    dated = Predictor(predictor.scorer, {"as_of_column": "signed_up"})
    from leadscore.errors import InputError

    with pytest.raises(InputError, match="signed_up"):
        dated.predict_lead(Lead("x", {"signed_up": "yesterday"}), [])
    # with a valid as-of column the lead's own moment is used, an explicit as_of wins
    lead = Lead("x", {"signed_up": "2026-05-01T00:00:00Z"})
    assert dated.predict_lead(lead, []).probability == pytest.approx(dated.predict_lead_table(lead, []).probability, abs=1e-9)


def test_one_lead_takes_a_few_milliseconds(trained: tuple[Predictor, object]) -> None:
    predictor, data = trained
    leads, events = engine_inputs(data.subset(np.arange(50)))  # type: ignore[attr-defined]
    predictor.predict_lead(leads[0], events.get(leads[0].lead_id, []), AS_OF)
    start = time.perf_counter()
    for lead in leads:
        predictor.predict_lead(lead, events.get(lead.lead_id, []), AS_OF)
    per_lead = (time.perf_counter() - start) / len(leads)
    assert per_lead < 0.02, f"{per_lead * 1000:.1f} ms per lead"  # ~1 ms unloaded; generous for a busy CI
    assert not math.isnan(per_lead)
