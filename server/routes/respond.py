"""What chat and completions routes share once the body is validated: admit
the request, run its strategy for every choice, and answer whole or as a
stream, cancelling everything if the client hangs up or the server's time
to drain is up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ponder.server.errors import (
    CLIENT_CLOSED_REQUEST,
    ClientClosedRequest,
    ShuttingDown,
    as_ponder_error,
    lone_surrogate,
)
from ponder.server.protocol.common import ErrorResponse, SamplingRequest
from ponder.server.serving import RequestRun, StrategyService
from ponder.server.streaming import ResponseStream
from ponder.strategies.base import StrategyResult

ERRORS = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 502, 503, 504)
}

logger = logging.getLogger(__name__)


async def respond(
    body: SamplingRequest, request: Request, service: StrategyService,
    shape_for: Callable[[RequestRun], Any],
    stream_type: type[ResponseStream] = ResponseStream,
) -> BaseModel | StreamingResponse:
    """``shape_for`` makes the run's response format: a
    :class:`ResponseFormat` for chunked streams, or what ``stream_type``
    reads."""
    if (surrogate := lone_surrogate(body.model_dump())) is not None:
        raise surrogate
    run = service.resolve(body)
    shape = shape_for(run)
    service.admit(run)
    status = CLIENT_CLOSED_REQUEST
    handed_to_stream = False
    try:
        if body.stream:
            await service.check_prompts(run)
            stream = stream_type(service, run, shape)
            await stream.first_event()
            handed_to_stream = True  # from here the stream reports its own end
            return StreamingResponse(stream.frames(), media_type="text/event-stream")
        results = await _until_answered(
            request, service, asyncio.ensure_future(service.run_all(run))
        )
        status = 200
        return shape.response(results)
    except Exception as error:
        status = as_ponder_error(error).status
        raise
    finally:
        # Also on cancellation, which `except` does not see: a request that
        # ends uncounted would hold its slot for good.
        if not handed_to_stream:
            service.finished(run, status)


async def _until_answered(
    request: Request, service: StrategyService, work: asyncio.Future[list[StrategyResult]]
) -> list[StrategyResult]:
    """Run ``work``, cancelling it (and so its engine requests) if the client
    hangs up first, since a client that leaves must not keep the engine busy,
    or if the server's time to drain runs out."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watchers = {
        asyncio.ensure_future(disconnected()): ClientClosedRequest(
            "The client closed the connection before the answer."
        ),
        asyncio.ensure_future(service.lifecycle.aborted.wait()): ShuttingDown(
            "The server shut down before this request finished; retry it."
        ),
    }
    try:
        done, _ = await asyncio.wait({work, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            watcher.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work in done:
        return work.result()
    error = next(error for watcher, error in watchers.items() if watcher in done)
    logger.info("%s Its generation was stopped.", error.message)
    raise error
