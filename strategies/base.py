"""The contract between strategies and whatever produces tokens.

Strategies are pure algorithms over a :class:`Generator`. They never see HTTP
or vLLM, so the same code runs against the real engine, a remote server, or a
scripted generator in a unit test.

The generator is shaped for the strategies we run and the ones coming next:

* Fan-out: ``generate(prompt, n, sampling)`` is ONE engine request with ``n``
  children, so the prompt's KV blocks are computed once and shared.
* Step-level search: a beam re-sends ``Prompt(messages, continuation=partial)``
  with ``Sampling(stop=("\\n\\n",), include_stop=True)``; many such small
  requests run concurrently (``asyncio.gather``) and the engine's prefix cache
  turns the shared prompt + partial solution into cache hits.
* Per-sample log-probabilities: ``Sampling(logprobs=True)`` fills
  ``Sample.cumulative_logprob`` (tie-breaking, confidence rules);
  ``Sampling(top_logprobs=k)`` fills ``Sample.top_logprobs`` with the top-k
  alternatives of each generated token (a self-judging PRM reads P("Yes")
  from the first one).
* Process reward models do not generate: they are a separate scoring
  interface (``ponder.prm``), which may be backed by a second in-process
  engine, so a strategy receives a generator and, optionally, a scorer.
* Early stopping and budgets: ``stream`` yields per-sample deltas as they are
  produced; closing the iterator (or cancelling the task that drives it)
  aborts every child still running in the engine at once.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ponder.strategies.reasoning import ReasoningSplitter

if TYPE_CHECKING:
    from ponder.prm.base import ProcessRewardModel

FinishReason = Literal["stop", "length", "abort"]
Message = dict[str, Any]


@dataclass(frozen=True)
class Prompt:
    """What to continue: chat messages (the generator applies the model's chat
    template) or raw text, followed by ``continuation``, text the assistant has
    already "said" (a partial solution during step-level search)."""

    messages: tuple[Message, ...] | None = None
    text: str | None = None
    continuation: str = ""
    template_kwargs: tuple[tuple[str, Any], ...] = ()

    def extended(self, more: str) -> Prompt:
        return replace(self, continuation=self.continuation + more)


@dataclass(frozen=True)
class Sampling:
    """Engine-neutral sampling settings (the server maps them to vLLM's)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    include_stop: bool = False
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass
class Sample:
    text: str
    token_ids: Sequence[int]
    finish_reason: FinishReason
    cumulative_logprob: float | None = None
    top_logprobs: list[dict[str, float]] | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float:
        """Length-normalised confidence; -inf when logprobs were not asked for,
        so a sample without them never wins a tie against one with them."""
        if self.cumulative_logprob is None or not self.token_ids:
            return -math.inf
        return self.cumulative_logprob / len(self.token_ids)


@dataclass
class Generation:
    prompt_tokens: int
    samples: list[Sample]


@dataclass
class SampleDelta:
    """New output of one child of a fanned-out request. ``finish_reason`` is
    set on the child's last delta."""

    index: int
    text: str
    token_ids: Sequence[int]
    prompt_tokens: int
    finish_reason: FinishReason | None = None
    cumulative_logprob: float | None = None
    """Of the whole sample so far, when ``Sampling.logprobs`` asked for it."""


class Generator(Protocol):
    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        """All ``n`` samples when the last one is finished."""
        ...

    def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        """Deltas of all ``n`` children, interleaved as the engine makes them."""
        ...

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        """How many of ``token_ids`` it takes to produce the first ``chars``
        characters of their text: an exact split of a sample's token count
        between reasoning and answer."""
        ...


class Emitter(Protocol):
    """Where a streaming strategy sends what the client should see now."""

    async def reasoning(self, text: str) -> None: ...

    async def content(self, text: str) -> None: ...

    async def progress(self, text: str) -> None:
        """A line about the search itself: shown as reasoning when reasoning
        is visible, sent as an SSE comment (to keep the connection alive)
        when it is hidden."""
        ...


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    scoring_tokens: int = 0

    def add_generation(self, generation: Generation) -> None:
        self.prompt_tokens += generation.prompt_tokens
        self.completion_tokens += sum(s.num_tokens for s in generation.samples)

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.scoring_tokens += other.scoring_tokens
        return self


@dataclass
class Candidate:
    """One sample (or final beam) as shown by ``include_candidates``."""

    text: str
    answer: str | None
    finish_reason: FinishReason
    tokens: int
    score: float | None = None
    step_scores: list[float] | None = None


@dataclass
class StrategyResult:
    content: str
    reasoning: str | None
    finish_reason: FinishReason
    usage: Usage
    answer: str | None = None
    votes: dict[str, int] | None = None
    scores: list[float] | None = None
    stopped_early: bool = False
    budget_exhausted: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verifiers:
    """The process reward models the server was started with, by name."""

    models: Mapping[str, ProcessRewardModel] = field(default_factory=dict)
    default: str | None = None

    def get(self, name: str | None) -> tuple[str, ProcessRewardModel]:
        chosen = name or self.default
        if chosen is None or chosen not in self.models:
            known = ", ".join(self.models) or "none configured"
            raise RequestRejected(
                f"Unknown process reward model {chosen!r}; this server has: {known}.",
                param="strategy.prm",
            )
        return chosen, self.models[chosen]


@dataclass(frozen=True)
class Task:
    """One run of a strategy: the request's prompt and sampling settings, how
    the served model marks its reasoning (``NoReasoning`` for most), and the
    verifiers a strategy may score with."""

    prompt: Prompt
    sampling: Sampling
    splitter: ReasoningSplitter
    verifiers: Verifiers = field(default_factory=Verifiers)

    @property
    def question(self) -> str:
        """What a verifier is told the problem was: the last user message."""
        if self.prompt.messages is None:
            return self.prompt.text or ""
        users = [m for m in self.prompt.messages if m.get("role") == "user"]
        return message_text(users[-1].get("content")) if users else ""


class StrategyConfig(BaseModel):
    """Base of every strategy's parameters: unknown fields are an error, so a
    typo in a request is a 400 that names it, not a silently ignored knob."""

    model_config = ConfigDict(extra="forbid")


def message_text(content: object) -> str:
    """Message content may be a string or OpenAI's list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class RequestRejected(ValueError):
    """The request cannot be served as sent (a prompt longer than the model's
    context, say). Raised by generators and strategies; the server answers
    400 and names ``param``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
