"""``/static/...``: the stylesheet, the dashboard script and the vendored htmx and Chart.js."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from leadscore.web.base import STATIC

router = APIRouter(include_in_schema=False)
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


def _files() -> dict[str, str]:
    return {
        str(path.relative_to(STATIC)): TYPES[path.suffix]
        for path in STATIC.rglob("*") if path.is_file() and path.suffix in TYPES
    }


FILES = _files()


@router.get("/static/{name:path}")
def static_file(name: str) -> Response:
    """Only the files shipped in the package (no path ever leaves the static folder)."""
    media = FILES.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=media, headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
