"""``POST /v1/segment``: Segment / RudderStack identify, track, page, screen and batch payloads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import check_segment_limits, parse_json, read_body, refuse_nul
from leadscore.api.deps import CtxDep, RequireIngest, write
from leadscore.api.schemas import SegmentPublic
from leadscore.service.segment import ingest_segment

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/segment",
    dependencies=[RequireIngest],
    summary="Receive Segment or RudderStack webhook payloads",
    response_model=SegmentPublic,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "description": "A Segment message or {\"batch\": [...]}"}
    }}}},
)
async def post_segment(request: Request, ctx: CtxDep) -> Any:
    """``userId`` (else ``anonymousId``) is the lead_id; identify traits are attributes; a
    track's event name is the event type; ``messageId`` is the event_id."""
    body = await read_body(request, ctx.settings.max_body_bytes)
    payload = parse_json(body)
    # the fields of a single message are named body.<field>, those of a batch batch[i].<field>
    refuse_nul(body, payload, "" if isinstance(payload, dict) and "batch" in payload else "body")
    check_segment_limits(payload, ctx.limits)
    now = ctx.now_us()

    def work(session: Session) -> dict[str, Any]:
        return ingest_segment(
            session, ctx.model(session), payload, now, policy=ctx.policy,
            tolerance_us=ctx.tolerance_us, max_events=ctx.settings.max_batch_events,
        )

    return await run_in_threadpool(write, ctx, work)
