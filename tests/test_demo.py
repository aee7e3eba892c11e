"""The demo world (`leadscore demo-data`): deterministic, consistent and realistic enough."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import leadscore.demo.world as world_module
from cli_run import run_cli as run
from leadscore.demo import (
    DEFAULT_END,
    GENERATOR_VERSION,
    TARGET_COUNTRIES,
    TARGET_INDUSTRIES,
    DemoWorld,
    generate_world,
    write_world,
)
from leadscore.demo import writer as writer_module
from leadscore.demo.writer import parquet_table
from leadscore.engine.timestamps import parse_timestamp, to_micros
from leadscore.errors import UsageError

LEAD_COLUMNS = [
    "lead_id", "name", "email", "phone", "job_title", "seniority", "company", "industry",
    "company_size", "country", "source", "created_at", "consent_email", "consent_ads",
]
EVENT_COLUMNS = [
    "event_id", "lead_id", "type", "timestamp", "url", "seconds", "link", "asset", "webinar", "form", "category",
]
OUTCOME_COLUMNS = ["lead_id", "converted", "converted_at", "opportunity_at"]
PROPERTY_OF = {
    "page_view": {"url", "seconds"},
    "email_click": {"link"},
    "form_submit": {"form"},
    "download": {"asset"},
    "webinar_registered": {"webinar"},
    "webinar_attended": {"webinar", "seconds"},
    "support_ticket": {"category"},
}
END = "2026-11-01T00:00:00Z"


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return generate_world(3000, seed=7)


@pytest.fixture(scope="module")
def frames(world: DemoWorld) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return world.leads.to_pandas(), world.events.to_pandas(), world.outcomes.to_pandas()


def _utc(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, format="%Y-%m-%dT%H:%M:%SZ", utc=True)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- determinism ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_arguments_give_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    write_world(tmp_path / "a", 400, 11, DEFAULT_END, 12, fmt)
    write_world(tmp_path / "b", 400, 11, DEFAULT_END, 12, fmt)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(["leads." + fmt, "events." + fmt, "outcomes." + fmt, "world.json"])
    assert a == b


def test_another_seed_gives_another_world(tmp_path: Path) -> None:
    write_world(tmp_path / "a", 300, 1, DEFAULT_END, 12, "csv")
    write_world(tmp_path / "b", 300, 2, DEFAULT_END, 12, "csv")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    for name in ("leads.csv", "events.csv", "outcomes.csv"):
        assert a[name] != b[name]


def test_streamed_files_hold_the_in_memory_world_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world_module, "CHUNK_LEADS", 170)  # 700 leads -> 5 chunks
    memory = generate_world(700, 5, DEFAULT_END, 6)
    summary = write_world(tmp_path, 700, 5, DEFAULT_END, 6, "parquet")
    for name in ("leads", "events", "outcomes"):  # sqlspeed: Parquet holds native timestamps
        written = pq.read_table(tmp_path / f"{name}.parquet")
        assert written.equals(parquet_table(name, getattr(memory, name))), name
    events = pq.read_table(tmp_path / "events.parquet")
    assert events.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert [to_micros(t) for t in events["timestamp"].to_pylist()[:3]] == [
        to_micros(parse_timestamp(t)) for t in memory.events["timestamp"].to_pylist()[:3]
    ]
    assert summary.n_events == memory.events.num_rows
    ids = memory.events["event_id"].to_pylist()
    assert ids == [f"E{i:010d}" for i in range(1, len(ids) + 1)]  # counting on across chunks
    assert memory.leads["lead_id"].to_pylist() == [f"L{i:07d}" for i in range(1, 701)]


def test_world_json_and_summary(tmp_path: Path) -> None:
    summary = write_world(tmp_path, 250, 3, datetime(2026, 6, 1, 12, 30, tzinfo=UTC), 3, "csv")
    meta = json.loads((tmp_path / "world.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 3 and meta["leads"] == 250 and meta["format"] == "csv"
    assert meta["as_of"] == "2026-06-01T12:30:00Z"
    assert meta["events"] == summary.n_events == pacsv.read_csv(tmp_path / "events.csv").num_rows
    assert meta["generator_version"] == GENERATOR_VERSION
    assert summary.files["leads"] == tmp_path / "leads.csv"
    assert 0 <= summary.n_converted <= summary.n_opportunities <= 250
    assert summary.conversion_rate == summary.n_converted / 250
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_failure_leaves_old_files_alone_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_world(tmp_path, 100, 1, DEFAULT_END, 12, "csv")
    before = _files(tmp_path)
    real = writer_module.iter_chunks

    def failing(spec: world_module.WorldSpec):  # type: ignore[no-untyped-def]
        for chunk in real(spec):
            yield chunk
            raise OSError("disk full")

    monkeypatch.setattr(writer_module, "iter_chunks", failing)
    with pytest.raises(OSError, match="disk full"):
        write_world(tmp_path, 200, 2, DEFAULT_END, 12, "csv")
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_leads": 0}, "--leads"),
        ({"seed": -1}, "--seed"),
        ({"months": 0}, "--months"),
        ({"fmt": "xlsx"}, "--format"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_leads": 10, "seed": 1, "end": DEFAULT_END, "months": 12, "fmt": "csv"}
    args.update(kwargs)
    with pytest.raises(UsageError, match=message):
        write_world(tmp_path, **args)  # type: ignore[arg-type]


# --- shape of the data ------------------------------------------------------------------------


def test_columns_and_types(world: DemoWorld) -> None:
    assert world.leads.column_names == LEAD_COLUMNS
    assert world.events.column_names == EVENT_COLUMNS
    assert world.outcomes.column_names == OUTCOME_COLUMNS
    assert world.leads.schema.field("company_size").type == pa.int64()
    assert world.leads.schema.field("consent_email").type == pa.bool_()
    assert world.events.schema.field("seconds").type == pa.int64()
    assert world.outcomes.schema.field("converted").type == pa.bool_()
    for table, names in ((world.leads, ["created_at"]), (world.events, ["timestamp"]),
                         (world.outcomes, ["converted_at", "opportunity_at"])):
        for name in names:
            values = [x for x in table[name].to_pylist() if x is not None]
            assert all(len(x) == 20 and x.endswith("Z") and x[10] == "T" for x in values), name
    assert world.as_of == DEFAULT_END


def test_attribute_values(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    leads, _, _ = frames
    assert set(leads.seniority) <= {"c_level", "vp", "director", "manager", "individual", "student", "other"}
    assert set(leads.source) == {
        "organic_search", "paid_search", "social", "referral", "email", "event", "direct", "partner"
    }
    assert {"US", "GB", "DE", "FR", "VN", "IN", "BR", "CA", "AU", "NL", "SG"} <= set(leads.country)
    assert set(TARGET_INDUSTRIES) <= set(leads.industry.dropna())
    assert set(TARGET_COUNTRIES) <= set(leads.country)
    assert leads.email.map(str.isascii).all() and leads.email.str.count("@").eq(1).all()
    assert leads.lead_id.is_unique
    for column in ("industry", "company_size", "job_title", "phone"):  # a real CRM has holes
        assert 0 < leads[column].isna().mean() < 0.25, column
    titles = leads.job_title.dropna()
    assert (titles != titles.str.strip()).any()  # "  vp of Sales "
    assert leads.company_size.dropna().gt(0).all()


def test_vietnamese_leads_have_diacritics_and_folded_emails(
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    leads, _, _ = frames
    vn = leads[leads.country == "VN"]
    assert 0.06 <= len(vn) / len(leads) <= 0.13
    assert vn.name.map(lambda s: not s.isascii()).mean() > 0.7
    assert leads.name.map(lambda s: unicodedata.is_normalized("NFC", s)).all()
    nguyen = vn[vn.name.str.startswith("Nguyễn ")]
    assert len(nguyen) > 20
    assert nguyen.email.str.contains("nguyen").mean() > 0.3  # nguyen.thi.huong@..., huong.nguyen@...


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_diacritics_survive_the_round_trip(tmp_path: Path, fmt: str) -> None:
    memory = generate_world(600, 9)
    write_world(tmp_path, 600, 9, DEFAULT_END, 12, fmt)
    path = tmp_path / f"leads.{fmt}"
    names = (pacsv.read_csv(path) if fmt == "csv" else pq.read_table(path))["name"].to_pylist()
    assert names == memory.leads["name"].to_pylist()
    assert any(ch in "".join(names) for ch in "ễịươđĐ")


# --- consistency ------------------------------------------------------------------------------


def test_referential_integrity(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    leads, events, outcomes = frames
    assert events.lead_id.isin(leads.lead_id).all()
    assert outcomes.lead_id.tolist() == leads.lead_id.tolist()  # one outcome per lead
    assert events.event_id.is_unique


def test_events_lie_between_creation_and_the_end(
    world: DemoWorld, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    leads, events, _ = frames
    # fixed-width ISO 8601 text sorts like time
    created = leads.set_index("lead_id").created_at
    assert (events.timestamp.to_numpy() >= created.loc[events.lead_id].to_numpy()).all()
    assert (events.timestamp <= END).all()
    assert created.between("2025-11-01T00:00:00Z", END).all()
    assert world.as_of == datetime(2026, 11, 1, tzinfo=UTC)


def test_outcome_moments_are_ordered(
    world: DemoWorld, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    leads, _, outcomes = frames
    created = _utc(leads.created_at)
    opportunity = _utc(outcomes.opportunity_at)
    converted_at = _utc(outcomes.converted_at)
    assert outcomes.converted.equals(converted_at.notna())
    assert opportunity[outcomes.converted].notna().all()
    has_opp = opportunity.notna()
    assert (opportunity[has_opp] >= created[has_opp]).all()
    won = outcomes.converted
    assert (converted_at[won] >= opportunity[won]).all()
    assert (converted_at[won] <= pd.Timestamp(world.as_of)).all()


def test_properties_only_where_they_apply(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    _, events, _ = frames
    properties = ["url", "seconds", "link", "asset", "webinar", "form", "category"]
    for kind, group in events.groupby("type"):
        wanted = PROPERTY_OF.get(str(kind), set())
        for prop in properties:
            filled = group[prop].notna()
            assert filled.all() if prop in wanted else not filled.any(), (kind, prop)
    urls = set(events.url.dropna())
    assert {"/pricing", "/pricing/enterprise", "/careers", "/contact", "/"} <= urls
    prefixes = ("/product/", "/blog/", "/case-studies/", "/careers/jobs/", "/docs/")
    assert all(any(u.startswith(p) for u in urls) for p in prefixes)
    assert "https://example.com/demo" in set(events.link.dropna())
    assert set(events.form.dropna()) == {"contact", "newsletter", "ebook", "demo"}
    assert set(events.category.dropna()) <= {"sales", "technical", "billing"}
    assert {a.split("-")[0] for a in events.asset.dropna()} == {"case", "whitepaper", "ebook", "datasheet"}


# --- realism ------------------------------------------------------------------------------------


def test_volumes_and_rates(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    leads, events, outcomes = frames
    per_lead = events.groupby("lead_id").size().reindex(leads.lead_id, fill_value=0)
    assert 14 <= per_lead.mean() <= 26
    assert per_lead.le(5).mean() > 0.2 and per_lead.max() > 150  # heavy tail
    conversion = outcomes.converted.mean()
    opportunity = outcomes.opportunity_at.notna().mean()
    assert 0.07 <= conversion <= 0.16
    assert 1.4 <= opportunity / conversion <= 2.6
    assert set(events.type) == {
        "page_view", "email_open", "email_click", "form_submit", "download", "webinar_registered",
        "webinar_attended", "demo_request", "trial_signup", "product_login", "unsubscribe", "support_ticket",
    }


def test_seasonality(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    leads, events, _ = frames
    created = _utc(leads.created_at)
    assert created.dt.day_of_week.ge(5).mean() < 0.14  # 2/7 = 0.29 without a working week
    per_month = created.dt.month.value_counts()
    assert per_month[8] < 0.8 * per_month[[9, 10]].mean()  # August is quiet
    views = _utc(events.timestamp[events.type == "page_view"])
    assert views.dt.day_of_week.ge(5).mean() < 0.2


def test_converters_show_more_buying_signals(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    leads, events, outcomes = frames
    won = set(outcomes.lead_id[outcomes.converted])

    def per_lead(mask: pd.Series) -> tuple[float, float]:
        counts = events[mask].groupby("lead_id").size().reindex(leads.lead_id, fill_value=0)
        is_won = counts.index.isin(won)
        return float(counts[is_won].mean()), float(counts[~is_won].mean())

    for mask, ratio in (
        (events.url.fillna("").str.startswith("/pricing"), 4),
        (events.type == "demo_request", 4),
        (events.link.fillna("").str.endswith("/demo"), 2.5),
        (events.type == "trial_signup", 2),
    ):
        converters, others = per_lead(mask)
        assert converters > ratio * others
    converters, others = per_lead(events.url.fillna("").str.startswith("/careers"))
    assert converters < 0.5 * others
    converters, others = per_lead(events.type == "email_open")  # a weak signal
    assert others < converters < 2.5 * others


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    positives = int(label.sum())
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * (len(label) - positives)))


def test_the_starter_rules_rank_converters_well_but_not_perfectly(
    world: DemoWorld, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    leads, events, outcomes = frames

    def has(mask: pd.Series) -> np.ndarray:
        return leads.lead_id.isin(set(events.lead_id[mask])).to_numpy()

    ts = _utc(events.timestamp)
    mail = events.type.isin(["email_open", "email_click"])
    score = (
        20 * leads.seniority.isin(["c_level", "vp"]).to_numpy()
        + 10 * (leads.seniority == "manager").to_numpy()
        + 15 * leads.industry.isin(TARGET_INDUSTRIES).to_numpy()
        + 10 * leads.company_size.between(50, 500).fillna(False).to_numpy(dtype=bool)
        + 5 * leads.country.isin(TARGET_COUNTRIES).to_numpy()
        + 15 * has(events.url.fillna("").str.startswith("/pricing"))
        + 10 * has(events.asset.fillna("").str.startswith("case-study"))
        + 20 * has(events.type == "webinar_attended")
        + 25 * has(events.link.fillna("").str.endswith("/demo"))
        + 5 * has(events.type == "email_open")
        - 10 * has(events.type == "unsubscribe")
        - 5 * has(events.url.fillna("").str.startswith("/careers"))
        - 3 * has((events.type == "support_ticket") & (events.category != "sales"))
        - 15 * ~has(mail & (ts >= pd.Timestamp(world.as_of) - pd.Timedelta(days=90)))
    )
    auc = _auc(score.astype(float), outcomes.converted.to_numpy())
    assert 0.70 <= auc <= 0.88


# --- the command --------------------------------------------------------------------------------


def test_command_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code, printed, _ = run(["demo-data", "--leads", "200", "--seed", "4", "--out", str(out), "--format",
                            "parquet", "--end", "2026-03-01T00:00:00Z", "--months", "2"], capsys)
    assert code == 0
    assert "events" in printed and "converted" in printed
    meta = json.loads((out / "world.json").read_text(encoding="utf-8"))
    assert meta["as_of"] == "2026-03-01T00:00:00Z" and meta["format"] == "parquet"
    leads = pq.read_table(out / "leads.parquet")
    assert leads.num_rows == 200
    assert min(leads["created_at"].to_pylist()) >= datetime(2026, 1, 1, tzinfo=UTC)  # sqlspeed: native
    assert pq.read_table(out / "events.parquet").num_rows == meta["events"]
    assert pq.read_table(out / "outcomes.parquet").num_rows == 200


def test_command_defaults_to_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["demo-data", "--leads", "50", "--out", str(tmp_path)], capsys)[0] == 0
    assert json.loads((tmp_path / "world.json").read_text(encoding="utf-8"))["as_of"] == END
    assert pacsv.read_csv(tmp_path / "leads.csv").num_rows == 50


@pytest.mark.parametrize(
    "args",
    [["--leads", "0"], ["--format", "xml"], ["--end", "yesterday"], ["--months", "0"], ["--seed", "-3"]],
)
def test_command_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(["demo-data", "--out", str(tmp_path / "x"), *args], capsys)
    assert code == 2
    assert err.startswith("error: ")
    assert not (tmp_path / "x" / "leads.csv").exists()


def test_cli_defaults_match_the_generator() -> None:
    """The CLI keeps copies of these (to start fast); they must not drift."""
    from leadscore.cli import demo as cli_demo
    from leadscore.demo import DEFAULT_END, FORMATS

    assert DEFAULT_END.strftime("%Y-%m-%dT%H:%M:%SZ") == cli_demo._DEFAULT_END_TEXT
    assert tuple(cli_demo.FORMATS) == tuple(FORMATS)
