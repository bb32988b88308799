"""Every response, pages, their files, JSON and errors alike, carries a strict
Content-Security-Policy (scripts and styles from ponder itself; the docs
pages' own inline blocks by hash), no framing and no sniffing; and the
explorer's script has no way to write text as HTML. The pages themselves
run under the policy in a real browser in tests/engine/test_pages.py."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from ponder.server.routes.ui import UI_DIR

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

KEY = "sk-page"


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (d.split() for d in policy.split(";"))}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/ui", 200), ("GET", "/ui/ui.js", 200), ("GET", "/ui/ui.css", 200),
    ("GET", "/docs", 200), ("GET", "/redoc", 200), ("GET", "/openapi.json", 200),
    ("GET", "/static/docs/swagger-ui-bundle.js", 200), ("GET", "/health", 503),
    ("GET", "/v1/models", 401), ("GET", "/nowhere", 404), ("POST", "/v1/chat/completions", 413),
])
async def test_every_response_carries_the_page_policy(method: str, path: str, status: int) -> None:
    app = asgi_app(ScriptedGenerator.of("4"), api_key=KEY, max_request_bytes=1024)
    async with asgi_client(app) as client:
        response = await client.request(method, path, content=b"x" * 2048 if status == 413 else None)
    assert response.status_code == status, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    directives = _directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"][0] == "'self'" and directives["style-src"][0] == "'self'"
    assert not any("unsafe" in source for sources in directives.values() for source in sources)


async def test_the_docs_pages_allow_their_own_inline_blocks_and_no_other() -> None:
    async with asgi_client(asgi_app(ScriptedGenerator.of("4"))) as client:
        swagger = await client.get("/docs")
        redoc = await client.get("/redoc")
    inline = re.findall(r"<script>(.*?)</script>", swagger.text, re.DOTALL)
    assert len(inline) == 1  # Swagger UI's start
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert _directives(swagger.headers["content-security-policy"])["script-src"] == [
        "'self'", f"'sha256-{digest}'"]
    redoc_policy = _directives(redoc.headers["content-security-policy"])
    assert redoc_policy["script-src"] == ["'self'"] and redoc_policy["worker-src"] == ["blob:"]


def test_the_explorer_never_writes_text_as_html() -> None:
    script = (UI_DIR / "ui.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    page = (UI_DIR / "index.html").read_text()
    assert not re.search(r"<script>|<style>|\son[a-z]+=|style=", page)  # nothing inline
