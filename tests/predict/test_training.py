"""Training: honest holdout, calibration, leakage guard, clear refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.predict.conftest import AS_OF, synthetic_frames

from leadscore.predict.data import (
    LeadData,
    check_classes,
    join_outcomes,
    read_events_table,
    target_vector,
)
from leadscore.predict.errors import TrainingDataError
from leadscore.predict.leakage import encoded_auc, name_tokens
from leadscore.predict.training import TrainOptions, split_holdout, train


def _data(n: int = 1200, seed: int = 0, **extra: object) -> tuple[LeadData, np.ndarray]:
    leads, events, outcomes = synthetic_frames(n, seed)
    for name, values in extra.items():
        leads[name] = values
    leads = leads.merge(outcomes, on="lead_id")
    table = events.rename(columns={"timestamp": "ts"})
    table["ts"] = pd.to_datetime(table["ts"], utc=True).dt.as_unit("us").astype("int64")
    from leadscore.engine import to_micros

    moments = np.full(len(leads), to_micros(AS_OF), dtype=np.int64)
    y = target_vector(leads["converted"], None, column="converted")
    return LeadData(leads, table, moments), y


FAST = {"max_rounds": 60, "n_boot": 50, "folds": 3}


def test_train_on_synthetic_leads_is_calibrated_and_honest() -> None:
    data, y = _data()
    result = train(data, y, TrainOptions(target="converted", **FAST))  # type: ignore[arg-type]
    metrics = result.metrics
    holdout = metrics["holdout"]
    assert holdout["leads"] == 240 and metrics["validation"]["train_leads"] == 960
    assert holdout["metrics"]["roc_auc"]["value"] > 0.75
    assert holdout["metrics"]["roc_auc"]["low"] < holdout["metrics"]["roc_auc"]["value"] < holdout["metrics"]["roc_auc"]["high"]
    assert abs(holdout["calibration_gap"]) < 0.05
    assert set(holdout["metrics"]) == {
        "roc_auc", "pr_auc", "log_loss", "brier", "lift_top10", "lift_top20", "capture_top10", "capture_top20",
    }
    assert metrics["algorithm"] in ("logistic", "lightgbm")
    assert set(metrics["cross_validation"]) == {"logistic", "lightgbm"}
    used = {c["column"]: c["use"] for c in metrics["columns"]}
    assert used["email"] == "id" and used["converted"] == "excluded" and used["notes"] == "text"
    assert "page_view in 30d" in metrics["features"]
    assert len(holdout["reliability"]) == 10


def test_leakage_guard_flags_and_allow_keeps() -> None:
    data, y = _data()
    rng = np.random.default_rng(1)
    data.leads["sales_tag"] = np.where(y == 1, "Will revert", "Ringing")
    data.leads.loc[rng.random(len(y)) < 0.05, "sales_tag"] = "Other"
    data.leads["lead_status"] = rng.choice(["open", "new"], len(y))
    result = train(data, y, TrainOptions(target="converted", **FAST))  # type: ignore[arg-type]
    flags = {f["column"]: f for f in result.metrics["leakage"]}
    assert flags["sales_tag"]["auc"] >= 0.9 and not flags["sales_tag"]["kept"]
    assert "named like a post-outcome field ('status')" in flags["lead_status"]["reason"]
    assert "sales_tag" not in result.metrics["features"]
    allowed = train(data, y, TrainOptions(target="converted", allow=("sales_tag",), **FAST))  # type: ignore[arg-type]
    assert "sales_tag" in allowed.metrics["features"]
    assert {f["column"]: f["kept"] for f in allowed.metrics["leakage"]}["sales_tag"] is True


def test_encoded_auc_and_name_tokens() -> None:
    y = np.array([0, 1] * 200, dtype=float)
    assert encoded_auc(pd.Series(np.where(y == 1, "won", "lost")), y) > 0.99
    assert encoded_auc(pd.Series(np.arange(400) % 7).astype(str), y) < 0.7
    assert name_tokens("LeadStatus") == {"lead", "status"}
    assert name_tokens("Last Notable Activity") == {"last", "notable", "activity"}


def test_time_split_tests_on_the_latest_leads() -> None:
    y = np.array([0, 1] * 50, dtype=float)
    order = np.arange(100)[::-1].astype(float)  # row 0 is the latest
    train_rows, test_rows = split_holdout(y, order, 0.2, 0)
    assert sorted(test_rows.tolist()) == list(range(20))
    assert len(train_rows) == 80


def test_one_class_and_too_few_positives_are_refused() -> None:
    with pytest.raises(TrainingDataError, match="one class only: all 50 labelled leads are not converted"):
        check_classes(np.zeros(50), "converted")
    with pytest.raises(TrainingDataError, match=r"only 7 converted lead\(s\) in 'converted' \(of 507\).*at least 25.*add at least 18 more"):
        check_classes(np.r_[np.ones(7), np.zeros(500)], "converted")
    # the training part of a split: said so, and the leads to add counted on all of them
    whole = np.r_[np.ones(30), np.zeros(600)]
    with pytest.raises(TrainingDataError) as raised:
        check_classes(np.r_[np.ones(24), np.zeros(480)], "converted", whole=whole)
    assert str(raised.value) == (
        "only 24 converted lead(s) in the training part (80%) of 'converted' (30 of 630 in all); training "
        "needs at least 25 of each outcome (the holdout and each cross-validation fold need some): add "
        "about 2 more converted lead(s)")
    with pytest.raises(TrainingDataError, match=r"measuring a model needs at least 25 labelled leads of each"):
        check_classes(np.r_[np.ones(5), np.zeros(55)], "converted", training=False)


def test_a_stray_target_value_is_named_with_its_row() -> None:
    from leadscore.errors import UsageError

    with pytest.raises(UsageError) as raised:
        target_vector(pd.Series(["yes", "no", "yes", "maybe", "no"]), None, column="converted")
    assert str(raised.value) == ("the target 'converted' has the values maybe, no, yes ('maybe' first for the "
                                 "lead of data row 4 of the lead file); say which one means converted with "
                                 "--positive VALUE")


def test_a_zero_one_target_written_as_decimals_is_read_as_zero_one() -> None:
    """pandas writes a 0/1 column with blanks as 1.0 / 0.0."""
    assert target_vector(pd.Series(["1.0", "0.0", None, " 1.00 "]), None, column="t").tolist()[:2] == [1.0, 0.0]
    assert target_vector(pd.Series(["1.0", "0.0"]), "1", column="t").tolist() == [1.0, 0.0]
    assert target_vector(pd.Series([1.0, 0.0]), "1.0", column="t").tolist() == [1.0, 0.0]


def test_target_values_and_positive() -> None:
    assert target_vector(pd.Series(["Yes", "no", None]), None, column="t").tolist()[:2] == [1.0, 0.0]
    assert target_vector(pd.Series(["won", "lost", "open"]), "won", column="t").tolist() == [1.0, 0.0, 0.0]
    from leadscore.errors import UsageError

    with pytest.raises(UsageError, match="--positive"):
        target_vector(pd.Series(["gold", "silver"]), None, column="tier")


def test_outcomes_join_and_event_properties(synthetic_dir) -> None:  # type: ignore[no-untyped-def]
    leads = pd.read_csv(synthetic_dir / "leads_only.csv", dtype=str)
    joined = join_outcomes(leads, synthetic_dir / "outcomes.csv", "converted")
    assert joined["converted"].notna().all() and len(joined) == len(leads)
    (synthetic_dir / "ev.jsonl").write_text(
        '{"lead_id": 7, "type": "page_view", "timestamp": "2026-01-01T00:00:00Z", "properties": {"url": "/x"}}\n',
        encoding="utf-8",
    )
    table = read_events_table(synthetic_dir / "ev.jsonl")
    assert table.loc[0, "lead_id"] == "7" and table.loc[0, "url"] == "/x"
