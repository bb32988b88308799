"""OpenAI's chat shapes and ponder's extensions, as pydantic models.

Kept apart from serving logic (as vLLM does), so ``/openapi.json`` describes
the real request body and every field is validated before any work starts.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

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

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TOKEN_ID = Annotated[int, Field(ge=0, le=INT64_MAX)]
Name = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$",
                            description="a-z, A-Z, 0-9, _ and -; up to 64.")]

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


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``value`` that holds
    a lone UTF-16 surrogate, which valid JSON can carry but UTF-8 cannot."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            # The path names a bad key escaped, so it can be printed.
            name = str(key).encode(errors="backslashreplace").decode()
            where = f"{path}.{name}" if path else name
            found = lone_surrogate_at(key, where) or lone_surrogate_at(item, where)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None



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


def _honoured_only(fields: dict[str, tuple[tuple[Any, ...], str]]) -> Any:
    """A before-validator for fields OpenAI defines and ponder cannot do:
    ``fields`` maps each to the values that ask for nothing beyond what
    ponder does (they pass) and why any other is a 400."""

    def check(cls: type, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        passes, why = fields[info.field_name]
        if value not in passes:
            raise PydanticCustomError(
                "not_supported", "ponder does not support `{field}` as sent: {why}",
                {"field": info.field_name, "why": why},
            )
        return value

    return field_validator(*fields, mode="before")(classmethod(check))  # type: ignore[arg-type]


class StreamOptions(OpenAIModel):
    include_usage: bool = False
    continuous_usage_stats: bool = False
    include_obfuscation: Literal[False] | None = Field(
        None, description="Only false: ponder adds no obfuscation padding to its chunks."
    )

    _not_honoured = _honoured_only(
        {"include_obfuscation": ((None, False), "ponder adds no obfuscation padding")}
    )


class BudgetLimits(OpenAIModel):
    max_tokens: int | None = Field(
        None, ge=1, description="Tokens the whole request may generate, over all samples."
    )
    seconds: float | None = Field(None, gt=0, description="Wall time the request may take.")


class JsonSchema(OpenAIModel):
    name: Name
    description: str | None = None
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="The JSON Schema every sample must satisfy."
    )
    strict: bool | None = Field(
        None, description="Samples are always generated under the schema, strict or not."
    )


class TextFormat(OpenAIModel):
    type: Literal["text"]


class JsonObjectFormat(OpenAIModel):
    type: Literal["json_object"]


class JsonSchemaFormat(OpenAIModel):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[
    Union[TextFormat, JsonObjectFormat, JsonSchemaFormat], Field(discriminator="type")  # noqa: UP007
]


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


StopSequence = Annotated[str, Field(min_length=1)]


def _name_or_object(schema: dict[str, Any]) -> None:
    """A strategy is sent as its name or as an object: the schema offers the
    names beside the objects pydantic describes."""
    schema["anyOf"] = [{"type": "string", "enum": list(STRATEGIES)}, *schema["anyOf"]]


class SamplingRequest(OpenAIModel):
    """What chat and plain completions share: sampling, `n`, streaming, and
    ponder's strategy, reasoning, candidates and budget fields. Every
    sampling field applies to every sample a strategy draws."""

    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = Field(
        None, description="Up to 4 sequences where generation stops."
    )
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    frequency_penalty: float | None = Field(
        None, ge=-2, le=2, description="Penalise tokens by how often they appeared so far."
    )
    presence_penalty: float | None = Field(
        None, ge=-2, le=2, description="Penalise tokens that appeared at all so far."
    )
    logit_bias: dict[Annotated[str, Field(pattern=r"^[0-9]{1,19}$")],
                     Annotated[float, Field(ge=-100, le=100)]] | None = Field(
        None, description="Token id (as a string) to a bias added to its logit, -100 to 100."
    )
    response_format: ResponseFormat | None = Field(
        None,
        description="`json_object` or `json_schema`: every sample of every strategy is generated "
        "under it (structured output); votes then compare parsed JSON.",
    )

    # vLLM's extensions, which its clients and tools send to any server.
    top_k: int | None = Field(
        None, ge=-1, le=2**31 - 1, description="Sample among the k likeliest tokens (-1 or 0: all)."
    )
    min_p: float | None = Field(
        None, ge=0, le=1, description="Drop tokens less likely than this times the likeliest."
    )
    repetition_penalty: float | None = Field(
        None, gt=0, le=2**31, description="Divide the logits of tokens seen so far (1: off)."
    )
    min_tokens: int = Field(0, ge=0, le=2**31 - 1, description="Tokens to generate before EOS or "
                            "a stop may end a sample.")
    ignore_eos: bool = Field(False, description="Generate past the end-of-sequence token.")
    stop_token_ids: list[TOKEN_ID] | None = Field(None, description="Token ids that end a sample.")
    skip_special_tokens: bool = Field(True, description="Leave special tokens out of the text.")
    include_stop_str_in_output: bool = Field(
        False, description="Keep the stop string that ended a sample in its text."
    )

    strategy: StrategyConfigUnion | None = Field(
        None,
        description=(
            "Test-time compute strategy: a name (its defaults) or an object "
            "with `name` and parameters. Default: the model alias's strategy, "
            "then the server's default."
        ),
        json_schema_extra=_name_or_object,
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

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        """One error on `stop` for every bad shape (the schema says the same),
        rather than one per member of the union."""
        if value is None:
            return None
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or len(stops) > 4 or not all(
                isinstance(s, str) and s for s in stops):
            raise ValueError("a string or a list of up to 4 non-empty strings")
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

    @property
    def top_logprobs_asked(self) -> int | None:
        """How many alternatives per token the client asked for, or None
        when it asked for no log-probabilities."""
        return None


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
COMPLETION_FIELDS_NOT_HONOURED: dict[str, tuple[tuple[Any, ...], str]] = {
    "echo": ((None, False), "the prompt is not repeated in the completion"),
    "suffix": ((None,), "text after the completion (insertion) is not supported"),
}


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
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

    _not_honoured = _honoured_only(CHAT_FIELDS_NOT_HONOURED)

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
    def effective_tool_choice(self) -> str | NamedToolChoice:
        """OpenAI's default: `auto` when tools are given, else `none`."""
        if self.tool_choice is not None:
            return self.tool_choice
        return "auto" if self.tools else "none"


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

    _not_honoured = _honoured_only(COMPLETION_FIELDS_NOT_HONOURED)

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


class TokenizeRequest(OpenAIModel):
    """vLLM's POST /tokenize: a raw ``prompt``, or ``messages`` rendered as
    for a chat completion."""

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    tools: list[ChatTool] | None = Field(None, description="With messages: shown to the template.")
    add_generation_prompt: bool = Field(True, description="With messages: end with the "
                                        "assistant's turn, as a chat completion does.")
    add_special_tokens: bool | None = Field(
        None, description="With a prompt (default true): add BOS and friends. Messages get "
        "them from the chat template."
    )
    return_token_strs: bool = False

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise PydanticCustomError("prompt_or_messages", "send either prompt or messages")
        if self.messages is not None and self.add_special_tokens:
            raise PydanticCustomError(
                "special_tokens", "add_special_tokens is for a prompt: the chat template adds "
                "what a conversation needs"
            )
        return self


class DetokenizeRequest(OpenAIModel):
    model: str | None = None
    tokens: list[TOKEN_ID]


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


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobInfo(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[TokenLogprobInfo] | None
    refusal: list[TokenLogprobInfo] | None = None


class CompletionLogprobs(BaseModel):
    """The legacy completions shape: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


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


# ---------------------------------------------------------------- tokenizer


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeResponse(BaseModel):
    prompt: str


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
