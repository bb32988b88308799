"""The one interface every step scorer keeps.

A process reward model (PRM) gives each step of a candidate solution a score
in [0, 1]. Learned PRMs, the rule-based step checker, the served model
judging itself and the reward-free confidence scorers are all the same thing
to a strategy: ``await scorer.score(question, solutions)``, every candidate
in one call, so a model-backed scorer can batch them in its engine.

Scores are causal: a step's score depends on the question and the steps up to
it, never on what follows. That is what lets a search pass a beam's known
scores along (``Solution.known``) and pay only for the new step.

A score depends on the question and the steps scored, never on timing. A
scorer that compares solutions with one another (the combined verifier's
vote share) says so (:func:`compares_solutions`), and is then given the
whole set to compare in one call: a search's whole round, a best-of-N's
every sample, never whatever other calls happened to be merged with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from ponder.core.aggregate import Aggregate
from ponder.core.answers import AnswerFormat
from ponder.core.generation import Generator, TokenLogprob


@dataclass(frozen=True)
class Solution:
    """A candidate as a scorer sees it."""

    steps: tuple[str, ...]
    known: tuple[float, ...] = ()
    """Scores of the first ``len(known)`` steps, already computed (a search
    node's parent): a scorer may return them as they are and score only the
    rest."""
    logprobs: tuple[tuple[TokenLogprob, ...], ...] | None = None
    """Each step's generated tokens, for scorers that read the model's own
    confidence; None when the sample carries none."""
    answer: str | None = None
    """The final answer the strategy extracted from a finished solution
    (None while a search is still extending it, or when it gave none): a
    scorer that checks the answer against the work (the step checker)
    judges the last step by it."""
    answer_format: AnswerFormat = "auto"
    """How ``answer`` compares with other solutions' answers, for a scorer
    that groups them (the combined verifier's vote share)."""

    @property
    def new_steps(self) -> tuple[str, ...]:
        return self.steps[len(self.known) :]


@dataclass
class StepScores:
    scores: list[list[float]]
    """Per candidate, one score in [0, 1] per step (empty for a candidate
    without steps)."""
    tokens: int
    """Tokens the scorer read (or generated, judging), reported as
    ``usage.scoring_tokens``."""
    labels: list[list[str]] | None = None
    """Per candidate, a name for each step's score (the step checker's
    levels, such as "grounded"), so a client can see why a candidate won;
    None from scorers whose scores are not levels."""
    parts: list[dict[str, float]] | None = None
    """Per candidate, what each weak verifier said of it as a whole, from
    scorers that combine several (``combined``); None from the rest."""


class ProcessRewardModel(Protocol):
    reads_logprobs: int | None
    """None: the scorer reads text only. k >= 0: it reads each step's token
    log-probabilities, with the k best alternatives at each position, which the
    strategy must then ask the generator for."""

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Score every step of every candidate solution to ``question`` in one
        call."""
        ...


def preferred_aggregate(scorer: ProcessRewardModel) -> Aggregate:
    """How a strategy turns this scorer's step scores into one solution
    score when the request does not say: ``min`` (a chain is as good as its
    weakest step), unless the scorer declares an ``aggregate`` of its own
    (a combined scorer's last step already weighs the whole solution)."""
    return cast(Aggregate, getattr(scorer, "aggregate", "min"))


def compares_solutions(scorer: ProcessRewardModel) -> bool:
    """Whether a solution's score depends on the other solutions scored with
    it (a scorer declares ``compares_solutions = True``)."""
    return bool(getattr(scorer, "compares_solutions", False))


class ScorerWrapper:
    """Base of a scorer around another (metering, timing): it declares what
    the inner one declares, the log-probabilities it reads, its aggregate
    and whether it compares solutions, so wrapping a scorer never changes
    how its scores are used."""

    def __init__(self, inner: ProcessRewardModel) -> None:
        self.inner = inner
        self.reads_logprobs = inner.reads_logprobs
        self.aggregate = preferred_aggregate(inner)
        self.compares_solutions = compares_solutions(inner)


class ScorerFailed(RuntimeError):
    """The scorer's model or server could not score: it failed, is down, or
    did not answer in time. Not the request's fault, so the server answers
    502, 503 or 504 (by ``reason``), never 400 or 500."""

    def __init__(
        self, message: str, reason: Literal["failed", "unavailable", "timeout"] = "failed"
    ) -> None:
        super().__init__(message)
        self.reason = reason


ScorerFactory = Callable[[Generator], ProcessRewardModel]
"""Builds one run's scorer from the generator it may judge with: the run's
metered generator, so what a judging scorer generates is charged to the run.
Scorers that generate nothing return one shared instance."""


def shared(scorer: ProcessRewardModel) -> ScorerFactory:
    """The factory of a scorer that every run uses as it is."""
    return lambda _generator: scorer
