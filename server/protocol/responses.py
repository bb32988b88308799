"""OpenAI's Responses API shapes, over the same strategies as chat.

ponder is stateless: it stores no responses, so ``store: true`` and
``previous_response_id`` are a 400 that says so (a client that sends neither
gets what it would get from OpenAI with ``store: false``). A request is
turned into the chat request it means (:meth:`ResponsesRequest.as_chat`), so
every strategy, budget and admission rule applies unchanged; only the shapes
in and out differ.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from ponder.server.protocol.chat import ChatCompletionRequest
from ponder.server.protocol.common import (
    INT64_MAX,
    INT64_MIN,
    BudgetLimits,
    OpenAIModel,
    PonderInfo,
    honoured_only,
)
from ponder.strategies import StrategyConfigUnion

EffortLevel = Literal["none", "minimal", "low", "medium", "high"]


class InputText(OpenAIModel):
    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None


class InputMessage(OpenAIModel):
    """A message of the conversation (``type`` may be left out, as OpenAI allows)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]
    id: str | None = None
    status: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ReasoningOptions(OpenAIModel):
    effort: EffortLevel | None = Field(
        None, description="Reaches the chat template, and picks the server's strategy preset "
        "for this level when the request names no strategy (GET /v1/strategies)."
    )
    summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="Adds a summary of what the strategy did (samples, votes, the chosen "
        "answer) to the reasoning item; ponder runs no model to summarise the trace itself."
    )
    generate_summary: Literal["auto", "concise", "detailed"] | None = Field(
        None, description="Deprecated alias of `summary`."
    )


RESPONSES_FIELDS_NOT_HONOURED: dict[str, tuple[tuple[Any, ...], str]] = {
    "store": ((None, False), "ponder stores no responses: send `store: false`"),
    "previous_response_id": ((None,), "ponder stores no responses, so none can be continued: "
                             "send the whole conversation as `input`"),
    "conversation": ((None,), "ponder stores no conversations: send the whole conversation "
                     "as `input`"),
    "background": ((None, False), "ponder answers in the foreground only"),
    "tools": ((None, []), "tools are served on /v1/chat/completions; the Responses API here "
              "generates text"),
    "tool_choice": ((None, "none", "auto"), "no tools are served on the Responses API"),
    "include": ((None, []), "ponder returns no encrypted reasoning or tool outputs"),
    "prompt": ((None,), "stored prompt templates need storage, which ponder has none of"),
}


class ResponsesRequest(OpenAIModel):
    model: str
    input: str | Annotated[list[InputMessage], Field(min_length=1)] = Field(
        description="A user message as text, or the conversation as messages."
    )
    instructions: str | None = Field(None, description="A system message put first.")
    reasoning: ReasoningOptions | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stream: bool = False
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["disabled"] | None = None
    service_tier: Literal["auto", "default"] | None = None
    text: dict[str, Any] | None = Field(
        None, description="Only the plain text format (`{\"format\": {\"type\": \"text\"}}`)."
    )
    store: Literal[False] | None = None
    previous_response_id: None = None
    conversation: None = None
    background: Literal[False] | None = None
    tools: list[Any] | None = None
    tool_choice: Literal["none", "auto"] | None = None
    include: list[Any] | None = None
    prompt: None = None

    # ponder's own, as on chat.
    strategy: StrategyConfigUnion | None = Field(
        None, description="Test-time compute strategy, as on chat completions."
    )
    reasoning_trace: Literal["visible", "hidden"] = Field(
        "visible", description="Return the thinking trace in the reasoning item (visible) or "
        "only count its tokens (hidden)."
    )
    include_candidates: bool = False
    budget: BudgetLimits | None = None

    _not_honoured = honoured_only(RESPONSES_FIELDS_NOT_HONOURED)

    @model_validator(mode="before")
    @classmethod
    def _strategy_name_is_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("strategy"), str):
            return {**data, "strategy": {"name": data["strategy"]}}
        return data

    @model_validator(mode="after")
    def _plain_text_only(self) -> ResponsesRequest:
        wanted = (self.text or {}).get("format", {"type": "text"})
        if not isinstance(wanted, dict) or wanted.get("type") != "text":
            raise PydanticCustomError(
                "not_supported", "ponder's Responses API generates plain text (`text.format` "
                "`text`); structured output is served on /v1/chat/completions"
            )
        return self

    @property
    def effort(self) -> str | None:
        return None if self.reasoning is None else self.reasoning.effort

    @property
    def summary(self) -> str | None:
        if self.reasoning is None:
            return None
        return self.reasoning.summary or self.reasoning.generate_summary

    def as_chat(self) -> ChatCompletionRequest:
        """The chat request this one means: instructions first as a system
        message, then the input."""
        messages: list[dict[str, str]] = []
        if self.instructions:
            messages.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            messages.append({"role": "user", "content": self.input})
        else:
            messages.extend({"role": m.role, "content": m.text} for m in self.input)
        fields = {
            "model": self.model, "messages": messages, "stream": self.stream,
            "max_completion_tokens": self.max_output_tokens, "temperature": self.temperature,
            "top_p": self.top_p, "seed": self.seed, "reasoning_effort": self.effort,
            "strategy": self.strategy, "reasoning": self.reasoning_trace,
            "include_candidates": self.include_candidates, "budget": self.budget,
        }
        return ChatCompletionRequest.model_validate(
            {key: value for key, value in fields.items() if value is not None}
        )


# ---------------------------------------------------------------- response


def response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class ReasoningText(BaseModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class SummaryText(BaseModel):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningItem(BaseModel):
    id: str
    type: Literal["reasoning"] = "reasoning"
    status: Literal["in_progress", "completed", "incomplete"]
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None


OutputItem = Annotated[Union[ReasoningItem, OutputMessage], Field(discriminator="type")]  # noqa: UP007


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens"]


class Response(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=lambda: int(time.time()))
    status: Literal["in_progress", "completed", "incomplete"]
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    usage: ResponseUsage | None = None
    incomplete_details: IncompleteDetails | None = None
    error: None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    reasoning: dict[str, Any] = Field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool = True
    tool_choice: str = "none"
    tools: list[Any] = Field(default_factory=list)
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    truncation: str = "disabled"
    store: bool = False
    background: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    ponder: PonderInfo | None = None
