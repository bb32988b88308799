"""Particle filtering over the scripted generator and PRM of the search
tests: resampling follows the weights, systematic resampling's counts, ESS
gating, complete particles kept, one engine request per drawn parent, seeds
repeat, usage is what was generated."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ponder.core.metering import Budget
from ponder.strategies import particle_filtering as pf

from ..fakes import ScriptedPRM, execute
from .test_search import SCORES, _task, tree_generator


def config(**fields: object) -> pf.Config:
    return pf.Config(**{"prompt": "direct", "n": 4, **fields})  # type: ignore[arg-type]


def test_a_particle_with_all_the_weight_is_drawn_every_time() -> None:
    weights = pf.weights([0.999999, 0.000001, 0.000001], temperature=1.0)
    for how in ("multinomial", "systematic"):
        drawn = pf.resample(weights, 8, how, random.Random(0))  # type: ignore[arg-type]
        assert drawn == [0] * 8


def test_systematic_resampling_draws_floor_or_ceil_of_n_times_each_weight() -> None:
    weights = [0.5, 0.25, 0.125, 0.125]
    for seed in range(20):
        counts = Counter(pf.resample(weights, 8, "systematic", random.Random(seed)))
        assert [counts[i] for i in range(4)] == [4, 2, 1, 1]
    equal = Counter(pf.resample([0.25] * 4, 4, "systematic", random.Random(3)))
    assert sorted(equal.values()) == [1, 1, 1, 1]  # equal weights keep everyone


def test_multinomial_resampling_follows_the_weights_in_expectation() -> None:
    weights = pf.weights([0.9, 0.5], temperature=1.0)  # 9 : 1
    assert weights[0] == pytest.approx(0.9)
    counts = Counter(pf.resample(weights, 10_000, "multinomial", random.Random(1)))
    assert counts[0] / 10_000 == pytest.approx(0.9, abs=0.02)
    # A higher weight temperature flattens the weights.
    assert pf.weights([0.9, 0.5], temperature=4.0)[0] < 0.7


def test_the_effective_sample_size_spans_one_to_n() -> None:
    assert pf.effective_sample_size([0.25] * 4) == pytest.approx(4)
    assert pf.effective_sample_size([1.0, 0, 0, 0]) == pytest.approx(1)


async def test_the_filter_finds_the_answer_and_reports_its_rounds() -> None:
    prm = ScriptedPRM(SCORES)
    generator = tree_generator()
    result = await execute(_task(prm, seed=0), generator, config(n=4))
    assert result.answer == "7"
    rounds = result.details()["rounds"]
    assert rounds and all(len(r["weights"]) == 4 for r in rounds)
    assert all(r["weights"] and abs(sum(r["weights"]) - 1) < 1e-6 for r in rounds)
    # One engine request per distinct parent, n = the copies drawn of it:
    # every live copy continues once, in as many requests as distinct parents.
    first, *later = generator.calls
    assert first[1] == 4
    live = {n.id for n in result.tree if not n.completed}
    copies = [Counter(i for i in r["kept"] if i in live) for r in rounds[:-1]]
    assert sum(n for _, n, _ in later) == sum(sum(c.values()) for c in copies)
    assert len(later) == sum(len(c) for c in copies)
    assert result.usage.completion_tokens == len(generator.vocabulary)  # all it generated
    assert result.tree and {n.parent for n in result.tree if n.depth == 2} <= {
        n.id for n in result.tree if n.depth == 1}


async def test_without_resampling_every_particle_lives_on() -> None:
    prm = ScriptedPRM(SCORES)
    result = await execute(_task(prm, seed=0), tree_generator(), config(n=4, ess_threshold=0))
    rounds = result.details()["rounds"]
    assert not any(r["resampled"] for r in rounds)
    # Each of the four first steps went on: Z and W end at once, X and Y go on.
    assert len([n for n in result.tree if n.depth == 1]) == 4
    assert all(n.kept for n in result.tree)


async def test_complete_particles_keep_their_place() -> None:
    # Systematic draws X twice, Y and Z once; Z then ends, with a high score.
    prm = ScriptedPRM({**SCORES, "Step Z": 0.85, "Z is done": 0.99})
    result = await execute(_task(prm, seed=0), tree_generator(),
                           config(n=4, resampling="systematic"))
    rounds = result.details()["rounds"]
    done = [n.id for n in result.tree if n.completed and n.step == "Z is done"]
    # Once complete, a particle is in every later round's population.
    assert done and all(done[0] in r["particles"] for r in rounds[1:])


async def test_a_complete_particle_is_never_resampled_away() -> None:
    # Z ends at once with a poor score: it still holds its one slot, and the
    # live particles share only the other slots.
    prm = ScriptedPRM({**SCORES, "Step Z": 0.85, "Z is done": 0.01})
    result = await execute(_task(prm, seed=0), tree_generator(),
                           config(n=4, resampling="systematic"))
    rounds = result.details()["rounds"]
    done = [n.id for n in result.tree if n.completed and n.step == "Z is done"]
    assert done and all(r["kept"].count(done[0]) == 1 for r in rounds[1:])
    assert all(len(r["kept"]) == 4 for r in rounds)


async def test_the_same_seed_gives_the_same_run() -> None:
    runs = [await execute(_task(ScriptedPRM(SCORES), seed=5), tree_generator(), config(n=4))
            for _ in range(2)]
    assert runs[0].details()["rounds"] == runs[1].details()["rounds"]
    assert runs[0].answer == runs[1].answer


async def test_a_spent_budget_answers_with_the_best_so_far() -> None:
    prm = ScriptedPRM(SCORES)
    result = await execute(_task(prm, seed=0), tree_generator(), config(n=4),
                           budget=Budget(max_tokens=10))
    assert result.budget_exhausted
    assert result.usage.completion_tokens <= 10 + 4


async def test_the_reference_particle_survives_every_round_of_a_gibbs_iteration() -> None:
    prm = ScriptedPRM(SCORES)
    result = await execute(_task(prm, seed=0), tree_generator(), config(n=4, iterations=2))
    rounds = result.details()["rounds"]
    second = [r for r in rounds if r["iteration"] == 2]
    assert second and all(r["reference"] in r["kept"] for r in second)
    # The reference is one line, root first: the first iteration's best.
    parents = {n.id: n.parent for n in result.tree}
    chain = list(dict.fromkeys(r["reference"] for r in second))  # a finished one stays
    assert parents[chain[0]] is None
    assert all(parents[child] == parent for parent, child in zip(chain, chain[1:]))
    assert result.answer == "7"
    # The second iteration drew new samples: every node was generated once.
    assert len({n.id for n in result.tree}) == len(result.tree)


async def test_a_later_gibbs_iteration_draws_new_seeds() -> None:
    generator = tree_generator()
    await execute(_task(ScriptedPRM(SCORES), seed=3), generator, config(n=4, iterations=2))
    seeds = [sampling.seed for _, _, sampling in generator.calls]
    assert len(seeds) == len(set(seeds))
