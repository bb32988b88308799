"""OpenAI's chat shapes and ponder's extensions, as pydantic models.

Kept apart from serving logic (as vLLM does), so ``/openapi.json`` describes
the real request body and every field is validated before any work starts.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ponder.strategies import STRATEGIES, StrategyConfigUnion
from ponder.strategies.base import Candidate, TreeNode


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OmitNone(BaseModel):
    """Leaves out its own unset (None) fields when serialised, but not those
    of nested models: a candidate with no answer still says `"answer": null`."""

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


# ---------------------------------------------------------------- errors


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


# ---------------------------------------------------------------- request


class ChatMessage(BaseModel):
    # Messages carry more fields than we read (name, tool_call_id, ...); keep
    # them, the chat template may use them.
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(OpenAIModel):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class BudgetLimits(OpenAIModel):
    max_tokens: int | None = Field(
        None, ge=1, description="Tokens the whole request may generate, over all samples."
    )
    seconds: float | None = Field(None, gt=0, description="Wall time the request may take.")


class SamplingRequest(OpenAIModel):
    """What chat and plain completions share: sampling, `n`, streaming, and
    ponder's strategy, reasoning, candidates and budget fields."""

    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    strategy: StrategyConfigUnion | None = Field(
        None,
        description=(
            "Test-time compute strategy: a name (its defaults) or an object "
            "with `name` and parameters. Default: the model alias's strategy, "
            "then the server's default."
        ),
        json_schema_extra={"anyOf": [{"type": "string", "enum": list(STRATEGIES)}]},
    )
    reasoning: Literal["visible", "hidden"] = Field(
        "visible",
        description="Return the thinking trace (visible) or only count its tokens (hidden).",
    )
    include_candidates: bool = Field(
        False, description="Add every sample, its answer and scores to `ponder.candidates`."
    )
    budget: BudgetLimits | None = Field(
        None,
        description="Caps on the request's compute; when one runs out the strategy answers "
        "with the best it has so far and `ponder.budget_exhausted` is true.",
    )

    @field_validator("strategy", mode="before")
    @classmethod
    def _name_is_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("up to 4 non-empty stop sequences")
        return stops

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> SamplingRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @property
    def token_cap(self) -> int | None:
        return self.max_tokens

    @property
    def token_cap_param(self) -> str:
        return "max_tokens"


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None

    @property
    def token_cap(self) -> int | None:
        """`max_completion_tokens` supersedes the deprecated `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def token_cap_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"


class CompletionRequest(SamplingRequest):
    """OpenAI's legacy completions: raw text in, text out, no chat template."""

    prompt: str | list[str] = Field(
        description="A prompt, or a list of prompts (each gets `n` choices, in order)."
    )
    # OpenAI's (and vLLM's) default for this endpoint.
    max_tokens: int | None = Field(16, ge=1)

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

    @property
    def prompts(self) -> list[str]:
        return self.prompt if isinstance(self.prompt, list) else [self.prompt]


# ---------------------------------------------------------------- response


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(
        0, description="Prompt tokens served from the engine's prefix cache, over every call."
    )


class UsageInfo(BaseModel):
    prompt_tokens: int = Field(
        description="Prompt tokens of every engine call the request made (a search re-sends "
        "its partial solutions; `prompt_tokens_details.cached_tokens` says how many of them "
        "the prefix cache served)."
    )
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails
    scoring_tokens: int = Field(0, description="Tokens a process reward model read.")


class PonderRun(OmitNone):
    """What one run of a strategy did (one per choice)."""

    samples: int
    answer: str | None = None
    votes: dict[str, int] | None = None
    scores: list[float] | None = None
    stopped_early: bool = False
    budget_exhausted: bool = False
    details: dict[str, Any] | None = None
    candidates: list[Candidate] | None = None
    tree: list[TreeNode] | None = Field(
        None, description="With `include_candidates`, a search's every node: each step, its "
        "parent, scores, and whether it was kept, pruned or completed."
    )


class PonderInfo(PonderRun):
    """Metadata of the strategy run behind choice 0, and of every choice in
    `choices` when the request asked for several."""

    strategy: dict[str, Any]
    elapsed_ms: int
    choices: list[PonderRun] | None = None


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None
    reasoning: str | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str
    logprobs: None = None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: UsageInfo
    ponder: PonderInfo


class Delta(OmitNone):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(OmitNone):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = None
    ponder: PonderInfo | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None
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


# ---------------------------------------------------------------- listings


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ponder"
    root: str | None = None
    max_model_len: int | None = None
    strategy: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class StrategyCard(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    defaults: dict[str, Any]


class StrategyList(BaseModel):
    object: Literal["list"] = "list"
    default: str
    data: list[StrategyCard]
