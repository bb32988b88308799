"""Caps hold per request, over all its choices: ``--max-samples`` counts
every choice's samples, and a budget is shared by the runs of all choices."""

from __future__ import annotations

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

QUESTION = [{"role": "user", "content": "What is 2 + 5?"}]


async def test_max_samples_counts_every_choice() -> None:
    generator = ScriptedGenerator.of("Answer: 7")
    async with asgi_client(asgi_app(generator, max_samples=64)) as http:
        one = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": QUESTION, "n": 1, "temperature": 0.7,
            "strategy": {"name": "self_consistency", "n": 40}})
        two = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": QUESTION, "n": 2, "temperature": 0.7,
            "strategy": {"name": "self_consistency", "n": 40}})
    assert one.status_code == 200
    assert two.status_code == 400
    error = two.json()["error"]
    assert error["param"] == "strategy.n"
    assert "80 samples (2 choices of 40)" in error["message"]
    assert "at most 64 per request (--max-samples)" in error["message"]
    assert len(generator.calls) == 1  # the refused request drew nothing


async def test_a_token_budget_is_the_whole_requests() -> None:
    """Three choices of a vote of four, under a budget of 30 tokens: the
    runs share it, so together they generate about 30 tokens, not 90."""
    long = "Let us count one by one and then add them all up carefully. Answer: 7"
    generator = ScriptedGenerator.of(long)
    async with asgi_client(asgi_app(generator)) as http:
        response = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": QUESTION, "n": 3, "temperature": 0.7,
            "budget": {"max_tokens": 30},
            "strategy": {"name": "self_consistency", "n": 4}})
    body = response.json()
    assert response.status_code == 200, body
    generated = body["usage"]["completion_tokens"]
    # Each engine call may overrun by what was in flight when it ran out.
    assert 30 <= generated < 30 + 3 * 4
    assert all(run["budget_exhausted"] for run in body["ponder"]["choices"])
