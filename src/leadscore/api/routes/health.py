"""``GET /health``: the only route without an API key."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from leadscore import __version__
from leadscore.api.deps import CtxDep

router = APIRouter(tags=["health"])
# which worker process answered (serve --workers N): random per process, so that it tells
# nothing about the machine (not the pid)
WORKER = secrets.token_hex(4)


@router.get("/health", summary="Is the service up and the database reachable?")
def health(ctx: CtxDep) -> dict[str, Any]:
    with ctx.store.read() as session:
        session.execute(text("select 1"))
    return {"status": "ok", "version": __version__, "database": ctx.store.dialect, "worker": WORKER,
            "jobs": ctx.jobs is not None and ctx.jobs.leader}
