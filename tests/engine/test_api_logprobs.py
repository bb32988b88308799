"""Log-probabilities through the real server, with the `openai` client: the
tokens of the returned content, whole and streamed, under `none` and under
a vote, and the legacy shape on /v1/completions."""

from __future__ import annotations

import math

import openai

QUESTION = [{"role": "user", "content": "What is 6 - 18?"}]


def test_logprobs_of_the_content_in_openais_shape(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=12, temperature=0,
        logprobs=True, top_logprobs=2,
    )
    choice = response.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert response.usage is not None and len(tokens) == response.usage.completion_tokens
    for token in tokens:
        assert token.logprob <= 0 and bytes(token.bytes or []) == token.token.encode()
        assert len(token.top_logprobs) == 2
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob
        # Greedy: each token is the likeliest one.
        assert math.isclose(token.logprob, token.top_logprobs[0].logprob, abs_tol=1e-4)


def test_no_logprobs_unless_asked(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=4, temperature=0)
    assert response.choices[0].logprobs is None


def test_streamed_logprobs_match_the_whole_response(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", messages=QUESTION, max_tokens=12, temperature=0,
                logprobs=True, top_logprobs=1)
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(**args, stream=True))  # type: ignore[call-overload]
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs
                for t in c.choices[0].logprobs.content or ()]
    assert whole.choices[0].logprobs is not None
    assert [(t.token, round(t.logprob, 4)) for t in streamed] == [
        (t.token, round(t.logprob, 4)) for t in whole.choices[0].logprobs.content or ()]


def test_a_vote_returns_the_logprobs_of_its_answer(client: openai.OpenAI) -> None:
    """self_consistency returns the extracted answer: its log-probabilities
    are those of the chosen sample's tokens that spell it, streamed too."""
    args = dict(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0.8, seed=11,
        logprobs=True, top_logprobs=1,
        extra_body={"strategy": {"name": "self_consistency", "n": 4, "prompt": "direct"},
                    "include_candidates": True},
    )
    response = client.chat.completions.create(**args)  # type: ignore[call-overload]
    tokens = response.choices[0].logprobs.content or []  # type: ignore[union-attr]
    spelled = "".join(t.token for t in tokens)
    candidates = response.model_extra["ponder"]["candidates"]  # type: ignore[index]
    assert tokens and any(spelled in c["text"] for c in candidates)
    assert len(tokens) < response.usage.completion_tokens  # type: ignore[union-attr]
    chunks = list(client.chat.completions.create(**args, stream=True))  # type: ignore[call-overload]
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs
                for t in c.choices[0].logprobs.content or ()]
    assert [t.token for t in streamed] == [t.token for t in tokens]


def test_legacy_completion_logprobs(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model="smollm2", prompt="The capital of France is", max_tokens=5, temperature=0,
        logprobs=2,
    )
    choice = response.choices[0]
    assert choice.logprobs is not None
    tokens, offsets = choice.logprobs.tokens or [], choice.logprobs.text_offset or []
    assert "".join(tokens) == choice.text and len(tokens) == 5
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    for token, logprob, top in zip(tokens, choice.logprobs.token_logprobs or [],
                                   choice.logprobs.top_logprobs or []):
        assert top[token] == logprob and 1 <= len(top) <= 3
    streamed = list(client.completions.create(
        model="smollm2", prompt="The capital of France is", max_tokens=5, temperature=0,
        logprobs=2, stream=True))
    pieces = [c.choices[0].logprobs for c in streamed if c.choices and c.choices[0].logprobs]
    assert [t for p in pieces for t in p.tokens or ()] == tokens
    assert [o for p in pieces for o in p.text_offset or ()] == offsets
