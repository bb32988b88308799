"""The cheaper strategies through the real app over the scripted engine:
the probe tokens' own usage line, the early exits in the metadata, and
the 400s that say which combinations do not go together."""

from __future__ import annotations

from typing import Any

import pytest

from ..asgi import asgi_app, asgi_client
from .test_early_exit import Engine

CHAT = "/v1/chat/completions"


def _body(strategy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 3?"}],
            "max_tokens": 100, "temperature": 0.7, "strategy": strategy, **extra}


async def test_probe_tokens_have_their_own_usage_line() -> None:
    gen = Engine({8: " 5", 12: " 5"})
    app = asgi_app(gen)
    app.state.service.answer_cues = gen.cues
    async with asgi_client(app) as client:
        response = await client.post(CHAT, json=_body(
            {"name": "cot", "early_exit": {"every": 4, "agree": 2}}))
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "5"
    ponder = body["ponder"]
    assert ponder["details"]["early_exits"] == 1
    assert 0 < ponder["usage"]["probe_tokens"] < body["usage"]["completion_tokens"]


@pytest.mark.parametrize(("strategy", "extra", "says"), [
    ({"name": "self_consistency", "n": 4, "first": 5}, {}, "cannot be more than n"),
    ({"name": "self_consistency", "n": 8, "first": 2, "online": True}, {}, "online"),
    ({"name": "best_of_n", "n": 4, "prune_keep": 0.5}, {}, "set prune_every"),
    ({"name": "none", "early_exit": {"every": 8}}, {"response_format": {"type": "json_object"}},
     "no part-way answer"),
])
async def test_combinations_that_do_not_go_together_are_a_400(
    strategy: dict[str, Any], extra: dict[str, Any], says: str
) -> None:
    gen = Engine({})
    app = asgi_app(gen)
    app.state.service.answer_cues = gen.cues
    async with asgi_client(app) as client:
        response = await client.post(CHAT, json=_body(strategy, **extra))
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
