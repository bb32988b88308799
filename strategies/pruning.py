"""Speculative rejection (Sun et al. 2024, "Fast Best-of-N Decoding via
Speculative Rejection"): best-of-N whose scorer reads the samples while
they are written and stops the worst early, so most of the N never run to
their end.

Every sample is its own engine request (``traces.py``), so one can be
stopped in the engine while the others go on. At each checkpoint (every
``every`` tokens) the scorer scores each running sample as it stood at that
token count, and only the share ``keep`` of the best (never fewer than the
strategy's final candidates, counting those already finished) goes on; the
rest are aborted at once. The survivors are not paused: they keep
generating while the scorer reads, and each checkpoint cuts every sample at
the same token count, so what is scored does not depend on timing. A causal
scorer is told the scores of the steps it already scored
(``Solution.known``) and scores only the new ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from statistics import fmean

from ponder.core.aggregate import Aggregate, aggregate
from ponder.core.generation import Generator, Prompt, Sample, SampleCollector, Sampling
from ponder.core.scoring import ProcessRewardModel
from ponder.core.steps import DEFAULT_STEPS, StepSpec
from ponder.strategies.fanout import check_distinct
from ponder.strategies.traces import OnEvent, TokenEnds, Traces


@dataclass(frozen=True)
class Pruning:
    every: int
    """Tokens between checkpoints."""
    keep: float
    """Share of the running samples kept at each checkpoint."""
    floor: int
    """Fewest samples that must reach their end (finished ones count)."""


@dataclass
class Checkpoint:
    """What one checkpoint saw and did, for ``include_candidates``."""

    tokens: int
    scores: dict[int, float]
    """Each running sample's score at this token count."""
    pruned: list[int]


@dataclass
class PrunedRun:
    samples: list[Sample]
    """In index order; a pruned sample as far as it got, ``abort``."""
    known: list[tuple[float, ...]]
    """Per sample, the scores of its steps that were whole at its last
    checkpoint (the final scoring reuses them)."""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    pruned_at: dict[int, int] = field(default_factory=dict)
    """Pruned sample -> the checkpoint (in tokens) that stopped it."""
    partial_scores: dict[int, float] = field(default_factory=dict)
    """Pruned sample -> its score when it was stopped."""


async def sample_pruned(
    gen: Generator, prompt: Prompt, sampling: Sampling, n: int, pruning: Pruning,
    scorer: ProcessRewardModel, question: str, how: Aggregate, report: OnEvent,
    steps: StepSpec = DEFAULT_STEPS,
) -> PrunedRun:
    check_distinct(n, sampling)
    collected = SampleCollector(n)
    progress = [TokenEnds() for _ in range(n)]
    run = PrunedRun([], [() for _ in range(n)])
    running, finished = set(range(n)), set()
    with_logprobs = scorer.reads_logprobs is not None

    async def checkpoint(at: int, traces: Traces) -> None:
        ids = sorted(running)
        solutions, whole, confidence = [], [], {}
        for index in ids:
            tokens, chars = progress[index].cut(at)
            partial = collected.sample(index)
            text = partial.text[:settled_end(partial.text, chars)]
            so_far = (partial.logprobs or [])[:tokens]
            confidence[index] = fmean(t.logprob for t in so_far) if so_far else -math.inf
            whole.append(_whole_steps(text, steps))
            solutions.append(replace(steps.solution(text, so_far if with_logprobs else None),
                                     known=run.known[index][:whole[-1]]))
        scored = await scorer.score(question, solutions)
        scores = {index: aggregate(s, how) for index, s in zip(ids, scored.scores)}
        for index, count, step_scores in zip(ids, whole, scored.scores):
            run.known[index] = tuple(step_scores[:count])
        kept = max(math.ceil(pruning.keep * len(ids)), pruning.floor - len(finished))
        # A coarse scorer ties many samples: the model's own confidence so
        # far (mean log-probability) orders them, then the index.
        ranked = sorted(ids, key=lambda i: (-scores[i], -confidence[i], i))
        stopped = sorted(ranked[kept:])
        for index in stopped:
            traces.stop(index)
            running.discard(index)
            run.pruned_at[index] = at
            run.partial_scores[index] = scores[index]
        run.checkpoints.append(Checkpoint(at, scores, stopped))
        await report(
            f"Checkpoint at {at} tokens: {len(ids) - len(stopped)} of {len(ids)} running "
            f"samples go on" + (f"; stopped {', '.join(str(i + 1) for i in stopped)}"
                                if stopped else "") + ".\n"
        )

    at = pruning.every
    async with Traces(gen, prompt, sampling, range(n)) as traces:
        async for delta in traces:
            index = delta.index
            if index in run.pruned_at:
                continue  # made before its stop took effect: counted, not kept
            progress[index].add(len(delta.token_ids), len(delta.text))
            if collected.add(delta) is not None:
                running.discard(index)
                finished.add(index)
            while running and all(progress[i].tokens >= at for i in running):
                await checkpoint(at, traces)
                at += pruning.every
    run.samples = [collected.sample(i) for i in range(n)]
    return run


def settled_end(text: str, end: int) -> int:
    """Where to cut ``text`` at ``end`` without splitting a number or word
    the model may still be writing: "36" cut after its "3" reads to a
    verifier as "12 * 3 = 3", a wrong claim, and a right sample would be
    pruned for it. A trailing number or word counts once something closes
    it, not when more text happens to have arrived, so what is scored does
    not depend on timing; what is held back is scored at the next
    checkpoint. Scripts written without spaces are not held back."""
    start = end
    while start > 0 and _may_go_on(text, start - 1):
        start -= 1
    return start


def _may_go_on(text: str, at: int) -> bool:
    """``text[at]``, the last character so far, may be part of a number or
    word that the next token extends ("3" of "36", "3." of "3.5")."""
    char = text[at]
    if char.isdigit() or (char.isascii() and char.isalpha()):
        return True
    return char in ".," and at > 0 and text[at - 1].isdigit()


def _whole_steps(text: str, steps: StepSpec) -> int:
    """Steps of ``text`` that a delimiter has closed: the last one may
    still grow."""
    cut = text.rfind(steps.delimiter)
    return len(steps.split(text[:cut])) if cut >= 0 else 0

