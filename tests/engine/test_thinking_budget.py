"""Thinking budgets on a real engine, on a model that thinks in tags: a tiny
random Qwen2 checkpoint built here, whose tokenizer has `<think>` and
`</think>` and whose chat template opens a thinking block, served with
vLLM's deepseek_r1 reasoning parser. Random weights never end their own
thinking, so every sample runs into the cap: it must be ended for the
sample, exactly at the cap, and the sample must go on to answer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ponder.bench.servers import RunningServer, free_port, launched
from ponder.server.embedded_model import embedded_model_dir

from ..prm_fakes import build_tiny_qwen2
from .conftest import STARTUP_TIMEOUT_S

THINKING_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)
CAP = 12
MAX_TOKENS = 40


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    model = build_tiny_qwen2(
        tmp_path_factory.mktemp("thinker") / "model", "Qwen2ForCausalLM", embedded_model_dir(),
        special_tokens=("<think>", "</think>"), chat_template=THINKING_TEMPLATE,
    )
    port = free_port()
    command = [sys.executable, "-m", "ponder.server.cli", "serve", "--port", str(port),
               "--model", str(model), "--served-model-name", "thinker", "--kv-cache-gb", "1",
               "--reasoning-parser", "deepseek_r1", "--max-model-len", "512"]
    with launched("ponder", command, port, "thinker", timeout=STARTUP_TIMEOUT_S) as running:
        yield running


def _ask(server: RunningServer, **fields: object) -> dict:
    """Random weights write byte tokens whose text does not split cleanly;
    a bias makes the model write one plain word over and over, so token
    counts can be read back from the text exactly."""
    (word,) = _ids(server, " so")
    body = {"model": "thinker", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
            "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True,
            "logit_bias": {str(word): 100}, **fields}
    reply = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _ids(server: RunningServer, text: str) -> list[int]:
    reply = httpx.post(f"{server.base_url}/tokenize", timeout=30,
                       json={"prompt": text, "add_special_tokens": False})
    return reply.json()["tokens"]


def _forced_end(server: RunningServer) -> int:
    return len(_ids(server, "\n</think>"))


def test_the_cap_ends_the_thinking_and_the_sample_answers(thinker: RunningServer) -> None:
    reply = _ask(thinker, budget={"thinking_tokens": CAP})
    message, usage = reply["choices"][0]["message"], reply["usage"]
    assert message["reasoning"] == " so" * CAP + "\n"
    assert message["content"].strip().startswith("so")  # an answer after the forced end
    # Exactly CAP tokens of thinking, then the forced "\n</think>" (counted as
    # reasoning, as the parser splits it) and "\n\n" to answer.
    assert usage["completion_tokens_details"]["reasoning_tokens"] == CAP + _forced_end(thinker)
    assert usage["completion_tokens"] == MAX_TOKENS



def test_under_max_tokens_alone_the_thinking_leaves_room_to_answer(thinker: RunningServer) -> None:
    reply = _ask(thinker)
    thought = reply["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert thought == MAX_TOKENS - MAX_TOKENS // 4 + _forced_end(thinker)
    assert reply["choices"][0]["message"]["content"]


def test_every_sample_of_a_strategy_is_held_to_the_budget(thinker: RunningServer) -> None:
    reply = _ask(thinker, budget={"thinking_tokens": CAP}, temperature=0.8, seed=0,
                 strategy={"name": "self_consistency", "n": 3, "prompt": "direct"},
                 include_candidates=True)
    usage = reply["usage"]
    assert reply["ponder"]["samples"] == 3
    assert usage["completion_tokens"] == 3 * MAX_TOKENS
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 3 * (
        CAP + _forced_end(thinker))
