"""A search's step delimiter defaults to the server's, which suits the model
it serves; /v1/strategies shows the default in force; a request's own wins."""

from __future__ import annotations

import pytest

from ponder.server.config import Settings
from ponder.server.embedded_model import converted_checkpoint
from ponder.strategies import best_of_n, cot
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


@pytest.mark.parametrize(("settings", "request_fields", "expected", "explicit"), [
    ({}, {}, "direct", False),  # the instruction hurts the embedded model
    ({}, {"prompt": "cot"}, "cot", True),
    ({"model": "/models/some-math-model"}, {}, "cot", False),
    ({"model": "/models/m", "prompt_style": "direct"}, {}, "direct", False),
])
def test_the_default_prompt_follows_the_served_model(
    settings: dict[str, str], request_fields: dict[str, str], expected: str, explicit: bool
) -> None:
    config = Settings(**settings).with_server_defaults(
        best_of_n.Config(n=2, **request_fields))
    assert config.prompt == expected
    assert ("prompt" in config.model_fields_set) == explicit


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
    for name in ("beam_search", "dvts", "particle_filtering", "auto"):
        assert cards[name]["defaults"]["step_delimiter"] == "@@"
    policy = cards["auto"]["policy"]  # the policy in force, shown where auto is
    assert policy["applies"] and policy["bins"][-1]["upper"] == 1.0
    assert policy["source"] and "/" not in policy["source"]  # data by file name
    assert set(policy["verifiers"]) >= {"combined", "reward-free"}
    assert cards["best_of_n"]["policy"] is None
    assert cards["best_of_n"]["defaults"].get("step_delimiter") is None
    assert default["ponder"]["strategy"]["step_delimiter"] == "@@"
    assert own["ponder"]["strategy"]["step_delimiter"] == "##"


def test_cot_keeps_its_own_prompt_whatever_the_served_model() -> None:
    config = Settings().with_server_defaults(cot.Config())
    assert config.prompt == "cot"


def test_the_embedded_weights_behind_a_remote_engine_get_the_embedded_defaults() -> None:
    """A fleet of vLLM replicas serving the converted checkpoint is the same
    model: the same step delimiter and prompt suit it."""
    settings = Settings(model=str(converted_checkpoint()), engine="remote",
                        engine_url="http://127.0.0.1:9")
    assert settings.search_step_delimiter == "\n"
    assert settings.default_prompt_style == "direct"
