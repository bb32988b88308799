"""The headers that keep ponder's pages (``/ui``, ``/docs``, ``/redoc``) its
own, on every response: a Content-Security-Policy that runs only scripts and
styles served by ponder itself, no framing (``frame-ancestors 'none'``, and
``X-Frame-Options`` for browsers that predate it), and no content sniffing.

The explorer keeps the API key in the page's storage: a script smuggled into
it through an error message would run on ponder's origin and could read it.
The page never writes text as HTML; this policy is the second line, so that
even markup that got in could not run. JSON answers get the same policy,
which costs them nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "Content-Security-Policy"
DIRECTIVES: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "base-uri": ("'none'",),
    "form-action": ("'none'",),
    "frame-ancestors": ("'none'",),
}
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def content_security_policy(html: str = "", **allowances: tuple[str, ...]) -> str:
    """The policy for a page: ponder's own files, plus the exact inline
    ``<script>`` and ``<style>`` blocks of ``html`` by their hashes (FastAPI's
    Swagger UI page starts the UI with one), plus ``allowances`` per
    directive (``worker_src=("blob:",)``)."""
    directives = {name: list(sources) for name, sources in DIRECTIVES.items()}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        directives[f"{tag}-src"].append(f"'sha256-{digest}'")
    for name, sources in allowances.items():
        directives.setdefault(name.replace("_", "-"), []).extend(sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


DEFAULT_POLICY = content_security_policy()


class SecurityHeaders:
    """Pure ASGI, so that every response has the headers, static files and
    error answers included; a response that states its own policy keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(CSP, DEFAULT_POLICY)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
            await send(message)

        await self.app(scope, receive, send_with_headers)
