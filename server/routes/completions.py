"""POST /v1/completions: OpenAI's legacy text completions, strategies included."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ponder.server.deps import ServiceDep
from ponder.server.formats import CompletionFormat
from ponder.server.protocol.completions import CompletionRequest, CompletionResponse
from ponder.server.routes.respond import ERRORS, respond

router = APIRouter(tags=["completions"])


@router.post(
    "/v1/completions",
    response_model=CompletionResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
)
async def create_completion(
    body: CompletionRequest, request: Request, service: ServiceDep
) -> BaseModel | StreamingResponse:
    return await respond(body, request, service, CompletionFormat)
