"""`leadscore score`, `model check`, `model schema` and `init` on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_run import run_cli as run

MODEL = """\
version: 1
name: cli-test
groups:
  fit: {max: 30, grades: {A: 20, B: 0}}
rules:
  - {id: vp, label: VP title, group: fit, points: 20, when: {attribute: job_title, contains: vp}}
  - {id: big, group: fit, points: 15, when: {attribute: company_size, gte: 100}}
  - id: pricing
    group: engagement
    points: 10
    when: {event: page_view, where: {url: {contains: /pricing}}}
    repeat: each
    max_times: 2
stages:
  - {name: Hot, min_score: 40}
  - {name: Cold, min_score: 0}
"""

LEADS = """\
lead_id,name,job_title,company_size,created_at
L1,Nguyễn Thị Hương,VP Marketing,250,2025-01-01T00:00:00Z
L2,Ana 🚀,Student,,2025-02-01
L3,Bob,  vp of sales ,50,
"""

EVENTS = """\
event_id,lead_id,type,timestamp,url
e1,L1,page_view,2025-03-01T10:00:00Z,/pricing
e2,L1,page_view,2025-03-02T10:00:00+02:00,/pricing/enterprise
e3,L1,page_view,2025-03-03T10:00:00Z,/pricing
e1,L1,page_view,2025-03-04T10:00:00Z,/pricing
e4,L3,page_view,2025-03-05T10:00:00Z,/PRICING
e5,L3,page_view,2099-01-01T00:00:00Z,/pricing
e6,L9,page_view,2025-03-05T10:00:00Z,/pricing
"""

AS_OF = "2025-04-01T00:00:00Z"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"model": tmp_path / "model.yaml", "leads": tmp_path / "leads.csv", "events": tmp_path / "events.csv"}
    paths["model"].write_text(MODEL, encoding="utf-8")
    paths["leads"].write_text(LEADS, encoding="utf-8")
    paths["events"].write_text(EVENTS, encoding="utf-8")
    return paths


def score_args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "score", "--model", str(files["model"]), "--leads", str(files["leads"]),
        "--events", str(files["events"]), "--as-of", AS_OF, *extra,
    ]


def test_score_csv_to_stdout(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(score_args(files), capsys)
    assert code == 0, err
    # L1: vp 20 + big 15 = 35 -> clipped to 30; pricing: e3, e2 (two most recent, e1 dup ignored) = 20
    # L2: nothing. L3: vp 20 (folded), big 15 (50 < 100: no) -> 20; pricing e4 = 10 (e5 is after as_of)
    assert out.splitlines() == [
        "lead_id,score,stage,score_fit,score_engagement,grade_fit",
        "L1,50.00,Hot,30.00,20.00,A",
        "L2,0.00,Cold,0.00,0.00,B",
        "L3,30.00,Cold,20.00,10.00,A",
    ]
    assert "1 event(s) belong to 1 lead(s) that are not in the leads file" in err
    assert "1 duplicate event_id(s) counted once" in err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_output_formats_and_explain(
    files: dict[str, Path], suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / f"scored{suffix}"
    code, _, err = run(score_args(files, "--output", str(out_path), "--explain"), capsys)
    assert code == 0, err
    if suffix == ".parquet":
        rows = pq.read_table(out_path).to_pylist()
        assert rows[0]["score"] == 50.0
        explain = json.loads(rows[0]["explain"])
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
        assert rows[0]["score"] == 50.0
        explain = rows[0]["explain"]
    else:
        import csv

        rows = list(csv.DictReader(out_path.open(encoding="utf-8")))
        assert rows[0]["score"] == "50.00"
        explain = json.loads(rows[0]["explain"])
    assert [r["lead_id"] for r in rows] == ["L1", "L2", "L3"]
    assert explain["groups"]["fit"] == {"score": 30.0, "unclipped": 35.0, "grade": "A"}
    pricing = next(r for r in explain["rules"] if r["rule"] == "pricing")
    assert pricing["points"] == 20.0
    assert [e["event_id"] for e in pricing["events"]] == ["e3", "e2"]
    vp = next(r for r in explain["rules"] if r["rule"] == "vp")
    assert vp["label"] == "VP title" and vp["attributes"] == {"job_title": "VP Marketing"}


def test_jsonl_and_parquet_inputs_with_properties_object(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    leads = tmp_path / "leads.jsonl"
    leads.write_text(
        json.dumps({"lead_id": 1, "job_title": "VP", "company_size": 300}) + "\n"
        + json.dumps({"lead_id": "2", "attributes": {"job_title": "Intern"}}) + "\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.parquet"
    table = pa.table({
        "lead_id": ["1", "1", "2"],
        "type": ["page_view"] * 3,
        "timestamp": ["2025-03-01T00:00:00Z"] * 3,
        "properties": [{"url": "/pricing"}, {"url": "/blog"}, {"url": "/pricing"}],
    })
    pq.write_table(table, events)
    code, out, err = run([
        "score", "--model", str(files["model"]), "--leads", str(leads), "--events", str(events),
        "--as-of", AS_OF,
    ], capsys)
    assert code == 0, err
    assert out.splitlines()[1:] == ["1,40.00,Hot,30.00,10.00,A", "2,10.00,Cold,0.00,10.00,B"]


BAD_INPUTS = [
    ("leads.csv", b"lead_id,job_title\nL1,VP\nL2,CEO,extra\n", "leads.csv, row 2: has 3 fields but the header has 2"),
    ("leads.csv", b"", "leads.csv: the file is empty"),
    ("leads.csv", b"lead_id,name\nL1,Ren\xe9e\n", "leads.csv: line 2, character 7: the file is not UTF-8 text"),
    ("leads.csv", b"id,name\nL1,x\n", "leads.csv, row 1, column 'lead_id': no 'lead_id' column"),
    ("leads.csv", b"lead_id,created_at\nL1,yesterday\n", "leads.csv, row 1, column 'created_at': created_at: 'yesterday' is not an ISO 8601 timestamp"),
    ("leads.csv", b"lead_id\nL1\nL1\n", "leads.csv, row 2, column 'lead_id': lead_id 'L1' appears again (first at row 1)"),
    ("events.csv", b"lead_id,type,timestamp\nL1,page_view,2025-13-01\n", "events.csv, row 1, column 'timestamp': timestamp: '2025-13-01' is not an ISO 8601 timestamp"),
    ("events.csv", b"lead_id,type\nL1,page_view\n", "events.csv, row 1, column 'timestamp': missing column(s) timestamp"),
    ("events.jsonl", b'{"lead_id": "L1", "type": "x", "timestamp": "2025-01-01"}\n{"lead_id": \n', "events.jsonl, row 2: not valid JSON: Expecting value (character 13, where the line ends)"),
    ("leads.jsonl", b'{"lead_id": "L1", "name": "x",}\n', "leads.jsonl, row 1: not valid JSON: Expecting property name enclosed in double quotes (character 31)"),
    ("events.jsonl", b'{"lead_id": "L1", "type": 5, "timestamp": "2025-01-01"}\n', "events.jsonl, row 1, column 'type': type must be text"),
    ("leads.txt", b"lead_id\nL1\n", "leads.txt: unknown file type '.txt'"),
    # a spreadsheet saved where the list separator is ';' (or as tab-separated text)
    ("leads.csv", "lead_id;name\nL1;Nguyễn\n".encode(), "no 'lead_id' column (found: lead_id;name); the header seems to be separated by semicolons, and leadscore reads CSV files separated by commas"),
    ("events.csv", b"lead_id\ttype\ttimestamp\nL1\tpage_view\t2025-01-01\n", "missing column(s) lead_id, type, timestamp (events need lead_id, type, timestamp); the header seems to be separated by tabs"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS)
def test_bad_input_exit_2_one_line_nothing_written(
    name: str, content: bytes, message: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    key = "events" if name.startswith("events") else "leads"
    args = dict(files)
    args[key] = bad
    out_path = tmp_path / "out.csv"
    code, _, err = run(score_args(args, "--output", str(out_path)), capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert not out_path.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv")]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_trailing_comma_in_json_lines_is_refused_by_every_engine_and_a_comma_in_a_text_is_not(
    engine: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB's reader takes `{"a": 1,}`; JSON and the python reader do not."""
    leads = tmp_path / "leads.jsonl"
    leads.write_text('{"lead_id": "L1", "job_title": "VP, }"}\n{"lead_id": "L2", "job_title": "CEO",}\n',
                     encoding="utf-8")
    code, _, err = run(score_args({**files, "leads": leads}, "--engine", engine), capsys)
    assert code == 2
    assert err == (f"error: {leads}, row 2: not valid JSON: Expecting property name enclosed in double quotes "
                   "(character 38)\n")
    leads.write_text('{"lead_id": "L1", "job_title": "VP, }"}\n', encoding="utf-8")
    code, out, err = run(score_args({**files, "leads": leads}, "--engine", engine), capsys)
    assert code == 0, err
    assert out.splitlines()[1].startswith("L1,")


def test_bad_model_and_bad_as_of(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MODEL.replace("contains: vp", "containz: vp"), encoding="utf-8")
    code, _, err = run(score_args({**files, "model": bad}), capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {bad}: invalid model: rules[0].when (line 6): unknown operator 'containz' - did you mean 'contains'?"
    )
    code, _, err = run([*score_args(files)[:-2], "--as-of", "tomorrow"], capsys)
    assert code == 2 and "--as-of: 'tomorrow' is not an ISO 8601 timestamp" in err


def test_model_check_schema_and_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    starter = tmp_path / "model.yaml"
    code, _, err = run(["init", str(starter)], capsys)
    assert code == 0 and starter.exists()
    text = starter.read_text(encoding="utf-8")
    assert "starting point" in text.lower() and "tune" in text.lower()
    code, _, err = run(["model", "check", str(starter)], capsys)
    assert code == 0 and "ok:" in err and "14 rules" in err
    code, _, err = run(["init", str(starter)], capsys)
    assert code == 2 and "exists" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nname: x\nrules: []\n", encoding="utf-8")
    code, _, err = run(["model", "check", str(bad)], capsys)
    assert code == 2 and "version (line 1): must be 1" in err
    code, out, _ = run(["model", "schema"], capsys)
    schema = json.loads(out)
    assert schema["title"] == "leadscore scoring model"
    assert "rules" in schema["properties"]


def test_starter_model_point_values() -> None:
    from leadscore.cli.model import starter_text
    from leadscore.model import parse_model

    model = parse_model(starter_text())
    points = {rule.id: rule.points for rule in model.rules}
    assert points == {
        "exec-title": 20, "manager-title": 10, "target-industry": 15, "company-size": 10,
        "target-country": 5, "pricing-page": 15, "case-study-download": 10, "webinar-attended": 20,
        "demo-link-clicked": 25, "email-opened": 5, "unsubscribed": -10, "careers-page": -5,
        "support-ticket": -3, "email-silent-90d": -15,
    }
    assert [(s.name, s.min_score) for s in model.stages or []] == [
        ("SQL", 80), ("MQL", 50), ("Warm", 20), ("New", 0)
    ]
    assert model.graded_groups() == ["fit", "engagement"]


def test_real_command_entry_point(files: dict[str, Path]) -> None:
    """The installed `leadscore` script, in its own process."""
    exe = Path(sys.executable).with_name("leadscore")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [str(exe), *score_args(files)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "L1,50.00,Hot,30.00,20.00,A"
