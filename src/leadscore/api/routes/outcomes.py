"""``POST /v1/outcomes``: what a lead became (opportunity, customer, lost) and when."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.analytics.outcomes import Recorded, parse_moment, record_outcome
from leadscore.api.bodies import check_keys, read_json
from leadscore.api.deps import CtxDep, RequireIngest, write
from leadscore.api.schemas import NOT_FOUND
from leadscore.service.errors import InvalidRequest

router = APIRouter(prefix="/v1/outcomes", tags=["outcomes"], responses=NOT_FOUND)
OUTCOME_KEYS = ("lead_id", "outcome", "at")


@router.post(
    "", dependencies=[RequireIngest], summary="Record an outcome of a lead",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["lead_id", "outcome"],
        "properties": {"lead_id": {"type": "string"},
                       "outcome": {"type": "string", "enum": ["opportunity", "customer", "lost", "won", "converted"]},
                       "at": {"type": "string", "format": "date-time"}}}}}}},
    responses={200: {"description": "Updated"}, 201: {"description": "Recorded"}},
)
async def post_outcome(request: Request, ctx: CtxDep) -> JSONResponse:
    """``{"lead_id": "L1", "outcome": "customer", "at": "2026-05-01T10:00:00Z"}``; ``won`` and
    ``converted`` mean customer; no ``at`` means now. An unknown lead gives 404."""
    payload = await read_json(request, ctx.settings.max_body_bytes)
    check_keys(payload, OUTCOME_KEYS, "body", ("lead_id", "outcome"))
    if not isinstance(payload["lead_id"], str | int):
        raise InvalidRequest("lead_id must be a string", "lead_id")
    now = ctx.now_us()
    at = parse_moment(payload.get("at"), "at", now)
    if at > now + ctx.tolerance_us:
        raise InvalidRequest("at: the outcome is in the future", "at")

    def work(session: Session) -> Recorded:
        return record_outcome(session, str(payload["lead_id"]), str(payload["outcome"]), at, now)

    recorded = await run_in_threadpool(write, ctx, work)
    body: dict[str, Any] = recorded.public()
    return JSONResponse(body, status_code=201 if recorded.created else 200)
