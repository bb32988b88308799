"""The request-body limit. It is ASGI middleware rather than a dependency
because it must act before FastAPI reads and parses the body: a client that
sends 2 GB of JSON must cost the server 4 MB, not 2 GB."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.server.errors import PayloadTooLarge, create_error_response


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"The request body is larger than this server's limit of {self.max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await create_error_response(PayloadTooLarge(self._message()))(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            # Chunked uploads declare no length: count what actually arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(PayloadTooLarge.status, self._message())
            return message

        await self.app(scope, counted_receive, send)
