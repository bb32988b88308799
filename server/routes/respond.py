"""What chat and completions routes share once the body is validated: admit
the request, run its strategy for every choice, and answer whole or as a
stream, cancelling everything if the client hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ponder.server.errors import CLIENT_CLOSED_REQUEST, as_ponder_error
from ponder.server.formats import ResponseFormat
from ponder.server.protocol import ErrorResponse, SamplingRequest
from ponder.server.serving import RequestRun, StrategyService
from ponder.server.streaming import ResponseStream
from ponder.strategies.base import StrategyResult

ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 503)}


async def respond(
    body: SamplingRequest, request: Request, service: StrategyService,
    shape_for: Callable[[RequestRun], ResponseFormat],
) -> BaseModel | StreamingResponse:
    run = service.resolve(body)
    shape = shape_for(run)
    service.admit(run)
    status = CLIENT_CLOSED_REQUEST
    handed_to_stream = False
    try:
        if body.stream:
            stream = ResponseStream(service, run, shape)
            await stream.first_event()
            handed_to_stream = True  # from here the stream reports its own end
            return StreamingResponse(stream.frames(), media_type="text/event-stream")
        results = await _until_disconnect(request, asyncio.ensure_future(service.run_all(run)))
        status = 200
        return shape.response(results)
    except Exception as error:
        status = as_ponder_error(error).status
        raise
    finally:
        # Also on cancellation (a client that left), which `except` does not
        # see: a request that ends uncounted would hold its slot for good.
        if not handed_to_stream:
            service.finished(run, status)


async def _until_disconnect(
    request: Request, work: asyncio.Future[list[StrategyResult]]
) -> list[StrategyResult]:
    """Run ``work``, cancelling it (and so its engine requests) if the client
    hangs up first: a client that leaves must not keep the engine busy."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    return work.result()
