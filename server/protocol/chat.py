"""OpenAI's Chat Completions shapes, with ponder's extensions."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ponder.server.protocol.common import (
    Name,
    OmitNone,
    OpenAIModel,
    PonderInfo,
    SamplingRequest,
    TokenLogprobInfo,
    UsageInfo,
    honoured_only,
)

# Content parts a model that reads only text cannot take, by what they carry.
MEDIA_PARTS = {
    "image_url": "an image", "input_image": "an image", "input_audio": "audio",
    "audio_url": "audio", "video_url": "a video", "file": "a file",
}


class TextPart(OpenAIModel):
    type: Literal["text"]
    text: str


class RefusalPart(OpenAIModel):
    """An assistant turn's refusal, given back in the conversation."""

    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[Union[TextPart, RefusalPart], Field(discriminator="type")]  # noqa: UP007 - a runtime union pydantic can tag
CONTENT_PARTS = TypeAdapter(list[ContentPart])

def _content_unless_assistant(schema: dict[str, Any]) -> None:
    """As in OpenAI's API: only an assistant message (one with tool calls)
    may come without content."""
    schema["anyOf"] = [
        {"properties": {"role": {"const": "assistant"}}},
        {"required": ["content"]},
    ]


class ChatMessage(BaseModel):
    # Messages carry more fields than we read (name, tool_calls,
    # tool_call_id, ...); keep them, the chat template may use them.
    model_config = ConfigDict(extra="allow", json_schema_extra=_content_unless_assistant)

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = Field(
        None, description="Text, or a list of text parts (joined as vLLM joins them)."
    )

    @model_validator(mode="after")
    def _content_required(self) -> ChatMessage:
        """The schema's rule (``_content_unless_assistant``), enforced: a
        chat template may render a missing content as nothing at all."""
        if self.content is None and self.role != "assistant":
            raise PydanticCustomError(
                "missing_content", "a {role} message needs content", {"role": self.role}
            )
        return self

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        """Parts checked here, so an error names the part and what is wrong
        with it (a part a text model cannot take, a malformed one) rather
        than every variant of the unions it did not match."""
        if not isinstance(value, list):
            return value
        for index, part in enumerate(value):
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(kind, str) and kind in MEDIA_PARTS:
                raise PydanticCustomError(
                    "unsupported_content",
                    "part {index} (type {kind}) carries {carries}; the served model reads text "
                    "only: send text parts",
                    {"index": index, "kind": kind, "carries": MEDIA_PARTS[kind]},
                )
        try:
            return CONTENT_PARTS.validate_python(value)
        except ValidationError as error:
            first = error.errors()[0]
            loc = first["loc"]  # (index,) or (index, its type, field)
            where = f"{loc[-1]}: " if len(loc) > 2 else ""
            raise PydanticCustomError(
                "content_part", "part {index}: {where}{problem}",
                {"index": loc[0], "where": where, "problem": first["msg"]},
            ) from None

class FunctionDefinition(OpenAIModel):
    name: Name
    description: str | None = None
    parameters: dict[str, Any] | None = Field(
        None, description="JSON Schema of the arguments (default: no arguments)."
    )
    strict: bool | None = None


class ChatTool(OpenAIModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(OpenAIModel):
    name: str


class NamedToolChoice(OpenAIModel):
    type: Literal["function"]
    function: NamedFunction

# What OpenAI defines and ponder cannot do (yet), by field: the values that
# ask for nothing beyond what ponder does pass (the field types list exactly
# those), anything else is a 400 that says why.
CHAT_FIELDS_NOT_HONOURED: dict[str, tuple[tuple[Any, ...], str]] = {
    "audio": ((None,), "ponder generates text only"),
    "modalities": ((None, ["text"]), 'ponder generates text only (`["text"]`)'),
    "prediction": ((None,), "predicted outputs are not supported"),
    "store": ((None, False), "ponder stores no completions (`store` may only be false)"),
    "metadata": ((None,), "metadata tags stored completions, and ponder stores none"),
    "service_tier": ((None, "auto", "default"), "ponder has one service tier (`auto`)"),
    "web_search_options": ((None,), "ponder has no web search"),
    "functions": ((None,), "the deprecated `functions` are not supported: send `tools`"),
    "function_call": ((None,), "the deprecated `function_call` is not supported: send "
                      "`tool_choice`"),
    "moderation": ((None,), "ponder runs no moderation model"),
    "prompt_cache_options": ((None,), "ponder's prefix cache is automatic and has no options"),
    "prompt_cache_retention": ((None, "in_memory"),
                               "ponder's prefix cache lives in memory (`in_memory`)"),
    "verbosity": ((None,), "ponder cannot steer verbosity"),
}

class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = Field(
        None, description="Reaches the chat template, and picks the server's strategy preset "
        "for this level when the request names no strategy (GET /v1/strategies lists them)."
    )
    logprobs: bool = Field(False, description="Return the log-probability of each token of "
                           "`message.content` (of the sample whose answer is returned).")
    top_logprobs: int | None = Field(
        None, ge=0, le=20, description="With `logprobs`: the likeliest alternatives per token."
    )
    tools: list[ChatTool] | None = Field(None, min_length=1)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None,
        description="`auto` (the default with tools) needs the server's --tool-call-parser; "
        "`required` and a named function are generated under the tools' JSON schemas and need "
        "none. Voting strategies vote over the calls.",
    )
    parallel_tool_calls: bool = Field(True, description="False: at most one call per choice.")
    prompt_cache_key: str | None = Field(
        None, description="Accepted: ponder's prefix cache finds shared prefixes by itself."
    )
    safety_identifier: str | None = None

    audio: None = None
    modalities: list[Literal["text"]] | None = None
    prediction: None = None
    store: Literal[False] | None = None
    metadata: None = None
    service_tier: Literal["auto", "default"] | None = None
    web_search_options: None = None
    functions: None = None
    function_call: None = None
    moderation: None = None
    prompt_cache_options: None = None
    prompt_cache_retention: Literal["in_memory"] | None = None
    verbosity: None = None

    _not_honoured = honoured_only(CHAT_FIELDS_NOT_HONOURED)

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_need_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value and not info.data.get("logprobs"):
            raise PydanticCustomError("needs_logprobs", "top_logprobs needs logprobs set to true")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _a_choice_among_the_tools(
        cls, value: str | NamedToolChoice | None, info: ValidationInfo
    ) -> str | NamedToolChoice | None:
        tools: list[ChatTool] = info.data.get("tools") or []
        if value not in (None, "none") and not tools:
            raise PydanticCustomError("needs_tools", "tool_choice needs tools")
        names = [tool.function.name for tool in tools]
        if isinstance(value, NamedToolChoice) and value.function.name not in names:
            raise PydanticCustomError(
                "unknown_tool", "tool_choice names {name}, which is not one of the tools: {names}",
                {"name": value.function.name, "names": ", ".join(names)},
            )
        return value

    @property
    def token_cap(self) -> int | None:
        """`max_completion_tokens` supersedes the deprecated `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def token_cap_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"

    @property
    def top_logprobs_asked(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None

    @property
    def effort(self) -> str | None:
        return self.reasoning_effort

    @property
    def effective_tool_choice(self) -> str | NamedToolChoice:
        """OpenAI's default: `auto` when tools are given, else `none`."""
        if self.tool_choice is not None:
            return self.tool_choice
        return "auto" if self.tools else "none"

# ---------------------------------------------------------------- response

class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionCallDelta(OmitNone):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(OmitNone):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None

class ChatLogprobs(BaseModel):
    content: list[TokenLogprobInfo] | None
    refusal: list[TokenLogprobInfo] | None = None

class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str
    logprobs: ChatLogprobs | None = None


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
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(OmitNone):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = None
    ponder: PonderInfo | None = None
