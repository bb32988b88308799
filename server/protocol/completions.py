"""OpenAI's legacy Completions shapes: raw text in, text out."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ponder.server.protocol.common import (
    OmitNone,
    PonderInfo,
    SamplingRequest,
    UsageInfo,
    honoured_only,
)

COMPLETION_FIELDS_NOT_HONOURED: dict[str, tuple[tuple[Any, ...], str]] = {
    "echo": ((None, False), "the prompt is not repeated in the completion"),
    "suffix": ((None,), "text after the completion (insertion) is not supported"),
}

class CompletionRequest(SamplingRequest):
    """OpenAI's legacy completions: raw text in, text out, no chat template."""

    prompt: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="A prompt, or a list of prompts (each gets `n` choices, in order)."
    )
    # OpenAI's (and vLLM's) default for this endpoint.
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = Field(
        None, ge=0, le=20, description="Log-probabilities of the returned text's tokens, with "
        "this many likeliest alternatives each."
    )
    echo: Literal[False] | None = None
    suffix: None = None
    best_of: int | None = Field(
        None, ge=1, description="Only `n` (or 1): for the best of several samples use "
        "strategy best_of_n."
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _text_prompts(cls, value: Any) -> list[str]:
        """One check before the union, so every bad shape is one error on
        `prompt` rather than one per union member."""
        prompts = [value] if isinstance(value, str) else value
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise ValueError("a string or a list of strings (token ids are not supported)")
        if not prompts:
            raise ValueError("at least one prompt")
        return prompts

    _not_honoured = honoured_only(COMPLETION_FIELDS_NOT_HONOURED)

    @model_validator(mode="after")
    def _best_of_is_n(self) -> CompletionRequest:
        if self.best_of not in (None, 1, self.n):
            raise PydanticCustomError(
                "not_supported", "best_of {best_of} is not supported: only `n` (or 1); for the "
                "best of several samples use strategy best_of_n", {"best_of": self.best_of},
            )
        return self

    @property
    def prompts(self) -> list[str]:
        return self.prompt if isinstance(self.prompt, list) else [self.prompt]

    @property
    def top_logprobs_asked(self) -> int | None:
        return self.logprobs

# ---------------------------------------------------------------- response

class CompletionLogprobs(BaseModel):
    """The legacy completions shape: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]

class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None

    @model_serializer(mode="wrap")
    def _keep_openai_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """OpenAI sends `finish_reason` and `logprobs` even when null; only
        ponder's reasoning fields are left out when there are none."""
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k in ("finish_reason", "logprobs")}


def text_completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=text_completion_id)
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo
    ponder: PonderInfo


class CompletionChunk(OmitNone):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
    ponder: PonderInfo | None = None
