"""The dashboard: server-rendered pages (Jinja2 + htmx + Chart.js, vendored) at ``/``.

``router`` holds every page; ``create_app`` includes it next to the API routers.
"""

from __future__ import annotations

from fastapi import APIRouter

from leadscore.web import analytics, auth, leads, model, segments, static
from leadscore.web.security import OPEN_PATHS

router = APIRouter(include_in_schema=False)
for _module in (static, auth, leads, model, segments, analytics):
    router.include_router(_module.router)

__all__ = ["OPEN_PATHS", "router"]
