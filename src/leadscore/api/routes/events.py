"""``POST /v1/events``: one event or a batch; the response has each touched lead's new score."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from leadscore.api.bodies import check_event_limits, event_records, read_json
from leadscore.api.deps import CtxDep, RequireIngest, run_write
from leadscore.api.schemas import IngestPublic
from leadscore.service.ingest import ingest_events
from leadscore.service.scoring import collector_paused

router = APIRouter(prefix="/v1", tags=["events"])

EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"anyOf": [
            {"$ref": "#/components/schemas/EventIn"},
            {"$ref": "#/components/schemas/EventBatch"},
        ]}}},
    }
}


@router.post(
    "/events",
    dependencies=[RequireIngest],
    summary="Send one event, or a batch of up to 10,000",
    response_model=IngestPublic,
    openapi_extra=EVENTS_BODY,
)
async def post_events(request: Request, ctx: CtxDep) -> Any:
    """Stores the events (an ``event_id`` already stored is ignored and reported as a
    duplicate), creates unknown leads, and returns each touched lead's new score and
    stage. A batch with one invalid event stores nothing."""
    payload = await read_json(request, ctx.settings.max_body_bytes)
    return await _ingest(ctx, payload)


async def _ingest(ctx: Any, payload: Any) -> Any:
    records, where = event_records(payload)
    check_event_limits(records, where, ctx.limits)
    now = ctx.now_us()

    def work(session: Session) -> bytes:
        # perf (issue #3): no cyclic GC while the batch is parsed, stored and scored; paused
        # here, in the thread that does the work, not across the awaits of the request
        # (held there, the pauses of overlapping requests kept the collector off for good)
        with collector_paused():
            result = ingest_events(
                session, ctx.model(session), records, now, policy=ctx.policy,
                tolerance_us=ctx.tolerance_us, max_events=ctx.settings.max_batch_events,
                # read_json refused any text with a NUL: the fast path need not search them
                where="events" if where == "events" else "body", nul_free=True,
            )
            return result.public_json().encode("utf-8")

    # the body is returned as is: the result is already of the IngestPublic shape, and
    # validating it again costs more than the database work of a single event; its text is
    # that of JSONResponse(result.public()), written directly
    return Response(await run_write(ctx, work), media_type="application/json")
