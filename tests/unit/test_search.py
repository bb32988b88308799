"""Beam search and DVTS over a scripted generator and a scripted PRM that
make the best path known in advance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from pydantic import ValidationError

from ponder.core.generation import JsonOutput, Prompt, RequestRejected, Sampling
from ponder.core.metering import Budget
from ponder.prm.step_checker import StepChecker
from ponder.strategies import beam_search, dvts
from ponder.strategies.base import Task, Verifiers
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, ScriptedPRM, execute

QUESTION = "What is 3 + 4?"

# Each partial solution's continuations; a step ends at a blank line, a
# solution at its end. First steps X and Y look good, but only Y goes on well.
TREE: dict[str, list[str]] = {
    "": ["Step X\n\n", "Step Y\n\n", "Step Z\n\n", "Step W\n\n"],
    "Step X\n\n": ["X so 1 + 1 = 3\n\n", "X so 2 + 2 = 5\n\n"],
    "Step Y\n\n": ["Y so 3 + 4 = 7, Answer: 7", "Y so 3 + 4 = 8, Answer: 8"],
    "Step X\n\nX so 2 + 2 = 5\n\n": ["Answer: 5"],
    "Step X\n\nX so 1 + 1 = 3\n\n": ["Answer: 3"],
    "Step Z\n\n": ["Z is done"],
    "Step W\n\n": ["W is done"],
}
SCORES = {
    "Step X": 0.9, "Step Y": 0.8, "Step Z": 0.1, "Step W": 0.05,
    "X so 1 + 1 = 3": 0.2, "X so 2 + 2 = 5": 0.3,
    "Y so 3 + 4 = 7, Answer: 7": 0.95, "Y so 3 + 4 = 8, Answer: 8": 0.4,
    "Answer: 5": 0.9, "Answer: 3": 0.9, "Z is done": 0.5, "W is done": 0.5,
}


def tree_generator(tree: Mapping[str, Sequence[str]] = TREE) -> ScriptedGenerator:
    """Continues each partial solution (read back from the continuation's
    token ids) with its scripted steps, cycled to n."""
    def script(prompt: Prompt, n: int, _sampling: Sampling) -> list[str]:
        steps = tree[gen.text_of(prompt.continuation)]
        return [steps[i % len(steps)] for i in range(n)]

    gen = ScriptedGenerator(script)
    return gen


def _task(prm: ScriptedPRM, max_tokens: int = 100, seed: int | None = None) -> Task:
    return Task(
        Prompt(messages=({"role": "user", "content": QUESTION},)),
        Sampling(max_tokens=max_tokens, temperature=0.8, seed=seed),
        NoReasoning(),
        Verifiers.of(default="judge", judge=prm),
    )


def beam(**fields: object) -> beam_search.Config:
    return beam_search.Config(**{"prompt": "direct", **fields})  # type: ignore[arg-type]


async def test_beam_search_finds_the_path_that_greedy_step_choice_misses() -> None:
    prm = ScriptedPRM(SCORES)
    wide = await execute(_task(prm), tree_generator(), beam(beam_width=2, expand=2))
    greedy = await execute(_task(prm), tree_generator(), beam(beam_width=1, expand=4))
    assert wide.answer == wide.content == "7"
    assert wide.reasoning == "Step Y\n\nY so 3 + 4 = 7, Answer: 7"  # the chosen path
    assert greedy.answer == "5"  # one line follows X, which looked best at first


async def test_each_round_keeps_exactly_beam_width_and_expands_each_once() -> None:
    prm = ScriptedPRM(SCORES)
    gen = tree_generator()
    result = await execute(_task(prm), gen, beam(beam_width=2, expand=2))
    assert result.tree is not None
    by_depth: dict[int, list[bool]] = {}
    for node in result.tree:
        by_depth.setdefault(node.depth, []).append(node.kept)
    assert {depth: sum(kept) for depth, kept in by_depth.items()} == {1: 2, 2: 2}
    assert [len(kept) for _, kept in sorted(by_depth.items())] == [4, 4]
    # One engine request for the first round (the prompt fills both slots),
    # then one per kept node, each asking for `expand` continuations.
    assert [n for _, n, _ in gen.calls] == [4, 2, 2]
    assert len(prm.calls) == 2  # one batched scoring call per round


async def test_expansions_send_exactly_the_generated_token_ids() -> None:
    gen = tree_generator()
    await execute(_task(ScriptedPRM(SCORES)), gen, beam(beam_width=2, expand=2))
    prompts = [prompt for prompt, _, _ in gen.calls]
    assert {p.token_ids for p in prompts} == {prompts[0].token_ids}  # rendered once
    assert prompts[0].continuation == ()
    assert {gen.text_of(p.continuation) for p in prompts[1:]} == {"Step X\n\n", "Step Y\n\n"}


async def test_steps_end_at_the_delimiter_and_the_last_round_runs_to_the_end() -> None:
    gen = tree_generator()
    await execute(_task(ScriptedPRM(SCORES)), gen, beam(beam_width=1, expand=1, max_steps=2))
    first, last = gen.calls[0][2], gen.calls[-1][2]
    assert first.stop == ("\n\n",) and first.include_stop
    assert last.stop == ()  # the last allowed round finishes the solution
    assert len(gen.calls) == 2


async def test_a_custom_delimiter_splits_steps_for_generator_and_scorer() -> None:
    tree = {"": ["first line\nsecond"], "first line\n": ["next line, Answer: 2"]}
    prm = ScriptedPRM({})
    gen = tree_generator(tree)
    result = await execute(_task(prm), gen, beam(beam_width=1, expand=1, step_delimiter="\n"))
    assert gen.calls[0][2].stop == ("\n",)
    assert prm.calls[0][1] == [["first line"]]
    assert prm.calls[1][1] == [["next line, Answer: 2"]]  # only the new step is scored
    assert result.answer == "2"


async def test_only_new_steps_are_scored_and_scores_carry_down_the_tree() -> None:
    prm = ScriptedPRM(SCORES)
    result = await execute(_task(prm), tree_generator(), beam(beam_width=2, expand=2))
    second_round = prm.calls[1][1]
    assert all(len(steps) == 1 for steps in second_round)
    assert result.candidates[result.selected or 0].step_scores == [0.8, 0.95]


async def test_usage_is_the_sum_of_every_expansion() -> None:
    gen = tree_generator()
    result = await execute(_task(ScriptedPRM(SCORES)), gen, beam(beam_width=2, expand=2))
    assert result.usage.completion_tokens == len(gen.vocabulary)  # every token generated
    assert result.usage.prompt_tokens == sum(
        len(p.token_ids or ()) + len(p.continuation) for p, _, _ in gen.calls
    )
    assert result.usage.scoring_tokens == 10 * (4 + 4)  # the PRM read 8 new steps
    assert result.reasoning_tokens <= result.usage.completion_tokens


async def test_the_search_stops_when_its_beam_is_complete() -> None:
    gen = tree_generator()
    await execute(_task(ScriptedPRM(SCORES)), gen, beam(beam_width=2, expand=2, max_steps=10))
    assert len(gen.calls) == 3  # the two Y solutions ended in round two


async def test_a_spent_budget_answers_with_the_best_partial_solution() -> None:
    gen = tree_generator()
    # The first round takes 4 x 3 tokens; the budget ends inside the second.
    result = await execute(_task(ScriptedPRM(SCORES)), gen, beam(beam_width=2, expand=2),
                           budget=Budget(max_tokens=14))
    assert result.budget_exhausted
    assert result.usage.completion_tokens == 14
    assert result.finish_reason == "length"
    assert result.reasoning is not None and result.reasoning.startswith("Step X")


async def test_without_any_step_the_search_says_so() -> None:
    result = await execute(_task(ScriptedPRM(SCORES)), tree_generator(), beam(),
                           budget=Budget(max_tokens=1))
    assert result.budget_exhausted and result.finish_reason == "length"


async def test_the_tree_comes_back_with_parents_scores_and_status() -> None:
    result = await execute(_task(ScriptedPRM(SCORES)), tree_generator(),
                           beam(beam_width=2, expand=2))
    assert result.tree is not None
    nodes = {node.id: node for node in result.tree}
    chosen = next(n for n in result.tree if n.answer == "7")
    assert chosen.completed and chosen.kept and chosen.step_score == 0.95
    parent = nodes[chosen.parent]  # type: ignore[index]
    assert parent.step == "Step Y" and parent.parent is None and parent.depth == 1
    pruned = [n.step for n in result.tree if not n.kept]
    assert sorted(pruned) == ["Step W", "Step Z", "X so 1 + 1 = 3", "X so 2 + 2 = 5"]


async def test_dvts_subtrees_keep_one_line_each_and_never_mix() -> None:
    tree = {"": ["A\n\n", "B\n\n", "C\n\n", "D\n\n"],
            "A\n\n": ["a1, Answer: 1", "a1b, Answer: 1"], "B\n\n": ["b3, Answer: 3"],
            "C\n\n": ["c, Answer: 1"], "D\n\n": ["d, Answer: 4", "d2, Answer: 5"]}
    scores = {"A": 0.9, "B": 0.1, "C": 0.2, "D": 0.8, "a1, Answer: 1": 0.7,
              "a1b, Answer: 1": 0.7, "d, Answer: 4": 0.75, "d2, Answer: 5": 0.3}
    gen = tree_generator(tree)
    result = await execute(_task(ScriptedPRM(scores)), gen,
                           dvts.Config(n=4, expand=2, prompt="direct"))
    assert result.tree is not None
    nodes = {n.id: n for n in result.tree}
    for node in result.tree:
        if node.parent is not None:
            assert nodes[node.parent].subtree == node.subtree
    assert sum(n.kept for n in result.tree if n.depth == 1) == 2  # one per subtree
    assert [n for _, n, _ in gen.calls] == [4, 2, 2]  # then each subtree's line, alone
    assert result.answer == "4"  # min(0.8, 0.75) beats min(0.9, 0.7)
    assert result.votes == {"1": 2, "4": 1, "5": 1}  # every whole solution drawn
    weighted = await execute(_task(ScriptedPRM(scores)), tree_generator(tree),
                             dvts.Config(n=4, expand=2, prompt="direct", weighted_vote=True))
    assert weighted.answer == "1"  # 0.7 + 0.7 outweighs 0.75


async def test_seeds_differ_for_every_sample_of_the_search() -> None:
    gen = tree_generator()
    await execute(_task(ScriptedPRM(SCORES), seed=100), gen, beam(beam_width=2, expand=2))
    assert [s.seed for _, _, s in gen.calls] == [100, 104, 106]


async def test_streaming_reports_one_line_per_round_then_the_answer() -> None:
    emitter = RecordingEmitter()
    result = await execute(_task(ScriptedPRM(SCORES)), tree_generator(),
                           beam(beam_width=2, expand=2), emitter)
    lines = emitter.text("progress").splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("Step ")] == [
        "Step 1", "Step 2"]
    assert "leading answer '7'" in lines[-1]
    assert emitter.events[-1] == ("content", result.content)
    assert "Step Y" in emitter.text("reasoning")


async def test_greedy_search_is_one_line_and_more_is_refused() -> None:
    greedy = _task(ScriptedPRM(SCORES))
    greedy = Task(greedy.prompt, Sampling(max_tokens=100, temperature=0.0), NoReasoning(),
                  greedy.verifiers)
    result = await execute(greedy, tree_generator(), beam(beam_width=1, expand=1))
    assert result.answer == "3"  # the first scripted continuation at every step
    with pytest.raises(RequestRejected) as refused:
        await execute(greedy, tree_generator(), beam(beam_width=2, expand=1))
    assert refused.value.param == "temperature"


def test_dvts_needs_whole_subtrees_and_search_limits_are_bounded() -> None:
    with pytest.raises(ValidationError, match="multiple of expand"):
        dvts.Config(n=6, expand=4)
    with pytest.raises(ValidationError):
        beam_search.Config(beam_width=0)
    with pytest.raises(ValidationError):
        beam_search.Config(step_delimiter="")
    assert beam_search.Config(beam_width=4, expand=4, max_steps=10).max_samples == 160
    assert dvts.Config(n=16, expand=4, max_steps=5).max_samples == 80


async def test_a_blank_line_is_no_step_the_sample_goes_on_past_it() -> None:
    tree = {"": ["Step A\n"], "Step A\n": ["\n"], "Step A\n\n": ["B, Answer: 1"]}
    prm = ScriptedPRM({})
    gen = tree_generator(tree)
    result = await execute(_task(prm), gen, beam(beam_width=1, expand=1, step_delimiter="\n"))
    assert result.answer == "1"
    assert [node.step for node in result.tree or []] == ["Step A", "B, Answer: 1"]
    assert prm.calls[1][1] == [["B, Answer: 1"]]
    assert [gen.text_of(p.continuation) for p, _, _ in gen.calls] == [
        "", "Step A\n", "Step A\n\n"]


async def test_the_step_checker_judges_a_completed_solutions_answer_step_by_step() -> None:
    task = Task(
        Prompt(messages=({"role": "user", "content": QUESTION},)),
        Sampling(max_tokens=100, temperature=0.8), NoReasoning(),
        Verifiers.of(default="checker", checker=StepChecker()),
    )
    result = await execute(task, tree_generator(), beam(beam_width=2, expand=2))
    chosen = result.candidates[result.selected or 0]
    # 3 + 4 = 7 is grounded in the question and gives the answer; 3 + 4 = 8 is false.
    assert chosen.answer == result.answer == "7"
    assert chosen.step_labels == ["no claim", "answer supported"]
    assert result.tree is not None
    wrong = next(n for n in result.tree if n.step.startswith("Y so 3 + 4 = 8"))
    assert wrong.step_score == 0.0


async def test_the_answers_logprobs_are_those_of_the_chosen_path() -> None:
    gen = tree_generator()
    gen.logprobs = {text: -1.0 for steps in TREE.values() for text in steps}
    task = _task(ScriptedPRM(SCORES))
    asked = Task(task.prompt, Sampling(max_tokens=100, temperature=0.8, logprobs=True),
                 task.splitter, task.verifiers)
    result = await execute(asked, gen, beam(beam_width=2, expand=2))
    assert result.content == "7" and result.logprobs is not None
    assert [t.token for t in result.logprobs] == [" 7"]  # the last 7 of the chosen path
    assert (await execute(task, tree_generator(), beam(beam_width=2, expand=2))).logprobs is None


async def test_constrained_json_is_generated_whole_and_voted_on_as_values() -> None:
    """A grammar cannot resume a partial document: under JSON output the
    search draws whole solutions in one round and chooses among them."""
    texts = ['{"answer": 7}', '{"answer":\n\n 7.0}', '{"answer": 8}', '{"answer": 7}']
    gen = ScriptedGenerator.of(*texts)
    task = _task(ScriptedPRM({}))
    constrained = Task(task.prompt, Sampling(max_tokens=50, temperature=0.8,
                                             json_output=JsonOutput('{"type": "object"}')),
                       task.splitter, task.verifiers)
    result = await execute(constrained, gen, beam_search.Config(beam_width=4, expand=1))
    assert [(n, sampling.stop) for _, n, sampling in gen.calls] == [(4, ())]  # no step stops
    assert result.votes == {'{"answer":7}': 3, '{"answer":8}': 1}
    assert result.answer == '{"answer":7}' and result.content in texts
    assert gen.calls[0][0].messages == task.prompt.messages  # no CoT instruction
