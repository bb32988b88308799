"""A search's step delimiter defaults to the server's, which suits the model
it serves; /v1/strategies shows the default in force; a request's own wins."""

from __future__ import annotations

import pytest

from ponder.server.config import Settings
from ponder.strategies.base import Verifiers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator, ScriptedPRM


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, "\n"),  # the embedded model writes a step per line
    ({"model": "/models/some-math-model"}, "\n\n"),
    ({"step_delimiter": "\n\n"}, "\n\n"),
])
def test_the_default_step_delimiter_follows_the_served_model(
    settings: dict[str, str], expected: str
) -> None:
    assert Settings(**settings).search_step_delimiter == expected


async def test_strategies_list_the_default_in_force_and_a_request_may_set_its_own() -> None:
    generator = ScriptedGenerator.of("Step one\nAnswer: 4")
    app = asgi_app(generator, Verifiers.of(default="judge", judge=ScriptedPRM({})),
                   step_delimiter="@@")
    async with asgi_client(app) as http:
        cards = {c["name"]: c for c in (await http.get("/v1/strategies")).json()["data"]}
        default = (await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "2 + 2?"}],
            "max_tokens": 16, "temperature": 0.7,
            "strategy": {"name": "particle_filtering", "n": 2}})).json()
        own = (await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "2 + 2?"}],
            "max_tokens": 16, "temperature": 0.7,
            "strategy": {"name": "beam_search", "step_delimiter": "##", "beam_width": 2}},
        )).json()
    for name in ("beam_search", "dvts", "particle_filtering"):
        assert cards[name]["defaults"]["step_delimiter"] == "@@"
    assert cards["best_of_n"]["defaults"].get("step_delimiter") is None
    assert default["ponder"]["strategy"]["step_delimiter"] == "@@"
    assert own["ponder"]["strategy"]["step_delimiter"] == "##"
