"""Votes over extracted answers, shared by self-consistency and PRM-weighted
best-of-N: equivalence classes built as samples finish, the deterministic
winner, and the early-stopping rules."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.core.answers import AnswerGroup, AnswerGroups
from ponder.core.generation import Sample


class VoteBook(AnswerGroups):
    """Answer classes in first-seen order (:class:`AnswerGroups`: the one
    rule for when two answers are the same), with the vote's rules on top."""

    @property
    def classes(self) -> list[AnswerGroup]:
        return self.groups

    def counts(self) -> dict[str, int]:
        return {c.answer: c.count for c in self.classes}

    def winner(self, samples: Sequence[Sample], weighted: bool = False) -> AnswerGroup | None:
        """Most votes (or weight); ties go to the class whose best sample has
        the highest mean log-probability, then to the class seen first."""
        if not self.classes:
            return None
        order = {id(c): rank for rank, c in enumerate(self.classes)}
        return max(
            self.classes,
            key=lambda c: (
                c.weight if weighted else c.count,
                max(samples[m].mean_logprob for m in c.members),
                -order[id(c)],
            ),
        )

    def best_member(self, group: AnswerGroup, samples: Sequence[Sample]) -> int:
        return max(group.members, key=lambda m: (samples[m].mean_logprob, -m))

    def top_two(self) -> tuple[int, int]:
        counts = sorted((c.count for c in self.classes), reverse=True) + [0, 0]
        return counts[0], counts[1]


def decided(leader: int, runner_up: int, remaining: int) -> bool:
    """The leader cannot be caught (not even tied) by the samples still running."""
    return leader > runner_up + remaining


def leader_confidence(leader: int, runner_up: int) -> float:
    """Adaptive-Consistency's stopping statistic: with a uniform prior, the
    posterior probability that the leader's answer is more likely than the
    runner-up's, P(p > 1/2) for p ~ Beta(leader + 1, runner_up + 1). For
    integer parameters that is an exact binomial tail."""
    a, b = leader + 1, runner_up + 1
    trials = a + b - 1
    return sum(math.comb(trials, k) for k in range(a)) / 2**trials
