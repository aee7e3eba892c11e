"""The analytics tests use the dashboard's store fixture (a few leads, events and outcomes)."""

from __future__ import annotations

from web.conftest import app_client

__all__ = ["app_client"]
