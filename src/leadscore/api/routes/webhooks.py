"""``/v1/webhooks``: the outbox and every delivery attempt (status, latency, error)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from leadscore.actions.outbox import counts, list_deliveries, list_rows
from leadscore.api.deps import ReleasingRoute, RequireAdmin, SessionDep

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/webhooks", tags=["webhooks"])


@router.get("/deliveries", dependencies=[RequireAdmin], summary="Delivery attempts, newest first")
def get_deliveries(
    session: SessionDep,
    outbox_id: Annotated[int | None, Query(ge=1, le=2**62, description="Only attempts of this outbox row")] = None,
    failed: Annotated[bool | None, Query(description="true: failed attempts only; false: successes")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    return {"deliveries": list_deliveries(session, outbox_id=outbox_id, failed=failed, limit=limit)}


@router.get("/outbox", dependencies=[RequireAdmin],
            summary="Outbox rows (webhooks and e-mails), newest first, with counts by status")
def get_outbox(
    session: SessionDep,
    status: Annotated[str | None, Query(description="pending, delivered, dead or skipped")] = None,
    kind: Annotated[str | None, Query(description="webhook or email")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    return {"counts": counts(session), "items": list_rows(session, status=status, kind=kind, limit=limit)}
