"""A policy belongs to the model it was fit on: served with another model it
is not followed, the server says so once, and ``auto`` runs the
model-neutral rule."""

from __future__ import annotations

import logging

import pytest

from ponder.core.fingerprint import ModelIdentity
from ponder.prm.registry import NEUTRAL_COMBINATIONS
from ponder.prm.reward_free import REWARD_FREE
from ponder.server.app import _policy_for
from ponder.server.config import Settings
from ponder.strategies.base import Verifiers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

VERIFIERS = Verifiers.of(**REWARD_FREE)
OTHER = ModelIdentity("qwen", "fedcba9876543210")
DISAGREE = ("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7", "2 + 5 = 6\nAnswer: 6",
            "2 + 5 = 9\nAnswer: 9")


def test_the_policy_applies_to_its_own_model_only(caplog: pytest.LogCaptureFixture) -> None:
    policy = Settings().calibrated_policy
    assert _policy_for(policy, ModelIdentity("renamed", policy.model.fingerprint)) is policy
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert _policy_for(policy, OTHER) is None
    [warning] = caplog.records
    assert "model-neutral rule" in warning.getMessage() and OTHER.fingerprint in \
        warning.getMessage()


async def test_served_with_another_model_auto_follows_the_neutral_rule() -> None:
    generator = ScriptedGenerator.of(*DISAGREE)
    async with asgi_client(asgi_app(generator, VERIFIERS, served=OTHER)) as http:
        listing = (await http.get("/v1/strategies")).json()
        response = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 5?"}],
            "temperature": 0.7, "strategy": {"name": "auto", "n": 8, "prm": "self-certainty"}})
    assert listing["model"] == OTHER.as_json()
    shown = next(card for card in listing["data"] if card["name"] == "auto")["policy"]
    assert shown["applies"] is False and "model-neutral" in shown["rule"]
    assert shown["fit_on"]["name"] == "smollm2" and shown["verifiers"] == NEUTRAL_COMBINATIONS
    decision = response.json()["ponder"]["strategy"]["decision"]
    assert "model-neutral" in decision["policy"] and decision["difficulty"] is None
    assert decision["choice"] == "best_of_n@8" and decision["probe_samples_reused"] == 4


async def test_served_with_its_own_model_the_policy_decides() -> None:
    generator = ScriptedGenerator.of(*DISAGREE)
    async with asgi_client(asgi_app(generator, VERIFIERS)) as http:
        response = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 5?"}],
            "temperature": 0.7, "strategy": {"name": "auto", "n": 8, "prm": "self-certainty"}})
    decision = response.json()["ponder"]["strategy"]["decision"]
    assert decision["difficulty"] is not None and "model-neutral" not in decision["policy"]
