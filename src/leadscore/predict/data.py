"""Leads and events as column tables, for training and batch prediction.

The per-lead engine reads records one by one; predictive scoring needs whole columns
(100k leads and millions of events), so this module reads the same files with pandas:

* every cell of a CSV file is read as text (an empty cell is missing), exactly as the
  engine sees it; numbers are recognised later, column by column;
* events keep ``lead_id``, ``type``, ``timestamp`` (as epoch microseconds, ``ts``),
  ``event_id`` and their properties (the other columns, plus a ``properties`` JSON object);
* each lead has an *as-of* moment (epoch microseconds): only events at or before it count.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.engine.scoring import Event, Lead
from leadscore.engine.timestamps import to_micros
from leadscore.errors import InputError, UsageError
from leadscore.ingest.files import file_format, separator_hint
from leadscore.ingest.normalise import clean_value
from leadscore.model.schema import did_you_mean
from leadscore.predict.errors import TrainingDataError

EVENT_COLUMNS = ("lead_id", "type", "timestamp")
MIN_PER_CLASS = 25  # leads of each outcome needed to train (holdout + 5-fold CV each need some)
_TRUE = {"1", "true", "yes", "y", "t", "converted", "won"}
_FALSE = {"0", "false", "no", "n", "f", "not converted", "lost"}


@dataclass
class LeadData:
    """Leads (one row each, column ``lead_id`` first), their events and as-of moments.

    ``as_of_us`` holds one epoch-microsecond moment per lead (or None when no as-of was
    given: then events cannot be used). ``events`` has columns ``lead_id``, ``type``,
    ``ts``, ``event_id`` and one column per property.
    """

    leads: pd.DataFrame
    events: pd.DataFrame | None = None
    as_of_us: np.ndarray | None = None
    source: str | None = None

    def __len__(self) -> int:
        return len(self.leads)

    @property
    def lead_ids(self) -> np.ndarray:
        return self.leads["lead_id"].to_numpy(dtype=object)

    def subset(self, rows: np.ndarray) -> LeadData:
        """The leads at positions ``rows`` (with their events and as-of moments)."""
        leads = self.leads.iloc[rows].reset_index(drop=True)
        events = None
        if self.events is not None:
            keep = set(leads["lead_id"])
            events = self.events[self.events["lead_id"].isin(keep)].reset_index(drop=True)
        as_of = None if self.as_of_us is None else self.as_of_us[rows]
        return LeadData(leads, events, as_of, self.source)


# ---- reading files ------------------------------------------------------------------


def _check_file(path: Path) -> str:
    fmt = file_format(path)
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("the file is empty (expected a header row and data)", file=str(path))
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (all cells as text), JSONL or Parquet file into a DataFrame."""
    path = Path(path)
    fmt = _check_file(path)
    try:
        if fmt == "csv":
            frame = _read_csv(path)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the file is not UTF-8 text (byte {exc.start}); save or export it as UTF-8", file=str(path)
        ) from None
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise InputError(f"cannot read the file: {str(exc).splitlines()[0]}", file=str(path)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InputError("no rows in the file (only a header?)", file=str(path))
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    """All cells as text, an empty cell missing; the fast reader first, the careful one for errors."""
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    try:
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - re-read with the C engine, whose errors name the line
        return pd.read_csv(path, encoding="utf-8-sig", **options)


def require_column(frame: pd.DataFrame, column: str, file: str | None, what: str) -> None:
    """Raise an InputError naming the column when ``frame`` lacks it."""
    if column not in frame.columns:
        columns = [str(c) for c in frame.columns]
        shown = ", ".join(columns[:10]) + (", ..." if len(columns) > 10 else "")
        hint = separator_hint(columns) or did_you_mean(column, columns) or f"; found: {shown}"
        raise InputError(
            f"no column '{column}' ({what}){hint}", file=file, column=column
        )


def id_series(values: pd.Series) -> pd.Series:
    """Identifiers as text: whole numbers without a decimal part, stripped strings, empty is missing."""
    if pd.api.types.is_bool_dtype(values):
        raise InputError("an id column holds booleans; ids are text or whole numbers")
    if pd.api.types.is_integer_dtype(values):
        text = values.astype(str)
    elif pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if not (whole == np.floor(whole)).all():
            raise InputError("an id column holds fractional numbers; ids are text or whole numbers")
        text = values.map(lambda v: None if v != v else str(int(v)))
    elif isinstance(values.dtype, pd.StringDtype):
        text = values.str.strip()
    else:
        text = values.map(lambda v: v if isinstance(v, str) else (None if v is None or v != v else str(v)))
        text = text.astype("str").str.strip()
    codes, uniques = pd.factorize(text)  # fast on arrow strings; object arrays only for the distinct ids
    names = np.asarray(uniques, dtype=object)
    out = names[codes] if len(names) else np.full(len(text), None, dtype=object)
    empty = np.flatnonzero(names == "") if len(names) else np.zeros(0, dtype=int)
    out[(codes < 0) | np.isin(codes, empty)] = None
    return pd.Series(out, index=values.index, dtype=object)


def read_leads_table(path: str | Path, id_column: str = "lead_id") -> pd.DataFrame:
    """Leads with a text ``lead_id`` column first (taken from ``id_column``); ids must be unique."""
    frame = read_table(path)
    require_column(frame, id_column, str(path), "the lead id; choose another with --id-column")
    ids = id_series(frame[id_column])
    missing = ids.isna().to_numpy()
    if missing.any():
        raise InputError("the lead id is empty", file=str(path), row=int(np.argmax(missing)) + 1, column=id_column)
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        first = int(np.argmax((ids == ids.iloc[row]).to_numpy()))
        raise InputError(
            f"lead id '{ids.iloc[row]}' appears again (first at row {first + 1}); each lead must appear once",
            file=str(path), row=row + 1, column=id_column,
        )
    rest = frame.drop(columns=[id_column]) if id_column != "lead_id" else frame.drop(columns=["lead_id"])
    if "lead_id" in rest.columns:
        rest = rest.drop(columns=["lead_id"])
    out = pd.concat([pd.Series(ids.to_numpy(), name="lead_id", dtype=object), rest.reset_index(drop=True)], axis=1)
    return out


def _arrow_micros(values: pd.Series) -> np.ndarray | None:
    """Epoch microseconds by Arrow's strict ISO 8601 parser (``...Z`` or an offset, at most
    microseconds), ~10x faster than pandas; None when any text needs pandas' broader parser."""
    if not (isinstance(values.dtype, pd.StringDtype) or values.dtype == object):
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        texts = pa.array(values, type=pa.string(), from_pandas=True)
        moments = pc.cast(texts, pa.timestamp("us", tz="UTC"))
    except Exception:  # noqa: BLE001 - a text Arrow does not take (no offset, nanoseconds, ...): use pandas
        return None
    micros = moments.cast(pa.int64())
    return np.asarray(micros.fill_null(NAT).to_numpy(zero_copy_only=False), dtype=np.int64)


def timestamps_us(values: pd.Series, *, file: str | None, column: str, required: bool) -> np.ndarray:
    """ISO 8601 texts (or datetimes) as epoch microseconds; missing is ``INT64_MIN`` unless required."""
    fast = _arrow_micros(values)
    if fast is not None:
        empty = fast == NAT
        if required and empty.any():
            raise InputError(f"{column} is empty", file=file, row=int(np.argmax(empty)) + 1, column=column)
        return fast
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values.astype(object), utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy() & values.notna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"{values.iloc[row]!r} is not an ISO 8601 timestamp (expected e.g. 2025-03-01T14:30:00Z)",
            file=file, row=row + 1, column=column,
        )
    if required:
        empty = parsed.isna().to_numpy()
        if empty.any():
            raise InputError(f"{column} is empty", file=file, row=int(np.argmax(empty)) + 1, column=column)
    return parsed.dt.as_unit("us").astype("int64").to_numpy()


NAT = np.iinfo(np.int64).min


def _expand_properties(frame: pd.DataFrame, file: str | None) -> pd.DataFrame:
    """Merge a ``properties`` JSON object column into flat property columns."""
    if "properties" not in frame.columns:
        return frame
    raw = frame["properties"]

    def parse(value: Any) -> Mapping[str, Any]:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return {}
        if isinstance(value, Mapping):
            return value
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, Mapping):
                return parsed
        raise ValueError(value)

    try:
        objects = [parse(v) for v in raw]
    except ValueError as exc:
        row = next(i for i, v in enumerate(raw) if v is exc.args[0] or v == exc.args[0])
        raise InputError("properties is not a JSON object", file=file, row=row + 1, column="properties") from None
    frame = frame.drop(columns=["properties"])
    if any(objects):
        nested = pd.DataFrame.from_records(
            [{k: clean_value(v) for k, v in o.items()} for o in objects]
        )
        for name in nested.columns:
            if name in EVENT_COLUMNS or name == "event_id":
                continue
            if name in frame.columns:  # a flat column wins where it has a value
                frame[name] = frame[name].where(frame[name].notna(), nested[name])
            else:
                frame[name] = nested[name].to_numpy()
    return frame


def read_events_table(path: str | Path, properties: set[str] | None = None) -> pd.DataFrame:
    """Events with ``lead_id``, ``type``, ``ts`` (epoch µs), ``event_id`` and property columns.

    ``properties``, when given, keeps only those properties (a trained model knows which
    it looks at), which makes reading a large file much faster.
    """
    path = Path(path)
    file = str(path)
    if properties is not None and file_format(path) == "csv":
        frame = _read_csv_columns(path, {*EVENT_COLUMNS, "event_id", "properties", *properties})
    else:
        frame = read_table(path)
    for column in EVENT_COLUMNS:
        require_column(frame, column, file, "events need lead_id, type, timestamp")
    frame = _expand_properties(frame, file)
    ids = _text_codes(frame["lead_id"], file, "lead_id")
    kinds = _text_codes(frame["type"], file, "type")
    ts = timestamps_us(frame["timestamp"], file=file, column="timestamp", required=True)
    if "event_id" in frame.columns:
        # only compared for duplicates: stripped text is enough (no per-id objects for millions of rows)
        event_ids = _text_ids(frame["event_id"], file, "event_id", required=False)
    else:
        event_ids = pd.Series([None] * len(frame), dtype=object)
    base = pd.DataFrame({"lead_id": ids.reset_index(drop=True), "type": kinds.reset_index(drop=True)})
    base["ts"] = ts
    base["event_id"] = event_ids.reset_index(drop=True)
    names = [c for c in frame.columns if c not in ("lead_id", "type", "timestamp", "event_id")]
    if properties is not None:
        names = [c for c in names if c in properties]
    return pd.concat([base, frame[names].reset_index(drop=True)], axis=1)


def _text_ids(values: pd.Series, file: str | None, column: str, *, required: bool = True) -> pd.Series:
    """Stripped id texts; arrow strings stay arrow strings (millions of rows, no Python objects)."""
    text = values.str.strip() if isinstance(values.dtype, pd.StringDtype) else id_series(values)
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
    if required and empty.any():
        raise InputError(f"{column} is empty", file=file, row=int(np.argmax(empty)) + 1, column=column)
    return text.where(~empty, None) if empty.any() else text


def _text_codes(values: pd.Series, file: str | None, column: str) -> pd.Series:
    """:func:`_text_ids` of a column with few distinct values (lead ids and types of millions
    of events), as a categorical: each distinct text is stripped once, not each row."""
    if not isinstance(values.dtype, pd.StringDtype):
        return _text_ids(values, file, column)
    codes, uniques = pd.factorize(values)
    texts = np.asarray(uniques, dtype=object)
    stripped = np.array([t.strip() or None for t in texts], dtype=object)
    merged, names = pd.factorize(stripped)  # " a" and "a" are one id; "" is missing
    final = merged[codes] if len(merged) else np.full(len(codes), -1)
    final[codes < 0] = -1
    empty = final < 0
    if empty.any():
        raise InputError(f"{column} is empty", file=file, row=int(np.argmax(empty)) + 1, column=column)
    categories = pd.Index(np.asarray(names, dtype=object), dtype=object)
    return pd.Series(pd.Categorical.from_codes(final, categories=categories), index=values.index)


def _read_csv_columns(path: Path, wanted: set[str]) -> pd.DataFrame:
    """Read only the wanted columns of a CSV file (all as text)."""
    import csv

    _check_file(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = [h.strip() for h in next(csv.reader(handle), [])]
    columns = [h for h in header if h in wanted]
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""], "usecols": columns}
    try:
        frame = pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - the careful reader names the bad line
        try:
            frame = pd.read_csv(path, encoding="utf-8-sig", **options)
        except (ValueError, pd.errors.ParserError, OSError) as exc:
            raise InputError(f"cannot read the file: {str(exc).splitlines()[0]}", file=str(path)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """Engine events (from the service) as an events table."""
    props: list[Mapping[str, Any]] = [e.properties for e in events]
    out = pd.DataFrame(
        {
            "lead_id": [e.lead_id for e in events],
            "type": [e.type for e in events],
            "ts": np.array([e.ts for e in events], dtype=np.int64),
            "event_id": [e.event_id for e in events],
        }
    )
    if any(props):
        nested = pd.DataFrame.from_records([dict(p) for p in props])
        for name in nested.columns:
            if name not in out.columns:
                out[name] = nested[name].to_numpy()
    return out


def leads_frame(leads: Sequence[Lead]) -> pd.DataFrame:
    """Engine leads (from the service) as a leads table."""
    records = [{"lead_id": lead.lead_id, **dict(lead.attributes)} for lead in leads]
    frame = pd.DataFrame.from_records(records)
    frame["lead_id"] = frame["lead_id"].astype(object)
    return frame


def as_of_moments(
    leads: pd.DataFrame,
    *,
    as_of_column: str | None,
    as_of: datetime | None,
    file: str | None,
    offset_days: float = 0.0,
    fallback: str = "give --as-of as a fallback",
) -> np.ndarray | None:
    """One as-of moment per lead: the lead's ``as_of_column`` (plus ``offset_days``), else
    the fixed ``as_of``. ``fallback``: what the refusal of an empty value advises."""
    if as_of_column is not None:
        require_column(leads, as_of_column, file, "the as-of column")
        moments = timestamps_us(leads[as_of_column], file=file, column=as_of_column, required=False)
        if offset_days:
            moments = np.where(moments == NAT, NAT, moments + int(round(offset_days * 86_400_000_000)))
        if as_of is not None:
            moments = np.where(moments == NAT, to_micros(as_of), moments)
        elif (moments == NAT).any():
            row = int(np.argmax(moments == NAT))
            raise InputError(
                f"{as_of_column} is empty, so the lead has no as-of moment ({fallback})",
                file=file, row=row + 1, column=as_of_column,
            )
        return moments
    if as_of is not None:
        return np.full(len(leads), to_micros(as_of), dtype=np.int64)
    return None


def load_data(
    leads_path: str | Path,
    *,
    events_path: str | Path | None = None,
    id_column: str = "lead_id",
    as_of_column: str | None = None,
    as_of: datetime | None = None,
    offset_days: float = 0.0,
) -> LeadData:
    """Read leads (and events) and work out each lead's as-of moment."""
    leads = read_leads_table(leads_path, id_column)
    moments = as_of_moments(leads, as_of_column=as_of_column, as_of=as_of, file=str(leads_path),
                            offset_days=offset_days)
    events = None
    if events_path is not None:
        if moments is None:
            raise UsageError(
                "--events needs an as-of moment per lead: give --as-of-column (e.g. created_at) "
                "or --as-of, so that only events before it count"
            )
        events = read_events_table(events_path)
    return LeadData(leads, events, moments, str(leads_path))


# ---- the target ---------------------------------------------------------------------


def join_outcomes(leads: pd.DataFrame, outcomes_path: str | Path, target: str, id_column: str = "lead_id") -> pd.DataFrame:
    """Add the ``target`` column of an outcomes file (matched on lead id) to the leads."""
    outcomes = read_table(outcomes_path)
    key = id_column if id_column in outcomes.columns else "lead_id"
    require_column(outcomes, key, str(outcomes_path), "the lead id of each outcome")
    require_column(outcomes, target, str(outcomes_path), "the target; choose it with --target")
    right = pd.DataFrame({"lead_id": id_series(outcomes[key]).to_numpy(), "__target": outcomes[target].to_numpy()})
    right = right.drop_duplicates("lead_id", keep="last")
    merged = leads.drop(columns=[target], errors="ignore").merge(right, on="lead_id", how="left")
    return merged.rename(columns={"__target": target})


_WHOLE_DECIMAL = re.compile(r"[+-]?\d+\.0*")


def _folded(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    if _WHOLE_DECIMAL.fullmatch(text):  # "1.0", "0.00": a 0/1 column written with blanks by pandas
        return text.split(".")[0].lstrip("+") or "0"
    return text


def target_vector(values: pd.Series, positive: str | None, *, column: str, file: str | None = None) -> np.ndarray:
    """1.0 / 0.0 per row, NaN where the target is missing."""
    present = values.notna().to_numpy()
    folded = np.array([_folded(v) if ok else "" for v, ok in zip(values.tolist(), present, strict=True)], dtype=object)
    levels = sorted({str(v) for v in folded[present]})
    y = np.full(len(values), np.nan)
    if positive is not None:
        y[present] = (folded[present] == _folded(positive)).astype(float)
        if levels and _folded(positive) not in levels:
            raise InputError(
                f"--positive {positive!r} never occurs in the target; its values are: {', '.join(levels[:10])}",
                file=file, column=column,
            )
        return y
    if set(levels) <= _TRUE | _FALSE:
        y[present] = np.isin(folded[present], list(_TRUE)).astype(float)
        return y
    odd = [v for v in levels if v not in _TRUE | _FALSE]
    row = 1 + next(i for i, (v, ok) in enumerate(zip(folded, present, strict=True)) if ok and v == odd[0])
    where = f" ('{odd[0]}' first for the lead of data row {row} of the lead file)"
    raise UsageError(
        f"the target '{column}' has the values {', '.join(levels[:6])}{', ...' if len(levels) > 6 else ''}"
        f"{where}; say which one means converted with --positive VALUE"
    )


def check_classes(y: np.ndarray, column: str, *, minimum: int = MIN_PER_CLASS, training: bool = True,
                  whole: np.ndarray | None = None) -> None:
    """Refuse a target with one class or too few leads of one outcome, saying how many are needed.
    ``training``: the words are about training a model (else about measuring one on labelled
    leads). ``whole``: ``y`` is the training part of these labelled leads, and the leads to add
    are counted on them."""
    positives = int((y == 1).sum())
    negatives = int((y == 0).sum())
    if positives == 0 or negatives == 0:
        only = "converted" if negatives == 0 else "not converted"
        raise TrainingDataError(
            f"the target '{column}' has one class only: all {len(y)} labelled leads are {only}; "
            "a model needs converted and not-converted leads"
        )
    for count, name, value in ((positives, "converted", 1), (negatives, "not-converted", 0)):
        if count < minimum:
            need = (f"training needs at least {minimum} of each outcome (the holdout and each "
                    "cross-validation fold need some)" if training else
                    f"measuring a model needs at least {minimum} labelled leads of each outcome")
            if whole is None:
                raise TrainingDataError(f"only {count} {name} lead(s) in '{column}' (of {len(y)}); {need}: "
                                        f"add at least {minimum - count} more")
            share = len(y) / len(whole)
            total = int((whole == value).sum())
            more = max(1, math.ceil(minimum / share) - total)
            raise TrainingDataError(
                f"only {count} {name} lead(s) in the training part ({share:.0%}) of '{column}' ({total} of "
                f"{len(whole)} in all); {need}: add about {more} more {name} lead(s)"
            )


def engine_inputs(data: LeadData) -> tuple[list[Lead], dict[str, list[Event]]]:
    """Leads and events as the per-lead engine's objects (for rule models)."""
    columns = [c for c in data.leads.columns if c != "lead_id"]
    leads = []
    for record in data.leads.itertuples(index=False, name=None):
        attributes = {name: clean_value(value) for name, value in zip(columns, record[1:], strict=True)}
        leads.append(Lead(str(record[0]), attributes))
    by_lead: dict[str, list[Event]] = {}
    if data.events is not None:
        frame = data.events
        props = [c for c in frame.columns if c not in ("lead_id", "type", "ts", "event_id")]
        prop_values = [frame[c].to_numpy(dtype=object) for c in props]
        ids, kinds, ts, event_ids = (frame[c].to_numpy(dtype=object) for c in ("lead_id", "type", "ts", "event_id"))
        for i in range(len(frame)):
            properties = {}
            for name, values in zip(props, prop_values, strict=True):
                value = clean_value(values[i])
                if value is not None:
                    properties[name] = value
            event_id = event_ids[i]
            by_lead.setdefault(ids[i], []).append(
                Event(ids[i], kinds[i], int(ts[i]), properties, None if event_id is None or event_id != event_id else event_id)
            )
    return leads, by_lead
