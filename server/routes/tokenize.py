"""vLLM's POST /tokenize and POST /detokenize: what the served model's
tokenizer makes of a prompt, or of a conversation rendered exactly as for a
chat completion, and back. vLLM's tools call them on any server they are
pointed at (``vllm bench serve`` lines its prompts up with them).

They are /v1-grade routes: with ``--api-key`` they need the key (vLLM's own
server leaves them open), and each call takes a slot of
``--max-concurrent-requests`` as a chat request does, since it renders and
tokenizes on the same threads; its body counts against
``--max-request-bytes`` like every body."""

from __future__ import annotations

import asyncio
import inspect
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends

from ponder.core.generation import Prompt
from ponder.server.deps import EngineGeneratorDep, ServiceDep
from ponder.server.errors import InvalidRequest
from ponder.server.protocol.tokenize import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from ponder.server.rendering import PromptRenderer
from ponder.server.routes.respond import ERRORS

router = APIRouter(tags=["tokenizer"])

Body = TypeVar("Body", TokenizeRequest, DetokenizeRequest)


def _for_a_served_model(body_type: type[Body]) -> Any:
    """The request body, read once, whose optional ``model`` must name a
    served model (404 otherwise), as for every other route."""

    async def checked(body: Any, service: Any) -> Any:
        if body.model is not None:
            service.strategy_alias(body.model)
        return body

    # Built as a signature so FastAPI reads each route's own body type.
    checked.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body_type),
        inspect.Parameter("service", inspect.Parameter.KEYWORD_ONLY, annotation=ServiceDep),
    ])
    return Annotated[body_type, Depends(checked)]


TokenizeBody = _for_a_served_model(TokenizeRequest)
DetokenizeBody = _for_a_served_model(DetokenizeRequest)


@router.post("/tokenize", response_model=TokenizeResponse, responses=ERRORS)
async def tokenize(
    body: TokenizeBody, generator: EngineGeneratorDep, service: ServiceDep
) -> TokenizeResponse:
    with service.admitted():
        ids = await _token_ids(body, generator)
    return TokenizeResponse(
        count=len(ids), max_model_len=generator.max_model_len, tokens=ids,
        token_strs=generator.token_strings(ids) if body.return_token_strs else None,
    )


async def _token_ids(body: TokenizeRequest, generator: PromptRenderer) -> list[int]:
    if body.messages is not None:
        template_kwargs: dict[str, object] = {"add_generation_prompt": body.add_generation_prompt}
        if body.tools:
            template_kwargs["tools"] = [tool.model_dump(exclude_none=True) for tool in body.tools]
        prompt = Prompt(
            messages=tuple(m.model_dump(exclude_none=True) for m in body.messages),
            template_kwargs=tuple(template_kwargs.items()),
        )
        return await asyncio.to_thread(generator.rendered_ids, prompt)
    add_special = body.add_special_tokens is not False
    return await asyncio.to_thread(generator.tokenize, body.prompt or "", add_special)


@router.post("/detokenize", response_model=DetokenizeResponse, responses=ERRORS)
async def detokenize(
    body: DetokenizeBody, generator: EngineGeneratorDep, service: ServiceDep
) -> DetokenizeResponse:
    unknown = [token for token in body.tokens if token >= generator.vocab_size]
    if unknown:
        raise InvalidRequest(
            f"tokens {unknown[:5]} are not in this model's vocabulary of "
            f"{generator.vocab_size} tokens.",
            param="tokens",
        )
    with service.admitted():
        return DetokenizeResponse(
            prompt=await asyncio.to_thread(generator.detokenize, body.tokens))
