"""``leadscore train|predict|evaluate|thresholds|compare`` and ``leadscore model learn``.

Thin adapters over :mod:`leadscore.predict`: parse options, call, print.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from leadscore.cli.common import AsOfOption, DbOption, err, now_us, out, parse_as_of
from leadscore.errors import UsageError
from leadscore.ingest.files import file_format, write_rows

if TYPE_CHECKING:  # numpy loads lazily: `leadscore --help` stays fast
    import numpy as np

LeadsOption = Annotated[Path, typer.Option("--leads", help="Leads file (.csv, .jsonl, .ndjson, .parquet).")]
EventsOption = Annotated[
    Path | None,
    typer.Option("--events", help="Events file; only events at or before each lead's as-of moment count."),
]
TargetOption = Annotated[str, typer.Option("--target", help="The outcome column (e.g. Converted).")]
PositiveOption = Annotated[
    str | None,
    typer.Option("--positive", help="The target value that means converted (default: 1/true/yes).", show_default=False),
]
IdOption = Annotated[
    str | None, typer.Option("--id-column", help="The lead id column (default: lead_id).", show_default=False)
]
AsOfColumnOption = Annotated[
    str | None,
    typer.Option("--as-of-column", help="Column with each lead's as-of moment (e.g. created_at).", show_default=False),
]
OffsetOption = Annotated[
    float,
    typer.Option("--as-of-offset", help="With --as-of-column: score each lead this many days after that moment."),
]
OutcomesOption = Annotated[
    Path | None,
    typer.Option("--outcomes", help="File with the target column, joined to the leads on lead_id.", show_default=False),
]
FixedAsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="One ISO 8601 as-of moment for every lead (events after it are ignored).",
                 show_default=False),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print less.")]


def _moment(as_of: str | None) -> datetime | None:
    return parse_as_of(as_of) if as_of is not None else None


def _labelled(
    leads: Path, events: Path | None, outcomes: Path | None, target: str, positive: str | None,
    id_column: str, as_of_column: str | None, as_of: datetime | None, *, default_now: bool = False,
    offset: float = 0.0,
) -> tuple[Any, np.ndarray]:
    """Read leads (+ events, + outcomes) and the target vector."""
    from leadscore.predict.data import (
        LeadData,
        as_of_moments,
        join_outcomes,
        read_events_table,
        read_leads_table,
        require_column,
        target_vector,
    )

    frame = read_leads_table(leads, id_column)
    if outcomes is not None:
        frame = join_outcomes(frame, outcomes, target, id_column)
    require_column(frame, target, str(outcomes or leads), "the target; choose it with --target")
    y = target_vector(frame[target], positive, column=target, file=str(outcomes or leads))
    if as_of is None and as_of_column is None and default_now:
        as_of = datetime.now(UTC)
    if offset and as_of_column is None:
        raise UsageError("--as-of-offset needs --as-of-column (the moment the offset counts from)")
    moments = as_of_moments(frame, as_of_column=as_of_column, as_of=as_of, file=str(leads), offset_days=offset)
    table = None
    if events is not None:
        if moments is None:
            raise UsageError(
                "--events needs an as-of moment per lead: give --as-of-column (e.g. created_at) or --as-of, "
                "so that only events before it count"
            )
        table = read_events_table(events)
    return LeadData(frame, table, moments, str(leads)), y


def _model_as_of(predictor: Any, as_of_column: str | None, as_of: str | None, offset: float) -> tuple[str | None, float]:
    """A predictive model's own as-of column and offset, unless the options say otherwise."""
    if as_of_column is None and as_of is None and predictor.as_of_column:
        return predictor.as_of_column, offset or predictor.as_of_offset_days
    return as_of_column, offset


def _print_flags(flags: list[dict[str, Any]]) -> None:
    for flag in flags:
        action = "kept (--allow)" if flag["kept"] else f"excluded (--allow '{flag['column']}' keeps it)"
        err.print(f"leakage: column '{flag['column']}' {flag['reason']}; {action}", markup=False)


def _interval(metric: dict[str, float], digits: int = 3) -> str:
    return f"{metric['value']:.{digits}f} [{metric['low']:.{digits}f}, {metric['high']:.{digits}f}]"


def _metric_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    from leadscore.predict.report import METRIC_LABELS

    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    table.add_column("value (95 % interval)", justify="right")
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            m = metrics[key]
            if key.startswith("capture"):
                text = f"{m['value']:.1%} [{m['low']:.1%}, {m['high']:.1%}]"
            else:
                text = _interval(m)
            table.add_row(label, text)
    return table


# ---- train ------------------------------------------------------------------------------


def train(
    leads: LeadsOption,
    target: TargetOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the model, metrics.json and report.html.")],
    positive: PositiveOption = None,
    id_column: IdOption = None,
    events: EventsOption = None,
    as_of_column: AsOfColumnOption = None,
    as_of: FixedAsOfOption = None,
    offset: OffsetOption = 0.0,
    time_column: Annotated[
        str | None,
        typer.Option("--time-column", help="Train on earlier leads, test on the latest 20 % by this column.", show_default=False),
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="A column never to use (repeatable).")] = None,
    allow: Annotated[list[str] | None, typer.Option("--allow", help="Keep a column the leakage guard flags (repeatable).")] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="Use the words of a free-text column (repeatable).")] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Rule model whose event conditions become features (match counts).", show_default=False),
    ] = None,
    outcomes: OutcomesOption = None,
    algorithm: Annotated[str, typer.Option("--algorithm", help="auto (cross-validated choice), logistic or lightgbm.")] = "auto",
    folds: Annotated[
        int | None, typer.Option("--folds", help="Cross-validation folds (default 5; 3 above 50,000 leads).", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (splits, LightGBM).")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="LightGBM threads.")] = 1,
    quiet: QuietOption = False,
) -> None:
    """Train a predictive model on leads with known outcomes; write it to --out."""
    from leadscore.model.loading import load_model
    from leadscore.predict.estimators import ALGORITHMS
    from leadscore.predict.report import training_report
    from leadscore.predict.training import TrainOptions, save_training
    from leadscore.predict.training import train as fit

    if algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm: unknown '{algorithm}'; choose one of {', '.join(ALGORITHMS)}")
    if folds is not None and folds < 2:
        raise UsageError(f"--folds must be at least 2, got {folds}")
    rules_text = None
    if rules is not None:
        load_model(rules)  # refuse an invalid model with its own message
        rules_text = rules.read_text(encoding="utf-8-sig")
    id_col = id_column or "lead_id"
    data, y = _labelled(leads, events, outcomes, target, positive, id_col, as_of_column, _moment(as_of),
                        offset=offset)
    options = TrainOptions(
        target=target, positive=positive, id_column=id_col, as_of_column=as_of_column, as_of_offset=offset,
        time_column=time_column,
        exclude=tuple(exclude or ()), allow=tuple(allow or ()), text_columns=tuple(text or ()),
        rules_text=rules_text, rules_file=str(rules) if rules else None, algorithm=algorithm, folds=folds,
        n_jobs=jobs, seed=seed,
    )
    for name in (*options.allow, *options.exclude, *options.text_columns):
        if name not in data.leads.columns:
            from leadscore.predict.data import require_column

            require_column(data.leads, name, str(leads), "named in --exclude/--allow/--text")
    result = fit(data, y, options)
    metrics = result.metrics
    save_training(result, out_dir, training_report(metrics, f"leadscore model: {target} ({leads.name})"))
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    _print_flags(metrics["leakage"])
    holdout = metrics["holdout"]
    cv = metrics["cross_validation"][metrics["candidate"]]
    err.print(
        f"trained {metrics['candidate']} on {metrics['validation']['train_leads']} leads "
        f"({len(metrics['features'])} features): cross-validated AUC {cv['roc_auc']:.3f}",
        markup=False,
    )
    err.print(
        f"holdout ({metrics['validation']['holdout']}, {holdout['leads']} leads): "
        f"AUC {_interval(holdout['metrics']['roc_auc'])}, "
        f"mean predicted {holdout['mean_probability']:.3f} vs observed {holdout['conversion_rate']:.3f} "
        f"(gap {holdout['calibration_gap']:+.3f})",
        markup=False,
    )
    if not quiet:
        err.print(_metric_table(holdout["metrics"], "Holdout metrics"))
    err.print(f"wrote {out_dir}/ (model, metrics.json, report.html)", markup=False)


# ---- predict ----------------------------------------------------------------------------


def predict(
    model: Annotated[Path, typer.Option("--model", help="Model directory written by `leadscore train`.")],
    leads: LeadsOption,
    output: Annotated[Path, typer.Option("--output", help="Output file (.csv, .jsonl, .parquet).")],
    events: EventsOption = None,
    as_of: AsOfOption = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add the top positive and negative factors.")] = False,
    top_factors: Annotated[int, typer.Option("--top-factors", min=1,
                                             help="Factors of each sign with --explain.")] = 3,
    id_column: IdOption = None,
    quiet: QuietOption = False,
) -> None:
    """Predict the conversion probability (0-1) and score (0-100) of every lead."""
    import numpy as np

    from leadscore.predict.data import LeadData, as_of_moments, read_events_table, read_leads_table
    from leadscore.predict.predictor import Predictor

    predictor = Predictor.load(model)
    file_format(output)
    frame = read_leads_table(leads, id_column or predictor.id_column)
    moment = _moment(as_of)
    column = predictor.as_of_column if moment is None and predictor.as_of_column in frame.columns else None
    if moment is None and column is None:
        moment = datetime.now(UTC)
    offset = predictor.as_of_offset_days if column else 0.0
    moments = as_of_moments(frame, as_of_column=column, as_of=moment, file=str(leads), offset_days=offset,
                            fallback=f"give it a value, or --as-of: predict then scores every lead at that "
                                     f"moment instead of its {column}")
    table = None
    if events is not None:
        table = read_events_table(events, properties=predictor.scorer.features_.event_properties())
    if predictor.uses_events and events is None:
        err.print("warning: the model was trained with events; without --events every lead looks inactive", markup=False)
    for warning in predictor.scorer.features_.input_warnings(frame):
        err.print(f"warning: {leads}: {warning}", markup=False)
    data = LeadData(frame, table, moments, str(leads))
    csv = file_format(output) == "csv"
    if explain:
        results = predictor.predict(data, explain=True, top=top_factors)
        rows = []
        for r in results:
            row: dict[str, Any] = {
                "lead_id": r.lead_id,
                "probability": f"{r.probability:.4f}" if csv else round(r.probability, 4),
                "score": r.score,
                "factors": r.to_dict()["factors"],
            }
            rows.append(row)
        write_rows(output, ["lead_id", "probability", "score", "factors"], rows,
                   {"lead_id": "str", "probability": "float", "score": "float", "factors": "json"})
        probs = np.array([r.probability for r in results])
    else:  # columns, not a Prediction object per lead: 100k leads in a fraction of a second
        probs = predictor.probabilities(data)
        _write_scores(output, data.lead_ids, probs, csv=csv)
    if not quiet:
        err.print(
            f"predicted {len(probs)} lead(s) -> {output} (mean probability {probs.mean():.3f}, "
            f"{int((probs >= 0.5).sum())} at 0.5 or more)",
            markup=False,
        )


def _write_scores(output: Path, ids: Any, probability: np.ndarray, *, csv: bool) -> None:
    """``lead_id, probability, score`` as :func:`write_rows` writes them, from columns."""
    from leadscore.predict.predictor import probability_to_score

    scores = probability_to_score(probability)
    if not csv:
        rows = [{"lead_id": i, "probability": round(p, 4), "score": s}
                for i, p, s in zip(ids, probability.tolist(), scores.tolist(), strict=True)]
        write_rows(output, ["lead_id", "probability", "score"], rows,
                   {"lead_id": "str", "probability": "float", "score": "float"})
        return
    import csv as csv_module

    from leadscore.ingest.files import CsvWriter, atomic_path, safe_cell

    cells = [safe_cell(str(i)) for i in ids]
    rows_out = list(zip(cells, [f"{p:.4f}" for p in probability.tolist()], [f"{s:.2f}" for s in scores.tolist()],
                        strict=True))
    with atomic_path(output) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        if any("\r" in c for c in cells):  # the careful writer quotes such rows whole
            writer = CsvWriter(handle)
            writer.writerow(["lead_id", "probability", "score"])
            for row_out in rows_out:
                writer.writerow(row_out)
        else:
            plain = csv_module.writer(handle, lineterminator="\n")
            plain.writerow(["lead_id", "probability", "score"])
            plain.writerows(rows_out)


# ---- evaluate ---------------------------------------------------------------------------


def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Model directory written by `leadscore train`.")],
    leads: LeadsOption,
    target: TargetOption,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report here.",
                                                show_default=False)] = None,
    positive: PositiveOption = None,
    events: EventsOption = None,
    as_of_column: AsOfColumnOption = None,
    as_of: AsOfOption = None,
    offset: OffsetOption = 0.0,
    outcomes: OutcomesOption = None,
    id_column: IdOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON here.", show_default=False)] = None,
) -> None:
    """Metrics of a trained model on new labelled leads: an HTML report (--report), JSON (--json), or both."""
    from leadscore.predict.predictor import Predictor
    from leadscore.predict.report import evaluation_report
    from leadscore.predict.training import _jsonable
    from leadscore.predict.training import evaluate as run

    if report is None and json_out is None:
        raise UsageError("give --report FILE.html, --json FILE.json or both: where to write the evaluation")
    predictor = Predictor.load(model)
    positive = positive if positive is not None else predictor.target.get("positive")
    column, offset = _model_as_of(predictor, as_of_column, as_of, offset)
    data, y = _labelled(leads, events, outcomes, target, positive, id_column or predictor.id_column, column,
                        _moment(as_of), default_now=True, offset=offset)
    result = run(predictor, data, y, target=target)
    if report is not None:
        report.write_text(evaluation_report(result, f"leadscore evaluation: {model.name} on {leads.name}"),
                          encoding="utf-8")
    if json_out is not None:
        json_out.write_text(json.dumps(_jsonable(result), indent=2) + "\n", encoding="utf-8")
    for warning in result["warnings"]:
        err.print(f"warning: {warning}", markup=False)
    evaluation = result["evaluation"]
    err.print(
        f"evaluated on {evaluation['leads']} leads ({evaluation['conversions']} conversions): "
        f"AUC {_interval(evaluation['metrics']['roc_auc'])}, calibration gap {evaluation['calibration_gap']:+.3f}",
        markup=False,
    )
    err.print(_metric_table(evaluation["metrics"], "Evaluation"))
    err.print(f"wrote {', '.join(str(f) for f in (report, json_out) if f is not None)}", markup=False)


# ---- thresholds -------------------------------------------------------------------------


def _scored(model_path: Path, leads: Path, events: Path | None, outcomes: Path | None, target: str,
            positive: str | None, id_column: str | None, as_of_column: str | None, as_of: str | None,
            name: str, offset: float) -> tuple[Any, Any, np.ndarray]:
    from leadscore.predict.compare import load_any, score_with
    from leadscore.predict.predictor import Predictor

    model = load_any(model_path)
    predictive = isinstance(model, Predictor)
    if predictive:
        assert isinstance(model, Predictor)
        positive = positive if positive is not None else model.target.get("positive")
        id_column = id_column or model.id_column
        as_of_column, offset = _model_as_of(model, as_of_column, as_of, offset)
    data, y = _labelled(leads, events, outcomes, target, positive, id_column or "lead_id", as_of_column,
                        _moment(as_of), default_now=True, offset=offset)
    from leadscore.predict.training import labelled

    data, y, warnings = labelled(data, y, target, training=False)
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)
    return model, score_with(model, data, name), y


def thresholds(
    model: Annotated[Path, typer.Option("--model", help="A predictive model directory or a rule model file.")],
    leads: LeadsOption,
    target: TargetOption,
    positive: PositiveOption = None,
    events: EventsOption = None,
    as_of_column: AsOfColumnOption = None,
    as_of: AsOfOption = None,
    offset: OffsetOption = 0.0,
    outcomes: OutcomesOption = None,
    id_column: IdOption = None,
    capacity: Annotated[int | None, typer.Option("--capacity", help="Sales can take at most N leads (SQL).", show_default=False)] = None,
    min_precision: Annotated[
        float | None, typer.Option("--min-precision", help="SQL leads must convert at least this often (0-1).", show_default=False)
    ] = None,
    value: Annotated[
        float | None, typer.Option("--value-per-conversion", help="Value of one conversion.", show_default=False)
    ] = None,
    cost: Annotated[float | None, typer.Option("--cost-per-contact", help="Cost of contacting one lead.", show_default=False)] = None,
    mql_recall: Annotated[float, typer.Option("--mql-recall", help="Share of conversions the MQL cut must keep.")] = 0.8,
    write_stages: Annotated[
        Path | None,
        typer.Option("--write-stages", help="Write a copy of the rule model (--model) with these SQL/MQL stages.", show_default=False),
    ] = None,
    save_stages: Annotated[
        bool,
        typer.Option("--save-stages", help="Predictive --model: save the cut-offs as DIR/stages.json (the service's "
                     "stages under the predictive policy)."),
    ] = False,
) -> None:
    """Recommend MQL and SQL cut-offs on the model's score, with conversions, precision, recall."""
    from leadscore.predict.compare import is_predictive
    from leadscore.predict.thresholds import recommend
    from leadscore.predict.yamledit import set_stages

    if write_stages is not None and is_predictive(model):
        raise UsageError(
            "--write-stages needs a rule model as --model: a predictive score (100 x probability) is not on "
            "the scale of a rule model's points; run thresholds on the rule model to set its stages"
        )
    if save_stages and not is_predictive(model):
        raise UsageError("--save-stages needs a predictive model directory as --model; for a rule model use --write-stages")
    loaded, scored, y = _scored(model, leads, events, outcomes, target, positive, id_column, as_of_column, as_of,
                                model.name, offset)
    rec = recommend(y, scored.score, scored.probability, capacity=capacity, min_precision=min_precision,
                    value_per_conversion=value, cost_per_contact=cost, mql_recall=mql_recall)
    scale = "100 x probability" if scored.kind == "predictive" else "rule model points"
    table = Table(title=f"Cut-offs on {model.name} ({scale}); {rec.leads} leads, {rec.conversions} conversions",
                  header_style="bold")
    for column in ("stage", "min_score", "leads", "share", "conversions", "precision", "recall"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    if scored.probability is not None:
        table.add_column("expected conv.", justify="right")
    if value is not None:
        table.add_column("profit", justify="right")
    for cut in (rec.sql, rec.mql):
        cells = [cut.stage, f"{cut.min_score:.2f}", str(cut.leads), f"{cut.share:.1%}", str(cut.conversions),
                 f"{cut.precision:.1%}", f"{cut.recall:.1%}"]
        if scored.probability is not None:
            cells.append(f"{cut.expected_conversions:.1f}")
        if value is not None:
            cells.append(f"{cut.profit:,.2f}")
        table.add_row(*cells)
    out.print(table)
    out.print(f"SQL: {rec.rule}. MQL: the highest cut keeping {mql_recall:.0%} of conversions, below SQL.", markup=False)
    for note in (*rec.notes, *([scored.note] if scored.note else [])):
        err.print(f"warning: {note}", markup=False)
    if save_stages:
        from leadscore.service.predictive import STAGES_FILE

        stages_file = model / STAGES_FILE
        stages_file.write_text(json.dumps({"SQL": rec.sql.min_score, "MQL": rec.mql.min_score}, indent=2) + "\n",
                          encoding="utf-8")
        err.print(f"wrote {stages_file}: the service's stages under the predictive policy", markup=False)
    if write_stages is not None:
        from leadscore.model.schema import ScoringModel

        assert isinstance(loaded, ScoringModel)
        text = model.read_text(encoding="utf-8-sig")
        cuts = {"SQL": rec.sql.min_score, "MQL": rec.mql.min_score}
        new_text, dropped = set_stages(text, loaded, cuts, source=str(write_stages))
        write_stages.write_text(new_text, encoding="utf-8")
        gone = f"; removed stage(s) that no longer fit between them: {', '.join(dropped)}" if dropped else ""
        err.print(f"wrote {write_stages}: stages SQL >= {rec.sql.min_score:g}, MQL >= {rec.mql.min_score:g}{gone}",
                  markup=False)


# ---- compare ----------------------------------------------------------------------------


def compare(
    model_a: Annotated[Path, typer.Argument(help="Champion: a rule model file or a predictive model directory.")],
    model_b: Annotated[Path, typer.Argument(help="Challenger: a rule model file or a predictive model directory.")],
    leads: LeadsOption,
    target: TargetOption,
    positive: PositiveOption = None,
    events: EventsOption = None,
    as_of_column: AsOfColumnOption = None,
    as_of: AsOfOption = None,
    offset: OffsetOption = 0.0,
    outcomes: OutcomesOption = None,
    id_column: IdOption = None,
    capacity: Annotated[
        int | None, typer.Option("--capacity", help="Leads sales can contact (default: 10 % of the leads).", show_default=False)
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON.", show_default=False)] = None,
) -> None:
    """Champion vs challenger on the same labelled leads: AUC with intervals, lift, capture, verdict."""
    from leadscore.predict.compare import compare as run
    from leadscore.predict.compare import load_any, score_with
    from leadscore.predict.predictor import Predictor
    from leadscore.predict.training import _jsonable, labelled

    models = [load_any(model_a), load_any(model_b)]
    predictive = [m for m in models if isinstance(m, Predictor)]
    if predictive:
        positive = positive if positive is not None else predictive[0].target.get("positive")
        id_column = id_column or predictive[0].id_column
        as_of_column, offset = _model_as_of(predictive[0], as_of_column, as_of, offset)
    data, y = _labelled(leads, events, outcomes, target, positive, id_column or "lead_id", as_of_column,
                        _moment(as_of), default_now=True, offset=offset)
    data, y, warnings = labelled(data, y, target, training=False)
    a = score_with(models[0], data, str(model_a))
    b = score_with(models[1], data, str(model_b))
    cap = capacity if capacity is not None else max(1, round(0.1 * len(y)))
    if not 1 <= cap <= len(y):
        raise UsageError(f"--capacity must be between 1 and the number of leads ({len(y)}), got {cap}")
    result = run(a, b, y, capacity=cap)
    for warning in warnings + [f"{m.name}: {m.note}" for m in (a, b) if m.note]:
        err.print(f"warning: {warning}", markup=False)
    table = Table(title=f"{result['leads']} leads, {result['conversions']} conversions; capacity {cap}", header_style="bold")
    for column in ("", "model", "kind", "ROC-AUC (95 % interval)", "lift top 10 %", f"conversions in top {cap}"):
        table.add_column(column, justify="right" if column not in ("", "model", "kind") else "left")
    for label in ("A", "B"):
        row = result["models"][label]
        table.add_row(label, row["name"], row["kind"], _interval(row["roc_auc"]), f"{row['lift_top10']:.2f}",
                      f"{row['conversions_at_capacity']:.1f}")
    out.print(table)
    out.print(f"verdict: {result['verdict']}", markup=False)
    if json_out is not None:
        json_out.write_text(json.dumps(_jsonable(result), indent=2) + "\n", encoding="utf-8")


# ---- model learn ------------------------------------------------------------------------


def learn(
    model: Annotated[Path, typer.Option("--model", help="The rule model whose points to learn.")],
    leads: LeadsOption,
    target: TargetOption,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the model with learned points.")],
    positive: PositiveOption = None,
    events: EventsOption = None,
    as_of_column: AsOfColumnOption = None,
    as_of: AsOfOption = None,
    offset: OffsetOption = 0.0,
    outcomes: OutcomesOption = None,
    id_column: IdOption = None,
) -> None:
    """Fit the points of a rule model to outcomes; same rules, data-driven values."""
    from leadscore.model.loading import load_model
    from leadscore.predict.data import engine_inputs
    from leadscore.predict.learn import learn_points, rule_units
    from leadscore.predict.training import labelled
    from leadscore.predict.yamledit import format_number, set_points

    rule_model = load_model(model)
    data, y = _labelled(leads, events, outcomes, target, positive, id_column or "lead_id", as_of_column,
                        _moment(as_of), default_now=True, offset=offset)
    data, y, warnings = labelled(data, y, target)  # learning points: training
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)
    engine_leads, engine_events = engine_inputs(data)
    assert data.as_of_us is not None  # _labelled defaults to now
    units = rule_units(rule_model, engine_leads, engine_events, data.as_of_us)
    result = learn_points(rule_model, units, y)
    text = model.read_text(encoding="utf-8-sig")
    if model.suffix.lower() == ".json":
        raise UsageError("model learn edits YAML models (comments kept); convert the JSON model to YAML first")
    new_text = set_points(text, result.points, source=str(out_file))
    out_file.write_text(new_text, encoding="utf-8")
    table = Table(title="Learned points", header_style="bold")
    for column in ("rule", "before", "after"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for rule_id, points in result.points.items():
        table.add_row(rule_id, format_number(result.old_points[rule_id]), "disabled" if points is None else format_number(points))
    out.print(table)
    out.print(
        f"AUC before {result.auc_before:.3f} (current points) -> after {result.auc_after_cv:.3f} "
        f"(5-fold cross-validated; {result.auc_after:.3f} on all {result.leads} leads with the written points)",
        markup=False,
    )
    err.print(f"wrote {out_file}", markup=False)


# ---- the service's predictive model ------------------------------------------------------

predictive_app = typer.Typer(
    help="The service's predictive model: activate a trained model directory, see it, deactivate it.",
    no_args_is_help=True,
)


def _rescore_all(store: Any) -> int:
    from leadscore.actions import install
    from leadscore.config import get_settings
    from leadscore.service.predictive import rescore_all
    from leadscore.service.scoring import ScoringPolicy

    install()  # score changes fire the rule model's triggers, as any rescoring does
    settings = get_settings()
    return rescore_all(store, now_us, chunk=settings.rescore_chunk, policy=ScoringPolicy.from_settings(settings))


def _print_status(status: dict[str, Any]) -> None:
    if not status["active"]:
        out.print("no predictive model is active; scores are rule scores", markup=False)
        return
    model = status["model"]
    policy = status["policy"] + (f" (weight {status['weight']:g})" if status["policy"] == "blend" else "")
    out.print(f"active predictive model {model['id']} '{model['name']}' ({model['algorithm']}, "
              f"{model['features']} features, trained {model['trained_at']})", markup=False)
    out.print(f"policy: {policy}; stages: {json.dumps(status['stages'])}", markup=False)
    out.print(f"leads predicted: {status['leads_predicted']} of {status['leads_total']}", markup=False)
    if status["leads_predicted"] < status["leads_total"]:
        out.print("(the rest get theirs as they are scored; `leadscore predictive activate` again does all at once)",
                  markup=False)


@predictive_app.command("activate")
def predictive_activate(
    directory: Annotated[Path, typer.Argument(help="The model directory written by `leadscore train --out`.")],
    db: DbOption = None,
    policy: Annotated[str, typer.Option("--policy", help="Final score: rules, predictive or blend.")] = "rules",
    weight: Annotated[float | None, typer.Option("--weight", help="blend: the predictive score's share (0-1).",
                                                 show_default=False)] = None,
    stages: Annotated[str | None, typer.Option("--stages", help="predictive: stage cut-offs on 100 x probability, "
                                               "e.g. SQL=40,MQL=15 (default: DIR/stages.json).",
                                               show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name (default: the directory's).",
                                             show_default=False)] = None,
) -> None:
    """Store a trained model in the service and activate it; every lead is then predicted."""
    from leadscore.cli.common import database_url
    from leadscore.service.predictive import activate, check_policy, parse_stages, prepare_directory
    from leadscore.store.db import Store

    cuts = parse_stages(stages) if stages else None
    check_policy(policy, weight)
    prepared = prepare_directory(directory)  # loaded and validated before the write transaction
    store = Store.open(database_url(db))
    try:
        with store.write() as session:
            status = activate(session, prepared, now_us=now_us(), policy=policy, weight=weight,
                              stages=cuts, name=name or directory.resolve().name)
        done = _rescore_all(store)
        with store.read() as session:
            from leadscore.service.predictive import status as current

            status = current(session)
    finally:
        store.dispose()
    err.print(f"activated {directory}; scored {done} lead(s) again", markup=False)
    _print_status(status)


@predictive_app.command("deactivate")
def predictive_deactivate(
    db: DbOption = None,
) -> None:
    """Deactivate the predictive model: scores are rule scores again."""
    from leadscore.cli.common import database_url
    from leadscore.service.predictive import deactivate, status
    from leadscore.store.db import Store

    store = Store.open(database_url(db))
    try:
        with store.write() as session:
            before = status(session)
            deactivate(session)
        done = _rescore_all(store) if before["active"] and before["policy"] != "rules" else 0
    finally:
        store.dispose()
    if before["active"]:
        err.print(f"deactivated predictive model {before['model']['id']} '{before['model']['name']}'"
                  + (f"; scored {done} lead(s) again" if done else ""), markup=False)
    else:
        err.print("no predictive model was active", markup=False)


@predictive_app.command("status")
def predictive_status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """The active predictive model, the score policy and how many leads carry a prediction."""
    from leadscore.cli.common import database_url
    from leadscore.service.predictive import status
    from leadscore.store.db import Store

    store = Store.open(database_url(db))
    try:
        with store.read() as session:
            found = status(session)
    finally:
        store.dispose()
    if as_json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        _print_status(found)


def register(app: typer.Typer) -> None:
    app.add_typer(predictive_app, name="predictive")
    app.command("train")(train)
    app.command("predict")(predict)
    app.command("evaluate")(evaluate)
    app.command("thresholds")(thresholds)
    app.command("compare")(compare)
    from leadscore.cli.model import model_app

    model_app.command("learn")(learn)
