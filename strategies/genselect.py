"""``genselect``: the model reads its candidates whole and names the best
(generative selection: Toshniwal et al. 2025, as NVIDIA's AIMO-2 winner and
optillm run it).

n solutions are drawn in one fanned-out request; then a knock-out: the
candidates still in play are compared in small groups, the model writes a
comparison that ends in "Best solution: N", and each group's pick goes on
to the next round until one is left. Small groups keep long candidates
within the context; a group that still does not fit is split in two. Where
no vote can compare answers (free text, code, explanations), this is a way
to choose that needs no verifier; it pays off with a model that can judge
(a large one), not with a small one that cannot tell right arithmetic from
wrong. Every judging token is counted as the run's, and the rounds stream
as reasoning.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field

from ponder.core.generation import Generator, Prompt, RequestRejected, Sample, Sampling
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.fanout import fan_out
from ponder.strategies.prompts import apply_prompt, splitter_for
from ponder.strategies.reasoning import NoReasoning
from ponder.strategies.sampled import SampledAnswers, SolutionsConfig

JUDGE_INSTRUCTION = (
    "Below are a question and {count} candidate solutions to it. Check each solution's "
    "reasoning and answer, compare them, and decide which one is correct. End your reply with "
    "'Best solution: N', where N is the number of the best solution."
)
JUDGE_SEED = 7919
"""Judgements of round r are seeded ``seed + r * JUDGE_SEED``: apart from
the candidates' seeds (``seed`` to ``seed + n - 1``) for any n it allows."""
_PICK = re.compile(r"best solution\W{0,3}(?:is\W{0,3})?(?:number\W{0,3}|#)?(\d+)", re.IGNORECASE)


class Config(SolutionsConfig):
    name: Literal["genselect"] = "genselect"
    n: int = Field(8, ge=2, description="Candidate solutions to choose among.")
    group: int = Field(4, ge=2, le=16, description="Candidates the model compares at once.")
    judges: int = Field(1, ge=1, le=16, description="Judgements per group; the most named "
                        "candidate goes on (ties: the one whose answer most candidates give).")
    judge_temperature: float = Field(0.3, ge=0.0, le=2.0,
                                     description="Sampling temperature of the judgements.")
    judge_tokens: int = Field(256, ge=16, le=8192,
                              description="Most tokens one judgement may take.")

    @property
    def max_samples(self) -> int:
        """The candidates, and every group's judgements over all rounds (a
        knock-out of n plays fewer than n groups)."""
        return self.n + self.n * self.judges


@dataclass
class Match:
    """One group's judgement: who played, what each judgement named, who won."""

    members: list[int]
    picks: list[int | None]
    winner: int
    how: Literal["judged", "vote", "alone"]

    def shown(self) -> dict[str, Any]:
        return {"members": self.members, "picks": self.picks, "winner": self.winner,
                "how": self.how}


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    style = cfg.prompt_style(task)
    answers = SampledAnswers(splitter_for(style, task.splitter), cfg.answer_format(task), gen, task)
    if emit is not None:
        await emit.progress(f"Sampling {cfg.n} candidates for the model to choose among.\n")
    samples = (await fan_out(gen, apply_prompt(task.prompt, style), cfg.n, task.sampling)).samples
    extracted = await asyncio.to_thread(
        lambda: [answers.answer_of(i, s) for i, s in enumerate(samples)])
    knockout = Knockout(task, gen, cfg, samples, extracted, emit)
    chosen = await knockout.play()
    result = answers.result(samples, chosen, extracted[chosen])
    result.votes = dict(Counter(a for a in extracted if a is not None))
    result.selected = chosen
    result.rounds = [{"round": number, "groups": [m.shown() for m in matches]}
                     for number, matches in enumerate(knockout.rounds, start=1)]
    if emit is not None:
        await answers.emit_final(result, emit)
    return result


class Knockout:
    def __init__(self, task: Task, gen: Generator, cfg: Config, samples: Sequence[Sample],
                 answers: Sequence[str | None], emit: Emitter | None) -> None:
        self.task, self.gen, self.cfg, self.emit = task, gen, cfg, emit
        self.samples, self.answers = samples, answers
        self.support = Counter(a for a in answers if a is not None)
        self.rounds: list[list[Match]] = []

    async def play(self) -> int:
        alive = list(range(len(self.samples)))
        while len(alive) > 1:
            groups = [alive[i:i + self.cfg.group] for i in range(0, len(alive), self.cfg.group)]
            if self.emit is not None:
                await self.emit.progress(f"Round {len(self.rounds) + 1}: {len(alive)} "
                                         f"candidates in {len(groups)} groups.\n")
            matches: list[Match] = []
            self.rounds.append(matches)
            alive = list(await asyncio.gather(*(self._judge(g, matches) for g in groups)))
        return alive[0]

    async def _judge(self, members: list[int], matches: list[Match]) -> int:
        """The group's winner; a group too long for the context plays as two
        halves, then their winners (a pair that cannot be read together goes
        to the answer more candidates give)."""
        if len(members) == 1:
            return await self._record(matches, Match(members, [], members[0], "alone"))
        try:
            judged = await self.gen.generate(self._prompt(members), self.cfg.judges,
                                             self._sampling())
        except RequestRejected:
            if len(members) == 2:
                return await self._record(matches, Match(members, [], self._voted(members),
                                                         "vote"))
            half = len(members) // 2
            winners = await asyncio.gather(self._judge(members[:half], matches),
                                           self._judge(members[half:], matches))
            return await self._judge(list(winners), matches)
        picks = [pick(s.text, len(members)) for s in judged.samples]
        named = Counter(members[p] for p in picks if p is not None)
        if not named:
            return await self._record(matches, Match(members, picks, self._voted(members),
                                                     "vote"))
        top = max(named.values())
        winner = self._voted([m for m in members if named[m] == top])
        return await self._record(matches, Match(members, picks, winner, "judged"))

    def _voted(self, members: Sequence[int]) -> int:
        """The member whose answer most candidates give; the first of those."""
        return max(members, key=lambda m: (self.support.get(self.answers[m], 0)
                                           if self.answers[m] is not None else -1, -m))

    async def _record(self, matches: list[Match], match: Match) -> int:
        matches.append(match)
        if self.emit is not None and len(match.members) > 1:
            shown = ", ".join(str(m + 1) for m in match.members)
            said = {"judged": "the model picked", "vote": "no pick read; the vote chose"}
            await self.emit.progress(
                f"Candidates {shown}: {said.get(match.how, '')} {match.winner + 1} "
                f"(answer {self.answers[match.winner]!r}).\n")
        return match.winner

    def _prompt(self, members: Sequence[int]) -> Prompt:
        parts = [JUDGE_INSTRUCTION.format(count=len(members)), f"Question:\n{self.task.question}"]
        parts += [f"Solution {place}:\n{self._shown(m).strip()}"
                  for place, m in enumerate(members, start=1)]
        return Prompt(messages=({"role": "user", "content": "\n\n".join(parts)},),
                      template_kwargs=self.task.prompt.template_kwargs)

    def _shown(self, member: int) -> str:
        """A model that thinks in tags is judged on what follows its
        thinking (the paper's solution summary); any other on all it wrote."""
        text = self.samples[member].text
        if isinstance(self.task.splitter, NoReasoning):
            return text
        return self.task.splitter.split(text).content or text

    def _sampling(self) -> Sampling:
        """The request's sampling settings, but a judgement's own length and
        temperature, free text, and a seed of its own per round."""
        seed = self.task.sampling.seed
        return replace(self.task.sampling, temperature=self.cfg.judge_temperature,
                       max_tokens=self.cfg.judge_tokens, stop=(), stop_token_ids=(),
                       logprobs=False, top_logprobs=0, json_output=None,
                       seed=None if seed is None else seed + JUDGE_SEED * len(self.rounds))


def pick(text: str, count: int) -> int | None:
    """The 0-based candidate a judgement names last as the best, if it names
    one of the ``count``."""
    found = [int(m.group(1)) for m in _PICK.finditer(text)]
    return found[-1] - 1 if found and 1 <= found[-1] <= count else None
