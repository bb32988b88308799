"""GET /openapi.json, /docs and /redoc: FastAPI's own, as routes of ours so
that ``--secure-docs-and-metrics`` can put them behind the API key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)
OPENAPI_PATH = "/openapi.json"


def _schema_url(request: Request) -> str:
    return request.scope.get("root_path", "") + OPENAPI_PATH


@router.get(OPENAPI_PATH)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=_schema_url(request), title="ponder - Swagger UI")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=_schema_url(request), title="ponder - ReDoc")
