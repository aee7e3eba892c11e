"""Column names in Unicode NFD (as macOS writes file names and some exports write headers)
are the NFC names a model writes, on every reader (found by a QA pass, 2026-12-05: Arrow's
table path kept the NFD property name, so a rule on it never matched and `import` derived
other ids than `send`; DuckDB dropped an NFD attribute column)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.cli_run import run_cli

from leadscore.client.send import event_rows
from leadscore.ingest.files import read_events

MODEL = """
version: 1
name: nfc
rules:
  - {id: source, points: 25, when: {event: signup, where: {nguồn: {equals: ads}}}}
  - {id: title, points: 20, when: {attribute: chức_vụ, equals: Giám đốc}}
stages:
  - {name: Hot, min_score: 40}
  - {name: New, min_score: 0}
"""


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl", "jsonl-nested"])
def test_nfd_column_names_are_the_nfc_names_of_the_model(tmp_path: Path, kind: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    suffix, title, source = kind.split("-")[0], _nfd("chức_vụ"), _nfd("nguồn")
    leads, events = tmp_path / f"leads.{suffix}", tmp_path / f"events.{suffix}"
    if kind == "jsonl":  # keys written by hand in NFD (json.dumps would escape them)
        leads.write_text(f'{{"lead_id": "A1", "{title}": "Giám đốc"}}\n', encoding="utf-8")
        events.write_text(f'{{"lead_id": "A1", "type": "signup", "timestamp": "2026-11-28T00:00:00Z", '
                          f'"{source}": "ads"}}\n', encoding="utf-8")
    elif kind == "jsonl-nested":
        leads.write_text(f'{{"lead_id": "A1", "attributes": {{"{title}": "Giám đốc"}}}}\n',
                         encoding="utf-8")
        events.write_text(f'{{"lead_id": "A1", "type": "signup", "timestamp": "2026-11-28T00:00:00Z", '
                          f'"properties": {{"{source}": "ads"}}}}\n', encoding="utf-8")
    elif kind == "csv":
        leads.write_text(f"lead_id,{title}\nA1,Giám đốc\n")
        events.write_text(f"lead_id,type,timestamp,{source}\nA1,signup,2026-11-28T00:00:00Z,ads\n")
    else:
        pq.write_table(pa.table({"lead_id": ["A1"], _nfd("chức_vụ"): ["Giám đốc"]}), leads)
        pq.write_table(pa.table({"lead_id": ["A1"], "type": ["signup"], "timestamp": ["2026-11-28T00:00:00Z"],
                                 _nfd("nguồn"): ["ads"]}), events)
    by_lead, _ = read_events(events, derive_ids=True)
    (event,) = by_lead["A1"]
    assert list(event.properties) == ["nguồn"]
    assert event.event_id == next(iter(event_rows(events))).body["event_id"]
    (tmp_path / "model.yaml").write_text(MODEL)
    for engine in ("python", "duckdb"):
        code, out, err = run_cli(["score", "--engine", engine, "--model", str(tmp_path / "model.yaml"),
                                  "--leads", str(leads), "--events", str(events),
                                  "--as-of", "2026-12-01T00:00:00Z"], capsys)
        assert code == 0, err
        assert out.splitlines()[1].startswith("A1,45.00,Hot"), (engine, out)
