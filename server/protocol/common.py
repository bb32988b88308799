"""What every API's request and response shapes share: the base models, the
error body, sampling and ponder's strategy fields, usage, ponder's run
metadata, token log-probabilities.

Kept apart from serving logic (as vLLM does), so ``/openapi.json`` describes
the real request body and every field is validated before any work starts.
One module per API beside this one (:mod:`.chat`, :mod:`.completions`,
:mod:`.tokenize`, :mod:`.listings`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
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

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TOKEN_ID = Annotated[int, Field(ge=0, le=INT64_MAX)]
Name = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$",
                            description="a-z, A-Z, 0-9, _ and -; up to 64.")]

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

def honoured_only(fields: dict[str, tuple[tuple[Any, ...], str]]) -> Any:
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

    _not_honoured = honoured_only(
        {"include_obfuscation": ((None, False), "ponder adds no obfuscation padding")}
    )


class BudgetLimits(OpenAIModel):
    max_tokens: int | None = Field(
        None, ge=1, description="Tokens the whole request may generate, over all samples."
    )
    seconds: float | None = Field(None, gt=0, description="Wall time the request may take.")
    thinking_tokens: int | None = Field(
        None, ge=1, description="For models that think in tags (--reasoning-parser): each "
        "sample thinks at most this many tokens, then its thinking is ended for it and it "
        "answers (s1's budget forcing). Default with a token cap: room is left to answer.",
    )
    min_thinking_tokens: int | None = Field(
        None, ge=1, description="For models that think in tags: a sample that ends its "
        "thinking sooner is told to go on (its end marker replaced by \"Wait\"), up to "
        "`thinking_extensions` times.",
    )
    thinking_extensions: int = Field(
        2, ge=0, le=16, description="How often `min_thinking_tokens` may extend one sample."
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> BudgetLimits:
        if (self.min_thinking_tokens and self.thinking_tokens
                and self.min_thinking_tokens > self.thinking_tokens):
            raise ValueError("min_thinking_tokens is more than thinking_tokens")
        return self

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

    @property
    def effort(self) -> str | None:
        """The reasoning effort asked for, whose preset strategy the request
        gets when it names none."""
        return None

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


class PonderUsage(BaseModel):
    probe_tokens: int = Field(
        0, description="Of the completion tokens, those early-exit probes wrote (they are "
        "never part of the text)."
    )


class PonderRun(OmitNone):
    """What one run of a strategy did (one per choice)."""

    samples: int
    usage: PonderUsage | None = Field(
        None, description="What `usage` does not break down: the early-exit probes' tokens."
    )
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
    effort: str | None = Field(
        None, description="The reasoning effort level whose preset chose `strategy`, when one did."
    )
    elapsed_ms: int
    choices: list[PonderRun] | None = None

class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobInfo(TopLogprob):
    top_logprobs: list[TopLogprob]
