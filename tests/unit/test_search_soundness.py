"""A search's scores depend only on the question and the steps scored, not
on which engine requests happened to come back together; and no request
of a search outlives it: one that fails stops its siblings."""

from __future__ import annotations

import asyncio

import pytest

from ponder.core.generation import Generation, Prompt, Sampling
from ponder.prm.combined import Combined
from ponder.strategies import beam_search, dvts
from ponder.strategies.base import Task, Verifiers

from ..fakes import ScriptedPRM, WrappedGenerator, execute
from .test_search import SCORES, TREE, _task, beam, tree_generator


class Timed(WrappedGenerator):
    """The scripted tree, each continuation answered after the delay
    ``delays`` gives its text (0 by default: at once)."""

    def __init__(self, delays: dict[str, float]) -> None:
        super().__init__(tree_generator(TREE))
        self.delays = delays

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        await asyncio.sleep(self.delays.get(self.inner.text_of(prompt.continuation), 0.0))
        return await self.inner.generate(prompt, n, sampling)


def _voting_task() -> Task:
    """Scored by a combination that reads the vote share, which compares
    each solution with the others scored with it."""
    combined = Combined({"bias": -1.0, "vote-share": 2.0, "judge": 1.0},
                        {"judge": ScriptedPRM(SCORES)})
    task = _task(ScriptedPRM(SCORES))
    return Task(task.prompt, task.sampling, task.splitter, Verifiers.of(default="c", c=combined))


async def test_scores_do_not_depend_on_how_requests_interleave() -> None:
    """Round two asks for X's and Y's continuations in two requests. At once
    they return in one turn of the loop; with X's held back, Y's return
    alone. A batcher that merged whatever arrived together would score Y's
    finished lines' vote share over 4 solutions in one run and 2 in the
    other."""
    together = await execute(_voting_task(), Timed({}), beam(beam_width=2, expand=2))
    apart = await execute(_voting_task(), Timed({"Step X\n\n": 0.05}),
                          beam(beam_width=2, expand=2))
    assert together.tree is not None and apart.tree is not None

    def scores(tree: list) -> dict[str, float]:
        return {node.step: round(node.score, 9) for node in tree}

    assert scores(together.tree) == scores(apart.tree)
    assert together.answer == apart.answer


class Failing(WrappedGenerator):
    """The scripted tree, where X's continuation fails after a moment and
    every other request of that round hangs until it is cancelled."""

    def __init__(self) -> None:
        super().__init__(tree_generator(TREE))
        self.cancelled: list[str] = []
        self.finished: list[str] = []

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        text = self.inner.text_of(prompt.continuation)
        if text == "Step X\n\n":
            await asyncio.sleep(0.01)
            raise RuntimeError("the engine failed on X")
        if text:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(text)
                raise
        self.finished.append(text)
        return await self.inner.generate(prompt, n, sampling)


@pytest.mark.parametrize("config", [
    beam(beam_width=4, expand=1),  # one lane, a request per line
    dvts.Config(n=4, expand=1, prompt="direct"),  # a lane per line
], ids=["beam lines", "dvts lanes"])
async def test_one_failed_request_stops_the_others(
    config: beam_search.Config | dvts.Config,
) -> None:
    gen = Failing()
    with pytest.raises(RuntimeError, match="failed on X"):
        await asyncio.wait_for(execute(_task(ScriptedPRM(SCORES)), gen, config), timeout=10)
    # Y, Z and W were generating when X failed: each was stopped, none ran on.
    assert sorted(gen.cancelled) == ["Step W\n\n", "Step Y\n\n", "Step Z\n\n"]
    assert gen.finished == [""]  # only the first round's one request ended
