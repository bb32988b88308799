"""The request being served, as code that runs on its behalf sees it.

Every task a request starts inherits its context, so the engine wrapper can
send the request's scheduling priority and id with each engine request and
note when the first token came, and every log line about the request
carries its id, without threading them through the strategies (which know
nothing of HTTP). The id is the client's ``X-Request-Id`` when it sent a
usable one, and every response carries it back.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.server.errors import create_error_response

HEADER = "X-Request-Id"
# What a client may choose: enough for UUIDs and trace ids, nothing that
# could forge a log line or a header.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

logger = logging.getLogger(__name__)


@dataclass
class RequestContext:
    id: str
    priority: int = 0
    """The engine scheduler's priority (lower runs first): the request's
    size in samples, so small requests pass heavy ones in the queue."""
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    """When the engine produced the request's first token (monotonic)."""
    decode_seconds_per_token: list[float] = field(default_factory=list)
    """Per finished engine call, the time between its tokens."""

    def saw_first_token(self, at: float) -> None:
        if self.first_token is None or at < self.first_token:
            self.first_token = at


_current: ContextVar[RequestContext | None] = ContextVar("ponder_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request), for
    the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.request_id = context.id if context else "-"
        return True


class RequestContextMiddleware:
    """Pure ASGI, outermost: the request's context is set before anything
    else runs, every response (errors included) carries its id, and an
    exception no handler took becomes a 500 in OpenAI's shape here, logged
    once, rather than reaching the server's own traceback logging."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        context = RequestContext(given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex)
        _current.set(context)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = context.id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the last line of defence, logged once
            if started:
                logger.error("request failed after its response started", exc_info=exc)
                return
            await create_error_response(exc)(scope, receive, send_with_id)
