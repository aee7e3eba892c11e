"""``/v1/audit``: the audit log and the use of each API key (admin scope; docs/security.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from leadscore.api.deps import CtxDep, RequireAdmin, SessionDep
from leadscore.api.schemas import AuditPublic
from leadscore.service import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[RequireAdmin])


@router.get("", summary="The audit log (newest first) and each key's use", response_model=AuditPublic)
def get_audit(
    ctx: CtxDep,
    session: SessionDep,
    action: Annotated[str | None, Query(description=f"Only this action: {', '.join(audit.ACTIONS)}",
                                        max_length=32)] = None,
    lead_id: Annotated[str | None, Query(description="Only the entries about this lead (found by its hash)",
                                         max_length=255)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="next_before of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT, description="Page size")] = 100,
) -> Any:
    """Model changes, erasures, exports, key creation and revocation, event purges. Key use
    is counted per key (first and last use, requests), not logged per request."""
    ctx.usage.flush(ctx.store.write)  # this request's own use included
    subject = audit.lead_subject(session, lead_id) if lead_id is not None else None
    entries, next_before = audit.entries(session, action=action, subject=subject, before=before, limit=limit)
    return {"entries": entries, "next_before": next_before, "key_usage": audit.key_usage(session)}
