"""``/v1/keys``: create, list and revoke API keys (admin scope).

A key revoked here stops working at once in this process (its cache entry is dropped);
other processes serving the same database stop accepting it within the key cache's
lifetime (5 s, :data:`leadscore.service.keys.KEY_CACHE_SECONDS`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadscore.api.bodies import check_keys, read_json
from leadscore.api.deps import CtxDep, ReleasingRoute, RequireAdmin, SessionDep, write
from leadscore.api.schemas import NOT_FOUND, KeyCreated, KeyPublic, KeysPublic
from leadscore.scopes import SCOPES
from leadscore.service.errors import InvalidRequest
from leadscore.service.keys import create_key, key_public, list_keys, revoke_key_id

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/keys", tags=["keys"], dependencies=[RequireAdmin], responses=NOT_FOUND)
KeyId = Annotated[int, Path(description="The key's id (from GET /v1/keys)", ge=1, le=2**62)]
KEY_FIELDS = ("name", "scope")
MAX_NAME = 200


@router.get("", summary="Every API key (never the key itself: its first characters)",
            response_model=KeysPublic)
def get_keys(session: SessionDep) -> Any:
    return {"keys": [key_public(row) for row in list_keys(session)]}


@router.post(
    "", status_code=201, response_model=KeyCreated,
    summary="Create a key; the response is the only place the key is ever shown",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "scope"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
                                "pattern": r"\S"},
                       "scope": {"type": "string", "enum": list(SCOPES)}}}}}}},
)
async def post_key(request: Request, ctx: CtxDep) -> JSONResponse:
    """``{"name": "crm-sync", "scope": "ingest"}``; only the key's SHA-256 is stored."""
    payload = await read_json(request, ctx.settings.max_body_bytes)
    check_keys(payload, KEY_FIELDS, "body", KEY_FIELDS)
    name, scope = payload["name"], payload["scope"]
    if not isinstance(name, str):
        raise InvalidRequest("name must be a text", "name")
    if len(name.strip()) > MAX_NAME:
        raise InvalidRequest(f"name is {len(name.strip())} characters long; at most {MAX_NAME}", "name")
    if not isinstance(scope, str):
        raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}", "scope")
    now = ctx.now_us()

    def work(session: Session) -> dict[str, Any]:
        row, token = create_key(session, name, scope, now)
        return {**key_public(row), "key": token}

    return JSONResponse(await run_in_threadpool(write, ctx, work), status_code=201)


@router.delete("/{key_id}", summary="Revoke a key: it gets 401 from now on", response_model=KeyPublic)
def delete_key(key_id: KeyId, ctx: CtxDep) -> Any:
    """Revoking a revoked key changes nothing. Effective at once in this process; in
    other processes on the same database within 5 s (their key cache)."""
    body = write(ctx, lambda session: key_public(revoke_key_id(session, key_id, ctx.now_us())))
    ctx.keys.forget_key(key_id)
    return body
