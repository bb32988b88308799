"""One scoring call for steps that arrive close together.

A search's lines do not arrive as one round: DVTS's subtrees advance on
their own, and beam search hands each engine request's steps to the scorer
as soon as the request returns. A scorer backed by a model (a PRM engine, a
remote PRM, the self-judge) is fastest when it sees many solutions in one
call, so the steps that arrive while a call is in flight, or in the same
turn of the event loop, wait for it and go together in the next call.

Only scorers whose scores do not depend on what they are scored with go
through here: one that compares solutions (``compares_solutions``) gets
its whole round explicitly from the search, since a merge decided by
timing would change its scores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from ponder.core.scoring import ProcessRewardModel, Solution, StepScores

Waiting = tuple[Sequence[Solution], "asyncio.Future[StepScores]"]


class ScoringBatcher:
    def __init__(self, scorer: ProcessRewardModel, question: str) -> None:
        self._scorer = scorer
        self._question = question
        self._waiting: list[Waiting] = []
        self._flushing: asyncio.Task[None] | None = None
        self.calls = 0
        """Scoring calls made (what the batching saves shows against the
        number of :meth:`score` calls)."""

    async def score(self, solutions: Sequence[Solution]) -> StepScores:
        """These solutions' scores, from a call they may share with others."""
        future: asyncio.Future[StepScores] = asyncio.get_running_loop().create_future()
        self._waiting.append((solutions, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def close(self) -> None:
        """Stops a call in flight (the search is over, or its client left)."""
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing

    async def _flush(self) -> None:
        batch: list[Waiting] = []
        try:
            while self._waiting:
                await asyncio.sleep(0)  # let steps that arrive in this turn join
                batch, self._waiting = self._waiting, []
                flat = [solution for solutions, _ in batch for solution in solutions]
                self.calls += 1
                try:
                    scored = await self._scorer.score(self._question, flat)
                except Exception as error:  # each waiting line sees the scorer's failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                _hand_out(batch, scored)
        finally:
            self._flushing = None
            for _, future in [*batch, *self._waiting]:
                future.cancel()  # a no-op for those already answered


def _hand_out(batch: Sequence[Waiting], scored: StepScores) -> None:
    start = 0
    for solutions, future in batch:
        end = start + len(solutions)
        if not future.done():
            future.set_result(StepScores(
                scored.scores[start:end], scored.tokens if start == 0 else 0,
                None if scored.labels is None else scored.labels[start:end],
                None if scored.parts is None else scored.parts[start:end]))
        start = end
