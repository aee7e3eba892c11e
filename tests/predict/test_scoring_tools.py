"""Metrics, thresholds, learned points, YAML edits, reasons and the saved predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from tests.predict.conftest import AS_OF
from tests.predict.test_training import FAST, _data

from leadscore.engine import Event, Lead, score_lead
from leadscore.errors import UsageError
from leadscore.model import parse_model
from leadscore.predict.data import engine_inputs
from leadscore.predict.features import EventCount, FeatureSpec
from leadscore.predict.learn import learn_points, model_totals, rule_units
from leadscore.predict.metrics import average_precision, capture, lift, roc_auc
from leadscore.predict.predictor import Predictor
from leadscore.predict.reasons import describe
from leadscore.predict.thresholds import recommend
from leadscore.predict.training import TrainOptions, train
from leadscore.predict.yamledit import set_points, set_stages


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(float)
    score = rng.random(500) + 0.4 * y
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert average_precision(y, score) == pytest.approx(average_precision_score(y, score))
    tied = np.round(score, 1)
    assert roc_auc(y, tied) == pytest.approx(roc_auc_score(y, tied))


def test_capture_shares_ties_at_the_cut() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    flat = np.zeros(10)
    assert capture(y, flat, 0.1) == pytest.approx(0.1)  # a flat score finds conversions at the base rate
    assert lift(y, flat, 0.2) == pytest.approx(1.0)
    assert capture(y, np.arange(10)[::-1].astype(float), 0.1) == 0.5


def test_recommend_respects_capacity_precision_and_profit() -> None:
    score = np.arange(100, 0, -1).astype(float)
    y = np.r_[np.ones(20), np.zeros(10), np.ones(10), np.zeros(60)]
    rec = recommend(y, score, capacity=25)
    assert rec.sql.leads == 25 and rec.sql.conversions == 20 and rec.sql.min_score == 76
    assert rec.mql.recall >= 0.8 and rec.mql.min_score < rec.sql.min_score
    precise = recommend(y, score, min_precision=0.75)
    assert precise.sql.precision >= 0.75 and precise.sql.leads == 40
    profit = recommend(y, score, value_per_conversion=10, cost_per_contact=4)
    assert profit.sql.leads == 40 and profit.sql.profit == 140  # 10 x 30 - 4 x 40 beats 10 x 20 - 4 x 20
    with pytest.raises(UsageError, match="go together"):
        recommend(y, score, value_per_conversion=10)


def test_recommend_says_when_no_cut_doubles_the_rate_and_when_mql_has_no_room() -> None:
    """At a conversion rate of 50 % no cut reaches precision 100 %: the old fallback took the
    single top score (here a lead that did not convert: SQL at 0 % precision) and still
    claimed the rule."""
    score = np.arange(64, 0, -1).astype(float)
    y = np.r_[np.zeros(1), np.ones(5), np.zeros(1), np.ones(27), np.zeros(30)]  # 32 of 64
    rec = recommend(y, score)
    assert rec.sql.precision == pytest.approx(32 / 34) and rec.sql.leads == 34  # the best precision
    assert rec.rule == "the best precision, 94% (no cut reaches 2 x the conversion rate, 100%, on these leads)"
    # a SQL cut keeping most conversions: MQL can only sit just below it, which a note says
    wide = recommend(y, score, capacity=40)
    assert wide.sql.recall >= 0.8 and wide.mql.leads == wide.sql.leads + 1
    assert wide.notes and wide.notes[0].startswith("the SQL cut already keeps 100% of the conversions")
    assert not recommend(y, score, capacity=10).notes


MODEL = """\
# a commented model
version: 1
name: learn-me
score: {min: 0, max: 100}
groups:
  fit: {max: 40}
rules:
  # who they are
  - id: ceo
    group: fit
    points: 5
    when: {attribute: job_title, equals: CEO}
  - id: student
    group: fit
    points: 20
    when: {attribute: job_title, equals: Student}
  - id: pricing
    points: 3
    when: {event: page_view, where: {url: {contains: /pricing}}, within_days: 90}
    repeat: each
    max_times: 5
    decay: {half_life_days: 30}
  - id: never
    points: 7
    when: {attribute: job_title, equals: Astronaut}
stages:
  - {name: SQL, min_score: 60}
  - {name: MQL, min_score: 30}
  - {name: Warm, min_score: 10}
  - {name: New, min_score: 0}
"""


def test_learned_points_rank_better_and_keep_the_document() -> None:
    data, y = _data(800)
    model = parse_model(MODEL)
    leads, events = engine_inputs(data)
    assert data.as_of_us is not None
    units = rule_units(model, leads, events, data.as_of_us)
    points = np.array([rule.points for rule in model.rules])
    engine_totals = [score_lead(model, lead, events.get(lead.lead_id, ()), AS_OF).total for lead in leads]
    np.testing.assert_allclose(model_totals(model, units, points), engine_totals)
    result = learn_points(model, units, y)
    assert result.auc_after_cv > result.auc_before + 0.05
    assert result.points["student"] is not None and result.points["student"] < 0  # students do not buy
    assert result.points["never"] == 7  # no lead triggers it: the data say nothing, points kept
    text = set_points(MODEL, result.points)
    assert text.startswith("# a commented model") and "  # who they are" in text
    assert parse_model(text).rule("student").points == result.points["student"]
    disabled = set_points(MODEL, {"ceo": None})
    assert "# model learn: 'ceo' carries no weight" in disabled
    assert [r.id for r in parse_model(disabled).rules] == ["student", "pricing", "never"]


def test_set_stages_in_place_and_dropping_what_no_longer_fits() -> None:
    model = parse_model(MODEL)
    text, dropped = set_stages(MODEL, model, {"SQL": 45, "MQL": 8})
    assert dropped == ["Warm"]
    assert "  - {name: SQL, min_score: 45}\n  - {name: MQL, min_score: 8}\n  - {name: New, min_score: 0}" in text
    assert text.startswith("# a commented model")
    plain = MODEL.split("stages:")[0]
    rebuilt, _ = set_stages(plain, parse_model(plain), {"SQL": 45, "MQL": 8})
    assert [(s.name, s.min_score) for s in parse_model(rebuilt).stages or []] == [("SQL", 45), ("MQL", 8), ("New", 0)]


def test_reason_wording() -> None:
    count = EventCount("pricing", "Visited the pricing page", ("page_view",), (), 30)
    rules = {"pricing": count}
    spec = FeatureSpec("rule pricing", "numeric", ("rule", "pricing"))
    assert describe(spec, 3, None, rules) == "Visited the pricing page 3 times in the last 30 days"
    assert describe(spec, 0, None, rules) == "Visited the pricing page: not in the last 30 days"
    title = FeatureSpec("job_title", "category", ("attribute", "job_title"), ("Student", "(other)", "(missing)"))
    assert describe(title, 0, "Student", {}) == "job_title: Student"
    assert describe(title, 1, "Astronaut", {}) == "job_title: Astronaut"
    assert describe(title, 2, None, {}) == "job_title: not given"
    views = FeatureSpec("page_view in 30d", "numeric", ("event", "page_view", "30"))
    assert describe(views, 1, None, {}) == "Viewed a page once in the last 30 days"
    assert describe(FeatureSpec("r", "numeric", ("recency", "email_open")), 2.5, None, {}) == "Last e-mail opened 2 days ago"


def test_saved_predictor_gives_the_same_numbers_and_one_lead_works(tmp_path: Path) -> None:
    data, y = _data(900)
    result = train(data, y, TrainOptions(target="converted", **FAST))  # type: ignore[arg-type]
    result.predictor.save(tmp_path / "m")
    loaded = Predictor.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.probabilities(data), result.predictor.probabilities(data))
    batch = loaded.predict(data.subset(np.array([0])), explain=True)[0]
    leads, events = engine_inputs(data.subset(np.array([0])))
    one = loaded.predict_lead(leads[0], events.get(leads[0].lead_id, []), AS_OF)
    assert one.probability == pytest.approx(batch.probability)
    assert [r.text for r in one.positive] == [r.text for r in batch.positive]
    assert one.to_dict()["score"] == round(100 * one.probability, 2)
    late = Event.at(leads[0].lead_id, "form_submit", "2030-01-01T00:00:00Z", {}, "late")
    assert loaded.predict_lead(leads[0], [*events.get(leads[0].lead_id, []), late], AS_OF).probability == one.probability
    bare = loaded.predict_lead(Lead("new", {"job_title": "CEO"}), [], AS_OF)
    assert 0 < bare.probability < 1
