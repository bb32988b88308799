"""What a strategy asks of whatever produces tokens, and what it gets back.

The generator is shaped for the strategies ponder runs:

* Fan-out: ``generate(prompt, n, sampling)`` is ONE engine request with ``n``
  children, so the prompt's KV blocks are computed once and shared.
* Step-level search: ``render`` turns a prompt into token ids once; each
  expansion of a partial solution is ``prompt.continued(ids_so_far)`` with the
  step delimiter as a stop string, so the engine receives exactly the ids it
  generated (and has cached), never re-templated, re-tokenised text. A
  sample's ``stop_reason`` tells "this step ended" (``stop``, with the
  ``stop_string`` that matched) from "this solution ended" (``eos``).
* Confidence: ``Sampling(logprobs=True)`` gives every generated token's
  log-probability, ``Sampling(top_logprobs=k)`` also its k best
  alternatives, in the samples and in streamed deltas alike.
* Early stopping and budgets: ``stream`` yields per-sample deltas as they are
  produced; closing the iterator (or cancelling the task that drives it)
  aborts every child still running in the engine at once.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "abort"]
"""OpenAI's view of why a sample ended."""
StopReason = Literal["eos", "stop", "length", "abort"]
"""The generator's view: the model's own end of sequence (``eos``), a stop
string or stop token (``stop``), the token limit (``length``), or cut off by
its caller (``abort``)."""
Message = dict[str, Any]


def finish_reason_of(stop_reason: StopReason) -> FinishReason:
    return "stop" if stop_reason in ("eos", "stop") else stop_reason  # type: ignore[return-value]


@dataclass(frozen=True)
class Prompt:
    """What to continue: chat messages (the generator applies the model's chat
    template) or raw text; once rendered, its token ids; and the token ids the
    assistant has already produced after it (a partial solution)."""

    messages: tuple[Message, ...] | None = None
    text: str | None = None
    template_kwargs: tuple[tuple[str, Any], ...] = ()
    token_ids: tuple[int, ...] | None = None
    """The rendered prompt, set by :meth:`Generator.render`: sending it again
    costs no templating and matches what the engine has cached."""
    continuation: tuple[int, ...] = ()
    """Generated token ids to continue from, sent as they were generated."""

    def continued(self, token_ids: Sequence[int]) -> Prompt:
        return replace(self, continuation=self.continuation + tuple(token_ids))


@dataclass(frozen=True)
class JsonOutput:
    """Constrained decoding: every sample is one JSON document, valid under
    ``schema`` (JSON Schema as JSON text, so sampling settings stay immutable
    and comparable), or any JSON object when ``schema`` is None."""

    schema: str | None = None
    field: str = "response_format"
    """The request field that asked for it, named when the engine refuses the
    schema."""


@dataclass(frozen=True)
class Sampling:
    """Engine-neutral sampling settings (the server maps them to vLLM's).
    Strategies pass them to every sample they draw, changing only what their
    algorithm needs (a stop at the end of a step, log-probabilities)."""

    max_tokens: int | None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """Sample among the k likeliest tokens; 0 (or -1) for all of them."""
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    """(token id, bias added to its logit) pairs."""
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    include_stop: bool = False
    skip_special_tokens: bool = True
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    json_output: JsonOutput | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log-probability, and (when asked
    for) the most likely tokens at its position, best first."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class Sample:
    text: str
    token_ids: Sequence[int]
    stop_reason: StopReason
    stop_string: str | None = None
    """The stop string that ended the sample (``stop_reason == "stop"``)."""
    cumulative_logprob: float | None = None
    logprobs: list[TokenLogprob] | None = None
    """One per token, when ``Sampling.logprobs`` or ``top_logprobs`` asked."""

    @property
    def finish_reason(self) -> FinishReason:
        return finish_reason_of(self.stop_reason)

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

    def followed_by(self, more: Sample) -> Sample:
        """This sample, continued by ``more`` (generated from its token ids):
        one sample, ended as ``more`` ended."""
        cumulative = (
            None if self.cumulative_logprob is None or more.cumulative_logprob is None
            else self.cumulative_logprob + more.cumulative_logprob
        )
        logprobs = (
            None if self.logprobs is None or more.logprobs is None
            else self.logprobs + more.logprobs
        )
        return Sample(
            self.text + more.text, [*self.token_ids, *more.token_ids], more.stop_reason,
            more.stop_string, cumulative, logprobs,
        )


@dataclass
class Generation:
    prompt_tokens: int
    samples: list[Sample]
    cached_tokens: int = 0
    """Prompt tokens the engine found in its prefix cache."""


@dataclass
class SampleDelta:
    """New output of one child of a fanned-out request. ``stop_reason`` is
    set on the child's last delta."""

    index: int
    text: str
    token_ids: Sequence[int]
    prompt_tokens: int
    stop_reason: StopReason | None = None
    stop_string: str | None = None
    cumulative_logprob: float | None = None
    """Of the whole sample so far, when ``Sampling.logprobs`` asked for it."""
    logprobs: list[TokenLogprob] | None = None
    """Of this delta's tokens."""
    cached_tokens: int = 0


class Generator(Protocol):
    async def render(self, prompt: Prompt) -> Prompt:
        """``prompt`` with its ``token_ids`` set (unchanged if they are);
        raises :class:`RequestRejected` when it leaves no room to generate."""
        ...

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


def message_text(content: object) -> str:
    """Message content may be a string or OpenAI's list of typed parts; the
    text of the parts is joined with newlines, as vLLM joins them for a chat
    template that reads strings."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text") or part.get("refusal") or ""
            for part in content if isinstance(part, dict)
        )
    return ""


class RequestRejected(ValueError):
    """The request cannot be served as sent (a prompt longer than the model's
    context, a bad strategy parameter). Raised by generators, scorers and
    strategies; the server answers 400 and names ``param``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class SampleCollector:
    """Streamed deltas put back together into whole samples: the one place
    that does it, for whoever watches a stream (early stopping, budgets,
    token-by-token output)."""

    def __init__(self, n: int) -> None:
        self._texts: list[list[str]] = [[] for _ in range(n)]
        self._token_ids: list[list[int]] = [[] for _ in range(n)]
        self._logprobs: list[list[TokenLogprob] | None] = [None] * n
        self._cumulative: list[float | None] = [None] * n
        self._stops: list[tuple[StopReason, str | None] | None] = [None] * n
        self.prompt_tokens = 0
        self.cached_tokens = 0

    def add(self, delta: SampleDelta) -> Sample | None:
        """Takes one delta; returns its sample when that delta finished it."""
        i = delta.index
        self._texts[i].append(delta.text)
        self._token_ids[i].extend(delta.token_ids)
        if delta.logprobs is not None:
            self._logprobs[i] = (self._logprobs[i] or []) + delta.logprobs
        if delta.cumulative_logprob is not None:
            self._cumulative[i] = delta.cumulative_logprob
        self.prompt_tokens = delta.prompt_tokens
        self.cached_tokens = max(self.cached_tokens, delta.cached_tokens)
        if delta.stop_reason is None:
            return None
        self._stops[i] = (delta.stop_reason, delta.stop_string)
        return self.sample(i)

    @property
    def running(self) -> list[int]:
        return [i for i, stop in enumerate(self._stops) if stop is None]

    def sample(self, index: int, unfinished: StopReason = "abort") -> Sample:
        """The sample so far; one still running ends as ``unfinished``."""
        reason, stop_string = self._stops[index] or (unfinished, None)
        return Sample(
            "".join(self._texts[index]), self._token_ids[index], reason, stop_string,
            self._cumulative[index], self._logprobs[index],
        )

    def generation(self, unfinished: StopReason = "abort") -> Generation:
        samples = [self.sample(i, unfinished) for i in range(len(self._stops))]
        return Generation(self.prompt_tokens, samples, self.cached_tokens)
