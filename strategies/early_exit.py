"""Early exit inside one chain: certainty probes as in Dynasor-CoT (Fu et
al. 2024/2025, arXiv 2412.20993), for every sample of the strategies that
take ``early_exit``.

Every ``every`` tokens a probe forks the chain by token ids (the engine's
prefix cache serves its prompt) with a cue that asks for the answer now: the
end of thinking for a model that thinks in tags (its reasoning parser's
marker, as Dynasor closes the thinking block), the answer marker of the
step-by-step prompt, or "The final answer is" after messages sent as they
are. The probe writes one short line, greedily. Once ``agree`` probes in a
row give the same answer, the chain is stopped in the engine and its
answer stands: the chain as it was where the last agreeing probe forked,
the cue, and that probe's line. No other probe reaches the text; every
probe token is counted (in the completion tokens, and on a line of its
own as probe tokens).

The chain is not paused while a probe runs. What it writes past a probe's
fork is held back until that probe has answered, so a stopped chain is cut
exactly at its fork, and its text does not depend on timing (the tokens it
wrote meanwhile are counted, though not kept). A chain that ends by itself
first keeps its own end, and its pending probes are cancelled.
:class:`EarlyExit` is a :class:`Generator` over another, as the thinking
budget is, so the strategies it serves do not know it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from ponder.core.answers import AnswerFormat, answers_equivalent
from ponder.core.generation import (
    Generation,
    Generator,
    Prompt,
    RequestRejected,
    Sample,
    SampleCollector,
    SampleDelta,
    Sampling,
    TokenLogprob,
)
from ponder.strategies.answers import extract_answer
from ponder.strategies.traces import TokenEnds, Traces

PROBE_STOP = "\n"
"""A probe answers in one line."""


class EarlyExitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every: int = Field(64, ge=1, description="Tokens of the chain between probes.")
    agree: int = Field(
        2, ge=1, le=32, description="Probes in a row that must give the same answer to stop "
        "the chain.",
    )
    probe_tokens: int = Field(16, ge=1, le=256, description="The most tokens one probe writes.")


@dataclass(frozen=True)
class Cue:
    """What a probe appends to a chain, as text and as token ids."""

    text: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class AnswerCues:
    """The cues a server's model is probed with, tokenised by the server."""

    marker: Cue
    """After the step-by-step prompt: its own final-answer marker."""
    plain: Cue
    """After messages sent as they are."""
    thinking: Cue | None = None
    """For a model that thinks in tags: the end of its thinking."""

    def for_style(self, style: str) -> Cue:
        if self.thinking is not None:
            return self.thinking
        return self.marker if style == "cot" else self.plain


@dataclass
class _Chain:
    """One chain on its way: its deltas, those held back, and its probes."""

    ends: TokenEnds = field(default_factory=TokenEnds)
    held: list[SampleDelta] = field(default_factory=list)
    released: int = 0
    """Tokens already passed on."""
    next_probe: int = 0
    probes: dict[int, asyncio.Task[Sample | None]] = field(default_factory=dict)
    """Fork point (tokens) -> the probe forked there, in fork order."""
    answers: list[tuple[int, str | None, Sample | None]] = field(default_factory=list)
    """(fork, answer, probe) of each probe that answered, in fork order."""
    done: bool = False


@dataclass
class ExitLedger:
    """What early exit did, per child of the last call and in total."""

    exits: int = 0
    probes: int = 0
    exited: set[int] = field(default_factory=set)
    """Children of the last call whose probes agreed."""
    generated: dict[int, int] = field(default_factory=dict)
    """Child -> tokens generated for it: its chain (what was cut off too)
    and its probes."""
    probe_tokens: dict[int, int] = field(default_factory=dict)


class EarlyExit:
    def __init__(
        self, chain: Generator, probe: Generator, spec: EarlyExitSpec, cue: Cue,
        answer_format: AnswerFormat, charge: Callable[[int], None] = lambda tokens: None,
    ) -> None:
        self._chain = chain
        self._probe = probe
        self._spec = spec
        self._cue = cue
        self._format = answer_format
        self._charge = charge
        """Counts the cue's tokens, written into an exited chain's text."""
        self.ledger = ExitLedger()

    async def render(self, prompt: Prompt) -> Prompt:
        return await self._chain.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._chain.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        collected = SampleCollector(n)
        async for delta in self.stream(prompt, n, sampling):
            collected.add(delta)
        return collected.generation()

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        """Each child as its own engine request, so one can be stopped while
        the others go on. A continuation (a thinking budget's answer phase)
        is not a chain's start: it runs as it is."""
        if prompt.continuation:
            async for delta in self._chain.stream(prompt, n, sampling):
                yield delta
            return
        prompt = await self._chain.render(prompt)
        collected = SampleCollector(n)
        chains = [_Chain(next_probe=self._spec.every) for _ in range(n)]
        self.ledger.exited = set()
        self.ledger.generated = dict.fromkeys(range(n), 0)
        self.ledger.probe_tokens = dict.fromkeys(range(n), 0)
        wake: asyncio.Queue[int] = asyncio.Queue()
        try:
            async with (Traces(self._chain, prompt, sampling, range(n)) as traces,
                        contextlib.aclosing(_merged(traces, wake)) as waiting):
                async for item in waiting:
                    if isinstance(item, SampleDelta):
                        index = item.index
                        self.ledger.generated[index] += len(item.token_ids)
                        chain = chains[index]
                        if chain.done:
                            continue  # written before its stop took effect
                        self._take(chain, item, collected)
                        if item.stop_reason is None and chain.ends.tokens >= chain.next_probe:
                            self._fork(prompt, sampling, index, chain, collected, wake)
                    else:
                        index, chain = item, chains[item]
                        if chain.done:
                            continue
                    exit_probe = await self._settle(chain)
                    for delta in self._release(chain, exit_probe):
                        yield delta
                    if exit_probe is not None:
                        traces.stop(index)
                        yield self._answer(index, exit_probe, collected.prompt_tokens)
                    if all(c.done for c in chains):
                        break
        finally:
            for chain in chains:
                for task in chain.probes.values():
                    task.cancel()
            await asyncio.gather(*(t for c in chains for t in c.probes.values()),
                                 return_exceptions=True)

    def _take(self, chain: _Chain, delta: SampleDelta, collected: SampleCollector) -> None:
        chain.ends.add(len(delta.token_ids), len(delta.text))
        chain.held.append(delta)
        if collected.add(delta) is not None:
            chain.done = True  # ended by itself: its own end stands
            for task in chain.probes.values():
                task.cancel()
            chain.probes.clear()

    def _fork(
        self, prompt: Prompt, sampling: Sampling, index: int, chain: _Chain,
        collected: SampleCollector, wake: asyncio.Queue[int],
    ) -> None:
        at = chain.ends.tokens
        while chain.next_probe <= at:
            chain.next_probe += self._spec.every
        ids = list(collected.sample(index).token_ids)
        forked = prompt.continued([*ids, *self._cue.ids])
        task = asyncio.create_task(self._ask(forked, sampling, index))
        task.add_done_callback(lambda _task: wake.put_nowait(index))
        chain.probes[at] = task
        self.ledger.probes += 1

    async def _ask(self, forked: Prompt, sampling: Sampling, index: int) -> Sample | None:
        probing = Sampling(
            max_tokens=self._spec.probe_tokens, temperature=0.0, stop=(PROBE_STOP,),
            stop_token_ids=sampling.stop_token_ids,
            skip_special_tokens=sampling.skip_special_tokens,
            logprobs=sampling.logprobs, top_logprobs=sampling.top_logprobs,
        )
        try:
            probe = (await self._probe.generate(forked, 1, probing)).samples[0]
        except RequestRejected:
            return None  # no room left in the context to ask: no answer
        self.ledger.generated[index] += probe.num_tokens
        self.ledger.probe_tokens[index] += probe.num_tokens
        return probe

    async def _settle(self, chain: _Chain) -> Sample | None:
        """Reads the probes that answered, in fork order; the probe whose
        answer makes ``agree`` in a row, if one does."""
        while chain.probes:
            at, task = next(iter(chain.probes.items()))
            if not task.done():
                return None
            del chain.probes[at]
            probe = task.result()
            answer = None if probe is None else extract_answer(probe.text, self._format)
            chain.answers.append((at, answer, probe))
            recent = [a for _, a, _ in chain.answers[-self._spec.agree:]]
            if len(recent) == self._spec.agree and None not in recent and (
                len(set(recent)) == 1  # the same words: no need to ask math-verify
                or await asyncio.to_thread(self._agree, recent)
            ):
                return probe
        return None

    def _agree(self, answers: list[str | None]) -> bool:
        """math-verify may take milliseconds per comparison: off the event loop."""
        first = answers[0]
        assert first is not None
        return all(answers_equivalent(first, a, self._format) for a in answers[1:] if a)

    def _release(self, chain: _Chain, exit_probe: Sample | None) -> list[SampleDelta]:
        """The held deltas no pending probe can cut off; on an exit, those
        up to its fork, and the chain is done."""
        if exit_probe is not None:
            cut = chain.answers[-1][0]
            chain.done = True
            for task in chain.probes.values():
                task.cancel()
        else:
            cut = next(iter(chain.probes), None)
        released = []
        for delta in chain.held:
            if cut is not None and chain.released + len(delta.token_ids) > cut:
                break
            chain.released += len(delta.token_ids)
            released.append(delta)
        chain.held = [] if exit_probe is not None else chain.held[len(released):]
        return released

    def _answer(self, index: int, probe: Sample, prompt_tokens: int) -> SampleDelta:
        """The exited chain's last delta: the cue, and the line of the probe
        whose answer stands."""
        self.ledger.exits += 1
        self.ledger.exited.add(index)
        self._charge(len(self._cue.ids))
        self.ledger.generated[index] += len(self._cue.ids)
        logprobs = None
        if probe.logprobs is not None:
            cue = [TokenLogprob(self._cue.text if i == 0 else "", 0.0)
                   for i in range(len(self._cue.ids))]
            logprobs = cue + probe.logprobs
        return SampleDelta(index, self._cue.text + probe.text, [*self._cue.ids, *probe.token_ids],
                           prompt_tokens, "stop", None, None, logprobs)


async def _merged(
    traces: Traces, wake: asyncio.Queue[int]
) -> AsyncIterator[SampleDelta | int]:
    """The chains' deltas, and the index of a chain whenever one of its
    probes has answered, as they come."""
    deltas = aiter(traces)
    next_delta: asyncio.Task[SampleDelta] | None = asyncio.ensure_future(anext(deltas))
    next_wake = asyncio.ensure_future(wake.get())
    try:
        while next_delta is not None:
            done, _ = await asyncio.wait({next_delta, next_wake},
                                         return_when=asyncio.FIRST_COMPLETED)
            if next_wake in done:
                yield next_wake.result()
                next_wake = asyncio.ensure_future(wake.get())
            if next_delta in done:
                try:
                    delta = next_delta.result()
                except StopAsyncIteration:
                    next_delta = None
                    continue
                next_delta = asyncio.ensure_future(anext(deltas))
                yield delta
    finally:
        for task in (next_delta, next_wake):
            if task is not None:
                task.cancel()
