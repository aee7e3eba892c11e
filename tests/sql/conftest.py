"""Fixtures of the SQL engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[Any]:
    """One psycopg connection to the test PostgreSQL server per module."""
    import psycopg

    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        yield conn
