"""GET /ui: the explorer page (``server/ui/``), static files and no build
step. It holds no data: everything it shows it asks the API for, with the
key the person types in, so the page loads without the key (a browser's
navigation cannot send a bearer token) and every call it makes needs it."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = files("ponder.server") / "ui"
ASSETS = StaticFiles(directory=str(UI_DIR))

router = APIRouter(include_in_schema=False)


@router.get("/ui")
async def explorer() -> FileResponse:
    return FileResponse(str(UI_DIR / "index.html"), media_type="text/html")
