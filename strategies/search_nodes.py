"""The nodes of a step-level search tree: partial solutions, what they
cost, how they read as a sample or as a solution to score, and the order
in which they are kept."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.core.answers import AnswerFormat
from ponder.core.generation import Sample, StopReason, TokenLogprob
from ponder.core.scoring import Solution


@dataclass(eq=False)
class Node:
    id: int
    parent: Node | None
    subtree: int
    step: str
    """This step's text, as generated."""
    token_ids: tuple[int, ...]
    """The whole partial solution's."""
    text: str
    steps: tuple[str, ...]
    step_logprobs: tuple[tuple[TokenLogprob, ...], ...] | None
    own_logprobs: tuple[TokenLogprob, ...] | None
    """Of this node's own tokens only: a node holding its whole path's would
    make memory grow with depth times nodes (:meth:`path_logprobs` joins
    them for the few nodes whose whole sample is read)."""
    cumulative_logprob: float
    stop_reason: StopReason
    completed: bool
    order: tuple[int, ...] = ()
    """Its place among its parent's children, after its parent's: what breaks
    a tie of score and confidence the same way on every run (ids follow
    which request came back first, which timing decides)."""
    step_scores: tuple[float, ...] = ()
    step_labels: list[str] | None = None
    parts: dict[str, float] | None = None
    """What each weak verifier said of the line, from a combined scorer."""
    score: float = 0.0
    kept: bool = False
    answer: str | None = None
    """The final answer of a completed solution, for scorers that judge it."""
    answer_format: AnswerFormat = "auto"
    """How its answer compares with other solutions' (the search's)."""

    @property
    def depth(self) -> int:
        return 1 if self.parent is None else self.parent.depth + 1

    @property
    def new_tokens(self) -> int:
        return len(self.token_ids) - (0 if self.parent is None else len(self.parent.token_ids))

    @property
    def confidence(self) -> float:
        """Mean log-probability of the solution's tokens: what breaks ties."""
        return self.cumulative_logprob / len(self.token_ids) if self.token_ids else -math.inf

    def solution(self) -> Solution:
        known = () if self.parent is None else self.parent.step_scores
        return Solution(self.steps, known=known, logprobs=self.step_logprobs, answer=self.answer,
                        answer_format=self.answer_format)

    def path_logprobs(self) -> list[TokenLogprob] | None:
        """Of every token of the partial solution, root first; None when a
        node on the path came without them."""
        path: list[tuple[TokenLogprob, ...]] = []
        node: Node | None = self
        while node is not None:
            if node.own_logprobs is None:
                return None
            path.append(node.own_logprobs)
            node = node.parent
        return [token for own in reversed(path) for token in own]

    def as_sample(self) -> Sample:
        """A partial solution reads as one cut short."""
        return Sample(self.text, self.token_ids, self.stop_reason if self.completed else "length",
                      cumulative_logprob=self.cumulative_logprob, logprobs=self.path_logprobs())


def best_first(nodes: Sequence[Node]) -> list[Node]:
    """Highest score first, then confidence, then the earlier place."""
    by_place = sorted(nodes, key=lambda n: n.order)
    return sorted(by_place, key=lambda n: (n.score, n.confidence), reverse=True)


def joined_logprobs(
    parent: Node | None, new: tuple[tuple[TokenLogprob, ...], ...] | None
) -> tuple[tuple[TokenLogprob, ...], ...] | None:
    """A child's per-step log-probabilities: its parent's, then its own new
    steps'; None when any came without them."""
    if new is None or (parent is not None and parent.step_logprobs is None):
        return None
    return (() if parent is None else parent.step_logprobs or ()) + new
