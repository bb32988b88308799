"""``particle_filtering``: step-level search as probabilistic inference
(Puri et al. 2025, "A Probabilistic Inference Approach to Inference-Time
Scaling of LLMs using Particle-Based Monte Carlo Methods"; its-hub's main
algorithm).

Beam search keeps the best lines and drops the rest for good; a particle
filter keeps a population whose make-up follows the evidence, so a line the
scorer rates a little low early is not lost. Each round every live particle
gets ONE next step; the scorer scores the new steps in one batched call;
each particle's weight is a softmax over the logit of its last step score
(at ``weight_temperature``); then ``n`` particles are drawn with replacement
by weight (when the effective sample size falls below ``ess_threshold`` of
n). A particle drawn k times continues k times, as one engine request with
``n=k`` from its own token ids, so the prefix cache serves every copy.
Complete particles keep their weight and their place until the end. The
answer is the heaviest complete particle, or the weighted vote over them.

It runs on the round machinery of :mod:`ponder.strategies.search` (one
subtree of ``n`` slots, one continuation each) through its public hooks;
only which lines live on differs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from ponder.core.aggregate import Aggregate
from ponder.core.generation import Generator, Prompt
from ponder.core.scoring import ProcessRewardModel
from ponder.strategies.base import Emitter, ParticleRound, StrategyResult, Task
from ponder.strategies.search import Lane, Search, SearchConfig, SearchShape, run_search
from ponder.strategies.search_nodes import Node, best_first

Resampling = Literal["multinomial", "systematic"]
SCORE_FLOOR = 1e-6
"""Scores are clipped to [floor, 1 - floor] before their logit is taken."""


class Config(SearchConfig):
    name: Literal["particle_filtering"] = "particle_filtering"
    n: int = Field(16, ge=1, le=1024, description="Particles.")
    aggregate: Aggregate = Field(
        "last", description="Step scores to one solution score, for the final choice "
        "(the weights always read the last step's score, as the paper does)."
    )
    weight_temperature: float = Field(
        1.0, gt=0, le=100, description="Softmax temperature over the logits of the last step "
        "scores that makes the weights (not the sampling temperature).",
    )
    resampling: Resampling = Field(
        "multinomial", description="`multinomial` (the paper's) or `systematic` (less variance)."
    )
    ess_threshold: float = Field(
        1.0, ge=0, le=1, description="Resample only when the effective sample size falls below "
        "this share of n (1.0: every round).",
    )
    iterations: int = Field(
        1, ge=1, le=8, description="Particle Gibbs: each later iteration runs the filter again "
        "with the previous iteration's best particle kept as a reference that is never "
        "dropped (conditional SMC).",
    )

    @property
    def max_samples(self) -> int:
        return self.n * self.max_steps * self.iterations

    @classmethod
    def sized(cls, size: int) -> dict[str, Any]:
        return {"n": size}


def weights(scores: Sequence[float], temperature: float) -> list[float]:
    """Normalised softmax over the scores' logits: a score of 0.9 against 0.5
    weighs exp(logit(0.9)) = 9 to 1 at temperature 1."""
    logits = []
    for score in scores:
        clipped = min(max(score, SCORE_FLOOR), 1 - SCORE_FLOOR)
        logits.append(math.log(clipped / (1 - clipped)) / temperature)
    top = max(logits)
    raw = [math.exp(logit - top) for logit in logits]
    total = sum(raw)
    return [value / total for value in raw]


def effective_sample_size(normalised: Sequence[float]) -> float:
    return 1.0 / sum(w * w for w in normalised)


def resample(normalised: Sequence[float], count: int, how: Resampling,
             rng: random.Random) -> list[int]:
    """``count`` indices drawn with replacement by weight. Systematic: one
    uniform offset and ``count`` evenly spaced points over the cumulative
    weights, so an index is drawn floor or ceil of count x its weight times."""
    if how == "multinomial":
        return rng.choices(range(len(normalised)), weights=normalised, k=count)
    start = rng.random() / count
    drawn, cumulative, index = [], normalised[0], 0
    for point in (start + i / count for i in range(count)):
        while point > cumulative and index < len(normalised) - 1:
            index += 1
            cumulative += normalised[index]
        drawn.append(index)
    return drawn


class ParticleFilter(Search):
    """The search machine with particle filtering's hooks: each round's
    population is resampled by weight (:meth:`keep`), and in a Gibbs
    iteration the reference particle takes its slot as it was
    (:meth:`expand`)."""

    def __init__(self, task: Task, gen: Generator, scorer: ProcessRewardModel,
                 shape: SearchShape, cfg: Config) -> None:
        super().__init__(task, gen, scorer, shape)
        self.cfg = cfg
        self.rng = random.Random(task.sampling.seed)
        self.rounds: list[ParticleRound] = []
        self.reference: list[Node] = []
        """Particle Gibbs: the previous iteration's best particle, root first."""
        self._anchor: Node | None = None
        """The reference's node in the current round, which must live on."""
        self._iteration = 0

    async def run(self, emit: Emitter | None) -> None:
        for iteration in range(self.cfg.iterations):
            self._iteration = iteration
            if iteration:
                self.reference, self._anchor = self._best_path(), None
                self.restart()
                if emit is not None:
                    await emit.progress(
                        f"Iteration {iteration + 1}: the filter again, keeping the best "
                        f"particle so far (score {self.reference[-1].score:.2f}) as a reference.\n"
                    )
            await super().run(emit)

    async def expand(
        self, prompt: Prompt, frontier: Sequence[tuple[Node | None, int]], round_index: int,
        lane: Lane,
    ) -> list[Node]:
        """In a Gibbs iteration, the reference takes one slot as it was: its
        parent's slot gets its next node instead of a new step."""
        if round_index >= len(self.reference):
            return await super().expand(prompt, frontier, round_index, lane)
        anchor = self._anchor = self.reference[round_index]
        rest = list(frontier)
        slot = next((i for i, (node, _) in enumerate(rest) if node is anchor.parent), None)
        if slot is not None:
            del rest[slot]
        return [*await super().expand(prompt, rest, round_index, lane), anchor]

    def _best_path(self) -> list[Node]:
        population = self.beams[0]
        pool = [n for n in population if n.completed] or population
        best = best_first(pool)[0]
        path: list[Node] = []
        node: Node | None = best
        while node is not None:
            path.append(node)
            node = node.parent
        return path[::-1]

    def keep(self, children: list[Node], subtrees: Sequence[int], round_index: int) -> None:
        """One population (one subtree). A complete particle keeps its slot
        and weight for good: resampling fills only the live particles'
        slots, from the live particles, by weight. A finished line is never
        traded for one more copy of a live one (which would buy more
        tokens to replace an answer the filter already has)."""
        complete = [n for n in self.beams[0] if n.completed] + [c for c in children if c.completed]
        live = [c for c in children if not c.completed]
        population = complete + live
        normalised = weights([n.step_scores[-1] if n.step_scores else 0.0 for n in population],
                             self.cfg.weight_temperature)
        ess = effective_sample_size(normalised)
        resampled = bool(live) and ess < self.cfg.ess_threshold * len(population) - 1e-9
        if resampled:
            live_weights = normalised[len(complete):]
            total = sum(live_weights)
            drawn = resample([w / total for w in live_weights],
                             max(0, self.cfg.n - len(complete)), self.cfg.resampling, self.rng)
            self.beams[0] = complete + [live[i] for i in drawn]
        else:
            self.beams[0] = population
        if self._anchor is not None and self._anchor not in self.beams[0]:
            self.beams[0][-1] = self._anchor  # the reference is never dropped
        for node in self.beams[0]:
            node.kept = True
        self.rounds.append(ParticleRound(
            particles=[n.id for n in population], weights=[round(w, 6) for w in normalised],
            ess=round(ess, 3), resampled=resampled, kept=[n.id for n in self.beams[0]],
            iteration=self._iteration + 1,
            reference=None if self._anchor is None else self._anchor.id))

    def finals(self) -> list[Node]:
        """The final population's complete particles, each copy one voice in
        a weighted vote; else the population as it stands."""
        population = self.beams[0]
        return [n for n in population if n.completed] or population


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    scorer_name, scorer = task.verifiers.get(cfg.prm)
    shape = cfg.shape(subtrees=1, width=cfg.n, expand=1, task=task)
    search = ParticleFilter(task, gen, scorer, shape, cfg)
    result = await run_search(search, scorer_name, emit)
    result.rounds = search.rounds
    return result
