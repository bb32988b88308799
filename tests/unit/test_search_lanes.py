"""Search that does not wait for its slowest line: DVTS's subtrees advance
on their own, beam search scores each request's steps as they arrive, and
steps that arrive together are scored in one call. A gate holds one engine
request until something else has happened, which could not happen if the
search waited for the held request first (the test would time out)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ponder.core.generation import Generation, Prompt, Sampling
from ponder.core.scoring import Solution, StepScores
from ponder.strategies import beam_search, dvts

from ..fakes import ScriptedPRM, WrappedGenerator, execute
from .test_search import SCORES, TREE, _task, tree_generator

DVTS_TREE = {
    "": ["A\n\n", "B\n\n", "C\n\n", "D\n\n"],  # subtree 1 draws A and B, subtree 2 C and D
    "A\n\n": ["a1\n\n", "a2\n\n"], "A\n\na1\n\n": ["Answer: 1"], "A\n\na2\n\n": ["Answer: 2"],
    "D\n\n": ["d1\n\n", "d2\n\n"], "D\n\nd1\n\n": ["Answer: 4"], "D\n\nd2\n\n": ["Answer: 5"],
}
DVTS_SCORES = {"A": 0.9, "B": 0.1, "C": 0.1, "D": 0.9, "a1": 0.8, "a2": 0.3, "d1": 0.8,
               "d2": 0.3, "Answer: 1": 0.9, "Answer: 2": 0.9, "Answer: 4": 0.9, "Answer: 5": 0.9}
SECONDS = 5


class Gated(WrappedGenerator):
    """The scripted tree generator, holding a continuation of ``held`` until
    ``release`` is set; ``calls`` lists each continuation asked for, in order."""

    def __init__(self, tree: dict[str, list[str]], held: str,
                 opens: Callable[[str], bool] = lambda _text: False) -> None:
        super().__init__(tree_generator(tree))
        self.held, self.opens = held, opens
        self.release = asyncio.Event()
        self.calls: list[tuple[str, int | None]] = []

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        text = self.inner.text_of(prompt.continuation)
        self.calls.append((text, sampling.seed))
        if self.opens(text):
            self.release.set()
        if text == self.held:
            await asyncio.wait_for(self.release.wait(), SECONDS)
        return await self.inner.generate(prompt, n, sampling)


async def test_a_slow_subtree_does_not_hold_back_a_fast_one() -> None:
    # Subtree 2's second step is held until subtree 1 asks for its third.
    gen = Gated(DVTS_TREE, held="D\n\n", opens=lambda text: text.startswith("A\n\na"))
    result = await execute(_task(ScriptedPRM(DVTS_SCORES)), gen,  # type: ignore[arg-type]
                           dvts.Config(n=4, expand=2, prompt="direct"))
    texts = [text for text, _ in gen.calls]
    assert texts.index("A\n\na1\n\n") > texts.index("D\n\n")  # asked while D was held
    assert result.answer in {"1", "4"} and result.tree is not None
    assert {n.subtree for n in result.tree if n.completed} == {0, 1}


async def test_steps_that_arrive_together_are_scored_in_one_call() -> None:
    prm = ScriptedPRM(DVTS_SCORES)
    await execute(_task(prm), tree_generator(DVTS_TREE), dvts.Config(n=4, expand=2,
                                                                     prompt="direct"))
    assert len(prm.calls) == 3  # three rounds, both subtrees' steps scored together


class Signalling(ScriptedPRM):
    """Tells when it has scored a step that starts with ``prefix``."""

    def __init__(self, table: dict[str, float], prefix: str) -> None:
        super().__init__(table)
        self.prefix, self.scored = prefix, asyncio.Event()

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        scored = await super().score(question, solutions)
        if any(s.steps[-1].startswith(self.prefix) for s in solutions):
            self.scored.set()
        return scored


async def test_beam_search_scores_each_request_as_it_returns() -> None:
    prm = Signalling(SCORES, prefix="X so")
    gen = Gated(TREE, held="Step Y\n\n")
    gen.release = prm.scored  # Y's steps wait until X's were scored
    result = await execute(_task(prm), gen,  # type: ignore[arg-type]
                           beam_search.Config(beam_width=2, expand=2, prompt="direct"))
    assert result.answer == "7"


async def test_a_seeded_search_repeats_however_its_lanes_interleave() -> None:
    fast = Gated(DVTS_TREE, held="none")
    slow = Gated(DVTS_TREE, held="D\n\n", opens=lambda text: text.startswith("A\n\na"))
    for gen in (fast, slow):
        await execute(_task(ScriptedPRM(DVTS_SCORES), seed=40), gen,  # type: ignore[arg-type]
                      dvts.Config(n=4, expand=2, prompt="direct"))
    assert sorted(fast.calls) == sorted(slow.calls)
    seeds = [seed for _, seed in fast.calls]
    assert len(set(seeds)) == len(seeds)


TIED_TREE = {
    "": ["A\n\n", "B\n\n", "C\n\n", "D\n\n"],
    "A\n\n": ["a1\n\n", "a2\n\n"], "B\n\n": ["b1\n\n", "b2\n\n"],
    "A\n\na1\n\n": ["Answer: 1"], "B\n\nb1\n\n": ["Answer: 2"], "B\n\nb2\n\n": ["Answer: 3"],
}
TIED_SCORES = {"A": 0.9, "B": 0.9, "C": 0.1, "D": 0.1, "a1": 0.8, "a2": 0.3, "b1": 0.8,
               "b2": 0.8, "Answer: 1": 0.9, "Answer: 2": 0.9, "Answer: 3": 0.9}


async def test_ties_break_the_same_way_whichever_request_returns_first() -> None:
    """a1, b1 and b2 tie; the earlier places (a1, b1) are kept even when A's
    request returns last."""
    kept, first_made = [], []
    for gen in (Gated(TIED_TREE, held="none"),
                Gated(TIED_TREE, held="A\n\n", opens=lambda text: text == "B\n\n")):
        result = await execute(_task(ScriptedPRM(TIED_SCORES)), gen,  # type: ignore[arg-type]
                               beam_search.Config(beam_width=2, expand=2, prompt="direct"))
        assert result.votes is not None and result.tree is not None
        kept.append(set(result.votes))
        made = sorted((n.id, n.step.strip()) for n in result.tree if n.step.strip() in {"a1", "b1"})
        first_made.append(made[0][1])
    assert first_made == ["a1", "b1"]  # the held run's b1 came back first
    assert kept[0] == kept[1] == {"1", "2"}
