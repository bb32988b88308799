"""GET /openapi.json, /docs and /redoc: FastAPI's own, as routes of ours so
that ``--secure-docs-and-metrics`` can put them behind the API key, and a
schema that states this server's limits.

The pages load Swagger UI and ReDoc from this server, not from a CDN, since
inference servers often run where no CDN can be reached (FastAPI's default
pages are blank there). The assets come pinned from ``fastapi-offline``, a
package made for exactly this (Swagger UI's bundle and CSS, ReDoc's
standalone build, FastAPI's favicon, each under its own licence); ponder
serves its files and keeps its own routes, so the key and the limits above
still apply. The assets themselves are public code and load without a key."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ponder.server.config import Settings
from ponder.server.security_headers import CSP, content_security_policy
from ponder.strategies import STRATEGIES

router = APIRouter(include_in_schema=False)
OPENAPI_PATH = "/openapi.json"
ASSETS_PATH = "/static/docs"
ASSETS = StaticFiles(directory=str(files("fastapi_offline") / "static"))
REDOC_STYLES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
)
"""The two ``<style>`` elements ReDoc's build (fastapi-offline 1.7.7's) adds
itself, by their hashes: the empty ones it fills through the CSSOM, which
no policy governs, and its scrollbar's fixed stylesheet. Any other inline
style stays refused. A new build with other styles fails the page test
(tests/engine/test_pages.py), which reads the browser's console."""


def _schema_url(request: Request) -> str:
    return request.scope.get("root_path", "") + OPENAPI_PATH


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"


@router.get(OPENAPI_PATH)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _with_policy(get_swagger_ui_html(
        openapi_url=_schema_url(request), title="ponder - Swagger UI",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
    ))


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _with_policy(get_redoc_html(
        openapi_url=_schema_url(request), title="ponder - ReDoc",
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"), with_google_fonts=False,
    ), style_src=REDOC_STYLES, worker_src=("blob:",))


def _with_policy(page: HTMLResponse, **allowances: tuple[str, ...]) -> HTMLResponse:
    """FastAPI's page with a policy that allows its own inline blocks, by
    their hashes, and nothing else inline."""
    page.headers[CSP] = content_security_policy(bytes(page.body).decode(), **allowances)
    return page


def state_limits(app: FastAPI) -> None:
    """Make ``app.openapi()`` FastAPI's schema with this server's limits
    written in, which the request models cannot know: how many choices
    (``n``) and samples (a strategy's ``n``) a request may ask for, and how
    many tokens its model's context leaves. Clients see what this deployment
    allows; fuzzers generate within it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        service = app.state.service  # the context is known once the engine runs
        schema = generate()
        _write_limits(schema, app.state.settings, service and service.max_model_len)
        if service is None:
            app.openapi_schema = None  # described again once the engine is up
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _write_limits(schema: dict[str, Any], settings: Settings, context: int | None) -> None:
    for component in schema.get("components", {}).get("schemas", {}).values():
        properties = component.get("properties", {})
        if "n" not in properties:
            continue
        if properties.get("name", {}).get("const") in STRATEGIES:
            properties["n"]["maximum"] = settings.max_samples
        elif "strategy" in properties:  # a chat or completion request
            properties["n"]["maximum"] = settings.max_choices
            for cap in ("max_tokens", "max_completion_tokens"):
                if context is not None and cap in properties:
                    _limit(properties[cap], context - 1)


def _limit(field: dict[str, Any], maximum: int) -> None:
    """An optional integer's maximum, on its integer alternative."""
    for option in field.get("anyOf", [field]):
        if option.get("type") == "integer":
            option["maximum"] = maximum
