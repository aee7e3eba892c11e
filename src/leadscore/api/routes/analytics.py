"""``/v1/analytics``: funnel KPIs (score distribution, conversion, LVR, sales cycle...)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from leadscore.analytics import funnel
from leadscore.analytics.summary import SummaryCache, analytics_summary, model_bounds
from leadscore.api.deps import CtxDep, ReleasingRoute, RequireRead, SessionDep
from leadscore.model import ScoringModel
from leadscore.service.errors import NotFound
from leadscore.service.leads import stage_counts
from leadscore.service.models import active_version_id

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/analytics", tags=["analytics"], dependencies=[RequireRead])


def _model(ctx: CtxDep, session: SessionDep) -> ScoringModel | None:
    try:
        return ctx.model(session).model
    except NotFound:
        return None


@router.get("", summary="Every KPI at once (cached for a minute, refreshed in the background)")
def summary(request: Request, ctx: CtxDep, session: SessionDep) -> Any:
    model = _model(ctx, session)
    version = active_version_id(session)

    def compute() -> dict[str, Any]:
        with ctx.store.read() as fresh:
            return analytics_summary(fresh, ctx.now_us(), model)

    cache: SummaryCache = getattr(request.app.state, "analytics_cache", None) or SummaryCache()
    request.app.state.analytics_cache = cache
    return cache.get(version, compute)


@router.get("/scores", summary="Score distribution in equal bands")
def scores(ctx: CtxDep, session: SessionDep,
           bands: Annotated[int, Query(ge=1, le=100, description="Number of bands")] = 10) -> Any:
    low, high, _ = model_bounds(_model(ctx, session))
    return {"bands": funnel.score_distribution(session, low, high, bands)}


@router.get("/stages", summary="Leads per stage now and at the end of each month")
def stages(ctx: CtxDep, session: SessionDep,
           months: Annotated[int, Query(ge=1, le=60, description="Months of history")] = 12) -> Any:
    return {"now": stage_counts(session), **funnel.stage_counts_history(session, months, ctx.now_us())}


@router.get("/conversion", summary="Conversion by score band and by stage, funnel rates")
def conversion(ctx: CtxDep, session: SessionDep,
               bands: Annotated[int, Query(ge=1, le=20, description="Number of score bands")] = 5) -> Any:
    low, high, _ = model_bounds(_model(ctx, session))
    now = ctx.now_us()
    facts = funnel.lead_facts(session, now, low, high, bands, 30)  # one set of aggregates for all four
    return {
        "funnel": facts.funnel(),
        "by_band": facts.by_band(bands),
        "by_stage": facts.by_stage(),
        "last_30_days": funnel.conversion_last_days(session, now, 30, facts=facts),
    }


@router.get("/velocity", summary="Lead Velocity Rate: qualified leads this month vs last")
def velocity(ctx: CtxDep, session: SessionDep) -> Any:
    _, _, names = model_bounds(_model(ctx, session))
    return funnel.lead_velocity(session, ctx.now_us(), funnel.qualified_stages(names))


@router.get("/sales-cycle", summary="Average and median days from lead to customer")
def sales_cycle(session: SessionDep) -> Any:
    return funnel.sales_cycle(session)


@router.get("/webhooks", summary="Webhook deliveries of the last 7 days by status (null without webhooks)")
def webhooks(ctx: CtxDep, session: SessionDep) -> Any:
    return {"webhooks": funnel.webhook_health(session, ctx.now_us())}
