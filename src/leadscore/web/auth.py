"""Signing in with an API key (it becomes a session cookie) and signing out."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from leadscore.service.errors import Unauthenticated
from leadscore.service.keys import authenticate
from leadscore.web.base import (
    Viewer,
    checked_form,
    render,
    set_session_cookie,
    viewer_of,
    with_cookie,
)
from leadscore.web.security import new_session

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _form(viewer: Viewer, next_url: str, error: str | None = None, status: int = 200) -> Response:
    return render(viewer, "signin.html", {"title": "Sign in", "next": next_url, "error": error}, status)


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - query name
    viewer = viewer_of(request)
    if viewer.key is not None:
        return with_cookie(viewer, RedirectResponse(_safe_next(next), status_code=303))
    return _form(viewer, _safe_next(next))


@router.post("/signin")
async def signin(request: Request) -> Response:
    viewer = viewer_of(request)
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    next_url = _safe_next(str(form.get("next") or "/"))
    token = str(form.get("key") or "").strip()
    try:
        with viewer.ctx.store.read() as session:
            key = authenticate(session, token)
            key_id, key_hash = key.id, key.key_hash
    except Unauthenticated as exc:
        message = "Enter an API key." if not token else exc.message
        return _form(viewer, next_url, message, 401)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(request, response, new_session(key_id, key_hash))  # a new nonce: no fixation
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    viewer = viewer_of(request)
    form = await checked_form(viewer)
    if isinstance(form, Response):
        return form
    response = RedirectResponse("/signin", status_code=303)
    set_session_cookie(request, response, new_session())
    return response
