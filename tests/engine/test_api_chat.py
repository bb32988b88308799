"""The real server on the real engine, called with the official `openai`
client and with httpx."""

from __future__ import annotations

import json
import time

import httpx
import openai

from .conftest import Server

QUESTION = [{"role": "user", "content": "What is 6 - 18?"}]


def test_chat_completion(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    assert ponder["strategy"] == {"name": "none", "early_exit": None}
    assert ponder["samples"] == 1 and ponder["elapsed_ms"] > 0


def test_stream_matches_the_non_streamed_answer(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", messages=QUESTION, max_tokens=24, temperature=0)
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(
        client.chat.completions.create(
            **args, stream=True, stream_options={"include_usage": True}  # type: ignore[call-overload]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and not usage_chunks[0].choices
    assert usage_chunks[0].usage == whole.usage


def test_stream_is_real_and_ends_with_done(server: Server) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 64, "temperature": 0,
            "stream": True}
    arrivals: list[float] = []
    lines: list[str] = []
    start = time.monotonic()
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.headers(), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                lines.append(line)
                arrivals.append(time.monotonic() - start)
    assert lines[-1] == "data: [DONE]"
    tokens = [json.loads(line[6:]) for line in lines[1:-1]]
    assert len(tokens) > 10
    # Token by token: the second data frame comes long before the last one.
    assert arrivals[1] < arrivals[-1] / 2


def test_cot_hidden_counts_reasoning_but_returns_none(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, temperature=0,
        extra_body={"strategy": "cot", "reasoning": "hidden"},
    )
    message = response.choices[0].message
    assert message.model_extra.get("reasoning_content") is None  # type: ignore[union-attr]
    assert message.model_extra.get("reasoning") is None  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.completion_tokens_details is not None
    reasoning_tokens = response.usage.completion_tokens_details.reasoning_tokens
    assert reasoning_tokens is not None
    assert 0 < reasoning_tokens <= response.usage.completion_tokens


def test_cot_visible_returns_the_trace(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, temperature=0,
        extra_body={"strategy": {"name": "cot"}, "reasoning": "visible"},
    )
    extra = response.choices[0].message.model_extra or {}
    assert extra["reasoning_content"]
    assert extra["reasoning"] == extra["reasoning_content"]
    assert response.model_extra["ponder"]["strategy"]["name"] == "cot"  # type: ignore[index]


def test_cot_hidden_stream_has_no_reasoning_deltas(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, temperature=0, stream=True,
        stream_options={"include_usage": True},
        extra_body={"strategy": "cot", "reasoning": "hidden"},
    ))
    assert all(
        not (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks if c.choices
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert (usage.completion_tokens_details.reasoning_tokens or 0) > 0


def test_model_alias_picks_the_strategy(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2@cot", messages=QUESTION, max_tokens=16, temperature=0
    )
    assert response.model_extra["ponder"]["strategy"]["name"] == "cot"  # type: ignore[index]


def test_n_gives_independent_choices(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=12, temperature=1.0, n=3, seed=7
    )
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert response.usage is not None
    assert response.usage.completion_tokens <= 36
    assert len(response.model_extra["ponder"]["choices"]) == 3  # type: ignore[index]


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", messages=QUESTION, max_tokens=16, temperature=1.0, seed=123)
    first = client.chat.completions.create(**args)  # type: ignore[call-overload]
    second = client.chat.completions.create(**args)  # type: ignore[call-overload]
    assert first.choices[0].message.content == second.choices[0].message.content


def test_models_list_has_one_alias_per_strategy(client: openai.OpenAI, http: httpx.Client) -> None:
    ids = [m.id for m in client.models.list()]
    strategies = [s["name"] for s in http.get("/v1/strategies").json()["data"]]
    assert ids[0] == "smollm2"
    assert {"none", "cot"} <= set(strategies)
    assert ids[1:] == [f"smollm2@{name}" for name in strategies]


def test_strategies_describe_their_parameters(http: httpx.Client) -> None:
    listing = http.get("/v1/strategies").json()
    assert listing["default"] == "none"
    cot = next(s for s in listing["data"] if s["name"] == "cot")
    assert "prompt" in cot["parameters"]["properties"]
    assert cot["defaults"] == {"name": "cot", "prompt": "cot", "early_exit": None}


def test_strategies_state_the_engine_settings_in_force(http: httpx.Client) -> None:
    """The session server runs on a CPU: a fixed 2 GiB KV cache, eager, no
    graphs, whole-prompt prefill, as vLLM resolved them once started."""
    policy = http.get("/v1/strategies").json()["engines"]["policy"]
    assert policy["kv_cache_memory_bytes"] == 2 * 1024**3 and policy["kv_cache_tokens"] > 0
    assert policy["enforce_eager"] is True and policy["cudagraph_mode"] == "NONE"
    assert policy["chunked_prefill"] is False and policy["prefix_caching"] is True
    assert policy["block_size"] == 32 and policy["max_num_seqs"] > 0


def test_openapi_describes_the_request_body(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    body = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert {"messages", "strategy", "reasoning", "include_candidates", "n"} <= set(body)


def test_metrics_count_requests(client: openai.OpenAI, http: httpx.Client) -> None:
    client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=4)
    text = http.get("/metrics").text
    assert 'ponder_requests_total{status="200",strategy="none",stream="false"}' in text
    assert 'ponder_tokens_total{kind="completion",strategy="none"}' in text


def _counter(text: str, name: str) -> float:
    """A counter's total over its labels."""
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith((f"{name}_total{{", f"{name}_total ")))


def test_prefix_cache_hits_show_in_usage_and_metrics(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    """A prompt seen before is served from the prefix cache (whole KV blocks
    of it): the response says how many of its tokens, and /metrics carries
    the engine's own prefix-cache counters."""
    long_prompt = [{"role": "user", "content": "Read this list and say OK. " + " ".join(
        f"item {i}," for i in range(200))}]
    before = http.get("/metrics").text
    first = client.chat.completions.create(model="smollm2", messages=long_prompt, max_tokens=2)
    again = client.chat.completions.create(model="smollm2", messages=long_prompt, max_tokens=2)
    after = http.get("/metrics").text
    assert first.usage is not None and again.usage is not None
    assert again.usage.prompt_tokens == first.usage.prompt_tokens > 400
    cached = again.usage.prompt_tokens_details
    assert cached is not None and cached.cached_tokens is not None
    assert first.usage.prompt_tokens // 2 < cached.cached_tokens < again.usage.prompt_tokens
    queries, hits = (_counter(after, f"vllm:prefix_cache_{kind}")
                     - _counter(before, f"vllm:prefix_cache_{kind}") for kind in ("queries", "hits"))
    assert queries >= 2 * first.usage.prompt_tokens and hits >= cached.cached_tokens
