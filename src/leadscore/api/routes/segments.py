"""``/v1/segments``: the active model's segments, their members and membership history."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from leadscore.actions.segments import MEMBER_COLUMNS, list_segments, members, segment_of
from leadscore.api.deps import CtxDep, ReleasingRoute, RequireRead, SessionDep
from leadscore.api.schemas import NOT_FOUND
from leadscore.ingest.files import CsvWriter

router = APIRouter(route_class=ReleasingRoute, prefix="/v1/segments", tags=["segments"], responses=NOT_FOUND)
SegmentName = Annotated[str, Path(description="The segment's name", max_length=255)]


@router.get("", dependencies=[RequireRead], summary="The segments of the active model, with sizes")
def get_segments(session: SessionDep, ctx: CtxDep) -> Any:
    return {"segments": list_segments(session, ctx.model(session).model)}


@router.get(
    "/{name}/members", dependencies=[RequireRead],
    summary="A segment's members (JSON, or CSV with format=csv)",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_members(
    name: SegmentName, session: SessionDep, ctx: CtxDep,
    include_left: Annotated[bool, Query(description="Also leads that left (the history)")] = False,
    limit: Annotated[int, Query(ge=1, le=100_000, description="Page size")] = 1000,
    after: Annotated[int, Query(ge=0, le=2**62, description="next_after of the previous page")] = 0,
    format: Annotated[str, Query(pattern="^(json|csv)$", description="json or csv")] = "json",
) -> Any:
    segment_of(ctx.model(session).model, name)
    rows = members(session, name, include_left=include_left, limit=limit, after=after)
    if format == "csv":
        return PlainTextResponse(_csv(rows), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return {"segment": name, "members": rows,
            "next_after": rows[-1]["id"] if len(rows) == limit else None}


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    """The members as CSV; a text cell a spreadsheet would run as a formula is neutralised."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(MEMBER_COLUMNS)
    for row in rows:
        writer.writerow("" if row[c] is None else row[c] for c in MEMBER_COLUMNS)
    return buffer.getvalue()
