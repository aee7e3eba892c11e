"""`leadscore score --engine duckdb` on files: the python engine's output, byte for byte."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_run import run_cli as _score_cli
from leadscore.batch import score_files
from leadscore.cli.model import starter_text
from leadscore.engine import Event, Lead
from leadscore.engine.timestamps import iso
from leadscore.errors import InputError
from leadscore.model import ScoringModel, parse_model
from leadscore.sql import UnsupportedOnEngine
from strategies import AS_OF, event_lists, leads, models

DEMO_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def _run(model: ScoringModel, leads_path: Path, events_path: Path | None, out: Path, engine: str,
         as_of: datetime = DEMO_AS_OF, top: int = 0) -> tuple[bytes, Any]:
    summary = score_files(model, leads_path, events_path, as_of, out, engine=engine, top=top)
    return out.read_bytes(), summary


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from leadscore.demo import write_world

    out: dict[str, Path] = {}
    for fmt in ("csv", "parquet"):
        directory = tmp_path_factory.mktemp(f"demo-{fmt}")
        write_world(directory, 400, 11, fmt=fmt)
        out[f"leads.{fmt}"] = directory / f"leads.{fmt}"
        out[f"events.{fmt}"] = directory / f"events.{fmt}"
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("output", ["scored.csv", "scored.jsonl", "scored.parquet"])
def test_demo_world_identical_to_python(demo: dict[str, Path], fmt: str, output: str, tmp_path: Path) -> None:
    model = parse_model(starter_text())
    leads_path, events_path = demo[f"leads.{fmt}"], demo[f"events.{fmt}"]
    python, p_summary = _run(model, leads_path, events_path, tmp_path / f"p-{output}", "python", top=5)
    duck, d_summary = _run(model, leads_path, events_path, tmp_path / f"d-{output}", "duckdb", top=5)
    if output.endswith(".parquet"):
        assert pq.read_table(tmp_path / f"p-{output}").equals(pq.read_table(tmp_path / f"d-{output}"))
    else:
        assert python == duck
    assert d_summary.engine == "duckdb" and p_summary.engine == "python"
    for name in ("leads", "events_read", "duplicate_events", "unknown_lead_events", "unknown_leads",
                 "stage_counts"):
        assert getattr(d_summary, name) == getattr(p_summary, name), name
    assert d_summary.top == p_summary.top


# ---- random models and data, written as CSV and JSONL --------------------------------


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return ""
    return str(value)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            handle.write(json.dumps(clean, ensure_ascii=False) + "\n")


@st.composite
def file_worlds(draw: st.DrawFn) -> tuple[ScoringModel, list[dict[str, Any]], list[dict[str, Any]]]:
    model = draw(models())
    lead_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for index, lead in enumerate(draw(st.lists(leads(), min_size=1, max_size=3))):
        lead_id = f"L{index}"
        lead_rows.append({"lead_id": lead_id, **lead.attributes})
        for event in draw(event_lists(lead_id=lead_id)):
            row: dict[str, Any] = {"lead_id": lead_id, "type": event.type, "timestamp": iso(event.ts)}
            if event.event_id is not None:
                row["event_id"] = event.event_id
            event_rows.append({**row, **event.properties})
    if not event_rows:
        event_rows.append({"lead_id": "L0", "type": "other", "timestamp": iso(0)})
    return model, lead_rows, event_rows


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(world=file_worlds(), fmt=st.sampled_from(["csv", "jsonl"]))
def test_random_files_identical_to_python(tmp_path_factory: pytest.TempPathFactory, world: Any, fmt: str) -> None:
    model, lead_rows, event_rows = world
    directory = tmp_path_factory.mktemp("files")
    write = _write_csv if fmt == "csv" else _write_jsonl
    leads_path, events_path = directory / f"leads.{fmt}", directory / f"events.{fmt}"
    write(leads_path, lead_rows)
    write(events_path, event_rows)
    python, _ = _run(model, leads_path, events_path, directory / "p.csv", "python", AS_OF)
    try:
        duck, _ = _run(model, leads_path, events_path, directory / "d.csv", "duckdb", AS_OF)
    except UnsupportedOnEngine:
        return
    assert duck == python


# ---- errors and options -------------------------------------------------------------------


@pytest.fixture()
def small(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "model.yaml"
    model.write_text("version: 1\nname: t\nrules:\n"
                     "- {id: look, points: 5, when: {attribute: title, matches: 'vp(?!x)'}}\n"
                     "- {id: seen, points: 3, when: {event: page_view}}\n", encoding="utf-8")
    leads_path = tmp_path / "leads.csv"
    leads_path.write_text("lead_id,title\nL1,vp\nL2,vpx\n", encoding="utf-8")
    events_path = tmp_path / "events.csv"
    events_path.write_text("lead_id,type,timestamp\nL1,page_view,2025-01-01T00:00:00Z\n", encoding="utf-8")
    return {"model": model, "leads": leads_path, "events": events_path}


def test_explicit_duckdb_refuses_a_pattern_it_cannot_match(small: dict[str, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    args = ["score", "--model", str(small["model"]), "--leads", str(small["leads"]),
            "--events", str(small["events"]), "--as-of", "2025-02-01T00:00:00Z"]
    code, out, err = _score_cli([*args, "--engine", "duckdb"], capsys)
    assert code == 2
    assert "rules[0] (look).when" in err and "--engine python" in err
    code, out, err = _score_cli(args, capsys)  # the default falls back, and says so
    assert code == 0
    assert out.splitlines()[1:] == ["L1,8.00,,8.00", "L2,0.00,,0.00"]
    assert "warning: using the python engine: rules[0] (look).when" in err


def test_master_needs_spark(small: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _score_cli(["score", "--model", str(small["model"]), "--leads", str(small["leads"]),
                               "--master", "local[2]"], capsys)
    assert code == 2 and "--master is only for --engine spark" in err


BAD_EVENTS = [
    # a bad timestamp in a row of a type no rule reads is still an error, as in the python reader
    (b"lead_id,type,timestamp\nL1,page_view,2025-01-01\nL1,other,2025-02-30T00:00:00Z\n",
     "events.csv, row 2, column 'timestamp'"),
    (b"lead_id,type,timestamp\nL1,page_view,2025-01-01T24:00:00Z\n", "row 1, column 'timestamp'"),
    (b"lead_id,type,timestamp\n,page_view,2025-01-01\n", "row 1, column 'lead_id': lead_id is empty"),
    (b"lead_id,type,timestamp\nL1,  ,2025-01-01\n", "row 1, column 'type'"),
    (b"lead_id,type,timestamp,properties\nL1,x,2025-01-01,[1]\n", "row 1, column 'properties'"),
]


@pytest.mark.parametrize(("content", "message"), BAD_EVENTS)
def test_bad_events_same_error_as_python(small: dict[str, Path], content: bytes, message: str) -> None:
    small["events"].write_bytes(content)
    model = parse_model(small["model"].read_text(encoding="utf-8").replace("'vp(?!x)'", "vp"))
    errors = []
    for engine in ("python", "duckdb"):
        with pytest.raises(InputError) as info:
            score_files(model, small["leads"], small["events"], DEMO_AS_OF, small["leads"].with_name("o.csv"),
                        engine=engine)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert message in errors[1]
    assert not small["leads"].with_name("o.csv").exists()


def test_timestamp_shapes_python_accepts(tmp_path: Path) -> None:
    """Shapes DuckDB's fast paths do not take still parse as Python parses them."""
    model = parse_model("version: 1\nname: t\nrules:\n- {id: a, points: 1, when: {event: x}, repeat: each,"
                        " decay: {half_life_days: 1}}\n")
    stamps = ["2025-01-01", "2025-01-01 10:00", "2025-01-01T10:00:00.1234567", "2025-01-01T10:00:00+0530",
              " 2025-01-01T10:00:00Z ", "20250101T100000", "2025-01-01T10:00:00.5-02:00"]
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text(
        "lead_id,type,timestamp\n" + "".join(f'L1,x,"{s}"\n' for s in stamps), encoding="utf-8")
    as_of = datetime(2025, 1, 3, tzinfo=UTC)
    python, _ = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "p.csv", "python", as_of)
    duck, _ = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "d.csv", "duckdb", as_of)
    assert python == duck


def test_parquet_typed_columns(tmp_path: Path) -> None:
    model = parse_model(
        "version: 1\nname: t\nrules:\n"
        "- {id: n, points: 1, when: {attribute: size, equals: 50}}\n"
        "- {id: b, points: 2, when: {attribute: ok, equals: true}}\n"
        "- {id: f, points: 4, when: {attribute: ratio, contains: '.25'}}\n"
        "- {id: e, points: 8, when: {event: v, where: {plan: {in: [pro]}}}}\n")
    pq.write_table(pa.table({"lead_id": [1, 2], "size": [50.0, 7.5], "ok": [True, None],
                             "ratio": [0.25, 1e16], "created_at": [datetime(2025, 1, 1), None]}),
                   tmp_path / "leads.parquet")
    pq.write_table(pa.table({"lead_id": ["1", "2"], "type": ["v", "v"],
                             "timestamp": [datetime(2025, 1, 1, tzinfo=UTC)] * 2,
                             "properties": [{"plan": "Pro "}, {"plan": "free"}]}), tmp_path / "events.parquet")
    python, _ = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "p.csv", "python")
    duck, _ = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "d.csv", "duckdb")
    assert python == duck
    assert python.decode().splitlines()[1:] == ["1,15.00,,15.00", "2,0.00,,0.00"]


def test_rounding_matches_python_on_halves() -> None:
    import numpy as np

    from leadscore.engine import round_score
    from leadscore.sql.results import format_2dp, round_scores

    values = np.array([0.125, 0.135, 2.675, -0.005, -0.001, -0.0, 0.0, 1e-300, -1e-300, 12.345, 99.995,
                       1 / 3, 2 / 3, -2.5, 0.004999999999999999, 1234567.125], dtype=np.float64)
    rounded = round_scores(values)
    assert [float(x) for x in rounded] == [round_score(float(v)) for v in values]
    assert format_2dp(rounded).to_pylist() == [f"{round_score(float(v)):.2f}" for v in values]


def test_events_of_unknown_leads_and_duplicates_are_counted(tmp_path: Path) -> None:
    model = parse_model("version: 1\nname: t\nrules:\n- {id: a, points: 1, when: {event: x}, repeat: each}\n")
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text(
        "event_id,lead_id,type,timestamp\n"
        "e1,L9,y,2025-01-01\ne1,L1,x,2025-01-01\n e2,L1,x,2025-01-01\ne2 ,L1,x,2025-01-01\n,L1,x,2025-01-01\n"
        "e3,L8,x,2030-01-01\n", encoding="utf-8")
    _, python = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "p.csv", "python")
    out, duck = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "d.csv", "duckdb")
    assert out.decode().splitlines()[1] == "L1,2.00,,2.00"
    assert (duck.duplicate_events, duck.unknown_lead_events, duck.unknown_leads) == (2, 2, 2)
    assert python.warnings() == duck.warnings()


def test_leads_only(tmp_path: Path) -> None:
    model = parse_model(starter_text())
    (tmp_path / "leads.csv").write_text("lead_id,job_title,created_at\nL1,CEO,2020-01-01\nL2,,\n",
                                        encoding="utf-8")
    python, _ = _run(model, tmp_path / "leads.csv", None, tmp_path / "p.csv", "python")
    duck, _ = _run(model, tmp_path / "leads.csv", None, tmp_path / "d.csv", "duckdb")
    assert python == duck


def test_lead_objects_as_tables_have_the_documented_shape() -> None:
    from leadscore.sql import model_columns
    from leadscore.sql.tables import event_rows, lead_rows

    model = parse_model(starter_text())
    columns = model_columns(model)
    lead = Lead("L1", {"job_title": "CEO", "company_size": 120.0, "created_at": "2025-01-01T00:00:00Z"})
    row = lead_rows(columns, [lead])[0]
    assert row[:3] == ("L1", 1735689600000000, "CEO")
    assert "120" in row
    event = Event("L1", "page_view", 5, {"url": "/pricing"}, "e1")
    assert event_rows(columns, [event])[0][:6] == ("L1", "page_view", 5, "e1", 0, "/pricing")


@pytest.mark.parametrize("dirty", [False, True])
def test_parquet_native_timestamps_and_text_needing_cleaning(tmp_path: Path, dirty: bool) -> None:
    """Clean text columns are read as they are; one padded or non-ASCII value anywhere in a
    column sends that column through the full cleaning, with the python engine's result."""
    model = parse_model(
        "version: 1\nname: t\nrules:\n"
        "- {id: p, points: 5, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each}\n"
        "- {id: c, points: 7, when: {event: email_click, where: {link: {equals: démo}}}}\n"
        "- {id: s, points: -2, when: {no_event: [email_open], within_days: 30}}\n")
    stamp = datetime(2026, 10, 1, tzinfo=UTC)
    pq.write_table(pa.table({"lead_id": ["L1", "L2", "L3"], "created_at": pa.array([stamp] * 3, pa.timestamp("us", "UTC"))}),
                   tmp_path / "leads.parquet")
    types = ["page_view", "page_view", "email_click", "email_open", "page_view"]
    leads_of = ["L1", "L1", "L2", "L3", "L2"]
    links = [None, None, "de\u0301mo", None, None]  # "démo" decomposed: NFC makes it match
    ids = ["E1", "E2", "E3", "E4", "E5"]
    if dirty:
        types[4], leads_of[1], ids[2] = " page_view", "L1 ", " E3"
    pq.write_table(pa.table({
        "event_id": ids, "lead_id": leads_of, "type": types,
        "timestamp": pa.array([stamp] * 5, pa.timestamp("us", "UTC")),
        "url": ["/pricing", "/pricing", None, None, "/pricing"], "link": links,
    }), tmp_path / "events.parquet")
    python, _ = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "p.csv", "python")
    duck, _ = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "d.csv", "duckdb")
    assert duck == python
    scores = [line.split(",")[:2] for line in python.decode().splitlines()[1:]]
    assert scores == [["L1", "8.00"], ["L2", "10.00"], ["L3", "0.00"]]


def test_csv_written_by_duckdb_quotes_neutralises_and_rounds_like_python(tmp_path: Path) -> None:
    """Cells needing quotes or formula neutralising, stage and grade names from the model,
    halves and negative zeros: the file DuckDB writes is the python engine's, byte for byte."""
    model = parse_model(
        "version: 1\nname: t\n"
        "groups: {g: {grades: {'=A': 0.2, 'B,b': 0, 'C': -100}}}\n"
        "rules:\n"
        "- {id: a, group: g, points: 0.125, when: {event: x}, repeat: each}\n"
        "- {id: b, group: g, points: -0.001, when: {event: y}}\n"
        "stages: [{name: '+hot', min_score: 0.2}, {name: 'cold \"x\"', min_score: -1}]\n")
    ids = ["=HYPERLINK(1)", "a,b", 'q"x', "-3.5", "plain", "r\rx", "@me", "L8"]
    with (tmp_path / "leads.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lead_id"])
        writer.writerows([[i] for i in ids])
    with (tmp_path / "events.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "lead_id", "type", "timestamp"])
        for n, lead in enumerate(ids):
            for k in range(n % 4):
                writer.writerow([f"e{n}-{k}", lead, "x", "2026-01-01T00:00:00Z"])
            if n % 3 == 0:
                writer.writerow([f"f{n}", lead, "y", "2026-01-01T00:00:00Z"])
    python, _ = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "p.csv", "python")
    duck, _ = _run(model, tmp_path / "leads.csv", tmp_path / "events.csv", tmp_path / "d.csv", "duckdb")
    assert duck == python
    text = duck.decode()
    assert "\"'=HYPERLINK(1)\"" not in text and "'=HYPERLINK(1)," in text
    assert '"a,b",' in text and "\n-3.5," in text and "0.13" in text and "-0.00" in text


def test_clean_parquet_is_read_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clean files take the one-pass path; a duplicate event id across leads, the general
    one; both give the python engine's numbers and counts."""
    from leadscore.sql import duckdb_engine

    taken: list[bool] = []
    fast = duckdb_engine._fast_events

    def spy(*args: Any) -> Any:
        result = fast(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(duckdb_engine, "_fast_events", spy)
    model = parse_model(starter_text())
    stamp = datetime(2026, 10, 20, tzinfo=UTC)
    pq.write_table(pa.table({"lead_id": ["L1", "L2"], "job_title": ["CEO", "Manager"]}), tmp_path / "leads.parquet")
    for duplicate in (False, True):
        pq.write_table(pa.table({
            "event_id": ["E1", "E2", "E1" if duplicate else "E3", "E4"], "lead_id": ["L1", "L2", "L2", "L9"],
            "type": ["page_view", "email_open", "email_open", "page_view"],
            "timestamp": pa.array([stamp] * 4, pa.timestamp("us", "UTC")),
            "url": ["/pricing", None, None, "/pricing"],
        }), tmp_path / "events.parquet")
        python, p = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "p.csv", "python")
        duck, d = _run(model, tmp_path / "leads.parquet", tmp_path / "events.parquet", tmp_path / "d.csv", "duckdb")
        assert duck == python
        assert p.warnings() == d.warnings()
        assert (d.duplicate_events, d.unknown_lead_events) == (int(duplicate), 1)
    assert taken == [True, False]
