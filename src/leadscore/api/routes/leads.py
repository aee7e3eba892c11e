"""``/v1/leads``: upsert, list with filters, one lead, its history, export and erasure."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from leadscore.api.bodies import LEAD_KEYS, check_keys, check_values, read_json
from leadscore.api.deps import (
    CtxDep,
    ReleasingRoute,
    RequireAdmin,
    RequireIngest,
    RequireRead,
    SessionDep,
    run_write,
    write,
)
from leadscore.api.schemas import (
    NOT_FOUND,
    LeadCreate,
    LeadExport,
    LeadHistoryPublic,
    LeadPublic,
    LeadsPublic,
)
from leadscore.engine import parse_timestamp, to_micros
from leadscore.ingest.normalise import kind_of
from leadscore.model import ScoringModel
from leadscore.service.errors import InvalidRequest
from leadscore.service.ingest import upsert_lead
from leadscore.service.leads import (
    LeadFilter,
    erase_lead,
    export_lead,
    lead_detail,
    lead_history,
    list_leads,
)
from leadscore.service.scoring import score_public

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/leads", tags=["leads"], responses=NOT_FOUND)
LeadId = Annotated[str, Path(description="The lead's id", max_length=255)]
LIST_PARAMS = ("stage", "min_score", "max_score", "updated_since", "owner", "tag", "order", "limit", "cursor")


@router.post(
    "",
    dependencies=[RequireIngest],
    summary="Create a lead or update its attributes (or many: {\"leads\": [...]})",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [{"$ref": "#/components/schemas/LeadCreate"}, {
            "type": "object", "required": ["leads"],
            "properties": {"leads": {"type": "array", "items": {"$ref": "#/components/schemas/LeadCreate"}}},
        }]}}}}},
    responses={200: {"description": "Updated (or a batch)"}, 201: {"description": "Created"}},
)
async def upsert(request: Request, ctx: CtxDep) -> JSONResponse:
    """Attributes are merged into the lead's (null removes one). A changed attribute
    rescores the lead at once; the response has the new score. ``{"leads": [...]}`` upserts
    up to ``LEADSCORE_MAX_BATCH_EVENTS`` leads in one transaction (all or none): 200, with
    each lead's answer in the order sent."""
    payload = await read_json(request, ctx.settings.max_body_bytes)
    batch = isinstance(payload, dict) and "leads" in payload
    items = _lead_items(payload, ctx.settings.max_batch_events) if batch else [payload]
    wheres = [f"leads[{i}]" for i in range(len(items))] if batch else ["body"]
    for item, where in zip(items, wheres, strict=True):
        check_keys(item, LEAD_KEYS, where, ("lead_id",))
        attributes = item.get("attributes")
        attributes = {} if attributes is None else attributes  # [] or "" are refused, not read as {}
        field = "attributes" if where == "body" else f"{where}.attributes"
        if not isinstance(attributes, dict):
            raise InvalidRequest(f"{field}: must be an object, got {kind_of(attributes)}", field)
        check_values(attributes, field, ctx.limits, "attributes")
    now = ctx.now_us()

    def work(session: Session) -> list[tuple[bool, dict[str, Any]]]:
        model = ctx.model(session)
        return [_upsert_one(session, model, item, "" if where == "body" else where, now, ctx)
                for item, where in zip(items, wheres, strict=True)]

    answers = await run_write(ctx, work)
    if not batch:
        created, body = answers[0]
        return JSONResponse(body, status_code=201 if created else 200)
    bodies = [body for _, body in answers]
    return JSONResponse({
        "leads": bodies,
        "created": sum(1 for created, _ in answers if created),
        "updated": sum(1 for created, body in answers if not created and body["changed_attributes"]),
        "unchanged": sum(1 for created, body in answers if not created and not body["changed_attributes"]),
    })


def _lead_items(payload: dict[str, Any], limit: int) -> list[Any]:
    for key in payload:
        if key != "leads":
            raise InvalidRequest(f"unknown field '{key}' next to 'leads' (a batch is {{\"leads\": [...]}})", key)
    items = payload["leads"]
    if not isinstance(items, list):
        raise InvalidRequest(f"leads must be a list, got {kind_of(items)}", "leads")
    if not items:
        raise InvalidRequest("leads is empty: send at least one lead", "leads")
    if len(items) > limit:
        raise InvalidRequest(f"leads has {len(items)} leads; at most {limit} are allowed in one request", "leads")
    return items


def _upsert_one(session: Session, model: Any, item: dict[str, Any], where: str, now: int,
                ctx: Any) -> tuple[bool, dict[str, Any]]:
    result = upsert_lead(session, model, item["lead_id"], item.get("attributes") or {}, now,  # checked
                         policy=ctx.policy, where=where)
    if result.change is not None:
        score = score_public(result.change)
    else:
        score = lead_detail(session, result.lead_id, recent=0)
        score = {k: score[k] for k in ("score", "stage", "groups", "grades")}
    return result.created, {
        "lead_id": result.lead_id, "created": result.created,
        "changed_attributes": result.changed, **score,
    }


def _known(kind: str, value: str, names: list[str], field: str) -> str:
    """``value`` as one of the active model's ``names`` (case ignored), else a 422 listing
    them: a filter on a stage or group the model does not have would only match nothing."""
    if value in names:
        return value
    for name in names:
        if name.casefold() == value.casefold():
            return name
    if not names:
        raise InvalidRequest(f"{field}: the active model has no {kind}s", field)
    close = difflib.get_close_matches(value, names, n=1)
    hint = f" - did you mean '{close[0]}'?" if close else ""
    raise InvalidRequest(f"{field}: unknown {kind} '{value}'{hint} ({kind}s of the active model: "
                         f"{', '.join(names)})", field)


def _filters(request: Request, model: ScoringModel, stage: str | None, min_score: float | None,
             max_score: float | None, updated_since: str | None, owner: str | None,
             tags: list[str] | None) -> LeadFilter:
    if stage is not None:
        stage = _known("stage", stage, [s.name for s in model.stages or ()], "stage")
    filters = LeadFilter(stage=stage, min_score=min_score, max_score=max_score, owner=owner,
                         tags=tags or [])
    if updated_since is not None:
        try:
            filters.updated_since_us = to_micros(parse_timestamp(updated_since))
        except ValueError as exc:
            hint = ""
            if " " in updated_since:  # a "+01:00" sent unencoded arrives as " 01:00"
                hint = " (a '+' in a query string must be sent as %2B)"
            raise InvalidRequest(f"updated_since: {exc}{hint}", "updated_since") from None
    for name, value in request.query_params.items():
        if name in LIST_PARAMS:
            continue
        if name.startswith("grade_") and len(name) > 6:
            group = _known("graded group", name[6:], model.graded_groups(), name)
            filters.grades[group] = _known("grade", value, list(model.groups[group].grades or {}), name)
        elif name.startswith("attr.") and len(name) > 5:
            filters.attributes[name[5:]] = value
        else:
            close = difflib.get_close_matches(name, LIST_PARAMS, n=1)
            hint = f" - did you mean '{close[0]}'?" if close else ""
            raise InvalidRequest(
                f"unknown filter '{name}'{hint} (filters: {', '.join(LIST_PARAMS)}, "
                "grade_<group>, attr.<name>)", name,
            )
    return filters


@router.get(
    "",
    dependencies=[RequireRead],
    summary="List leads: filters, order, cursor pagination",
    response_model=LeadsPublic,
)
def list_(
    request: Request,
    session: SessionDep,
    ctx: CtxDep,
    stage: Annotated[str | None, Query(description="Only leads in this stage")] = None,
    min_score: Annotated[float | None, Query(description="Score at least")] = None,
    max_score: Annotated[float | None, Query(description="Score at most")] = None,
    updated_since: Annotated[
        str | None, Query(description="ISO 8601: leads whose attributes or score changed since")
    ] = None,
    owner: Annotated[str | None, Query(description="Only leads this rep owns (exact)")] = None,
    tag: Annotated[list[str] | None, Query(description="Only leads with this tag (repeat: all of them)")] = None,
    order: Annotated[str, Query(description="score (best first) or updated (newest first)")] = "score",
    limit: Annotated[int, Query(description="Page size, 1..1000")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Any:
    """Also ``grade_<group>=A`` and ``attr.<name>=value`` (text equality, case ignored)."""
    filters = _filters(request, ctx.model(session).model, stage, min_score, max_score, updated_since, owner, tag)
    items, next_cursor = list_leads(session, filters, order=order, limit=limit, cursor=cursor)
    return {"leads": items, "next_cursor": next_cursor}


# The lead routes take the id as a path (``{lead_id:path}``): an id may hold a "/"
# ("acct/42", sent as ``acct%2F42``; the server sees the decoded path). The routes with a
# suffix come first, so ``.../acct%2F42/history`` is the history of "acct/42" (and the
# plain route cannot reach an id that itself ends in "/history" or "/export": that path
# names the route of the shorter id; docs/api.md).
@router.get(
    "/{lead_id:path}/history", dependencies=[RequireRead], summary="A lead's score history",
    response_model=LeadHistoryPublic,
)
def get_history(
    lead_id: LeadId, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Newest first")] = 1000,
) -> Any:
    return lead_history(session, lead_id, limit=limit)


@router.get(
    "/{lead_id:path}/export", dependencies=[RequireAdmin],
    summary="Everything held about one person (JSON)", response_model=LeadExport,
)
def export(lead_id: LeadId, ctx: CtxDep) -> Any:
    """The export is recorded in the audit log (who, when; the lead only as a hash)."""
    now = ctx.now_us()
    return write(ctx, lambda session: export_lead(session, lead_id, now))


@router.get("/{lead_id:path}", dependencies=[RequireRead], summary="One lead", response_model=LeadPublic)
def get_lead(lead_id: LeadId, session: SessionDep, ctx: CtxDep) -> Any:
    """Attributes, score, groups, grades, stage, explanation, recent events and history."""
    return lead_detail(session, lead_id, recent=ctx.settings.recent_events)


@router.delete(
    "/{lead_id:path}", dependencies=[RequireAdmin], status_code=204,
    summary="Erase a lead and every trace of it", response_class=Response,
)
def erase(lead_id: LeadId, ctx: CtxDep) -> Response:
    """Every row about the lead in every table goes; the audit log keeps a hash of its id."""
    now = ctx.now_us()
    write(ctx, lambda session: erase_lead(session, lead_id, now))
    return Response(status_code=204)


__all__ = ["LeadCreate", "router"]
