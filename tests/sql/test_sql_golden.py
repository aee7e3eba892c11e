"""Golden SQL: the exact query each dialect gets for ``golden/model.yaml``.

A change to the compiler shows up here as a diff a reviewer can read. To accept a
change on purpose: ``LEADSCORE_UPDATE_GOLDEN=1 pytest tests/sql/test_sql_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from leadscore.model import load_model
from leadscore.sql import DIALECTS, compile_sql

GOLDEN = Path(__file__).parent / "golden"
AS_OF_US = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_golden_sql(dialect: str) -> None:
    model = load_model(GOLDEN / "model.yaml")
    sql = compile_sql(model, dialect, pretty=True, leads="leads", events="events", as_of_us=AS_OF_US) + "\n"
    path = GOLDEN / f"{dialect}.sql"
    # bytes: the SQL holds the white-space characters folding strips (\r, \f, \v) as they are
    if os.environ.get("LEADSCORE_UPDATE_GOLDEN") == "1":
        path.write_bytes(sql.encode("utf-8"))
    assert sql == path.read_bytes().decode("utf-8")
    # the text is valid in its dialect (SQLGlot reads it back)
    assert sqlglot.parse_one(sql, read=DIALECTS[dialect].sqlglot) is not None


def test_unknown_dialect_is_refused_with_the_choices() -> None:
    model = load_model(GOLDEN / "model.yaml")
    with pytest.raises(ValueError, match="duckdb, postgres, spark"):
        compile_sql(model, "oracle", as_of_us=AS_OF_US)
