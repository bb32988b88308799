"""Choosing among scored candidates, with hand-made ties: the best score,
then the vote among the best-scored, then confidence, then order."""

from __future__ import annotations

from ponder.strategies.selection import select
from ponder.strategies.voting import VoteBook


def _choose(
    answers: list[str | None], scores: list[float], confidences: list[float] | None = None,
    *, weighted_vote: bool = False,
) -> tuple[int, str | None]:
    book = VoteBook("auto")
    for index, (answer, score) in enumerate(zip(answers, scores)):
        book.add(index, answer, weight=score)
    chosen, winner = select(book, scores, confidences or [0.0] * len(answers),
                            weighted_vote=weighted_vote)
    return chosen, None if winner is None else winner.answer


def test_a_unique_best_score_beats_any_majority_below_it() -> None:
    assert _choose(["5", "7", "7", "7"], [1.0, 0.5, 0.5, 0.5]) == (0, "5")


def test_the_vote_among_the_best_scored_beats_a_lone_confident_one() -> None:
    answers = ["7", "5", "5", "9"]
    scores = [1.0, 1.0, 1.0, 0.25]
    confidences = [-0.1, -0.9, -0.8, -0.05]
    assert _choose(answers, scores, confidences) == (2, "5")  # its more confident voter


def test_only_votes_of_the_best_scored_count() -> None:
    # "9" has more votes overall, but only from worse-scored candidates.
    answers = ["9", "9", "9", "4", "4", "6"]
    scores = [0.25, 0.25, 0.25, 1.0, 1.0, 1.0]
    assert _choose(answers, scores) == (3, "4")


def test_equivalent_answers_vote_together_among_the_tied() -> None:
    answers = ["0.5", "1/2", "3"]
    assert _choose(answers, [1.0, 1.0, 1.0], [-0.5, -0.2, -0.1]) == (1, "0.5")


def test_a_tie_in_votes_goes_to_the_most_confident_candidate() -> None:
    answers = ["5", "7", "5", "7"]
    scores = [1.0] * 4
    assert _choose(answers, scores, [-0.4, -0.3, -0.6, -0.9]) == (1, "7")


def test_a_tie_in_confidence_goes_to_the_answer_seen_first() -> None:
    assert _choose(["5", "7"], [1.0, 1.0], [-0.3, -0.3]) == (0, "5")
    assert _choose(["7", "5"], [1.0, 1.0], [-0.3, -0.3]) == (0, "7")


def test_scores_equal_up_to_float_noise_are_tied() -> None:
    answers = ["5", "7", "7"]
    scores = [0.1 + 0.2, 0.3, 0.3]  # 0.30000000000000004
    assert _choose(answers, scores, [0.0, -1.0, -1.0]) == (1, "7")


def test_a_candidate_without_an_answer_never_wins_over_one_with_an_answer() -> None:
    assert _choose([None, None, "8"], [1.0, 1.0, 0.0]) == (2, "8")
    assert _choose([None, "8"], [1.0, 0.5], weighted_vote=True) == (1, "8")


def test_with_no_answer_at_all_the_best_scored_most_confident_candidate_is_chosen() -> None:
    assert _choose([None, None, None], [0.5, 1.0, 1.0], [0.0, -0.5, -0.2]) == (2, None)


def test_weighted_vote_sums_scores_per_answer() -> None:
    answers = ["5", "5", "9"]
    assert _choose(answers, [0.5, 0.5, 0.9], weighted_vote=True) == (0, "5")
    assert _choose(answers, [0.4, 0.4, 0.9], weighted_vote=True) == (2, "9")


def test_weighted_vote_ties_go_to_confidence_and_pick_the_best_member() -> None:
    answers = ["5", "9", "5"]
    scores = [0.25, 0.5, 0.25]
    # "5" and "9" weigh 0.5 each; "9"'s candidate is the more confident.
    assert _choose(answers, scores, [-0.9, -0.1, -0.8], weighted_vote=True) == (1, "9")
    # "5" wins on confidence; of its members, the better-scored then more
    # confident one is chosen.
    assert _choose(answers, scores, [-0.9, -0.5, -0.2], weighted_vote=True) == (2, "5")
