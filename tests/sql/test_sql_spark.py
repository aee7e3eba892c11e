"""The Spark engine (``pip install leadscore[spark]``, Java 17): one local[2] session for the module.

Skipped when PySpark or Java is missing, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from sql_harness import assert_same, python_scores

from leadscore.engine import Event, Lead
from leadscore.model import ScoringModel
from leadscore.sql import UnsupportedOnEngine, compile_model, model_columns, translate
from leadscore.sql.regex import UnsupportedPattern
from leadscore.sql.tables import event_rows, events_schema, lead_rows, leads_schema
from strategies import AS_OF_US, event_lists, leads, models

pytestmark = pytest.mark.spark


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'leadscore[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed"
    return None


@pytest.fixture(scope="module")
def spark() -> Any:
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the Spark tests, but {reason}")
        pytest.skip(reason)
    from leadscore.sql.spark_engine import spark_session

    os.environ.setdefault("LEADSCORE_SPARK_PARTITIONS", "2")  # tiny data: few tasks
    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _frame(spark: Any, schema: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> Any:
    from pyspark.sql import types as T

    kinds = {"text": T.StringType(), "bigint": T.LongType()}
    struct = T.StructType([T.StructField(name, kinds[kind]) for name, kind in schema])
    return spark.createDataFrame(rows, struct)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=models(), people=leads(), data=event_lists(lead_id="lead-1"))
def test_spark_agrees_with_python(spark: Any, model: ScoringModel, people: Lead, data: list[Event]) -> None:
    other = Lead("lead-2", {"job_title": "VP Sales", "country": "VN"})
    events = [*data, Event("lead-2", "page_view", AS_OF_US - 10, {"url": "/pricing"}, "a")]
    expected = python_scores(model, [people, other], events, AS_OF_US)
    columns = model_columns(model)
    try:
        query = compile_model(model, "spark", leads="t_leads", events="t_events", as_of_us=AS_OF_US)
    except UnsupportedOnEngine:
        return
    # \b on Spark is a look-around over Python's whole word class (tested on its own in
    # test_java_regex_matches_like_python); queries that large take Spark long to plan
    assume(len(query.sql(dialect="spark")) < 50_000)
    _frame(spark, leads_schema(columns), lead_rows(columns, [people, other])).createOrReplaceTempView("t_leads")
    _frame(spark, events_schema(columns), event_rows(columns, events)).createOrReplaceTempView("t_events")
    rows = [row.asDict() for row in spark.sql(query.sql(dialect="spark")).collect()]
    assert_same(model, expected, rows, "spark")


def test_java_regex_matches_like_python(spark: Any) -> None:
    from test_sql_regex import PATTERNS, TEXTS

    cases = []
    for pattern in PATTERNS:
        try:
            cases.append((pattern, translate(pattern, "java").pattern))
        except UnsupportedPattern:
            continue
    frame = spark.createDataFrame([(p, j, t) for p, j in cases for t in TEXTS], "p string, j string, t string")
    rows = frame.selectExpr("p", "t", "t RLIKE j AS hit").collect()
    wrong = [(r["p"], r["t"]) for r in rows if r["hit"] != (re.search(r["p"], r["t"]) is not None)]
    assert not wrong


@pytest.mark.parametrize("fmt", ["parquet"])
def test_demo_files_identical_to_python(spark: Any, tmp_path: Path, fmt: str) -> None:
    from leadscore.batch import score_files
    from leadscore.cli.model import starter_text
    from leadscore.demo import write_world
    from leadscore.model import parse_model

    write_world(tmp_path, 80, 5, fmt=fmt)
    model = parse_model(starter_text())
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    leads_path, events_path = tmp_path / f"leads.{fmt}", tmp_path / f"events.{fmt}"
    python = score_files(model, leads_path, events_path, as_of, tmp_path / "p.csv", engine="python", top=3)
    on_spark = score_files(model, leads_path, events_path, as_of, tmp_path / "s.csv", engine="spark",
                           master="local[2]", top=3)
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    assert on_spark.engine == "spark"
    assert (on_spark.events_read, on_spark.duplicate_events, on_spark.stage_counts) == (
        python.events_read, python.duplicate_events, python.stage_counts)
    assert on_spark.top == python.top


def test_jsonl_and_odd_values_identical_to_python(spark: Any, tmp_path: Path) -> None:
    """Rows that need the python fallbacks (NFC, stripped ids, rare timestamps, JSON lines)."""
    from leadscore.batch import score_files
    from leadscore.model import parse_model

    model = parse_model(
        "version: 1\nname: t\nrules:\n"
        "- {id: t, points: 3, when: {attribute: title, contains: 'giám đốc'}}\n"
        "- {id: r, points: 2, when: {attribute: ratio, gt: 0.2}}\n"
        "- {id: e, points: 5, when: {event: view, where: {plan: {equals: pro}}}, repeat: each,"
        " decay: {half_life_days: 3}}\n")
    (tmp_path / "leads.csv").write_text(
        "lead_id,title,ratio\n L1 ,Giám đốc,0.25\nL2,x,1e-3\n", encoding="utf-8")
    (tmp_path / "events.jsonl").write_text(
        '{"lead_id": "L1", "type": " view", "timestamp": "2025-01-01 10:00", "plan": "Pro"}\n'
        '{"lead_id": "L1", "type": "view", "timestamp": "2025-01-02T00:00:00+05:30",'
        ' "properties": {"plan": "pro"}}\n'
        '{"lead_id": 2, "type": "view", "timestamp": "2025-01-02", "properties": "{\\"plan\\": \\"PRO\\"}"}\n',
        encoding="utf-8")
    as_of = datetime(2025, 1, 5, tzinfo=UTC)
    score_files(model, tmp_path / "leads.csv", tmp_path / "events.jsonl", as_of, tmp_path / "p.csv",
                engine="python")
    score_files(model, tmp_path / "leads.csv", tmp_path / "events.jsonl", as_of, tmp_path / "s.csv",
                engine="spark", master="local[2]")
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "s.csv").read_text()


def test_bad_rows_report_the_python_error(spark: Any, tmp_path: Path) -> None:
    from leadscore.batch import score_files
    from leadscore.errors import InputError
    from leadscore.model import parse_model

    model = parse_model("version: 1\nname: t\nrules:\n- {id: a, points: 1, when: {event: x}}\n")
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text("lead_id,type,timestamp\nL1,x,2025-01-01\nL1,x,yesterday\n",
                                         encoding="utf-8")
    with pytest.raises(InputError, match=r"events.csv, row 2, column 'timestamp'"):
        score_files(model, tmp_path / "leads.csv", tmp_path / "events.csv", datetime(2025, 2, 1, tzinfo=UTC),
                    tmp_path / "o.csv", engine="spark", master="local[2]")
    assert not (tmp_path / "o.csv").exists()


def test_spark_reads_numbers_with_white_space_as_python_does(spark: Any) -> None:
    """" 7.5 " is 7.5 for Python's as_number (stripped of ASCII white space); "7 .5" no number."""
    from test_sql_equivalence import _spaced_world

    model, people, events = _spaced_world()
    columns = model_columns(model)
    query = compile_model(model, "spark", leads="t_leads", events="t_events", as_of_us=AS_OF_US)
    _frame(spark, leads_schema(columns), lead_rows(columns, people)).createOrReplaceTempView("t_leads")
    _frame(spark, events_schema(columns), event_rows(columns, events)).createOrReplaceTempView("t_events")
    rows = [row.asDict() for row in spark.sql(query.sql(dialect="spark")).collect()]
    assert_same(model, python_scores(model, people, events, AS_OF_US), rows, "spark")
