"""/tokenize and /detokenize are /v1-grade routes: with --api-key they need
the key, they take a slot of --max-concurrent-requests like a chat request
(and get 429 past it, 503 while the server drains), and their bodies count
against --max-request-bytes. The real tokenizer is in
tests/engine/test_api_tokenizer.py."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from ponder.core.generation import Prompt

from ..asgi import asgi_app, asgi_client
from .test_api_limits import BODY, HeldGenerator

KEY = "sk-tokenize"
TOKENIZE = {"model": "smollm2", "prompt": "two words"}
DETOKENIZE = {"tokens": [3, 5]}


class WordTokenizer:
    """A token per word (its id: the word's length); ``hold`` keeps
    tokenize calls waiting, as a long prompt would."""

    max_model_len = 2048
    vocab_size = 1000

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        self.entered.set()
        self.hold.wait(timeout=10)
        return [len(word) for word in text.split()]

    def rendered_ids(self, prompt: Prompt) -> list[int]:
        return self.tokenize(" ".join(str(m["content"]) for m in prompt.messages or ()), True)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return " ".join("x" * token for token in token_ids)

    def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        return ["x" * token for token in token_ids]


def _client(tokenizer: WordTokenizer, generator: Any = None, **settings: Any) -> httpx.AsyncClient:
    app = asgi_app(generator or HeldGenerator(), **settings)
    app.state.generator = tokenizer
    return asgi_client(app)


@pytest.mark.parametrize(("path", "body"), [("/tokenize", TOKENIZE), ("/detokenize", DETOKENIZE)])
async def test_the_key_is_needed_when_one_is_set(path: str, body: dict[str, Any]) -> None:
    async with _client(WordTokenizer(), api_key=KEY) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.post(path, json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "invalid_api_key"
        served = await client.post(path, json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert served.status_code == 200, served.text
    async with _client(WordTokenizer()) as client:  # no key set: open, as every route
        assert (await client.post(path, json=body)).status_code == 200


async def test_a_tokenize_call_holds_a_slot_like_a_chat_request() -> None:
    tokenizer = WordTokenizer()
    tokenizer.hold.clear()
    generator = HeldGenerator()
    generator.release.set()
    async with _client(tokenizer, generator, max_concurrent_requests=1) as client:
        held = asyncio.create_task(client.post("/tokenize", json=TOKENIZE))
        await asyncio.to_thread(tokenizer.entered.wait, 5)
        chat = await client.post("/v1/chat/completions", json=BODY)
        assert chat.status_code == 429, chat.text
        tokenize = await client.post("/tokenize", json=TOKENIZE)
        assert tokenize.status_code == 429 and tokenize.headers["retry-after"] == "1"
        tokenizer.hold.set()
        assert (await held).json()["tokens"] == [3, 5]
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        assert (await client.post("/tokenize", json=TOKENIZE)).status_code == 200


async def test_a_chat_request_in_flight_counts_against_tokenize() -> None:
    generator = HeldGenerator()
    async with _client(WordTokenizer(), generator, max_concurrent_requests=1) as client:
        chat = asyncio.create_task(client.post("/v1/chat/completions", json=BODY))
        while generator.waiting < 1:
            await asyncio.sleep(0.01)
        refused = await client.post("/detokenize", json=DETOKENIZE)
        assert refused.status_code == 429, refused.text
        generator.release.set()
        assert (await chat).status_code == 200
        assert (await client.post("/detokenize", json=DETOKENIZE)).json() == {"prompt": "xxx xxxxx"}


async def test_a_draining_server_refuses_tokenize() -> None:
    app = asgi_app(HeldGenerator())
    app.state.generator = WordTokenizer()
    app.state.lifecycle.drain()
    async with asgi_client(app) as client:
        response = await client.post("/tokenize", json=TOKENIZE)
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_shutting_down"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_gets_413(chunked: bool) -> None:
    tokenizer = WordTokenizer()
    big = json.dumps({"prompt": "word " * 2000}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async with _client(tokenizer, max_request_bytes=4096) as client:
        response = await client.post("/tokenize", content=pieces() if chunked else big,
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"
        assert not tokenizer.entered.is_set()
