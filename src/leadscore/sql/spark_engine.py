"""The Spark engine: the same compiled query, on a cluster (``pip install leadscore[spark]``).

``score_files_spark`` reads the leads and events with Spark (any path Spark can read:
local files, ``hdfs://``, ``s3a://`` with the cluster's connectors), stages them into
the table shape of :mod:`leadscore.sql.compiler` and runs the model compiled for Spark
SQL. Values take the common fast paths in Spark SQL (text, whole numbers, ISO 8601
timestamps with ``Z`` or an offset); anything else (non-ASCII text to NFC-normalise,
fractional doubles, rare timestamp shapes, JSON lines) goes through the python
engine's own functions in a Python UDF, so the numbers are the same.

Bad rows are counted in Spark; for a local file the python reader then reports the
first one exactly as ``--engine python`` would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.engine.scoring import Event
from leadscore.engine.timestamps import parse_timestamp, to_micros
from leadscore.engine.values import is_missing, text_form
from leadscore.errors import InputError, UsageError
from leadscore.ingest.files import FORMATS, read_events, read_leads
from leadscore.ingest.normalise import (
    EVENT_FIELDS,
    RecordError,
    clean_value,
    id_text,
    make_attributes,
    make_event,
    nfc,
)
from leadscore.model.schema import ScoringModel
from leadscore.sql.compiler import attribute_column, compile_model, model_columns, property_column
from leadscore.sql.dialects import UnsupportedOnEngine
from leadscore.sql.results import ScoredTable
from leadscore.sql.sources import ISO_FAST

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

Progress = Callable[[str, int, int | None], None]
DEFAULT_MASTER = "local[*]"
_CLEAN_ID = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no space at either end: its own id_text
_ASCII = r"^[\x00-\x7F]*$"


def spark_session(master: str | None = None) -> SparkSession:
    """The Spark session leadscore uses (UTC; created once per process)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - the optional extra
        raise UsageError("--engine spark needs PySpark: pip install 'leadscore[spark]'") from None
    import sys

    # the workers run the python engine's own functions (UDFs): the same interpreter
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or os.environ.get("LEADSCORE_SPARK_MASTER", DEFAULT_MASTER))
        .appName("leadscore")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("LEADSCORE_SPARK_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    return builder.getOrCreate()


# ---- exact Python fallbacks (run inside UDFs) -------------------------------------------


def _py_nfc(value: str | None) -> str | None:
    return None if value is None else nfc(value)


def _py_id(value: str | None) -> str | None:
    try:
        return id_text(value, "id", required=False)
    except RecordError:
        return None


def _py_timestamp(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return to_micros(parse_timestamp(value))
    except (ValueError, OverflowError):
        return None


def _py_double_text(value: float | None) -> str | None:
    return None if value is None or is_missing(value) else text_form(value)


def _py_json_text(document: str | None, key: str) -> str | None:
    if document is None or not document.strip():
        return None
    try:
        data = json.loads(document)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    value = clean_value(data.get(key))
    return None if value is None else text_form(value)


class _Functions:
    """The exact Python fallbacks as UDFs; with ``python=False`` they give NULL and each use
    is recorded in :attr:`slow` (a condition true on the rows that would need Python).

    Spark evaluates a Python UDF on every row, even inside ``CASE``: so a file is first
    staged without them, and only when some row needs Python is it staged again with them.
    """

    def __init__(self, python: bool) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        self.python = python
        self.slow: Column = F.lit(False)
        self._udfs = {
            "nfc": (F.udf(_py_nfc, T.StringType()), "string"),
            "id": (F.udf(_py_id, T.StringType()), "string"),
            "timestamp": (F.udf(_py_timestamp, T.LongType()), "long"),
            "double_text": (F.udf(_py_double_text, T.StringType()), "string"),
            "json_text": (F.udf(_py_json_text, T.StringType()), "string"),
        }

    def _call(self, name: str, condition: Column, *args: Column) -> Column:
        from pyspark.sql import functions as F

        udf, kind = self._udfs[name]
        if self.python:
            return udf(*args)
        self.slow = self.slow | F.coalesce(condition, F.lit(False))
        return F.lit(None).cast(kind)

    def nfc(self, value: Column) -> Column:
        return self._call("nfc", value.isNotNull(), value)

    def id(self, value: Column) -> Column:
        return self._call("id", value.isNotNull(), value)

    def timestamp(self, value: Column) -> Column:
        return self._call("timestamp", value.isNotNull(), value)

    def double_text(self, value: Column) -> Column:
        return self._call("double_text", value.isNotNull(), value)

    def json_text(self, document: Column, key: Column) -> Column:
        return self._call("json_text", document.isNotNull(), document, key)


def _text(functions: _Functions, column: Column, data_type: Any, where: str) -> Column:
    """``clean_value`` + ``text_form`` of a typed column."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(data_type, T.StringType):
        value = F.when(column == "", F.lit(None)).otherwise(column)
        return F.when(value.rlike(_ASCII), value).otherwise(functions.nfc(F.when(~value.rlike(_ASCII), value)))
    if isinstance(data_type, T.BooleanType):
        return F.when(column, F.lit("true")).when(~column, F.lit("false"))
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.DecimalType)):
        return column.cast("string")
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        number = column.cast("double")
        whole = (number == F.floor(number)) & (F.abs(number) < F.lit(1e15))
        return F.when(whole, number.cast("long").cast("string")).otherwise(
            functions.double_text(F.when(~whole, number)))
    if isinstance(data_type, (T.StructType, T.MapType, T.ArrayType)):
        return F.to_json(column)
    raise UnsupportedOnEngine(f"{where}: columns of type {data_type.simpleString()} are not compared "
                              "the same way by Spark; use --engine python")


def _id(functions: _Functions, column: Column, data_type: Any) -> tuple[Column, Column]:
    """``id_text``: (the id or NULL; a condition that holds on a bad id)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(data_type, T.StringType):
        clean = column.rlike(_CLEAN_ID)
        return F.when(clean, column).otherwise(functions.id(F.when(~clean, column))), F.lit(False)
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return column.cast("string"), F.lit(False)
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        number = column.cast("double")
        whole = number == F.floor(number)
        return F.when(whole, number.cast("decimal(38,0)").cast("string")), column.isNotNull() & ~whole
    return F.lit(None).cast("string"), column.isNotNull()


def _timestamp(functions: _Functions, column: Column, data_type: Any) -> Column:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_micros(column)
    if isinstance(data_type, T.DateType):
        return F.unix_micros(column.cast("timestamp"))
    if isinstance(data_type, T.StringType):
        fast = column.rlike("^" + ISO_FAST + "$")
        return F.when(fast, F.unix_micros(column.cast("timestamp"))).otherwise(
            functions.timestamp(F.when(~fast, column)))
    return F.lit(None).cast("long")


def _read(spark: SparkSession, path: str) -> tuple[DataFrame, str]:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"unknown file type '{suffix or '(none)'}'; use .csv, .jsonl, .ndjson or .parquet",
                         file=path)
    fmt = FORMATS[suffix]
    if fmt == "csv":
        frame = (spark.read.option("header", True).option("multiLine", True).option("escape", '"')
                 .option("mode", "FAILFAST").csv(path))
        frame = frame.toDF(*[c.strip() for c in frame.columns])
    elif fmt == "parquet":
        frame = spark.read.parquet(path)
    else:
        frame = spark.read.text(path).withColumnRenamed("value", "json")
        from pyspark.sql import functions as F

        frame = frame.where(F.trim(F.col("json")) != "")
    from pyspark.sql import functions as F

    return frame.withColumn("ls_pos", F.monotonically_increasing_id()), fmt


def _jsonl_events(frame: DataFrame, properties: tuple[str, ...]) -> DataFrame:
    """JSON lines through the python reader's own ``make_event``, row by row."""
    from pyspark.sql import types as T

    fields = [T.StructField("lead_id", T.StringType()), T.StructField("type", T.StringType()),
              T.StructField("ts_us", T.LongType()), T.StructField("event_id", T.StringType()),
              *[T.StructField(property_column(p), T.StringType()) for p in properties],
              T.StructField("bad", T.BooleanType())]
    schema = T.StructType(fields)

    def parse(line: str) -> tuple[Any, ...]:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
            event: Event = make_event(record)
        except (ValueError, RecordError):
            return (None, None, None, None, *[None] * len(properties), True)
        props = [None if event.properties.get(p) is None else text_form(event.properties[p]) for p in properties]
        return (event.lead_id, event.type, event.ts, event.event_id, *props, False)

    from pyspark.sql import functions as F

    udf = F.udf(parse, schema)
    parsed = frame.select(udf(F.col("json")).alias("e"), F.col("ls_pos").alias("seq"))
    return parsed.select("e.*", "seq")


def _jsonl_leads(frame: DataFrame, attributes: tuple[str, ...]) -> DataFrame:
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("lead_id", T.StringType()), T.StructField("created_us", T.LongType()),
                           *[T.StructField(attribute_column(a), T.StringType()) for a in attributes],
                           T.StructField("bad", T.BooleanType())])

    def parse(line: str) -> tuple[Any, ...]:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
            lead_id = id_text(record.get("lead_id"), "lead_id")
            attrs = make_attributes(record)
        except (ValueError, RecordError):
            return (None, None, *[None] * len(attributes), True)
        created = attrs.get("created_at")
        created_us = None
        if created is not None and not (isinstance(created, str) and not created.strip()):
            created_us = _py_timestamp(created) if isinstance(created, str) else None
        values = [None if is_missing(attrs.get(a)) else text_form(attrs.get(a)) for a in attributes]
        return (lead_id, created_us, *values, False)

    from pyspark.sql import functions as F

    udf = F.udf(parse, schema)
    return frame.select(udf(F.col("json")).alias("l"), F.col("ls_pos").alias("pos")).select("l.*", "pos")


def _stage_leads(functions: _Functions, frame: DataFrame, fmt: str, attributes: tuple[str, ...]) -> DataFrame:
    from pyspark.sql import functions as F

    if fmt == "jsonl":
        return _jsonl_leads(frame, attributes)
    types = {f.name: f.dataType for f in frame.schema.fields}
    if "lead_id" not in types:
        return frame.select(F.lit(None).cast("string").alias("lead_id"), F.lit(True).alias("bad"),
                            F.col("ls_pos").alias("pos"))
    lead_id, bad_id = _id(functions, F.col("lead_id"), types["lead_id"])
    columns = [lead_id.alias("lead_id")]
    bad = bad_id | lead_id.isNull()
    if "created_at" in types:
        raw = F.col("created_at")
        blank = raw.isNull() | (F.trim(raw.cast("string")) == "")
        created = _timestamp(functions, raw, types["created_at"])
        columns.append(F.when(blank, F.lit(None).cast("long")).otherwise(created).alias("created_us"))
        bad = bad | (~blank & created.isNull())
    else:
        columns.append(F.lit(None).cast("long").alias("created_us"))
    for name in attributes:
        value = (_text(functions, F.col(f"`{name}`"), types[name], f"attribute '{name}'")
                 if name in types else F.lit(None).cast("string"))
        columns.append(value.alias(attribute_column(name)))
    return frame.select(*columns, F.col("ls_pos").alias("pos"), bad.alias("bad"))


def _stage_events(functions: _Functions, frame: DataFrame, fmt: str, properties: tuple[str, ...]) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if fmt == "jsonl":
        return _jsonl_events(frame, properties)
    types = {f.name: f.dataType for f in frame.schema.fields}
    missing = [c for c in ("lead_id", "type", "timestamp") if c not in types]
    if missing:
        return frame.select(F.lit(True).alias("bad"))
    lead_id, bad_lead = _id(functions, F.col("lead_id"), types["lead_id"])
    event_id, bad_event_id = (_id(functions, F.col("event_id"), types["event_id"]) if "event_id" in types
                              else (F.lit(None).cast("string"), F.lit(False)))
    if isinstance(types["type"], T.StringType):
        clean_type = F.col("type").rlike(_CLEAN_ID)
        kind = F.when(clean_type, F.col("type")).otherwise(functions.id(F.when(~clean_type, F.col("type"))))
        bad_type = kind.isNull()
    else:
        kind, bad_type = F.lit(None).cast("string"), F.lit(True)
    ts = _timestamp(functions, F.col("timestamp"), types["timestamp"])
    nested = types.get("properties")
    bad_nested = F.lit(False)
    if isinstance(nested, T.StringType):
        valid = F.col("properties").isNull() | (F.trim(F.col("properties")) == "") | F.get_json_object(
            F.col("properties"), "$").isNotNull() & F.col("properties").rlike(r"^\s*\{")
        bad_nested = ~valid
    elif nested is not None and not isinstance(nested, (T.StructType, T.MapType)):
        bad_nested = F.col("properties").isNotNull()
    props = []
    for name in properties:
        top = (_text(functions, F.col(f"`{name}`"), types[name], f"property '{name}'")
               if name in types and name not in EVENT_FIELDS else F.lit(None).cast("string"))
        if isinstance(nested, T.StructType):
            fields = {f.name: f.dataType for f in nested.fields}
            inner = (_text(functions, F.col("properties").getField(name), fields[name], f"property '{name}'")
                     if name in fields else F.lit(None).cast("string"))
        elif isinstance(nested, T.MapType):
            inner = _text(functions, F.col("properties").getItem(name), nested.valueType, f"property '{name}'")
        elif isinstance(nested, T.StringType):
            inner = functions.json_text(F.col("properties"), F.lit(name))
        else:
            inner = F.lit(None).cast("string")
        props.append(F.coalesce(top, inner).alias(property_column(name)))
    bad = bad_lead | lead_id.isNull() | bad_type | bad_event_id | ts.isNull() | bad_nested
    return frame.select(lead_id.alias("lead_id"), kind.alias("type"), ts.alias("ts_us"),
                        event_id.alias("event_id"), F.col("ls_pos").alias("seq"), *props, bad.alias("bad"))


def _local(path: str) -> Path | None:
    if "://" in path and not path.startswith("file://"):
        return None
    return Path(path.removeprefix("file://"))


def _reject(path: str, what: str, python_check: Callable[[Path], Any]) -> None:
    local = _local(path)
    if local is not None and local.exists():
        python_check(local)  # raises the python reader's error
    raise InputError(f"{what}; run `leadscore score --engine python` on a local copy for the first bad row",
                     file=path)


def _staged(frame: DataFrame, fmt: str, stage: Callable[[_Functions, DataFrame, str], DataFrame]) -> DataFrame:
    """Stage without Python UDFs when no row needs them (one cheap pass to find out)."""
    from pyspark.sql import functions as F

    if fmt != "jsonl":
        fast = _Functions(python=False)
        staged = stage(fast, frame, fmt)
        if not staged.columns or "bad" not in staged.columns:
            return staged
        needs_python = frame.select(fast.slow.alias("slow")).where(F.col("slow")).limit(1).count()
        if not needs_python:
            return staged
    return stage(_Functions(python=True), frame, fmt)


_EVENT_STATS = """
WITH firsts AS (
    SELECT event_id, min(seq) AS first_seq FROM ls_in_events
    WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1
), counted AS (
    SELECT e.lead_id, e.bad,
           f.first_seq IS NOT NULL AND e.seq <> f.first_seq AS duplicate,
           l.lead_id IS NULL AS unknown
    FROM ls_in_events AS e
    LEFT JOIN firsts AS f ON f.event_id = e.event_id
    LEFT JOIN (SELECT lead_id FROM ls_in_leads) AS l ON l.lead_id = e.lead_id
)
SELECT count(*) AS n_rows, count_if(bad) AS n_bad, count_if(duplicate) AS n_dup,
       count_if(unknown AND NOT duplicate) AS n_unknown,
       count(DISTINCT CASE WHEN unknown AND NOT duplicate THEN lead_id END) AS n_unknown_leads
FROM counted
"""


def score_files_spark(
    model: ScoringModel,
    leads_path: str | Path,
    events_path: str | Path | None,
    as_of_us: int,
    *,
    master: str | None = None,
    progress: Progress | None = None,
) -> tuple[ScoredTable, Callable[[list[int]], list[dict[str, Any]]]]:
    """Score the leads of a file (or any path Spark reads) with Spark SQL."""
    from pyspark.sql import functions as F

    spark = spark_session(master)
    columns = model_columns(model)
    leads_frame, leads_fmt = _read(spark, str(leads_path))
    leads = _staged(leads_frame, leads_fmt, lambda fx, f, m: _stage_leads(fx, f, m, columns.attributes)).cache()
    leads.createOrReplaceTempView("ls_in_leads")
    counts = leads.agg(F.count(F.lit(1)).alias("n"), F.count_if(F.col("bad")).alias("bad"),
                       F.count_distinct("lead_id").alias("distinct")).collect()[0]
    if counts["n"] == 0 or counts["bad"] or counts["distinct"] != counts["n"]:
        _reject(str(leads_path), f"{counts['bad']} bad or duplicate lead row(s)", read_leads)
    stats = {"leads": int(counts["n"]), "events_read": 0, "duplicate_events": 0,
             "unknown_lead_events": 0, "unknown_leads": 0}
    if events_path is not None:
        events_frame, events_fmt = _read(spark, str(events_path))
        events = _staged(events_frame, events_fmt,
                         lambda fx, f, m: _stage_events(fx, f, m, columns.properties))
        if "lead_id" not in events.columns:
            _reject(str(events_path), "missing column(s): events need lead_id, type, timestamp", read_events)
        events.createOrReplaceTempView("ls_in_events")
        row = spark.sql(_EVENT_STATS).collect()[0]
        if row["n_rows"] == 0 or row["n_bad"]:
            _reject(str(events_path), f"{row['n_bad']} bad event row(s)", read_events)
        stats.update(events_read=int(row["n_rows"]), duplicate_events=int(row["n_dup"]),
                     unknown_lead_events=int(row["n_unknown"]), unknown_leads=int(row["n_unknown_leads"]))
    else:
        empty = [F.lit(None).cast("string").alias("lead_id"), F.lit(None).cast("string").alias("type"),
                 F.lit(None).cast("long").alias("ts_us"), F.lit(None).cast("string").alias("event_id"),
                 F.lit(None).cast("long").alias("seq"),
                 *[F.lit(None).cast("string").alias(property_column(p)) for p in columns.properties]]
        spark.range(0).select(*empty).createOrReplaceTempView("ls_in_events")
    query = compile_model(model, "spark", leads="ls_in_leads", events="ls_in_events", as_of_us=as_of_us,
                          carry=("pos",))
    ordered = query.order_by("pos")
    exact = spark.sql(ordered.sql(dialect="spark")).toArrow()
    groups = model.group_names()
    names = ["lead_id", "score", "stage", *[f"score_{g}" for g in groups],
             *[f"grade_{g}" for g in model.graded_groups()]]
    scored = ScoredTable.from_exact(exact, names, ["score", *[f"score_{g}" for g in groups]])
    scored.stats = stats
    positions = exact.column("pos").to_pylist()

    from pyspark.sql.types import TimestampType

    # Spark hands instants (Parquet timestamps with a zone) back as naive UTC datetimes (the
    # session is UTC); the python reader sees them as aware ones: the same text form
    instants = {f.name for f in leads_frame.schema.fields if isinstance(f.dataType, TimestampType)}

    def attributes(indexes: list[int]) -> list[dict[str, Any]]:
        wanted = [positions[i] for i in indexes]
        rows = leads_frame.where(F.col("ls_pos").isin(wanted)).collect()
        found: dict[int, dict[str, Any]] = {}
        for row in rows:
            record = row.asDict(recursive=True)
            pos = record.pop("ls_pos")
            if leads_fmt == "jsonl":
                record = json.loads(record["json"])
            for name in instants & record.keys():
                if isinstance(record[name], datetime) and record[name].tzinfo is None:
                    record[name] = record[name].replace(tzinfo=UTC)
            found[pos] = make_attributes(record)
        return [found.get(p, {}) for p in wanted]

    return scored, attributes
