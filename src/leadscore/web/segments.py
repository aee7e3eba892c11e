"""The segments pages: every segment of the active model with its size and how it changed,
one segment's definition and members, and creating, editing or deleting a segment (each
makes a new model version, as the model page does)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from leadscore.actions.segments import members
from leadscore.analytics.funnel import segment_activity
from leadscore.errors import ModelError
from leadscore.model import ScoringModel, parse_model
from leadscore.model.automation import Segment
from leadscore.service.errors import NotFound
from leadscore.service.models import activate_document, active_version_id, get_active_row
from leadscore.service.rescore import latest_job
from leadscore.web.base import Viewer, checked_form, render, require, with_cookie
from leadscore.web.segment_form import (
    SegmentForm,
    checked_document,
    describe_segment,
    edit_document,
    form_values,
    read_form,
    segment_names,
)

router = APIRouter(include_in_schema=False)
MEMBERS_PER_PAGE = 50
NEW = "+new"  # not a segment name (names are [a-z0-9_-]+)


def _active(session: Session) -> tuple[Any, ScoringModel] | None:
    """The active version's row and its parsed model (None without an active model)."""
    try:
        row = get_active_row(session)
    except NotFound:
        return None
    return row, parse_model(row.document, fmt=row.format, stored=True)


def _segment(model: ScoringModel, name: str) -> Segment | None:
    return next((s for s in model.segments or [] if s.name == name), None)


def _pending(session: Session) -> str | None:
    """Why the model cannot be edited now: a newer version is still being applied."""
    job = latest_job(session)
    if job is not None and job.status == "running" and job.model_version_id != active_version_id(session):
        done = min(int(job.done), int(job.total))
        return (f"Model version {job.model_version_id} is being applied ({done:,} of {int(job.total):,} leads "
                "rescored). Edit segments when it is active, so that no change is lost.")
    return None


def _missing(viewer: Viewer, name: str) -> Response:
    return render(viewer, "error.html", {
        "title": "No such segment",
        "message": f"The active model has no segment '{name}'.",
    }, status=404)


@router.get("/segments")
def segments_page(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    now = viewer.ctx.now_us()
    with viewer.ctx.store.read() as session:
        active = _active(session)
        activity = segment_activity(session, now)
    model = active[1] if active else None
    rows = []
    for segment in (model.segments or []) if model else []:
        counts = (activity or {}).get(segment.name, {})
        rows.append({"name": segment.name, "description": segment.description,
                     "definition": describe_segment(segment), **_changes(counts)})
    defined = {r["name"] for r in rows}
    former = sorted((name, c["now"]) for name, c in (activity or {}).items() if name not in defined and c["now"])
    return render(viewer, "segments.html", {
        "title": "Segments", "segments": rows, "former": former, "model": model,
        "available": activity is not None, "saved": request.query_params.get("saved"),
        "deleted": request.query_params.get("deleted"), "pending": request.query_params.get("pending"),
        "new": NEW,
    })


def _changes(counts: dict[str, int]) -> dict[str, Any]:
    now = counts.get("now", 0)
    out: dict[str, Any] = {"members": now}
    for days in (7, 30):
        entered, left = counts.get(f"entered_{days}", 0), counts.get(f"left_{days}", 0)
        out[f"entered_{days}"], out[f"left_{days}"] = entered, left
        out[f"change_{days}"] = entered - left
        out[f"before_{days}"] = now - entered + left
    return out


@router.get("/segments/{name}")
def segment_page(request: Request, name: str) -> Response:
    if name == NEW:
        return _form_page(request, None)
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    after_text = request.query_params.get("after", "0")
    after = int(after_text) if after_text.isdigit() else 0
    start = int(request.query_params.get("start", "1")) if request.query_params.get("start", "1").isdigit() else 1
    now = viewer.ctx.now_us()
    with viewer.ctx.store.read() as session:
        active = _active(session)
        segment = _segment(active[1], name) if active else None
        if segment is None:
            return _missing(viewer, name)
        activity = segment_activity(session, now) or {}
        page = members(session, name, limit=MEMBERS_PER_PAGE + 1, after=after)
    more = len(page) > MEMBERS_PER_PAGE
    page = page[:MEMBERS_PER_PAGE]
    return render(viewer, "segment.html", {
        "title": f"Segment {name}", "segment": segment, "definition": describe_segment(segment),
        "counts": _changes(activity.get(name, {})), "members": page, "start": max(1, start) if after else 1,
        "next_after": page[-1]["id"] if more and page else None, "first_page": after == 0,
        "filter_yaml": form_values(segment.model_dump(mode="json", by_alias=True, exclude_none=True)),
    })


def _form_page(request: Request, name: str | None, form: SegmentForm | None = None, status: int = 200) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    with viewer.ctx.store.read() as session:
        active = _active(session)
        pending = _pending(session)
    if active is None:
        return render(viewer, "error.html", {"title": "No model", "message":
                      "There is no active scoring model yet; activate one on the Model page first."}, status=409)
    row, model = active
    if form is None:
        segment = _segment(model, name) if name else None
        if name and segment is None:
            return _missing(viewer, name)
        form = SegmentForm(form_values(
            segment.model_dump(mode="json", by_alias=True, exclude_none=True) if segment else None))
    if pending and not form.general:
        form.general.append(pending)
    return render(viewer, "segment_form.html", {
        "title": f"Edit segment {name}" if name else "New segment", "name": name, "form": form,
        "stages": [s.name for s in model.stages or []],
        "grade_groups": {g: list((model.groups[g].grades or {}).keys()) for g in model.graded_groups()},
        "rules": [(r.id, r.label or r.id) for r in model.rules], "base_version": row.id, "new": NEW,
    }, status)


@router.get("/segments/{name}/edit")
def edit_page(request: Request, name: str) -> Response:
    return _form_page(request, name)


async def _save(request: Request, old_name: str | None) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    checked = await checked_form(viewer)
    if isinstance(checked, Response):
        return checked
    submitted = await request.form()  # the same form, with its multi-valued fields
    with viewer.ctx.store.read() as session:
        active = _active(session)
        pending = _pending(session)
    if active is None:
        return _form_page(request, old_name)
    row, model = active
    data, form = read_form(submitted, model)
    if pending:
        form.general.append(pending)
    if str(submitted.get("base_version", "")) != str(row.id):
        form.general.append(f"The model changed while you were editing (it is now version {row.id}); "
                            "check the segment below and save again.")
    names = segment_names(model)
    if old_name is not None and old_name not in names:
        return _missing(viewer, old_name)
    if data.get("name") in names and data.get("name") != old_name:
        form.errors.setdefault("name", f"the model already has a segment '{data['name']}'")
    if not form.ok:
        return _form_page(request, old_name, form, status=422)
    text = edit_document(row.document, row.format, old_name, data)
    if checked_document(text, row.format, str(data["name"]), form) is None:
        return _form_page(request, old_name, form, status=422)
    return _activate(viewer, text, row.format, f"saved={quote(str(data['name']), safe='')}")


def _activate(viewer: Viewer, text: str, fmt: str, notice: str) -> Response:
    try:
        with viewer.ctx.store.write() as session:
            version = activate_document(session, text, fmt, viewer.ctx.now_us())
            applied = bool(version.active)
            version_id = version.id
    except ModelError as exc:  # checked above; only a race with another change lands here
        return render(viewer, "error.html", {"title": "Not saved", "message": str(exc)}, status=409)
    if viewer.ctx.jobs is not None:
        viewer.ctx.jobs.kick()
    pending = "" if applied else f"&pending={version_id}"
    return with_cookie(viewer, RedirectResponse(f"/segments?{notice}&version={version_id}{pending}",
                                                status_code=303))


@router.post("/segments")
async def create(request: Request) -> Response:
    return await _save(request, None)


@router.post("/segments/{name}/edit")
async def update(request: Request, name: str) -> Response:
    return await _save(request, name)


@router.get("/segments/{name}/delete")
def delete_page(request: Request, name: str) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    with viewer.ctx.store.read() as session:
        active = _active(session)
        counts = (segment_activity(session, viewer.ctx.now_us()) or {}).get(name, {})
        pending = _pending(session)
    if active is None or _segment(active[1], name) is None:
        return _missing(viewer, name)
    return render(viewer, "segment_delete.html", {
        "title": f"Delete segment {name}", "name": name, "members": counts.get("now", 0), "error": pending,
        "base_version": active[0].id,
    })


@router.post("/segments/{name}/delete")
async def delete(request: Request, name: str) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    with viewer.ctx.store.read() as session:
        active = _active(session)
        pending = _pending(session)
        counts = (segment_activity(session, viewer.ctx.now_us()) or {}).get(name, {})
    if active is None or _segment(active[1], name) is None:
        return _missing(viewer, name)
    row, _ = active
    error = pending
    if str(form.get("base_version", "")) != str(row.id):
        error = f"The model changed since this page was opened (it is now version {row.id}); confirm again."
    if error:
        return render(viewer, "segment_delete.html", {
            "title": f"Delete segment {name}", "name": name, "members": counts.get("now", 0), "error": error,
            "base_version": row.id}, status=409)
    text = edit_document(row.document, row.format, name, None)
    return _activate(viewer, text, row.format, f"deleted={quote(name, safe='')}")
