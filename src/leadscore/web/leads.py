"""The leads list (``/``) and one lead's page, its export and its erasure."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from leadscore.analytics.browse import PER_PAGE, SORTS, Browse, browse_leads, filter_choices
from leadscore.analytics.outcomes import lead_outcomes
from leadscore.service.errors import InvalidRequest, NotFound
from leadscore.service.leads import erase_lead, export_lead, lead_detail, lead_history
from leadscore.web.base import Viewer, checked_form, is_htmx, render, require, with_cookie

router = APIRouter(include_in_schema=False)
SORT_LABELS = {"score": "Score, best first", "-score": "Score, lowest first", "updated": "Recently updated",
               "created": "Newest leads", "lead_id": "Lead id"}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _grade_groups(viewer: Viewer, session: Any) -> dict[str, list[str]]:
    try:
        model = viewer.ctx.model(session).model
    except NotFound:
        return {}
    return {name: list((group.grades or {}).keys()) for name, group in model.groups.items() if group.grades}


def _not_found(viewer: Viewer, lead_id: str) -> Response:
    return render(viewer, "error.html", {"title": "No such lead",
                                         "message": f"There is no lead with id '{lead_id}'."}, status=404)


@router.get("/")
@router.get("/leads")
def leads_page(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    q = request.query_params
    per_page = _int(q.get("per_page"), 50)
    browse = Browse(
        stage=q.get("stage", ""), segment=q.get("segment", ""), grade=q.get("grade", ""),
        owner=q.get("owner", ""), q=q.get("q", "")[:200], sort=q.get("sort", "score") if q.get("sort") in SORTS
        else "score", per_page=per_page if per_page in PER_PAGE else 50,
        after=q.get("after", "")[:2000], before=q.get("before", "")[:2000], last=q.get("last") == "1",
        start=_int(q.get("start"), 1),
    )
    error = None
    with viewer.ctx.store.read() as session:
        try:
            result = browse_leads(session, browse)
        except InvalidRequest as exc:
            # drop what was wrong (a grade, or a stale page cursor) and show the rest
            error, browse.grade, browse.after, browse.before, browse.last = exc.message, "", "", "", False
            result = browse_leads(session, browse)
        choices = filter_choices(session, _grade_groups(viewer, session))
    params = {k: v for k, v in vars(browse).items() if v and k not in ("after", "before", "last", "start")}
    context = {"title": "Leads", "result": result, "filters": browse, "choices": choices, "params": params,
               "sorts": SORT_LABELS, "per_pages": PER_PAGE, "error": error}
    template = "_leads_table.html" if is_htmx(request) and request.headers.get("hx-target") == "leads" else "leads.html"
    return render(viewer, template, context)


@router.get("/leads/{lead_id:path}/export")
def lead_export(request: Request, lead_id: str) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    with viewer.ctx.store.write() as session:  # harden (#8): a write, to audit the export
        try:
            body = export_lead(session, lead_id, viewer.ctx.now_us())
        except NotFound:
            return _not_found(viewer, lead_id)
    # ASCII only: a header is Latin-1 (a Vietnamese or emoji id gave a 500 here)
    filename = "".join(ch if ch.isascii() and ch.isalnum() or ch in "-_" else "_" for ch in lead_id)[:80] or "lead"
    return with_cookie(viewer, Response(
        json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="lead-{filename}.json"'}))


@router.get("/leads/{lead_id:path}/erase")
def erase_page(request: Request, lead_id: str) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    return render(viewer, "erase.html", {"title": f"Erase lead {lead_id}", "lead_id": lead_id, "error": None})


@router.post("/leads/{lead_id:path}/erase")
async def erase(request: Request, lead_id: str) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    if str(form.get("confirm", "")).strip() != lead_id:
        return render(viewer, "erase.html", {
            "title": f"Erase lead {lead_id}", "lead_id": lead_id,
            "error": "Type the lead id exactly to confirm the erasure."}, status=422)
    try:
        with viewer.ctx.store.write() as session:
            erase_lead(session, lead_id, viewer.ctx.now_us())
    except NotFound:
        return _not_found(viewer, lead_id)
    return with_cookie(viewer, RedirectResponse(f"/?erased={quote(lead_id, safe='')}", status_code=303))


# after the routes with a suffix: an id may hold a "/" (api/routes/leads.py)
@router.get("/leads/{lead_id:path}")
def lead_page(request: Request, lead_id: str) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    with viewer.ctx.store.read() as session:
        try:
            lead = lead_detail(session, lead_id, recent=viewer.ctx.settings.recent_events)
        except NotFound:
            return _not_found(viewer, lead_id)
        lead_id = lead["lead_id"]  # as stored (trimmed, NFC)
        past = lead_history(session, lead_id, limit=500)
        outcomes = lead_outcomes(session, lead_id)
    explain = lead.get("explain") or {}
    rules = sorted(explain.get("rules", []), key=lambda r: -abs(r.get("points", 0)))
    chart_rules = {"labels": [r["label"] for r in rules], "points": [r["points"] for r in rules]}
    history_points = sorted(({"at": h["at"], "score": h["new_score"]} for h in past["history"]),
                            key=lambda p: p["at"])
    predictive = lead.get("predictive") or explain.get("predictive")
    return render(viewer, "lead.html", {
        "title": f"Lead {lead_id}", "lead": lead, "rules": rules, "chart_rules": chart_rules,
        "history_points": history_points, "transitions": past["transitions"], "outcomes": outcomes,
        "predictive": predictive,
    })
