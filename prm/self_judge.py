"""``self-judge``: the served model judges each step itself.

For every step it is asked whether that step is correct, and the score is
P("Yes") / (P("Yes") + P("No")) read from the log-probabilities of its first
answer token, so it works with any served model and needs no second engine.
All steps of all candidates go to the generator at once; the prompts of one
candidate's steps share everything up to the step being judged (and all
candidates share the instructions and the question), so the engine's prefix
cache computes each part once. Only steps a search has not scored yet
(``Solution.known``) are judged.

It judges on the generator it is built with, which the server makes the
request's metered generator: what it reads and answers is charged to the
request, as ``usage.scoring_tokens`` and against its budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.core.generation import Generator, Prompt, Sample, Sampling
from ponder.core.scoring import Solution, StepScores
from ponder.core.tasks import gather_all

NEUTRAL = 0.5
TOP_LOGPROBS = 20
INSTRUCTIONS = (
    "You check solutions to math problems one step at a time. Read the problem "
    "and the steps so far, then say whether the last step is correct: its "
    "reasoning and its arithmetic. Answer with one word, Yes or No."
)
_JUDGE = Sampling(max_tokens=1, temperature=0.0, top_logprobs=TOP_LOGPROBS)


class SelfJudge:
    reads_logprobs: int | None = None

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """``tokens`` is 0: the metered generator it judges on counts them."""
        prefixes = [
            s.steps[:k] for s in solutions for k in range(len(s.known) + 1, len(s.steps) + 1)
        ]
        judged = iter(await gather_all(*(self._judge(question, p) for p in prefixes)))
        return StepScores(
            [[*s.known, *(next(judged) for _ in s.new_steps)] for s in solutions], tokens=0
        )

    async def _judge(self, question: str, steps: Sequence[str]) -> float:
        generation = await self.generator.generate(judge_prompt(question, steps), 1, _JUDGE)
        return yes_probability(generation.samples[0])


def judge_prompt(question: str, steps: Sequence[str]) -> Prompt:
    """The question about the last of ``steps``. Everything before the final
    line is the same for the next step's prompt, so it is a cache hit."""
    shown = "".join(f"Step {k}: {step}\n\n" for k, step in enumerate(steps, start=1))
    content = (
        f"{INSTRUCTIONS}\n\nProblem: {question}\n\nSolution steps:\n\n{shown}"
        f"Is step {len(steps)} correct? Answer Yes or No."
    )
    return Prompt(messages=({"role": "user", "content": content},))


def yes_probability(sample: Sample) -> float:
    """P(Yes) normalised against P(No) over the first token's alternatives,
    counting every spelling of each (" Yes", "yes", "YES"); NEUTRAL when the
    judge put neither among its top choices."""
    first = sample.logprobs[0].top if sample.logprobs else ()
    yes = _probability(first, "yes")
    no = _probability(first, "no")
    return yes / (yes + no) if yes + no > 0 else NEUTRAL


def _probability(alternatives: Sequence[tuple[str, float]], word: str) -> float:
    return sum(math.exp(lp) for token, lp in alternatives if token.strip().lower() == word)
