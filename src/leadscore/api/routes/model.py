"""``/v1/model``: the active scoring model, its versions, changes and their previews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import MalformedBody, read_body
from leadscore.api.deps import CtxDep, ReleasingRoute, RequireAdmin, RequireRead, SessionDep, write
from leadscore.api.schemas import NOT_FOUND, ModelChangePublic, ModelVersionPublic, RescorePublic
from leadscore.model import ScoringModel
from leadscore.service.models import (
    activate_document,
    active_if_same,
    detect_format,
    get_active_row,
    list_versions,
    validate_document,
    version_public,
)
from leadscore.service.preview import preview_model
from leadscore.service.rescore import job_public, latest_job

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/model", tags=["model"], responses=NOT_FOUND)
MODEL_BODY = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}}}


async def _document(request: Request, ctx: CtxDep) -> tuple[str, str]:
    body = await read_body(request, ctx.settings.max_body_bytes)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedBody("the model is not UTF-8 text", "body") from None
    if not text.strip():
        raise MalformedBody("the body is empty; send a model document (YAML or JSON)", "body")
    return text, detect_format(text, request.headers.get("content-type"))


@router.get("", dependencies=[RequireRead], summary="The active model",
            response_model=ModelVersionPublic)
def get_model(session: SessionDep) -> Any:
    return version_public(get_active_row(session), with_document=True)


@router.get("/versions", dependencies=[RequireRead], summary="Every stored model version",
            response_model=list[ModelVersionPublic])
def versions(session: SessionDep) -> Any:
    return [version_public(row) for row in list_versions(session)]


@router.put("", dependencies=[RequireAdmin], status_code=202, openapi_extra=MODEL_BODY,
            responses={200: {"description": "The active model's document again: nothing changed",
                             "model": ModelChangePublic}},
            summary="Validate, store and activate a model; rescore every lead in the background",
            response_model=ModelChangePublic)
async def put_model(request: Request, ctx: CtxDep) -> Any:
    """The body is the model document (YAML or JSON). An invalid model changes nothing
    (422 with every problem and its place). Progress: GET /v1/model/rescore. The active
    model's very document again (byte for byte), with no model change under way, changes
    nothing either: 200 with ``"unchanged": true`` (a deployment can PUT its model every
    time without a new version and a rescoring of every lead)."""
    text, fmt = await _document(request, ctx)
    now = ctx.now_us()

    def work(session: Session) -> tuple[dict[str, Any], bool]:
        same = active_if_same(session, text, fmt)
        if same is not None:
            return {"version": version_public(same), "rescore": job_public(latest_job(session)),
                    "unchanged": True}, False
        row = activate_document(session, text, fmt, now)
        return {"version": version_public(row), "rescore": job_public(latest_job(session)), "unchanged": False}, True

    body, changed = await run_in_threadpool(write, ctx, work)
    if changed and ctx.jobs is not None:
        ctx.jobs.kick()
    return JSONResponse(body, status_code=202 if changed else 200)


@router.get("/rescore", dependencies=[RequireRead], summary="Progress of the rescoring after a model change",
            response_model=RescorePublic)
def rescore_progress(session: SessionDep) -> Any:
    return job_public(latest_job(session))


@router.post("/preview", dependencies=[RequireRead], openapi_extra=MODEL_BODY,
             summary="What a candidate model would give, before activating it")
async def preview(request: Request, ctx: CtxDep) -> Any:
    """Stage counts and score distribution under the candidate, next to the current ones
    (over the 10,000 most recently updated leads)."""
    text, fmt = await _document(request, ctx)
    candidate: ScoringModel = validate_document(text, fmt)
    now = ctx.now_us()

    def work() -> dict[str, Any]:
        with ctx.store.read() as session:
            return preview_model(session, candidate, now)

    return await run_in_threadpool(work)
