"""The analytics as one self-contained HTML file (CSS, Chart.js and the chart script inline):
it opens offline, from a disk or an e-mail attachment."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from leadscore.web.base import STATIC, environment
from leadscore.web.charts import analytics_charts


def _inline(name: str) -> Markup:
    text = (STATIC / name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"{name} cannot be inlined: it contains a closing tag")
    return Markup(text)  # noqa: S704 - our own packaged files


def render_report(summary: dict[str, Any], *, title: str = "leadscore analytics", source: str = "") -> str:
    """The HTML of the report for an :func:`~leadscore.analytics.analytics_summary`."""
    return environment.get_template("report.html").render(
        title=title, source=source, a=summary, charts=analytics_charts(summary),
        css=_inline("style.css"), chart_js=_inline("vendor/chart.umd.min.js"), app_js=_inline("app.js"),
    )
