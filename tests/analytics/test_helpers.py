"""The pure helpers of the analytics, on small data."""

from __future__ import annotations

import doctest

import leadscore.analytics.helpers as helpers
import leadscore.web.rules as rules
from leadscore.analytics.helpers import (
    band_index,
    fill_months,
    lead_velocity_rate,
    median,
    month_range,
    rate,
    stage_counts_over_time,
    velocity_series,
)
from leadscore.web.rules import describe, document_diff
from leadscore.web.security import Signer, new_session


def test_doctests() -> None:
    for module in (helpers, rules):
        assert doctest.testmod(module).failed == 0


def test_rates_and_medians() -> None:
    assert rate(1, 3) == 0.3333
    assert rate(1, 0) is None
    assert median([5.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([]) is None


def test_lead_velocity_rate() -> None:
    assert lead_velocity_rate(120, 100) == 20.0
    assert lead_velocity_rate(50, 100) == -50.0
    assert lead_velocity_rate(5, 0) is None
    assert velocity_series({"2026-01": 10, "2026-02": 15}) == [
        {"month": "2026-01", "qualified": 10, "lvr": None},
        {"month": "2026-02", "qualified": 15, "lvr": 50.0},
    ]


def test_months() -> None:
    assert month_range("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert fill_months({"2025-12": 2, "2026-02": 1}) == {"2025-12": 2, "2026-01": 0, "2026-02": 1}


def test_stage_counts_over_time_counts_moves_before_the_window() -> None:
    moves = [("2025-12", None, "New", 5), ("2026-01", "New", "Hot", 2), ("2026-02", "Hot", "New", 1)]
    assert stage_counts_over_time(moves, ["2026-01", "2026-02"]) == {"Hot": [2, 1], "New": [3, 4]}


def test_bands() -> None:
    assert [band_index(s, 0, 100, 10) for s in (0, 9.99, 10, 100, -5, 150)] == [0, 0, 1, 9, 0, 9]


def test_describe_nested_conditions() -> None:
    assert describe({"all": [{"attribute": "country", "equals": "VN"}, {"not": {"attribute": "email", "exists": True}}]}) \
        == "(country is “VN” and not email exists)"


def test_diff() -> None:
    assert document_diff("a\nb\n", "a\nc\n", "v1", "v2") == [
        ("file", "--- v1"), ("file", "+++ v2"), ("hunk", "@@ -1,2 +1,2 @@"), ("same", " a"), ("del", "-b"), ("add", "+c")]


def test_session_cookie_signing() -> None:
    signer = Signer(b"k" * 32)
    session = new_session(7, "ab" * 32)
    cookie = signer.dump(session)
    assert signer.load(cookie) == session
    assert signer.load(cookie + "x") is None
    assert Signer(b"j" * 32).load(cookie) is None
    assert signer.load(cookie, now_s=session.issued_s + 13 * 3600) is None  # expired
    token = signer.csrf_token(session)
    assert signer.check_csrf(session, token)
    assert not signer.check_csrf(new_session(), token)
    assert not signer.check_csrf(session, None)
