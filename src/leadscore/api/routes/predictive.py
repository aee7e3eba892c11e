"""``/v1/predictive``: activate, inspect and deactivate the service's predictive model.

``PUT`` takes the model directory written by ``leadscore train --out DIR`` as a zip
(``cd DIR && zip -r ../model.zip .``; the CLI ``leadscore predictive activate DIR`` does it
for you) and the final score policy as query parameters. Every lead is then scored
again in the background (chunks, each its own transaction) so that it carries the
model's prediction and the policy's score; ``GET`` shows ``leads_predicted``.
See docs/predictive.md, "In the service".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import MalformedBody, read_body
from leadscore.api.deps import CtxDep, ReleasingRoute, RequireAdmin, SessionDep, write
from leadscore.api.schemas import NOT_FOUND
from leadscore.service import predictive
from leadscore.service.errors import Forbidden
from leadscore.store.tables_predictive import POLICIES

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/predictive", tags=["predictive"], responses=NOT_FOUND)
# the zip's bytes; any content type is read (application/zip, application/octet-stream)
ZIP_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


def _rescore(ctx: Any) -> None:
    predictive.rescore_all(ctx.store, ctx.now_us, policy=ctx.policy)


@router.get("", dependencies=[RequireAdmin], summary="The active predictive model and the score policy")
def get_predictive(session: SessionDep) -> Any:
    return predictive.status(session)


@router.put("", dependencies=[RequireAdmin], status_code=202, openapi_extra=ZIP_BODY,
            summary="Store and activate a predictive model; every lead is predicted again in the background")
async def put_predictive(
    request: Request, ctx: CtxDep, background: BackgroundTasks,
    policy: Annotated[str, Query(description=f"Final score: {', '.join(POLICIES)}")] = "rules",
    weight: Annotated[float | None, Query(description="blend: the predictive score's share (0-1)")] = None,
    stages: Annotated[str | None, Query(description="predictive: stage cut-offs, e.g. SQL=40,MQL=15")] = None,
    name: Annotated[str | None, Query(max_length=255, description="A name for the model")] = None,
) -> Any:
    if not ctx.settings.predictive_upload:
        raise Forbidden(
            "uploading a predictive model is turned off on this server (LEADSCORE_PREDICTIVE_UPLOAD=false): "
            "a model is a Python pickle, run when loaded; activate it on the server with "
            "`leadscore predictive activate DIR`", "body")
    body = await read_body(request, predictive.MAX_MODEL_BYTES)
    if not body:
        raise MalformedBody("the body is empty; send the model directory as a zip", "body")
    cuts = predictive.parse_stages(stages) if stages else None
    predictive.check_policy(policy, weight)
    # unzip, load and validate the model before the write transaction (it may take seconds)
    prepared = await run_in_threadpool(predictive.prepare, body)
    now = ctx.now_us()

    def work(session: Session) -> dict[str, Any]:
        return predictive.activate(session, prepared, name=name or "predictive model", now_us=now, policy=policy,
                                   weight=weight, stages=cuts)

    result = await run_in_threadpool(write, ctx, work)
    background.add_task(_rescore, ctx)
    return JSONResponse({**result, "rescoring": True}, status_code=202)


@router.delete("", dependencies=[RequireAdmin], summary="Deactivate the predictive model (rule scores again)")
async def delete_predictive(ctx: CtxDep, background: BackgroundTasks) -> Any:
    def work(session: Session) -> dict[str, Any]:
        before = predictive.status(session)
        predictive.deactivate(session, ctx.now_us())
        return before

    before = await run_in_threadpool(write, ctx, work)
    if before["active"] and before["policy"] != "rules":
        background.add_task(_rescore, ctx)
    return {"active": False, "policy": "rules", "model": None, "deactivated": before["model"],
            "rescoring": bool(before["active"] and before["policy"] != "rules")}
