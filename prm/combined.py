"""One verifier from many weak ones: ``prm: "combined"`` and
``prm: "reward-free"``.

Each weak verifier gives a solution one number in [0, 1]:

* a step scorer the server has (the step checker, a PRM, the self-judge):
  its lowest step score, since a chain is as good as its weakest step;
* ``vote-share``: the share of the solutions scored together whose final
  answer is this one's (the plain vote, as a score; "the same answer" is
  :mod:`ponder.core.answers`' rule, the vote's own);
* ``trace-confidence``: DeepConf's trace confidence (lowest group), mapped
  to [0, 1];
* ``self-certainty`` and ``mean-logprob``: the reward-free scorers' readings
  of all the tokens so far.

The combination is ``sigmoid(bias + sum(w_i * part_i))`` with weights that
``ponder calibrate`` fits (:mod:`ponder.prm.combination`). It is causal: the
score of step k reads only steps 1..k, so a search can pass known scores
along; only a finished step with a final answer has a vote share, so
solutions compare as wholes at their last step (``aggregate = "last"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from ponder.core.answers import answer_shares
from ponder.core.confidence import TOP_K, trace_confidence
from ponder.core.generation import TokenLogprob
from ponder.core.policy import trace_part
from ponder.core.scoring import ProcessRewardModel, Solution, StepScores
from ponder.core.tasks import gather_all
from ponder.prm.combination import Weights
from ponder.prm.reward_free import certainty, geometric_mean_probability

REWARD_FREE_PARTS = ("vote-share", "trace-confidence", "self-certainty", "mean-logprob")
"""The parts every server can compute from the samples alone."""
TRACE_WINDOW = 64
"""Tokens per DeepConf group: short, so that one confused step shows in a
short answer (DeepConf's 2048 suits long reasoning traces)."""
NEUTRAL = 0.5


class Combined:
    aggregate = "last"
    reads_logprobs: int | None = TOP_K

    def __init__(self, weights: Mapping[str, float], judges: Mapping[str, ProcessRewardModel]):
        """``weights``: part name (or ``bias``) to weight; ``judges``: the
        step scorers among the parts, by name."""
        names = tuple(name for name in weights if name != "bias")
        self.weights = Weights(names, tuple(weights[n] for n in names), weights.get("bias", 0.0))
        self.judges = {name: judges[name] for name in names if name in judges}
        self.compares_solutions = "vote-share" in names
        """A vote share is a share of the solutions scored together."""

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """The judges see every solution whole (``known`` dropped): their
        part is a minimum over all steps, which the known combined scores
        cannot give back."""
        whole = [replace(s, known=()) for s in solutions]
        judged = dict(zip(self.judges, await gather_all(
            *(judge.score(question, whole) for judge in self.judges.values()))))
        shares = answer_shares([s.answer for s in solutions],
                               solutions[0].answer_format if solutions else "auto")
        scores, parts = [], []
        for index, solution in enumerate(solutions):
            prefixes = [self._parts(solution, k, shares[index],
                                    {n: j.scores[index] for n, j in judged.items()})
                        for k in range(len(solution.known) + 1, len(solution.steps) + 1)]
            scores.append([*solution.known,
                           *(self.weights.score([p[n] for n in self.weights.names])
                             for p in prefixes)])
            parts.append(prefixes[-1] if prefixes else {})
        return StepScores(scores, sum(j.tokens for j in judged.values()), parts=parts)

    def _parts(self, solution: Solution, steps: int, share: float,
               judged: Mapping[str, list[float]]) -> dict[str, float]:
        """Every weighted part of the solution's first ``steps`` steps."""
        tokens = [t for step in (solution.logprobs or ())[:steps] for t in step]
        finished = steps == len(solution.steps) and solution.answer is not None
        readings: dict[str, Callable[[], float]] = {
            "vote-share": lambda: share if finished else 0.0,
            "trace-confidence": lambda: _read(tokens, _trace),
            "self-certainty": lambda: _read(tokens, certainty),
            "mean-logprob": lambda: _read(tokens, geometric_mean_probability),
        }
        parts = {}
        for name in self.weights.names:
            if name in judged:
                parts[name] = min(judged[name][:steps], default=NEUTRAL)
            else:
                parts[name] = readings[name]()
        return parts


def _read(tokens: Sequence[TokenLogprob], reading: Callable[[Sequence[TokenLogprob]], float]
          ) -> float:
    return reading(tokens) if tokens else NEUTRAL


def _trace(tokens: Sequence[TokenLogprob]) -> float:
    return trace_part(trace_confidence(tokens, "lowest_group", TRACE_WINDOW))

