"""The compute-optimal choice on recorded measurements."""

from __future__ import annotations

from ponder.core.frontier import Measurement, choose, choose_per_bin


def m(strategy: str, accuracy: float, tokens: float, questions: int = 20) -> Measurement:
    return Measurement(strategy, accuracy, tokens, questions)


HARD = [m("self_consistency@4", 0.2, 300), m("self_consistency@16", 0.3, 1200),
        m("best_of_n@8", 0.5, 600), m("beam_search@16", 0.5, 2300), m("dvts@16", 0.55, 2400)]


def test_the_cheapest_strategy_that_reaches_the_best_accuracy_within_budget() -> None:
    assert choose(HARD, budget=1300).strategy == "best_of_n@8"
    assert choose(HARD, budget=2500).strategy == "dvts@16"
    assert choose(HARD, budget=2500, tolerance=0.05).strategy == "best_of_n@8"


def test_the_vote_when_nothing_beats_it() -> None:
    easy = [m("self_consistency@4", 0.9, 300), m("best_of_n@8", 0.9, 600)]
    choice = choose(easy, budget=1000)
    assert choice is not None and choice.strategy == "self_consistency@4"
    assert choice.reason == "nothing beats the vote"


def test_a_sparse_bin_borrows_its_neighbour_then_the_vote() -> None:
    bins = {0: [m("self_consistency@4", 0.9, 300)], 1: [m("best_of_n@8", 0.6, 600, 2)],
            2: HARD}
    chosen = choose_per_bin(bins, budget=1300)
    assert chosen[1].strategy == "self_consistency@4" and "bin 0" in chosen[1].reason
    alone = choose_per_bin({0: [m("best_of_n@8", 0.6, 600, 1)]}, budget=1300)
    assert alone[0].strategy == "self_consistency@4" and alone[0].measurement is None
