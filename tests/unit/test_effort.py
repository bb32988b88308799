"""`reasoning_effort` picks the operator's strategy preset, through the real
app over a scripted generator: presets parse and are checked at start, the
level reaches the template too, and an explicit strategy wins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.server.config import Settings
from ponder.server.effort import DEFAULT_PRESETS, LEVELS, NAMED_PRESETS, strategy_config

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

CHAT = "/v1/chat/completions"
BODY = {"model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "max_tokens": 16, "temperature": 0.7}


def test_every_level_has_a_default_preset() -> None:
    presets = Settings().effort_presets
    assert set(presets) == set(LEVELS) == set(DEFAULT_PRESETS)
    assert presets["high"].max_samples > presets["medium"].max_samples > presets["low"].max_samples


def test_an_operator_preset_replaces_the_default_with_its_parameters() -> None:
    settings = Settings(effort=["high=beam_search?beam_width=2&expand=4&step_delimiter=%0A"])
    high = settings.effort_presets["high"].model_dump()
    assert (high["name"], high["beam_width"], high["expand"]) == ("beam_search", 2, 4)
    assert high["step_delimiter"] == "\n"
    assert settings.effort_presets["medium"].model_dump()["name"] == "best_of_n"


@pytest.mark.parametrize("name", sorted(NAMED_PRESETS))
def test_a_level_can_name_a_preset(name: str) -> None:
    chosen = Settings(effort=[f"low={name}"]).effort_presets["low"].model_dump()
    expected = strategy_config(NAMED_PRESETS[name], name).model_dump()
    assert chosen == expected
    assert any(chosen.get(k) for k in ("first", "prune_every", "early_exit"))


@pytest.mark.parametrize(("preset", "says"), [
    ("highest=none", "LEVEL one of"),
    ("high=nonsense", "unknown strategy 'nonsense'"),
    ("high=best_of_n?n=0", "n: Input should be greater than or equal to 1"),
    ("high=best_of_n?bogus=1", "bogus: Extra inputs are not permitted"),
    ("high=best_of_n?n=300", "more than --max-samples 256"),
])
def test_a_bad_preset_stops_the_server_and_says_why(preset: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Settings(effort=[preset])


async def test_each_effort_level_runs_its_preset_and_says_so() -> None:
    generator = ScriptedGenerator.of("4", "5")
    app = asgi_app(generator, effort=["medium=self_consistency?n=3&prompt=direct"])
    async with asgi_client(app) as http:
        low = (await http.post(CHAT, json={**BODY, "reasoning_effort": "low"})).json()
        medium = (await http.post(CHAT, json={**BODY, "reasoning_effort": "medium"})).json()
        listing = (await http.get("/v1/strategies")).json()
    assert low["ponder"]["strategy"]["name"] == "none" and low["ponder"]["effort"] == "low"
    assert medium["ponder"]["strategy"]["name"] == "self_consistency"
    assert medium["ponder"]["strategy"]["n"] == 3 and medium["ponder"]["effort"] == "medium"
    assert medium["ponder"]["samples"] == 3 and low["ponder"]["samples"] == 1
    assert medium["usage"]["completion_tokens"] > low["usage"]["completion_tokens"]
    assert listing["efforts"]["medium"]["n"] == 3
    assert listing["efforts"]["high"]["name"] == "auto"
    # The level still reaches the chat template, as vLLM passes it.
    prompt = generator.calls[-1][0]
    assert dict(prompt.template_kwargs)["reasoning_effort"] == "medium"


async def test_an_explicit_strategy_or_alias_wins_over_the_effort() -> None:
    app = asgi_app(ScriptedGenerator.of("4"))
    async with asgi_client(app) as http:
        named = (await http.post(CHAT, json={
            **BODY, "reasoning_effort": "high", "strategy": "none"})).json()
        alias = (await http.post(CHAT, json={
            **BODY, "model": "smollm2@cot", "reasoning_effort": "high"})).json()
    assert named["ponder"]["strategy"]["name"] == "none" and "effort" not in named["ponder"]
    assert alias["ponder"]["strategy"]["name"] == "cot" and "effort" not in alias["ponder"]


def test_a_small_server_starts_with_the_default_presets() -> None:
    # A default preset beyond --max-samples is refused per request, not at start.
    assert Settings(max_samples=8).effort_presets["high"].max_samples == 160
