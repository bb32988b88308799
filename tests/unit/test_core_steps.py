"""The step definition both sides of search share: splitting a solution into
steps, stopping the generator after one, and each step's own tokens."""

from __future__ import annotations

from ponder.core.generation import Sample, Sampling, TokenLogprob
from ponder.core.steps import StepSpec

from ..fakes import tokenize

STEPS = StepSpec()


def test_split_drops_empty_steps_and_strips() -> None:
    text = "\n\nFirst, 2 + 2 = 4.\n\n\n\n  \n\nThen 4 * 3 = 12.\nSo 12.\n\n"
    assert STEPS.split(text) == ["First, 2 + 2 = 4.", "Then 4 * 3 = 12.\nSo 12."]


def test_split_without_delimiter_is_one_step() -> None:
    assert STEPS.split("The answer is 7.") == ["The answer is 7."]
    assert STEPS.split("") == []
    assert StepSpec("##").split("a ## b ## ") == ["a", "b"]


def test_one_step_stops_at_the_delimiter_and_keeps_it() -> None:
    sampling = StepSpec("\n").one_step(Sampling(max_tokens=50, stop=("END",)))
    assert sampling.stop == ("\n", "END") and sampling.include_stop
    assert sampling.max_tokens == 50


def test_a_step_ends_at_its_delimiter_a_solution_at_anything_else() -> None:
    assert STEPS.ends_step(Sample("2 + 2 = 4\n\n", [1], "stop", "\n\n"))
    assert not STEPS.ends_step(Sample("4", [1], "eos"))
    assert not STEPS.ends_step(Sample("4 END", [1], "stop", "END"))
    assert not STEPS.ends_step(Sample("4 and", [1], "length"))


def test_each_step_gets_the_tokens_its_text_starts_in() -> None:
    text = "2 + 2 = 4.\n\nSo 4 * 3 = 12.\n\nAnswer: 12"
    logprobs = [TokenLogprob(piece, -float(i)) for i, piece in enumerate(tokenize(text))]
    solution = STEPS.solution(text, logprobs)
    assert solution.steps == ("2 + 2 = 4.", "So 4 * 3 = 12.", "Answer: 12")
    assert solution.logprobs is not None
    assert ["".join(t.token for t in step) for step in solution.logprobs] == list(solution.steps)
    assert solution.logprobs[1][0].logprob == -tokenize(text).index("So")  # first token of step 2


def test_a_solution_without_logprobs_has_steps_only() -> None:
    solution = STEPS.solution("one\n\ntwo")
    assert solution.steps == ("one", "two") and solution.logprobs is None and solution.known == ()
