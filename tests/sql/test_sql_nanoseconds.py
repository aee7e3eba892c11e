"""Parquet files as pandas writes them: timestamps in nanoseconds, with and without a time
zone (found by a QA pass, 2026-12-05: `score` on DuckDB failed with a BinderException on
`epoch_us(TIMESTAMPTZ_NS)`, and a nanosecond that is not a whole microsecond crashed
`import` and both `score` engines with ArrowInvalid). Every reader floors to the
microsecond, as `send` does; both engines give the same scores."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.cli_run import run_cli

from leadscore.client.send import event_rows
from leadscore.ingest.files import read_events

MODEL = """
version: 1
name: ns
rules:
  - {id: recent, points: 10, when: {event: page_view, within_days: 30}}
stages:
  - {name: Hot, min_score: 10}
  - {name: New, min_score: 0}
"""


@pytest.mark.parametrize("tz", ["UTC", None])
def test_nanosecond_timestamps_are_floored_to_the_microsecond_everywhere(
        tmp_path: Path, tz: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = [-1_876_543_211, 1_790_000_000_123_456_789, 1_791_000_000_000_000_999]
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table({"lead_id": ["A", "B", "C"], "type": ["page_view"] * 3,
                             "timestamp": pa.array(stamps, pa.timestamp("ns", tz=tz))}), events)
    leads = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"lead_id": ["A", "B", "C"],
                             "created_at": pa.array(stamps, pa.timestamp("ns", tz=tz))}), leads)
    floored = [-1_876_544, 1_790_000_000_123_456, 1_791_000_000_000_000]
    by_lead, _ = read_events(events)
    assert [by_lead[k][0].ts for k in "ABC"] == floored
    assert [row.body["timestamp"] for row in event_rows(events)] == [
        "1969-12-31T23:59:58.123456Z", "2026-09-21T14:13:20.123456Z", "2026-10-03T04:00:00Z"]
    (tmp_path / "model.yaml").write_text(MODEL)
    outputs = []
    for engine in ("python", "duckdb"):
        code, out, err = run_cli(["score", "--engine", engine, "--model", str(tmp_path / "model.yaml"),
                                  "--leads", str(leads), "--events", str(events),
                                  "--as-of", "2026-10-15T00:00:00Z"], capsys)
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert [line.split(",")[2] for line in outputs[0].splitlines()[1:]] == ["New", "Hot", "Hot"]
    code, _, err = run_cli(["import", "--leads", str(leads), "--events", str(events),
                            "--db", f"sqlite:///{tmp_path / 'ns.db'}"], capsys)
    assert code == 0 and "3 event(s) stored" in err, err
