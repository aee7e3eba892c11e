"""The predictive commands end to end on a tiny demo world, and their refusals (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli_run import run_cli as run
from leadscore.cli import main
from leadscore.demo import write_world
from leadscore.model import load_model
from leadscore.model.loading import parse_model
from leadscore.predict.predictor import FORMAT_VERSION, MANIFEST


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("world")
    write_world(directory, 1500, seed=3)
    from leadscore.cli.model import starter_text

    (directory / "starter.yaml").write_text(starter_text(), encoding="utf-8")
    return directory


def common(world: Path) -> list[str]:
    return [
        "--leads", str(world / "leads.csv"), "--events", str(world / "events.csv"),
        "--outcomes", str(world / "outcomes.csv"), "--target", "converted",
    ]


@pytest.fixture(scope="module")
def trained(world: Path) -> Path:
    out = world / "model"
    try:
        main(["train", *common(world), "--as-of-column", "created_at", "--as-of-offset", "7",
              "--rules", str(world / "starter.yaml"), "--folds", "3", "--out", str(out), "-q"])
    except SystemExit as exc:
        assert not exc.code
    return out


def test_train_writes_model_metrics_and_report(trained: Path) -> None:
    assert {p.name for p in trained.iterdir()} >= {MANIFEST, "model.joblib", "metrics.json", "report.html", "rules.yaml"}
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["algorithm"] in ("logistic", "lightgbm")
    assert set(metrics["holdout"]["metrics"]["roc_auc"]) == {"value", "low", "high"}
    assert isinstance(metrics["leakage"], list)
    assert any(f.startswith("rule ") for f in metrics["features"])
    manifest = json.loads((trained / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["as_of_offset_days"] == 7
    html = (trained / "report.html").read_text()
    assert "<svg" in html and "Reliability" in html and "http" not in html.split("<body>")[1].replace("https://", "")


def test_predict_with_factors(world: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = world / "predictions.csv"
    code, _, err = run(["predict", "--model", str(trained), "--leads", str(world / "leads.csv"),
                        "--events", str(world / "events.csv"), "--output", str(output), "--explain"], capsys)
    assert code == 0, err
    rows = pd.read_csv(output)
    assert list(rows.columns) == ["lead_id", "probability", "score", "factors"]
    assert len(rows) == 1500 and rows["probability"].between(0, 1).all() and rows["score"].between(0, 100).all()
    factors = json.loads(rows["factors"][0])
    assert set(factors) == {"positive", "negative"}
    texts = [f["factor"] for f in factors["positive"] + factors["negative"]]
    assert texts and all(isinstance(t, str) and t for t in texts)


def test_predict_without_factors_tells_the_summary_and_warns_of_missing_or_unreadable_columns(
    world: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default use (no --explain, no --quiet) crashed after writing the file."""
    output = tmp_path / "p.csv"
    args = ["predict", "--model", str(trained), "--events", str(world / "events.csv"), "--output", str(output)]
    code, out, err = run([*args, "--leads", str(world / "leads.csv")], capsys)
    assert (code, out) == (0, "")
    assert err.startswith(f"predicted 1500 lead(s) -> {output} (mean probability ") and "warning" not in err
    full = pd.read_csv(output)
    # a renamed header and a text in a number column: told, not silently predicted as blanks
    leads = pd.read_csv(world / "leads.csv", dtype=str, keep_default_na=False)
    leads = leads.rename(columns={"job_title": "Job Title"})
    leads.loc[4, "company_size"] = "huge"
    changed = tmp_path / "changed.csv"
    leads.to_csv(changed, index=False)
    code, _, err = run([*args, "--leads", str(changed)], capsys)
    assert code == 0, err
    assert (f"warning: {changed}: the leads have no column 'job_title', which the model uses - did you mean "
            "'Job Title'?: every lead is predicted as if it were not given") in err
    assert (f"warning: {changed}: column 'company_size': 1 value(s) are not numbers (first: 'huge', row 5), "
            "which the model reads as numbers: they count as not given") in err
    assert len(pd.read_csv(output)) == len(full)
    code, _, err = run([*args, "--leads", str(world / "leads.csv"), "--explain", "--top-factors", "-1"], capsys)
    assert code == 2 and "--top-factors" in err


def test_evaluate_thresholds_compare_and_learn(world: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = world / "eval.html"
    code, _, err = run(["evaluate", "--model", str(trained), *common(world), "--report", str(report)], capsys)
    assert code == 0, err
    assert "were used to train the model" in err and report.exists()
    metrics = world / "eval.json"
    code, _, err = run(["evaluate", "--model", str(trained), *common(world), "--json", str(metrics)], capsys)
    assert code == 0, err
    assert json.loads(metrics.read_text())["evaluation"]["leads"] == 1500 and f"wrote {metrics}" in err
    code, _, err = run(["evaluate", "--model", str(trained), *common(world)], capsys)
    assert code == 2 and "give --report FILE.html, --json FILE.json or both" in err

    code, out, err = run(["thresholds", "--model", str(trained), *common(world), "--capacity", "100"], capsys)
    assert code == 0, err
    assert "SQL" in out and "MQL" in out
    assert "warning: " in err and "of these leads were used to train it: its figures are optimistic" in err

    staged = world / "staged.yaml"
    code, out, err = run(["thresholds", "--model", str(world / "starter.yaml"), *common(world),
                          "--as-of-column", "created_at", "--as-of-offset", "7", "--min-precision", "0.2",
                          "--write-stages", str(staged)], capsys)
    assert code in (0, 2), err
    if code == 0:
        model = load_model(staged)
        assert [s.name for s in model.stages or []][:2] == ["SQL", "MQL"]
        assert staged.read_text().startswith("# leadscore starter model")

    code, out, err = run(["compare", str(world / "starter.yaml"), str(trained), *common(world),
                          "--as-of-column", "created_at", "--as-of-offset", "7"], capsys)
    assert code == 0, err
    assert "verdict:" in out and "were used to train it" in err

    learned = world / "learned.yaml"
    code, out, err = run(["model", "learn", "--model", str(world / "starter.yaml"), *common(world),
                          "--as-of-column", "created_at", "--as-of-offset", "7", "--out", str(learned)], capsys)
    assert code == 0, err
    assert "AUC before" in out and "cross-validated" in out
    text = learned.read_text()
    parse_model(text)
    assert text.startswith("# leadscore starter model") and "# ---- Fit" in text


def test_write_stages_refused_for_a_predictive_model(world: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["thresholds", "--model", str(trained), *common(world), "--write-stages", str(world / "x.yaml")], capsys)
    assert code == 2 and "needs a rule model" in err


def test_bad_inputs_exit_2_with_one_clear_line(world: Path, trained: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,size,converted\n" + "".join(f"L{i},{i},0\n" for i in range(60)), encoding="utf-8")
    code, _, err = run(["train", "--leads", str(leads), "--target", "converted", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and err.startswith("error: the target 'converted' has one class only")

    leads.write_text("lead_id,size,converted\n" + "".join(f"L{i},{i},{int(i < 5)}\n" for i in range(60)), encoding="utf-8")
    code, _, err = run(["train", "--leads", str(leads), "--target", "converted", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "only 5 converted lead(s)" in err and "at least 25" in err

    code, _, err = run(["train", "--leads", str(leads), "--target", "convrted", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "no column 'convrted'" in err and "did you mean 'converted'" in err

    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("lead_id;size;converted\n" + "".join(f"L{i};{i};{i % 2}\n" for i in range(60)), encoding="utf-8")
    code, _, err = run(["train", "--leads", str(semicolons), "--target", "converted", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "no column 'lead_id'" in err and "separated by semicolons" in err
    assert "did you mean" not in err

    old = tmp_path / "old"
    old.mkdir()
    for item in trained.iterdir():
        (old / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["format_version"] = 0
    (old / MANIFEST).write_text(json.dumps(manifest))
    code, _, err = run(["predict", "--model", str(old), "--leads", str(world / "leads.csv"), "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and "model format version 0" in err and "retrain it" in err and len(err.strip().splitlines()) == 1

    code, _, err = run(["predict", "--model", str(tmp_path), "--leads", str(world / "leads.csv"), "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and "not a leadscore model directory" in err
