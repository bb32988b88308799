"""The offline pruning diagnostic (``ponder bench prune-signal``): exact
keep-a-right-one chances with ties at the cut, and a checker that flags a
wrong computation once the cut reaches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.bench.prune_signal import keeps_a_right_one, load, measure


@pytest.mark.parametrize(("scores", "right", "keep", "chance"), [
    ([1.0, 1.0, 0.0, 0.0], [False, True, False, False], 2, 1.0),
    ([0.5, 0.5, 0.5, 0.5], [True, False, False, False], 2, 0.5),  # 1 - C(3,2)/C(4,2)
    ([1.0, 0.5, 0.5, 0.5], [False, True, False, False], 2, 1 / 3),
    ([1.0, 0.0], [False, True], 1, 0.0),
])
def test_the_chance_that_the_best_keep_hold_a_right_one(
    scores: list[float], right: list[bool], keep: int, chance: float,
) -> None:
    assert keeps_a_right_one(scores, right, keep) == pytest.approx(chance)


class WordTokenizer:
    """A token per word, enough to cut a text at a token count."""

    def __init__(self) -> None:
        self.vocabulary: list[str] = []  # token id -> its word

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        words = text.split(" ")
        self.vocabulary.extend(words)
        return list(range(len(self.vocabulary) - len(words), len(self.vocabulary)))

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.vocabulary[i] for i in ids)


def test_the_checker_flags_the_wrong_sample_once_its_claim_is_in_the_cut(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    samples = [{"text": "We multiply 4 * 9 = 36 so the answer is 36", "correct": True},
               {"text": "We multiply 4 * 9 = 40 so the answer is 40", "correct": False}]
    records.write_text(json.dumps({"question": "What is 4 * 9?", "source": "gen:one-op:1:1",
                                   "samples": samples}) + "\n")
    early, late = measure(load(records), WordTokenizer(), cuts=(2, 8))
    assert early["level"] == "one-op" and early["wrong_flagged"] == 0  # "We multiply": no claim
    assert early["best_half_keeps_right"] == early["random_half_keeps_right"] == 0.5
    assert late["wrong_flagged"] == 1 and late["right_flagged"] == 0
    assert late["best_half_keeps_right"] == 1.0 and late["pass_at_n"] == 1.0
