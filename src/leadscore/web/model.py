"""The model page: active rules, version history with diffs, edit or upload, preview, activate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from leadscore.errors import ModelError, ModelIssue
from leadscore.service import predictive
from leadscore.service.errors import NotFound
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
from leadscore.web.base import Viewer, checked_form, render, require, with_cookie
from leadscore.web.rules import document_diff, rule_rows

router = APIRouter(include_in_schema=False)
MAX_DOCUMENT_BYTES = 1_000_000


def _problem(message: str) -> ModelError:
    return ModelError([ModelIssue("", message)])


def _issues(exc: ModelError) -> list[dict[str, Any]]:
    return [{"path": i.path, "message": i.message, "line": i.line} for i in exc.issues]


async def _submitted(form: dict[str, Any]) -> tuple[str, str]:
    """The document of the form: an uploaded file when one was chosen, else the text area."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise _problem("the file is larger than 1 MB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _problem("the file is not UTF-8 text") from None
        fmt = "json" if upload.filename.lower().endswith(".json") else detect_format(text)
        return text, fmt
    # a browser sends a text area's lines ended by CRLF (HTML's form encoding): the document as
    # written, or the active model saved again would be a new version with every lead rescored
    text = str(form.get("document") or "").replace("\r\n", "\n")
    if not text.strip():
        raise _problem("the model is empty; paste a model document or choose a file")
    return text, detect_format(text)


def _page(viewer: Viewer, request: Request, *, document: str | None = None, errors: list[dict[str, Any]] | None = None,
          status: int = 200) -> Response:
    q = request.query_params
    with viewer.ctx.store.read() as session:
        try:
            active = version_public(get_active_row(session), with_document=True)
        except NotFound:
            active = None
        rows = list_versions(session)
        versions = [version_public(r) for r in rows]
        documents = {r.id: (r.name, r.document) for r in rows}
        job = job_public(latest_job(session))
        predictive_model = predictive.status(session)
    diff: list[tuple[str, str]] = []
    diff_from, diff_to = q.get("from"), q.get("to")
    if not (diff_from and diff_to) and len(rows) >= 2:
        diff_from, diff_to = str(rows[1].id), str(rows[0].id)
    if diff_from and diff_to and diff_from.isdigit() and diff_to.isdigit():
        old, new = documents.get(int(diff_from)), documents.get(int(diff_to))
        if old and new:
            diff = document_diff(old[1], new[1], f"version {diff_from} ({old[0]})", f"version {diff_to} ({new[0]})")
    return render(viewer, "model.html", {
        "title": "Model", "active": active, "rules": rule_rows(active["model"]) if active else [],
        "versions": versions, "diff": diff, "diff_from": diff_from, "diff_to": diff_to, "job": job,
        "document": document if document is not None else (active["document"] if active else ""),
        "errors": errors or [], "activated": q.get("activated"), "unchanged": q.get("unchanged"), "predictive": predictive_model,
    }, status)


@router.get("/model")
def model_page(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    return _page(viewer, request)


@router.get("/model/rescore")
def rescore_progress(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    with viewer.ctx.store.read() as session:
        job = job_public(latest_job(session))
    return render(viewer, "_rescore.html", {"job": job})


@router.post("/model/preview")
async def preview(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    try:
        text, fmt = await _submitted(form)
        candidate = validate_document(text, fmt)
    except ModelError as exc:
        return render(viewer, "_preview.html", {"errors": _issues(exc), "preview": None}, status=200)
    now = viewer.ctx.now_us()

    def work() -> dict[str, Any]:
        with viewer.ctx.store.read() as session:
            return preview_model(session, candidate, now, limit=5000)

    result = await run_in_threadpool(work)
    stages = list(dict.fromkeys([*result["stages"], *result["current_stages"]]))
    return render(viewer, "_preview.html", {
        "errors": [], "preview": result, "stages": stages,
        "before": [result["current_stages"].get(s, 0) for s in stages],
        "after": [result["stages"].get(s, 0) for s in stages],
    })


@router.post("/model")
async def activate(request: Request) -> Response:
    viewer = require(request, "admin")
    if isinstance(viewer, Response):
        return viewer
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    document = str(form.get("document") or "")
    try:
        text, fmt = await _submitted(form)
        now = viewer.ctx.now_us()
        with viewer.ctx.store.write() as session:
            same = active_if_same(session, text, fmt)
            row = same if same is not None else activate_document(session, text, fmt, now)
            version = row.id
    except ModelError as exc:
        return _page(viewer, request, document=document, errors=_issues(exc), status=422)
    if same is not None:  # the active model's document: nothing to activate or rescore
        return with_cookie(viewer, RedirectResponse(f"/model?unchanged={version}", status_code=303))
    if viewer.ctx.jobs is not None:
        viewer.ctx.jobs.kick()
    return with_cookie(viewer, RedirectResponse(f"/model?activated={version}", status_code=303))
