"""Shared fixtures. PostgreSQL tests skip with a reason when no server is reachable,
except when LEADSCORE_REQUIRE_POSTGRES=1 (set by .ci/run), where they fail instead."""

from __future__ import annotations

import os

import pytest

POSTGRES_URL = os.environ.get(
    "LEADSCORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover
        return f"psycopg not installed: {exc}"
    conninfo = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at {conninfo}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL database; skips (or fails in CI) when unreachable."""
    reason = _postgres_reachable()
    if reason is not None:
        if os.environ.get("LEADSCORE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LEADSCORE_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return POSTGRES_URL
