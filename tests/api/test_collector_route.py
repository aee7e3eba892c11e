"""POST /v1/events pauses the cyclic collector only around the work of the batch, in the
thread that does it, never across the awaits of the request (held there, the pauses of
overlapping requests kept the collector off for good)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leadscore.api.routes import events as route


def test_the_collector_is_paused_only_around_the_batch(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, bool] = {}
    real_write, real_ingest = route.run_write, route.ingest_events

    async def run_write(ctx: Any, work: Any) -> Any:
        seen["awaiting"] = gc.isenabled()  # in the request's coroutine, about to await
        return await real_write(ctx, work)

    def ingest_events(*args: Any, **kwargs: Any) -> Any:
        seen["working"] = gc.isenabled()
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(route, "run_write", run_write)
    monkeypatch.setattr(route, "ingest_events", ingest_events)
    batch = {"events": [{"lead_id": f"gc-{i}", "type": "page_view",
                         "properties": {"url": "/pricing"}} for i in range(20)]}
    response = client.post("/v1/events", json=batch)
    assert response.status_code == 200, response.text
    assert seen == {"awaiting": True, "working": False}
    assert gc.isenabled()
