"""Thinking budgets for models that think in tags: s1's budget forcing
(Muennighoff et al. 2025), for every sample of every strategy.

* Cap (``max_tokens``): a sample still thinking when it has thought that
  many tokens gets the end-of-thinking marker appended, and goes on to
  answer, rather than being cut off before any answer.
* Extend (``min_tokens``): a sample that ends its thinking earlier has the
  marker taken back and a continuation word ("Wait") appended, so it thinks
  on, at most ``max_extensions`` times.

Both are built on the step contract of :mod:`ponder.core.generation`: the
thinking phase stops at the marker (a stop string, kept in the output so its
tokens can be taken back), and every next phase continues from the sample's
own token ids (:meth:`Prompt.continued`), so the engine's prefix cache serves
it. :class:`BudgetForcing` is a :class:`Generator` over another, so no
strategy knows it is there; each call it makes is metered like any other.
The markers come from the server's reasoning parser, never from strings
written here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from ponder.core.generation import Generation, Generator, Prompt, Sample, SampleDelta, Sampling
from ponder.core.tasks import gather_all


@dataclass(frozen=True)
class ThinkingMarkers:
    """How the served model's thinking ends, in text and token ids."""

    end: str
    end_ids: tuple[int, ...]
    close: str
    """What a forced end appends: the end marker, on a line of its own."""
    close_ids: tuple[int, ...]
    wait: str
    """What an extension appends in place of the end marker."""
    wait_ids: tuple[int, ...]


@dataclass(frozen=True)
class ThinkingBudget:
    max_tokens: int | None = None
    min_tokens: int = 0
    max_extensions: int = 2


@dataclass
class _Phase:
    """One child's sample so far, and how its thinking went."""

    sample: Sample
    thought: int
    """Thinking tokens before this sample's first token."""
    extensions: int = 0


class BudgetForcing:
    def __init__(
        self, inner: Generator, markers: ThinkingMarkers, budget: ThinkingBudget,
        charge: Callable[[int], None] = lambda tokens: None,
    ) -> None:
        self._inner = inner
        self._markers = markers
        self._budget = budget
        self._charge = charge
        """Counts the tokens forcing writes into a sample (the end marker,
        "Wait") as the run's output: they are in the text the client gets,
        though no engine call generated them."""

    async def render(self, prompt: Prompt) -> Prompt:
        return await self._inner.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._inner.count_tokens(token_ids, chars)

    def _thought_before(self, prompt: Prompt) -> int | None:
        """Tokens already thought in ``prompt``'s continuation, or None when
        its thinking is over (the end marker is in it)."""
        ids, end = prompt.continuation, self._markers.end_ids
        if any(tuple(ids[i:i + len(end)]) == end for i in range(len(ids) - len(end) + 1)):
            return None
        return len(ids)

    def _thinking(self, sampling: Sampling, thought: int) -> Sampling:
        """The sampling of a thinking phase: it stops at the end marker, kept
        in the output, and at the cap."""
        cap = sampling.max_tokens
        if self._budget.max_tokens is not None:
            left = max(1, self._budget.max_tokens - thought)
            cap = left if cap is None else min(cap, left)
        return replace(sampling, stop=(*sampling.stop, self._markers.end), include_stop=True,
                       max_tokens=cap)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        thought = self._thought_before(prompt)
        if thought is None:
            return await self._inner.generate(prompt, n, sampling)
        first = await self._inner.generate(prompt, n, self._thinking(sampling, thought))
        samples = await gather_all(*(
            self._finish(prompt, _Phase(sample, thought), sampling) for sample in first.samples
        ))
        return replace(first, samples=list(samples))

    async def _finish(self, prompt: Prompt, phase: _Phase, sampling: Sampling) -> Sample:
        """Force, extend or let be, until the sample answers or runs out."""
        while True:
            step = self._next_step(phase, sampling)
            if step is None:
                return phase.sample
            appended_ids, appended_text, thinking_again = step
            base = self._without_end(phase.sample) if thinking_again else phase.sample
            kept = Sample(base.text + appended_text, [*base.token_ids, *appended_ids],
                          base.stop_reason, base.stop_string, base.cumulative_logprob,
                          base.logprobs)
            self._charge(len(appended_ids))
            rest = _less(sampling, len(kept.token_ids))
            if rest is None:
                return kept
            continued = prompt.continued(kept.token_ids)
            if not thinking_again:
                more = (await self._inner.generate(continued, 1, rest)).samples[0]
                return kept.followed_by(more)
            thinking = self._thinking(rest, phase.thought + len(kept.token_ids))
            more = (await self._inner.generate(continued, 1, thinking)).samples[0]
            phase = _Phase(kept.followed_by(more), phase.thought, phase.extensions + 1)

    def _next_step(
        self, phase: _Phase, sampling: Sampling
    ) -> tuple[tuple[int, ...], str, bool] | None:
        """What to append and whether thinking goes on; None when the sample
        is done as it is."""
        sample, markers, budget = phase.sample, self._markers, self._budget
        if sample.stop_string == markers.end:
            thought = phase.thought + len(self._without_end(sample).token_ids)
            if thought < budget.min_tokens and phase.extensions < budget.max_extensions:
                return markers.wait_ids, markers.wait, True
            return (), "", False  # thinking over: now the answer
        thought = phase.thought + len(sample.token_ids)
        capped = (budget.max_tokens is not None and thought >= budget.max_tokens
                  and sample.stop_reason == "length")
        if capped and not _spent(sampling, len(sample.token_ids)):
            return markers.close_ids, markers.close, False
        return None

    def _without_end(self, sample: Sample) -> Sample:
        """The sample with its end marker taken back, text and tokens (as
        many tokens as it took to write the marker, however the model wrote
        it)."""
        chars, keep = self._whole_tokens(sample, len(sample.text) - len(self._markers.end))
        before = sample.text[:chars]
        logprobs = None if sample.logprobs is None else sample.logprobs[:keep]
        return Sample(before, list(sample.token_ids[:keep]),
                      "length", None, sample.cumulative_logprob, logprobs)

    def _whole_tokens(self, sample: Sample, chars: int) -> tuple[int, int]:
        """The longest prefix of at most ``chars`` characters that whole
        tokens make, as (characters, tokens): a token that straddles the
        marker (a space and its first characters, say) goes back with it."""
        count = self._inner.count_tokens
        tokens = count(sample.token_ids, chars)
        if tokens == 0 or count(sample.token_ids, chars + 1) > tokens:
            return chars, tokens  # the marker starts on a token boundary
        low, high = 0, chars  # the largest length the first tokens - 1 make
        while low < high:
            middle = (low + high + 1) // 2
            if count(sample.token_ids, middle) <= tokens - 1:
                low = middle
            else:
                high = middle - 1
        return low, tokens - 1

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        """The forced samples as one delta each once they are whole: a
        thinking phase may be taken back (an extension), so its text cannot
        be sent before it is settled. Once the thinking is over (search's
        later steps), the inner stream passes through."""
        if self._thought_before(prompt) is None:
            async for delta in self._inner.stream(prompt, n, sampling):
                yield delta
            return
        generation = await self.generate(prompt, n, sampling)
        for index, sample in enumerate(generation.samples):
            yield SampleDelta(
                index, sample.text, sample.token_ids, generation.prompt_tokens,
                sample.stop_reason, sample.stop_string, sample.cumulative_logprob,
                sample.logprobs, generation.cached_tokens if index == 0 else 0,
            )


def _less(sampling: Sampling, used: int) -> Sampling | None:
    """``sampling`` for what is left of its token cap after ``used``."""
    if sampling.max_tokens is None:
        return sampling
    if used >= sampling.max_tokens:
        return None
    return replace(sampling, max_tokens=sampling.max_tokens - used)


def _spent(sampling: Sampling, used: int) -> bool:
    return sampling.max_tokens is not None and used >= sampling.max_tokens
