"""The analytics page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from leadscore.analytics.summary import SummaryCache, analytics_summary
from leadscore.model import ScoringModel
from leadscore.service.errors import NotFound
from leadscore.service.models import active_version_id
from leadscore.web.base import Viewer, render, require
from leadscore.web.charts import analytics_charts

router = APIRouter(include_in_schema=False)


def _model(viewer: Viewer, session: Session) -> ScoringModel | None:
    try:
        return viewer.ctx.model(session).model
    except NotFound:
        return None


@router.get("/analytics")
def analytics_page(request: Request) -> Response:
    viewer = require(request, "read")
    if isinstance(viewer, Response):
        return viewer
    ctx = viewer.ctx

    def compute() -> dict[str, Any]:
        with ctx.store.read() as session:
            return analytics_summary(session, ctx.now_us(), _model(viewer, session))

    with ctx.store.read() as session:
        version = active_version_id(session)
    cache: SummaryCache = getattr(request.app.state, "analytics_cache", None) or SummaryCache()
    request.app.state.analytics_cache = cache
    summary = cache.get(version, compute) if not request.query_params.get("fresh") else cache.store(version, compute())
    return render(viewer, "analytics.html", {"title": "Analytics", "a": summary, "charts": analytics_charts(summary)})
