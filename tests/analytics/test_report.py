"""`leadscore report`: one self-contained HTML file (nothing loaded from elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.cli import app


def test_report_is_self_contained(app_client: TestClient, tmp_path: Path) -> None:
    url = app_client.app.state.ctx.settings.database_url  # type: ignore[attr-defined]
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--db", url, "--out", str(out), "--title", "Funnel – Q4"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<title>Funnel – Q4</title>" in html
    assert re.findall(r'<(?:script|link|img)[^>]+(?:src|href)=', html) == []  # nothing external
    assert "Chart.register" in html or "window.Chart" in html  # Chart.js inline
    assert 'id="chart-dist"' in html and "Lead → opportunity" in html and "33.3 %" in html
