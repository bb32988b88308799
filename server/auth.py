"""API-key check for /v1 routes, as a FastAPI dependency."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from ponder.server.errors import Unauthorized


def _digest(value: str) -> bytes:
    # Compare fixed-size digests so the comparison time leaks neither the
    # key's content nor its length.
    return hashlib.sha256(value.encode()).digest()


async def require_api_key(request: Request) -> None:
    key = request.app.state.settings.api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        _digest(token.strip()), _digest(key.get_secret_value())
    ):
        raise Unauthorized(
            "Incorrect or missing API key: send `Authorization: Bearer <key>`."
        )
