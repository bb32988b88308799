"""Votes over extracted answers, shared by self-consistency and PRM-weighted
best-of-N: equivalence classes built as samples finish, the deterministic
winner, and the early-stopping rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder.core.generation import Sample
from ponder.strategies.answers import AnswerFormat, answers_equivalent, normalise_answer


@dataclass
class AnswerClass:
    answer: str
    members: list[int] = field(default_factory=list)
    weight: float = 0.0

    @property
    def count(self) -> int:
        return len(self.members)


class VoteBook:
    """Answer classes in first-seen order. Each new answer is compared with
    one representative per class, so n samples cost O(n * classes)
    comparisons, as they arrive (no re-tally from scratch)."""

    def __init__(self, answer_format: AnswerFormat) -> None:
        self.answer_format = answer_format
        self.classes: list[AnswerClass] = []

    def add(self, index: int, answer: str | None, weight: float = 1.0) -> None:
        if answer is None:
            return  # no extractable answer: no vote
        for answer_class in self.classes:
            if answers_equivalent(answer_class.answer, answer, self.answer_format):
                break
        else:
            answer_class = AnswerClass(normalise_answer(answer, self.answer_format))
            self.classes.append(answer_class)
        answer_class.members.append(index)
        answer_class.weight += weight

    def counts(self) -> dict[str, int]:
        return {c.answer: c.count for c in self.classes}

    def winner(self, samples: Sequence[Sample], weighted: bool = False) -> AnswerClass | None:
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

    def best_member(self, answer_class: AnswerClass, samples: Sequence[Sample]) -> int:
        return max(answer_class.members, key=lambda m: (samples[m].mean_logprob, -m))

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
