"""Step-level search guided by a step scorer: what ``beam_search`` and
``dvts`` share.

A node is a partial solution. It keeps its steps as token ids, which the
next expansion sends after the rendered prompt (exactly what the engine
generated and has cached, so every expansion of a node is a prefix-cache
hit), and as text, which the scorer reads. Each round:

1. expand: every live node kept last round gets ``expand`` continuations of
   ONE step, in one engine request with ``n=expand``; all nodes at once. The
   first round expands the prompt once for every slot, in one request.
2. score: every new node in one batched scorer call. A node passes its
   parent's step scores along, so a causal scorer pays for the new step only.
3. keep: in each subtree, the best ``width`` of its new nodes and of the
   completed nodes it kept before. A completed node holds its slot, so a
   subtree's search ends when all the nodes it keeps are complete.

Beam search is one subtree of width ``beam_width``; DVTS is ``n / expand``
subtrees of width one, so its lines of reasoning cannot collapse onto one. A
node is complete at the model's end of sequence, at a step that states the
final answer, at its token limit, or at one of the request's stop strings;
the last round allowed by ``max_steps`` generates every solution to its end.
Constrained output (JSON, a forced tool call) has no steps: the engine's
grammar starts a document at the first generated token and cannot resume a
partial one, so such a search generates whole solutions in its first round
and chooses among them.
When the budget runs out the generator returns nothing more and the search
answers with what it has: the best complete solution, else the best partial.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pydantic import Field

from ponder.core.aggregate import Aggregate, aggregate
from ponder.core.answers import AnswerFormat
from ponder.core.generation import Generator, Prompt, Sample, Sampling
from ponder.core.scoring import (
    ProcessRewardModel,
    StepScores,
    compares_solutions,
    preferred_aggregate,
)
from ponder.core.steps import STEP_DELIMITER, StepSpec
from ponder.core.tasks import gather_all
from ponder.strategies.answers import states_final_answer
from ponder.strategies.base import Emitter, StrategyResult, Task, TreeNode
from ponder.strategies.fanout import check_distinct
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.sampled import SampledAnswers, SolutionsConfig
from ponder.strategies.scoring_batcher import ScoringBatcher
from ponder.strategies.search_nodes import Node, best_first, joined_logprobs
from ponder.strategies.selection import select
from ponder.strategies.voting import VoteBook


class SearchConfig(SolutionsConfig):
    """The parameters beam search and DVTS share."""

    max_steps: int = Field(
        10, ge=1, le=64,
        description="Rounds at most; the last one generates every solution to its end.",
    )
    step_delimiter: str = Field(
        STEP_DELIMITER, min_length=1, max_length=32,
        description="Where a step ends (a stop string); default: the server's "
        "(--step-delimiter: a newline for the embedded model, else a blank line).",
    )
    prm: str | None = Field(
        None, description="Step scorer: a configured PRM, or a reward-free one such as "
        "`mean-logprob` (default: the server's PRM).",
    )
    aggregate: Aggregate | None = Field(
        None, description="Step scores to one solution score (default: min; last for the "
        "combined scorers, whose last step weighs the whole solution).",
    )
    weighted_vote: bool = Field(
        False, description="Answer with the answer whose complete solutions carry the most "
        "score in total, instead of the best solution's.",
    )

    def shape(self, subtrees: int, width: int, expand: int, task: Task) -> SearchShape:
        return SearchShape(
            subtrees=subtrees, width=width, expand=expand, max_steps=self.max_steps,
            steps=StepSpec(self.step_delimiter), aggregate=self.aggregate,
            weighted_vote=self.weighted_vote,
            prompt=self.prompt_style(task),
            answer=self.answer_format(task),
        )


def search_expand(size: int) -> int:
    """Continuations per line and step of a search of ``size`` a round, as
    a policy sizes it: 4 (search-and-learn's), 2 under 8, so that a small
    search keeps two lines."""
    return 4 if size >= 8 else 2 if size >= 2 else 1


MAX_BLANK_STEPS = 3
"""Whitespace-only steps a sample may go past before it is dropped."""
BLANK_STEP_SEED = 7919
"""Added to a seeded sample's seed to go on past a blank step (a prime, so
it does not land on a sibling's seed)."""
LANE_SEEDS = 1_000_003
"""Seeds a lane may use before the next lane's begin: lanes draw at once,
so each counts its own from its own offset and a seeded search repeats."""


@dataclass
class Lane:
    """Subtrees that advance together (all of beam search's one; each of
    DVTS's alone), and the seeds their samples take."""

    subtrees: tuple[int, ...]
    index: int
    drawn: int = 0

    def seed(self, base: int | None, n: int) -> int | None:
        """The first seed of the next ``n`` samples (None: unseeded)."""
        first, self.drawn = self.drawn, self.drawn + n
        return None if base is None else base + self.index * LANE_SEEDS + first


@dataclass(frozen=True)
class SearchShape:
    subtrees: int
    width: int
    """Nodes each subtree keeps per round."""
    expand: int
    """Continuations drawn for each kept node."""
    max_steps: int
    steps: StepSpec
    aggregate: Aggregate | None
    """None: the scorer's preferred one."""
    weighted_vote: bool
    prompt: PromptStyle
    answer: AnswerFormat


class Search:
    """One search: its nodes, and the rounds that grow them.

    A strategy that keeps or grows lines its own way (particle filtering)
    subclasses it and overrides the public hooks, each told the round it is
    in: :meth:`keep` (which lines live on), :meth:`expand` (a round's new,
    scored nodes) and :meth:`finals` (what the answer is chosen from), and
    calls :meth:`restart` to search again from the prompt.
    """

    def __init__(
        self, task: Task, gen: Generator, scorer: ProcessRewardModel, shape: SearchShape
    ) -> None:
        check_distinct(shape.subtrees * shape.width * shape.expand, task.sampling)
        self.task, self.gen, self.scorer, self.shape = task, gen, scorer, shape
        self.sampling = replace(
            task.sampling, logprobs=True,
            top_logprobs=max(task.sampling.top_logprobs, scorer.reads_logprobs or 0),
        )
        self.answers = self.answer_reader()
        """Answers of nodes, by node id: completed ones for their scorer, and
        the leading line for a progress report."""
        self.nodes: list[Node] = []
        self.beams: list[list[Node]] = [[] for _ in range(shape.subtrees)]
        self.batcher = ScoringBatcher(scorer, task.question)
        self._ids = itertools.count()
        self._lanes = itertools.count()
        """Each lane's seed offset: a search run again (:meth:`restart`)
        draws new seeds too."""

    def restart(self) -> None:
        """Empty lines, to search again from the prompt; every node so far
        stays in the tree."""
        self.beams = [[] for _ in range(self.shape.subtrees)]

    async def run(self, emit: Emitter | None) -> None:
        """The first round expands the prompt once for every slot, in one
        request. Then lines that are compared with one another advance
        together, and lines that never are (DVTS's subtrees) each on their
        own, so no subtree waits for another's slowest step; steps that
        arrive close together, from any of them, are still scored in one
        call (unless the scorer compares solutions: see :meth:`expand`)."""
        prompt = await self.gen.render(apply_prompt(self.task.prompt, self.shape.prompt))
        everyone = Lane(tuple(range(self.shape.subtrees)), next(self._lanes))
        first = [(None, subtree) for subtree in everyone.subtrees for _ in range(self.shape.width)]
        lanes = [Lane((s,), next(self._lanes)) for s in everyone.subtrees] \
            if self.shape.width == 1 else [everyone]
        try:
            if await self._round(prompt, everyone, first, 0, emit):
                # One lane's failure, or the client leaving, ends every lane.
                await gather_all(*(self._advance(prompt, lane, emit) for lane in lanes))
        finally:
            await self.batcher.close()

    async def _advance(self, prompt: Prompt, lane: Lane, emit: Emitter | None) -> None:
        """One lane's rounds after the first, until its lines are complete."""
        for round_index in range(1, self.shape.max_steps):
            frontier = [(n, n.subtree) for s in lane.subtrees for n in self.beams[s]
                        if not n.completed]
            if not frontier or not await self._round(prompt, lane, frontier, round_index, emit):
                return

    async def _round(self, prompt: Prompt, lane: Lane, frontier: list[tuple[Node | None, int]],
                     round_index: int, emit: Emitter | None) -> bool:
        """Expand every kept line of the lane, keep the best; False when
        nothing more could be generated (the budget is spent)."""
        children = await self.expand(prompt, frontier, round_index, lane)
        if not children:
            return False
        self.keep(children, lane.subtrees, round_index)
        if emit is not None:
            alive = sum(not n.completed for s in lane.subtrees for n in self.beams[s])
            await emit.progress(self._progress(round_index + 1, lane, alive))
            await emit.tree(self.tree(lambda node: node.answer))
        return True

    async def expand(
        self, prompt: Prompt, frontier: Sequence[tuple[Node | None, int]], round_index: int,
        lane: Lane,
    ) -> list[Node]:
        """The round's new nodes, scored. One engine request per distinct
        node of the frontier, all at once; a node that fills several slots
        (the prompt, in the first round) asks for all their continuations in
        that one request. Each request's steps go to the scorer as soon as
        it returns, so scoring overlaps the requests still generating;
        unless the scorer compares solutions with one another (a vote
        share), which then sees the whole round in one call: a score never
        depends on which requests happened to come back together."""
        last_round = round_index == self.shape.max_steps - 1
        whole_round = compares_solutions(self.scorer)
        slots: dict[int, tuple[Node | None, list[int]]] = {}
        for node, subtree in frontier:
            slots.setdefault(id(node), (node, []))[1].append(subtree)

        async def grow(node: Node | None, subtrees: list[int], seed: int | None) -> list[Node]:
            samples = await self._continue(prompt, node, len(subtrees) * self.shape.expand,
                                           last_round, seed)
            children = [self._child(node, subtrees[index // self.shape.expand], sample, index)
                        for index, sample in enumerate(samples) if self._adds_something(sample)]
            if not whole_round and children:
                self._take_scores(children, await self.batcher.score(
                    [child.solution() for child in children]))
            return children

        grown = await gather_all(*(
            grow(node, subtrees, lane.seed(self.sampling.seed, len(subtrees) * self.shape.expand))
            for node, subtrees in slots.values()
        ))
        children = [child for group in grown for child in group]
        if whole_round and children:
            self._take_scores(children, await self.scorer.score(
                self.task.question, [child.solution() for child in children]))
        return children

    def keep(self, children: list[Node], subtrees: Sequence[int], round_index: int) -> None:
        """In each of ``subtrees``, the best ``width`` of its new nodes and of
        the completed ones it kept before."""
        for subtree in subtrees:
            beam = self.beams[subtree]
            pool = [n for n in beam if n.completed] + [c for c in children if c.subtree == subtree]
            self.beams[subtree] = best_first(pool)[: self.shape.width]
            for node in self.beams[subtree]:
                node.kept = True

    def finals(self) -> list[Node]:
        """The solutions to choose from: every whole one the search drew (not
        cut at a token limit), kept or not, since each was paid for and
        scored, as in best-of-N; the search only decides where the compute
        goes. Else what the search holds at its end, partial or cut."""
        whole = [n for n in self.nodes if n.completed and n.stop_reason != "length"]
        return whole or [n for beam in self.beams for n in beam]

    def _take_scores(self, children: list[Node], scored: StepScores) -> None:
        labels = scored.labels or [None] * len(children)
        parts = scored.parts or [None] * len(children)
        how = self.shape.aggregate or preferred_aggregate(self.scorer)
        for child, step_scores, named, said in zip(children, scored.scores, labels, parts):
            child.step_scores, child.step_labels, child.parts = tuple(step_scores), named, said
            child.score = aggregate(step_scores, how)

    def _adds_something(self, sample: Sample) -> bool:
        """Not empty (the budget ran out before it began), and not a blank
        step (the same solution again, which could only repeat itself)."""
        if not sample.token_ids:
            return False
        return bool(sample.text.strip()) or not self.shape.steps.ends_step(sample)

    async def _continue(
        self, prompt: Prompt, node: Node | None, n: int, last_round: bool, seed: int | None
    ) -> list[Sample]:
        sampling = replace(self.sampling, seed=seed)
        if sampling.max_tokens is not None and node is not None:
            sampling = replace(sampling, max_tokens=sampling.max_tokens - len(node.token_ids))
        if not last_round and sampling.json_output is None:
            sampling = self.shape.steps.one_step(sampling)
        continued = prompt if node is None else prompt.continued(node.token_ids)
        samples = (await self.gen.generate(continued, n, sampling)).samples
        return await gather_all(*(
            self._past_blank_lines(continued, sample, sampling) for sample in samples
        ))

    async def _past_blank_lines(self, prompt: Prompt, sample: Sample, sampling: Sampling) -> Sample:
        """A step that is only whitespace ("\n" when the delimiter is one
        newline and the model writes a blank line) is no step: the sample
        goes on from it, so every round adds a real one."""
        for _ in range(MAX_BLANK_STEPS):
            if sample.text.strip() or not self.shape.steps.ends_step(sample):
                break
            if sampling.max_tokens is not None:
                sampling = replace(sampling, max_tokens=sampling.max_tokens - sample.num_tokens)
                if sampling.max_tokens <= 0:
                    break
            if sampling.seed is not None:
                sampling = replace(sampling, seed=sampling.seed + BLANK_STEP_SEED)
            more = await self.gen.generate(prompt.continued(sample.token_ids), 1, sampling)
            sample = sample.followed_by(more.samples[0])
        return sample

    def _child(self, parent: Node | None, subtree: int, sample: Sample, position: int) -> Node:
        steps = self.shape.steps
        text = sample.text
        if sample.stop_string in self.task.sampling.stop and not self.task.sampling.include_stop:
            text = text.removesuffix(sample.stop_string or "")  # the request's own stop string
        new = steps.solution(text, sample.logprobs)
        before = "" if parent is None else parent.text
        capped = self.sampling.max_tokens is not None and (
            len(sample.token_ids) + (0 if parent is None else len(parent.token_ids))
            >= self.sampling.max_tokens
        )
        node = Node(
            id=next(self._ids),
            parent=parent,
            subtree=subtree,
            step=text,
            token_ids=(() if parent is None else parent.token_ids) + tuple(sample.token_ids),
            text=before + text,
            steps=(() if parent is None else parent.steps) + new.steps,
            step_logprobs=joined_logprobs(parent, new.logprobs),
            own_logprobs=None if sample.logprobs is None else tuple(sample.logprobs),
            cumulative_logprob=(0.0 if parent is None else parent.cumulative_logprob)
            + (sample.cumulative_logprob or 0.0),
            stop_reason=sample.stop_reason,
            completed=capped or not steps.ends_step(sample) or states_final_answer(text),
            order=(() if parent is None else parent.order) + (position,),
            answer_format=self.shape.answer,
        )
        if node.completed:
            node.answer = self.answers.answer_of(node.id, node.as_sample())
        self.nodes.append(node)
        return node

    def answer_reader(self) -> SampledAnswers:
        """Answers read from samples, remembered by the index given."""
        return SampledAnswers(
            splitter_for(self.shape.prompt, self.task.splitter), self.shape.answer, self.gen,
            self.task,
        )

    def _progress(self, depth: int, lane: Lane, alive: int) -> str:
        complete = sum(n.completed and n.kept for n in self.nodes)
        best = max((n for beam in self.beams for n in beam), key=lambda n: n.score)
        leading = self.answers.answer_of(best.id, best.as_sample())
        where = f" of subtree {lane.subtrees[0] + 1}" if len(self.beams) > len(lane.subtrees) \
            else ""
        return (
            f"Step {depth}{where}: {alive} line(s) alive, {complete} complete; best score "
            f"{best.score:.2f}, leading answer {leading!r}.\n"
        )

    def tree(self, answer_of: Callable[[Node], str | None]) -> list[TreeNode]:
        """Every node so far, as a client sees it."""
        return [
            TreeNode(
                id=n.id, parent=None if n.parent is None else n.parent.id, subtree=n.subtree,
                depth=n.depth, step=n.step.strip(),
                step_score=n.step_scores[-1] if n.step_scores else None, score=n.score,
                kept=n.kept, completed=n.completed, answer=answer_of(n), tokens=n.new_tokens,
            )
            for n in self.nodes
        ]


async def run_search(search: Search, scorer_name: str, emit: Emitter | None) -> StrategyResult:
    """Run ``search`` and answer from its finals."""
    shape = search.shape
    if emit is not None:
        await emit.progress(
            f"Searching {shape.subtrees} x {shape.width} line(s), {shape.expand} continuation(s) "
            f"each, for at most {shape.max_steps} steps, scored by {scorer_name}.\n"
        )
    await search.run(emit)
    return await _result(search, scorer_name, emit)


async def _result(search: Search, scorer_name: str, emit: Emitter | None) -> StrategyResult:
    shape = search.shape
    answers = search.answer_reader()  # by index among the finals
    finals = search.finals()
    if not finals:  # the budget ran out before a single step
        return StrategyResult(content="", reasoning=None, finish_reason="length")
    samples = [node.as_sample() for node in finals]
    book = VoteBook(shape.answer)

    def tally() -> None:
        for index, (node, sample) in enumerate(zip(finals, samples)):
            book.add(index, answers.answer_of(index, sample), weight=node.score)

    await asyncio.to_thread(tally)  # math-verify may take milliseconds per answer
    chosen, winner = select(
        book, [n.score for n in finals], [n.confidence for n in finals],
        weighted_vote=shape.weighted_vote,
    )
    result = answers.result(samples, chosen, winner.answer if winner else None)
    # Every token the search generated was reasoning, but the chosen answer's.
    answer_tokens = samples[chosen].num_tokens - answers.reasoning_tokens(chosen, samples[chosen])
    result.reasoning_tokens = sum(n.new_tokens for n in search.nodes) - answer_tokens
    result.votes = book.counts()
    result.scores = [n.score for n in finals]
    for candidate, node in zip(result.candidates, finals):
        candidate.score, candidate.step_scores = node.score, list(node.step_scores)
        candidate.step_labels, candidate.verifiers = node.step_labels, node.parts
    result.scorer, result.selected = scorer_name, chosen
    final_ids = {node.id: index for index, node in enumerate(finals)}
    result.tree = search.tree(
        lambda n: answers.answers.get(final_ids[n.id]) if n.id in final_ids else None
    )
    if emit is not None:
        await answers.emit_final(result, emit)
    return result
