"""The fast paths of `leadscore predict` write and read exactly what the general ones do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.cli.predict import _write_scores
from leadscore.ingest.files import write_rows
from leadscore.predict.data import NAT, _arrow_micros, timestamps_us
from leadscore.predict.predictor import probability_to_score


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize("ids", [["=1+2", "a,b", 'q"x', "plain", "-5", "@x", "Nguyễn"], ["r\rx", "ok"]])
def test_score_columns_are_written_as_the_row_writer_does(tmp_path: Path, suffix: str, ids: list[str]) -> None:
    probability = np.linspace(0.00005, 0.99995, len(ids))
    fast, slow = tmp_path / f"fast.{suffix}", tmp_path / f"slow.{suffix}"
    _write_scores(fast, np.array(ids, dtype=object), probability, csv=suffix == "csv")
    scores = probability_to_score(probability).tolist()  # what Predictor.predict gives each lead
    rows = [{"lead_id": i, "probability": f"{p:.4f}" if suffix == "csv" else round(p, 4), "score": s}
            for i, p, s in zip(ids, probability.tolist(), scores, strict=True)]
    write_rows(slow, ["lead_id", "probability", "score"], rows, {"lead_id": "str", "probability": "float", "score": "float"})
    assert fast.read_bytes() == slow.read_bytes()
    if suffix == "csv" and ids[0] == "=1+2":
        assert "'=1+2" in fast.read_text(encoding="utf-8")  # a formula is neutralised


def test_arrow_timestamps_equal_pandas_or_defer_to_it() -> None:
    texts = ["2026-10-01T09:00:00Z", "2026-10-01T09:00:00.123456Z", "2026-10-01T09:00:00+02:00",
             "1969-12-31T23:59:59Z", None, "2026-02-28T23:00:00-05:30"]
    series = pd.Series(texts, dtype="str")
    fast = _arrow_micros(series)
    assert fast is not None
    parsed = pd.to_datetime(series.astype(object), utc=True, format="ISO8601", errors="coerce")
    slow = parsed.dt.as_unit("us").astype("int64").to_numpy()
    np.testing.assert_array_equal(fast, slow)
    assert fast[4] == NAT
    for other in (["2026-10-01 09:00:00"], ["2026-10-01"], ["2026-10-01T09:00:00.123456789Z"], [" 2026-10-01T09:00:00Z"]):
        assert _arrow_micros(pd.Series(other, dtype="str")) is None  # pandas' broader parser takes these
        assert timestamps_us(pd.Series(other, dtype="str"), file=None, column="t", required=True)[0] != NAT
    with pytest.raises(Exception, match="timestamp is empty"):
        timestamps_us(pd.Series(["2026-10-01T09:00:00Z", None], dtype="str"), file=None, column="timestamp",
                      required=True)
