"""Features: attribute kinds, rare levels, event aggregates, rule counts, point-in-time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.predict.conftest import AS_OF, TYPES

from leadscore.engine import Event, Lead, score_lead, to_micros
from leadscore.model import parse_model
from leadscore.predict.data import LeadData
from leadscore.predict.features import MISSING, OTHER, LeadFeatures, column_kind, rule_event_counts

DAY_US = 86_400_000_000


def _events(rows: list[tuple[str, str, float, str | None, str | None]]) -> pd.DataFrame:
    """(lead_id, type, days before AS_OF, url, event_id) rows as an events table."""
    return pd.DataFrame({
        "lead_id": [r[0] for r in rows],
        "type": [r[1] for r in rows],
        "ts": np.array([to_micros(AS_OF) - int(r[2] * DAY_US) for r in rows], dtype=np.int64),
        "event_id": [r[4] for r in rows],
        "url": [r[3] for r in rows],
    })


def _data(events: pd.DataFrame, n: int = 2) -> LeadData:
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)]})
    return LeadData(leads, events, np.full(n, to_micros(AS_OF), dtype=np.int64))


def test_column_kinds() -> None:
    n = 200
    assert column_kind("lead number", pd.Series([str(i) for i in range(n)]))[0] == "id"
    assert column_kind("Prospect ID", pd.Series(["a", "b"] * 100))[0] == "id"
    assert column_kind("size", pd.Series(["1", " 2 ", None] * 70))[0] == "numeric"
    assert column_kind("title", pd.Series(["CEO", "CTO"] * 100))[0] == "category"
    assert column_kind("constant", pd.Series(["x"] * n))[0] == "constant"
    assert column_kind("notes", pd.Series([f"a long note about thing {i % 150}" for i in range(n)]))[0] == "text"
    assert column_kind("signed_up", pd.Series(["2025-01-02T03:04:05Z"] * 100 + ["2025-02-02T00:00:00Z"] * 100))[0] == "datetime"


def test_rare_levels_are_pooled_and_missing_is_a_level() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["rare"] * 2 + [None] * 5
    leads = pd.DataFrame({"lead_id": [str(i) for i in range(len(values))], "tier": values})
    data = LeadData(leads)
    features = LeadFeatures(min_level_count=10).fit(data)
    spec = features.specs_[0]
    assert spec.levels == ("a", "b", OTHER, MISSING)
    codes = features.transform(data)[:, 0]
    assert [spec.levels[int(c)] for c in codes[[0, 50, 80, 85]]] == ["a", "b", OTHER, MISSING]


def test_free_text_only_when_asked(synthetic_dir) -> None:  # type: ignore[no-untyped-def]
    leads = pd.read_csv(synthetic_dir / "leads_only.csv", dtype=str)
    data = LeadData(leads)
    plain = LeadFeatures().fit(data)
    assert {c.name: c.kind for c in plain.columns_}["notes"] == "text"
    assert not [s for s in plain.specs_ if s.source[0] == "word"]
    assert {c.name: c.kind for c in plain.columns_}["email"] in ("id", "text")
    asked = LeadFeatures(text_columns=("notes",)).fit(data)
    words = [s.source[2] for s in asked.specs_ if s.source[0] == "word"]
    assert "note" in words and "free" in words


def test_event_counts_recency_and_active_days() -> None:
    events = _events([
        ("L0", "page_view", 1.0, "/pricing", "e1"),
        ("L0", "page_view", 10.0, "/blog", "e2"),
        ("L0", "page_view", 10.2, "/blog", "e2"),  # same event_id: counts once
        ("L0", "page_view", 60.0, "/pricing", "e3"),
        ("L0", "email_open", 0.5, None, "e4"),
        ("L0", "page_view", -1.0, "/pricing", "e5"),  # after as-of: ignored
        ("L1", "email_open", 100.0, None, "e6"),
    ])
    data = _data(events)
    features = LeadFeatures().fit(data)
    matrix = features.transform(data)
    value = dict(zip(features.feature_names_out_, matrix[0], strict=True))
    assert value["page_view in 7d"] == 1
    assert value["page_view in 30d"] == 2
    assert value["page_view in 90d"] == 3
    assert value["days since page_view"] == 1.0
    assert value["days since any event"] == 0.5
    assert value["active days in 30d"] == 2  # 0.5 and 1 day before midnight fall on one UTC day
    other = dict(zip(features.feature_names_out_, matrix[1], strict=True))
    assert other["page_view in 90d"] == 0 and np.isnan(other["days since page_view"])
    assert other["email_open in 90d"] == 0 and other["days since email_open"] == 100.0


RULES = """
version: 1
name: t
rules:
  - id: pricing
    label: Visited the pricing page
    points: 10
    when: {event: page_view, where: {url: {contains: /pricing}}, within_days: 30}
    repeat: each
  - id: active
    points: 5
    when: {any: [{event: email_open, within_days: 7}, {no_event: form_submit, within_days: 90}]}
"""


def test_rule_counts_match_the_engine() -> None:
    events = _events([
        ("L0", "page_view", 1.0, "/pricing", "e1"),
        ("L0", "page_view", 2.0, "/PRICING/plans", "e2"),
        ("L0", "page_view", 40.0, "/pricing", "e3"),
        ("L0", "page_view", 3.0, "/blog", "e4"),
        ("L1", "email_open", 3.0, None, "e5"),
    ])
    data = _data(events)
    counts = rule_event_counts(parse_model(RULES))
    assert [c.key for c in counts] == ["pricing", "active.1", "active.2"]
    features = LeadFeatures(rules=RULES).fit(data)
    matrix = features.transform(data)
    column = list(features.feature_names_out_).index("rule pricing")
    model = parse_model(RULES)
    engine_events = [
        Event.at("L0", "page_view", AS_OF - timedelta(days=d), {"url": u}, e)
        for d, u, e in ((1.0, "/pricing", "e1"), (2.0, "/PRICING/plans", "e2"), (40.0, "/pricing", "e3"), (3.0, "/blog", "e4"))
    ]
    result = score_lead(model, Lead("L0", {}), engine_events, AS_OF)
    counted = next(c for c in result.contributions if c.rule_id == "pricing")
    assert matrix[0, column] == len(counted.events) == 2
    assert matrix[1, list(features.feature_names_out_).index("rule active.1")] == 1


event_rows = st.lists(
    st.tuples(st.sampled_from(["L0", "L1", "L2"]), st.sampled_from(TYPES), st.floats(0, 200),
              st.sampled_from(["/pricing", "/blog", None])),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=event_rows, after=event_rows)
def test_events_after_as_of_never_change_features(before, after) -> None:  # type: ignore[no-untyped-def]
    """Point-in-time correctness: late events (new ids or repeated ids) change nothing."""
    base = _events([(lead, kind, age, url, f"b{i}") for i, (lead, kind, age, url) in enumerate(before)])
    late_rows = [(lead, kind, -age - 0.001, url, f"late{i}") for i, (lead, kind, age, url) in enumerate(after)]
    late_rows += [(r[0], r[1], -1.0, r[3], f"b{i}") for i, r in enumerate(before[:3])]  # a late copy of an id
    late = _events(late_rows)
    mixed = pd.concat([late, base], ignore_index=True)  # late rows first in the file
    plain, more = _data(base, 3), _data(mixed, 3)
    features = LeadFeatures(rules=RULES).fit(plain)
    np.testing.assert_array_equal(features.transform(plain), features.transform(more))
    refit = LeadFeatures(rules=RULES).fit(more)
    assert refit.feature_names_out_.tolist() == features.feature_names_out_.tolist()
    np.testing.assert_array_equal(refit.transform(more), features.transform(plain))
