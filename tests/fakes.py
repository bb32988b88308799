"""A scripted generator: the strategies' unit tests drive them with it, since
the algorithms must not care where tokens come from. It keeps the
generator's contract as the engine does: stop strings (which may end inside
a token, whose id is then kept), stop reasons, continuation by token ids,
per-token log-probabilities, and prompt tokens counted per call."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

from ponder.core.generation import (
    Generation,
    Generator,
    Prompt,
    Sample,
    SampleDelta,
    Sampling,
    StopReason,
    TokenLogprob,
)
from ponder.core.metering import Allowance, Budget
from ponder.core.scoring import Solution, StepScores
from ponder.strategies import STRATEGIES
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task, TreeNode

# A "token" is a run of newlines, or a word or punctuation mark with the
# spaces before it (as a byte-level BPE tokenizer splits text).
_TOKEN = re.compile(r"\n+|[^\S\n]*\w+|[^\S\n]*[^\w\s]|[^\S\n]+")
_DIGIT_TOKEN = re.compile(r"\n+|[^\S\n]*(?:\d|[^\W\d]+)|[^\S\n]*[^\w\s]|[^\S\n]+")


def tokenize(text: str, digits: bool = False) -> list[str]:
    """Word pieces; with ``digits``, a number is one token per digit, as
    SmolLM2's and Llama's tokenizers write it."""
    return (_DIGIT_TOKEN if digits else _TOKEN).findall(text)


Script = Callable[[Prompt, int, Sampling], list[str]]


@dataclass(frozen=True)
class Abort:
    """A child whose stream was closed before it finished: the engine's
    abort, as the scripted engine saw it."""

    call: int
    """Which call (an index into ``calls``)."""
    index: int
    """Which child of that call."""
    tokens: int
    """Tokens it had made by then."""


@dataclass
class Cut:
    """One scripted text as the engine would return it."""

    pieces: list[str]
    ids: list[int]
    text: str
    reason: StopReason
    stop_string: str | None
    logprob: float | None
    """Per token, when the script gave the text a cumulative log-probability."""
    top: list[float] | None = None
    """Per token, the log-probability of each of its best alternatives, when
    the script gave the text some."""


@dataclass
class ScriptedGenerator:
    """Answers every call with the texts ``script`` gives for it. Each word
    piece gets a fresh token id, so token counts are exact and checkable;
    ``text_of`` reads a continuation back."""

    script: Script
    prompt_tokens: int = 7
    calls: list[tuple[Prompt, int, Sampling]] = field(default_factory=list)
    closed_streams: int = 0
    aborts: list[Abort] = field(default_factory=list)
    """Children cut off in the engine: streams closed while they still ran."""
    vocabulary: list[str] = field(default_factory=list)  # token id -> its text
    logprobs: dict[str, float] = field(default_factory=dict)  # text -> cumulative logprob
    step_seconds: float = 0.0
    """How long a streamed step takes, like an engine's decode step: lets a
    test's consumer act (vote, stop a sample) while the others run. At 0 a
    stream runs through without pausing."""
    top_logprobs: dict[str, float | list[float]] = field(default_factory=dict)
    """text -> the log-probability of every one of a token's k best
    alternatives (DeepConf's token confidence is minus it): one value for
    every token, or one per token (the last repeats)."""
    digit_tokens: bool = False
    """Numbers are written a digit per token (see ``tokenize``)."""

    @classmethod
    def of(cls, *texts: str) -> ScriptedGenerator:
        """The same texts for every call, cycled to ``n``."""
        return cls(lambda _p, n, _s: [texts[i % len(texts)] for i in range(n)])

    def encode(self, text: str) -> tuple[int, ...]:
        """Fresh ids for ``text``'s tokens (a cue the server would tokenise)."""
        pieces = tokenize(text)
        self.vocabulary.extend(pieces)
        return tuple(range(len(self.vocabulary) - len(pieces), len(self.vocabulary)))

    def text_of(self, token_ids: Sequence[int]) -> str:
        return "".join(self.vocabulary[i] for i in token_ids)

    async def render(self, prompt: Prompt) -> Prompt:
        if prompt.token_ids is not None:
            return prompt
        return replace(prompt, token_ids=(-1,) * self.prompt_tokens)

    def _cuts(self, prompt: Prompt, n: int, sampling: Sampling) -> list[Cut]:
        self.calls.append((prompt, n, sampling))
        texts = self.script(prompt, n, sampling)
        assert len(texts) == n
        return [self._cut(text, sampling) for text in texts]

    def _cut(self, text: str, sampling: Sampling) -> Cut:
        pieces = tokenize(text, self.digit_tokens)
        reason: StopReason = "eos"
        stop_string = None
        so_far = ""
        for count, piece in enumerate(pieces, start=1):
            if sampling.max_tokens is not None and count > sampling.max_tokens:
                pieces, reason = pieces[: count - 1], "length"
                break
            found = [(so_far + piece).find(s, max(0, len(so_far) - len(s) + 1))
                     for s in sampling.stop]
            hits = [(at, s) for at, s in zip(found, sampling.stop) if at >= 0]
            so_far += piece
            if hits:
                at, stop_string = min(hits)
                pieces, reason = pieces[:count], "stop"
                so_far = so_far[: at + len(stop_string) if sampling.include_stop else at]
                break
        ids = list(range(len(self.vocabulary), len(self.vocabulary) + len(pieces)))
        self.vocabulary.extend(pieces)
        cumulative = self.logprobs.get(text)
        per_token = (cumulative / len(tokenize(text, self.digit_tokens))
                     if cumulative is not None and text else None)
        top = self.top_logprobs.get(text)
        if isinstance(top, (int, float)):
            top = [float(top)]
        if top is not None:
            top = [top[min(i, len(top) - 1)] for i in range(len(pieces))]
        return Cut(pieces, ids, so_far, reason, stop_string, per_token, top)

    @staticmethod
    def _prompt_tokens(prompt: Prompt) -> int:
        return len(prompt.token_ids or ()) + len(prompt.continuation)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        prompt = await self.render(prompt)
        samples = [
            Sample(cut.text, cut.ids, cut.reason, cut.stop_string,
                   *_logprobs(cut, len(cut.pieces), sampling))
            for cut in self._cuts(prompt, n, sampling)
        ]
        return Generation(self._prompt_tokens(prompt), samples)

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        prompt = await self.render(prompt)
        cuts = self._cuts(prompt, n, sampling)
        call = len(self.calls) - 1
        prompt_tokens = self._prompt_tokens(prompt)
        shown = [0] * n
        made = [0] * n
        try:
            # Round-robin over the children, one token each, like an engine
            # step; with step_seconds, others run between steps.
            for step in range(max(len(cut.pieces) for cut in cuts)):
                if self.step_seconds:
                    await asyncio.sleep(self.step_seconds)
                for index, cut in enumerate(cuts):
                    if step >= len(cut.pieces):
                        continue
                    last = step == len(cut.pieces) - 1
                    text = cut.text[shown[index] :] if last else cut.pieces[step]
                    shown[index] += len(text)
                    made[index] += 1
                    cumulative, logprobs = _logprobs(cut, step + 1, sampling)
                    yield SampleDelta(
                        index, text, [cut.ids[step]], prompt_tokens,
                        cut.reason if last else None, cut.stop_string if last else None,
                        cumulative, logprobs[-1:] if logprobs else None,
                    )
        finally:
            self.closed_streams += 1
            self.aborts += [Abort(call, index, made[index])
                            for index, cut in enumerate(cuts) if made[index] < len(cut.pieces)]

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        covered = 0
        for count, token in enumerate(token_ids):
            if covered >= chars:
                return count
            covered += len(self.vocabulary[token])
        return len(token_ids)


class WrappedGenerator:
    """A generator around another, for a test that changes when or how some
    calls answer (override :meth:`generate`)."""

    def __init__(self, inner: ScriptedGenerator) -> None:
        self.inner = inner

    async def render(self, prompt: Prompt) -> Prompt:
        return await self.inner.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self.inner.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        return await self.inner.generate(prompt, n, sampling)


def _logprobs(
    cut: Cut, tokens: int, sampling: Sampling
) -> tuple[float | None, list[TokenLogprob] | None]:
    """The cumulative log-probability of the first ``tokens`` tokens and
    their entries (with ``top_logprobs`` alternatives each), when asked for
    and scripted."""
    if (cut.logprob is None and cut.top is None) or not (
        sampling.logprobs or sampling.top_logprobs
    ):
        return None, None
    logprob = cut.logprob if cut.logprob is not None else -0.1
    entries = [
        TokenLogprob(piece, logprob, tuple(
            (f"alt{k}", cut.top[i]) for k in range(sampling.top_logprobs)
        ) if cut.top is not None else ())
        for i, piece in enumerate(cut.pieces[:tokens])
    ]
    return logprob * tokens, entries


async def execute(
    task: Task, gen: Generator, config: StrategyConfig,
    emit: Emitter | None = None, budget: Budget | None = None,
) -> StrategyResult:
    """A metered run of ``config``'s strategy, as the server makes it."""
    strategy = STRATEGIES[config.name]  # type: ignore[attr-defined]
    return await strategy.execute(task, gen, config, emit, Allowance(budget))


def as_solutions(*steps: Sequence[str]) -> list[Solution]:
    return [Solution(tuple(s)) for s in steps]


class ScriptedPRM:
    """Scores each step by a table keyed on the step's text (0.5 if absent),
    and only the steps it is not told the scores of, as a causal scorer may."""

    reads_logprobs: int | None = None

    def __init__(self, table: dict[str, float], tokens_per_step: int = 10) -> None:
        self.table = table
        self.tokens_per_step = tokens_per_step
        self.calls: list[tuple[str, list[list[str]]]] = []
        """Each call's question and the steps it scored, per solution."""

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        self.calls.append((question, [list(s.new_steps) for s in solutions]))
        scores = [[*s.known, *(self.table.get(step, 0.5) for step in s.new_steps)]
                  for s in solutions]
        return StepScores(scores, self.tokens_per_step * sum(len(s.new_steps) for s in solutions))


class RecordingEmitter:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.content_tokens: list[tuple[list[int], list[TokenLogprob] | None]] = []
        """Per content event: the ids and log-probabilities sent with it."""

    async def reasoning(self, text: str) -> None:
        self.events.append(("reasoning", text))

    async def content(
        self, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> None:
        self.events.append(("content", text))
        self.content_tokens.append((list(token_ids), None if logprobs is None else list(logprobs)))

    async def progress(self, text: str) -> None:
        self.events.append(("progress", text))

    async def tree(self, nodes: list[TreeNode]) -> None:
        self.events.append(("tree", str(len(nodes))))

    def text(self, kind: str) -> str:
        return "".join(t for k, t in self.events if k == kind)
