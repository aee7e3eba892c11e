"""What every dashboard view shares: templates, the signed-in viewer, CSRF, rendering.

Views are thin: they read the request, call the service layer and analytics, and render
a template (a full page, or its ``_partial.html`` for an htmx request).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from leadscore.api.deps import AppContext, nul_in_url
from leadscore.service.keys import ALLOWED
from leadscore.store.tables import ApiKeyRow
from leadscore.web.security import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    MAX_AGE_S,
    Signer,
    WebSession,
    key_print,
    new_session,
    signing_secret,
)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` breakout)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}".replace(",", "\u202f")


def _stage_class(stage: str | None) -> str:
    return "stage-" + "".join(ch for ch in str(stage or "none").lower() if ch.isalnum())


environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["json_script"] = _json_script
environment.filters["pct"] = _pct
environment.filters["num"] = _num
environment.filters["stage_class"] = _stage_class
environment.filters["urlq"] = lambda value: quote(str(value), safe="")
environment.globals["urlencode"] = urlencode


@dataclass
class Viewer:
    """The person looking at the page: their session, key (None before sign-in), CSRF token."""

    request: Request
    ctx: AppContext
    session: WebSession
    key: ApiKeyRow | None
    csrf: str
    fresh: bool  # the cookie must be (re)sent

    def can(self, scope: str) -> bool:
        return self.key is not None and scope in ALLOWED.get(self.key.scope, set())


def signer(request: Request) -> Signer:
    """The app's signer; its secret comes from the environment or the store (read once)."""
    state = request.app.state
    if getattr(state, "web_signer", None) is None:
        ctx: AppContext = state.ctx
        with ctx.store.write() as session:
            state.web_signer = Signer(signing_secret(session, ctx.now_us()))
    found: Signer = state.web_signer
    return found


def _key_of(ctx: AppContext, session: WebSession) -> ApiKeyRow | None:
    if session.key_id is None:
        return None
    with ctx.store.read() as db:
        row = db.get(ApiKeyRow, session.key_id)
        if row is None or row.revoked_us is not None or key_print(row.key_hash) != session.key_print:
            return None
        db.expunge(row)
        return row


def viewer_of(request: Request) -> Viewer:
    ctx: AppContext = request.app.state.ctx
    sign = signer(request)
    session = sign.load(request.cookies.get(COOKIE))
    fresh = session is None
    key = _key_of(ctx, session) if session is not None else None
    if session is None or (session.signed_in and key is None):
        session, fresh = new_session(), True
    if key is not None:  # harden (#8): the audit log names who acted
        from leadscore.service.audit import acting_as, key_actor

        acting_as(key_actor(key.id, key.name, via="dashboard, key"))
    return Viewer(request, ctx, session, key, sign.csrf_token(session), fresh)


def require(request: Request, scope: str = "read") -> Viewer | Response:
    """The viewer, or a redirect to the sign-in page (403 page without the scope)."""
    viewer = viewer_of(request)
    if viewer.key is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # no way back to a URL with a NUL character (the sign-in page would refuse it)
        back = "" if nul_in_url(request) is not None else f"?next={quote(target, safe='')}"
        response: Response = RedirectResponse(f"/signin{back}", status_code=303)
        if request.headers.get("hx-request"):
            response = Response(status_code=204, headers={"HX-Redirect": "/signin"})
        return with_cookie(viewer, response)
    if not viewer.can(scope):
        return render(viewer, "error.html", {
            "title": "Not allowed",
            "message": f"Your API key '{viewer.key.name}' has scope '{viewer.key.scope}'; this needs '{scope}'.",
        }, status=403)
    problem = nul_in_url(request)  # once the viewer is known, as the API's key guard does
    if problem is not None:
        return render(viewer, "error.html", {"title": "Invalid address", "message": problem.message}, status=422)
    return viewer


async def checked_form(viewer: Viewer) -> dict[str, Any] | Response:
    """The submitted form after checking its CSRF token, or a 403 page when it is wrong."""
    form = await viewer.request.form()
    token = viewer.request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not signer(viewer.request).check_csrf(viewer.session, token if isinstance(token, str) else None):
        return render(viewer, "error.html", {
            "title": "Form expired",
            "message": "The form has expired or did not come from this site. Reload the page and try again.",
        }, status=403)
    return dict(form)


def set_session_cookie(request: Request, response: Response, session: WebSession) -> None:
    response.set_cookie(
        COOKIE, signer(request).dump(session), max_age=MAX_AGE_S, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", path="/",
    )


def with_cookie(viewer: Viewer, response: Response) -> Response:
    if viewer.fresh:
        set_session_cookie(viewer.request, response, viewer.session)
    response.headers.update({k: v for k, v in SECURITY_HEADERS.items() if k not in response.headers})
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(viewer: Viewer, template: str, context: dict[str, Any], status: int = 200) -> Response:
    html = environment.get_template(template).render(
        viewer=viewer, csrf=viewer.csrf, csrf_field=CSRF_FIELD, path=viewer.request.url.path, **context,
    )
    return with_cookie(viewer, HTMLResponse(html, status_code=status))
