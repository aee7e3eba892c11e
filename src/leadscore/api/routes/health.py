"""``GET /health``: the only route without an API key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from leadscore import __version__
from leadscore.api.deps import CtxDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service up and the database reachable?")
def health(ctx: CtxDep) -> dict[str, Any]:
    with ctx.store.read() as session:
        session.execute(text("select 1"))
    return {"status": "ok", "version": __version__, "database": ctx.store.dialect}
