"""Self-contained HTML reports (inline CSS and SVG charts, no external files)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

import leadscore

METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (average precision)",
    "log_loss": "Log loss",
    "brier": "Brier score",
    "lift_top10": "Lift, top 10 %",
    "lift_top20": "Lift, top 20 %",
    "capture_top10": "Conversions captured, top 10 %",
    "capture_top20": "Conversions captured, top 20 %",
}
_SIZE = 300
_PAD = 42


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("leadscore.predict", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f} %"
    env.filters["num"] = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
    return env


def _xy(x: float, y: float, x_max: float = 1.0, y_max: float = 1.0) -> tuple[float, float]:
    span = _SIZE - 2 * _PAD
    return round(_PAD + span * x / x_max, 1), round(_SIZE - _PAD - span * y / y_max, 1)


def chart(points: Sequence[tuple[float, float]], *, x_label: str, y_label: str, diagonal: bool = True,
          dots: bool = False, limit: float = 1.0) -> dict[str, Any]:
    """Coordinates of a line chart on a unit square (the template draws the SVG)."""
    line = " ".join(f"{px},{py}" for px, py in (_xy(x, y, limit, limit) for x, y in points))
    ticks = [(round(t * limit, 2), *_xy(t * limit, 0, limit, limit), *_xy(0, t * limit, limit, limit)) for t in (0, 0.25, 0.5, 0.75, 1)]
    return {
        "size": _SIZE, "pad": _PAD, "line": line, "x_label": x_label, "y_label": y_label,
        "diagonal": (_xy(0, 0, limit, limit), _xy(limit, limit, limit, limit)) if diagonal else None,
        "dots": [_xy(x, y, limit, limit) for x, y in points] if dots else [],
        "ticks": ticks, "end": _SIZE - _PAD,
    }


def evaluation_charts(evaluation: dict[str, Any]) -> dict[str, Any]:
    bins = evaluation["reliability"]
    top = max([b["predicted"] for b in bins] + [b["observed"] for b in bins] + [0.05])
    limit = min(1.0, round(top * 1.1 + 0.05, 1))
    return {
        "reliability": chart([(b["predicted"], b["observed"]) for b in bins], x_label="mean predicted probability",
                             y_label="observed conversion rate", dots=True, limit=limit),
        "roc": chart(evaluation["roc_curve"], x_label="false-positive rate", y_label="true-positive rate"),
        "gains": chart(evaluation["gains"], x_label="share of leads contacted (best first)",
                       y_label="share of conversions captured"),
    }


def metric_rows(metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            m = metrics[key]
            percent = key.startswith("capture")
            rows.append({"label": label, "value": m["value"], "low": m["low"], "high": m["high"], "percent": percent})
    return rows


def render(template: str, **context: Any) -> str:
    """Render one of the package's templates."""
    context.setdefault("version", leadscore.__version__)
    context.setdefault("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return _environment().get_template(template).render(**context)


def training_report(metrics: dict[str, Any], title: str) -> str:
    """``report.html`` of ``leadscore train``."""
    holdout = metrics["holdout"]
    return render(
        "report.html", title=title, m=metrics, evaluation=holdout, rows=metric_rows(holdout["metrics"]),
        charts=evaluation_charts(holdout), kind="train",
    )


def evaluation_report(result: dict[str, Any], title: str) -> str:
    """The report of ``leadscore evaluate``."""
    evaluation = result["evaluation"]
    return render(
        "report.html", title=title, m=result, evaluation=evaluation, rows=metric_rows(evaluation["metrics"]),
        charts=evaluation_charts(evaluation), kind="evaluate",
    )
