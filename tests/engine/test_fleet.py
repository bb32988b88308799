"""ponder with ``--engine remote`` over a real fleet, started once for this
module: two vLLM CPU servers on the embedded model, each pinned to its own
core, ``vllm-router`` in front of them, and ponder pointed at the router.
The same requests go to the session's embedded server, which must give
the same answers and the same usage for the same seed.

Its own marker (``fleet``) as well as ``engine``: ``pytest -m "not fleet"``
skips the two extra engines it costs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import openai
import pytest

from ponder.bench.fleet import fleet_cores, remote_ponder, replicas, routed
from ponder.bench.servers import RunningServer
from ponder.server.embedded_model import embedded_model_dir

pytestmark = pytest.mark.fleet

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each and eats 2. "
             "How many apples are left?"}]
SEARCH = {"prm": "step-checker", "max_steps": 3, "step_delimiter": "\n"}
STRATEGIES = {
    "none": "none",
    "self_consistency_online_deepconf": {
        "name": "self_consistency", "n": 6, "prompt": "direct", "online": True, "warmup": 2,
        "keep": 0.5, "window": 8,
    },
    "best_of_n": {"name": "best_of_n", "n": 4, "prm": "step-checker"},
    # The self-judge PRM generates its verdicts on the run's own generator:
    # here, the remote engine.
    "best_of_n_self_judge": {"name": "best_of_n", "n": 2, "prm": "self-judge"},
    "beam_search": {"name": "beam_search", "beam_width": 2, "expand": 2, **SEARCH},
    "dvts": {"name": "dvts", "n": 4, "expand": 2, **SEARCH},
}


@dataclass(frozen=True)
class FleetUnderTest:
    replicas: list[RunningServer]
    router: RunningServer
    ponder: RunningServer


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetUnderTest]:
    model_dir = str(embedded_model_dir())
    cores = fleet_cores()
    per_replica = [cores[0], cores[-1]]  # one core each where there are two
    with replicas(model_dir, per_replica) as running, routed(running, "cache_aware") as router, \
            remote_ponder(model_dir, router.base_url, ["--max-running-samples", "32"]) as ponder:
        yield FleetUnderTest(running, router, ponder)


@pytest.fixture(scope="module")
def remote(fleet: FleetUnderTest) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fleet.ponder.base_url}/v1", api_key="unused", max_retries=0)


def _ask(client: openai.OpenAI, strategy: object, **extra: object) -> object:
    extra.setdefault("extra_body", {"strategy": strategy})
    return client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=32, temperature=0.8, seed=5,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _gauge(replica: RunningServer, name: str = "vllm:num_requests_running") -> float:
    text = httpx.get(f"{replica.base_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategies_answer_as_on_the_embedded_engine(
    remote: openai.OpenAI, client: openai.OpenAI, name: str
) -> None:
    """Same seed, same answer, same usage (prompt, completion and reasoning
    tokens): the remote path changes where tokens are made, not which.
    Online DeepConf stops a sample when its confidence falls, and how many
    tokens it made before the stop lands depends on timing (on either
    engine): there the usage must be the sum of its samples' tokens. DVTS's
    subtrees advance on their own, so which of their requests share an
    engine batch depends on timing, and vLLM's CPU kernels are not
    batch-invariant: a line may come out a token different. There the
    usage must cover every step of its tree."""
    there = _ask(remote, STRATEGIES[name], extra_body={"strategy": STRATEGIES[name],
                                                        "include_candidates": True})
    here = _ask(client, STRATEGIES[name])
    ponder = there.model_extra["ponder"]  # type: ignore[attr-defined]
    if name == "dvts":
        assert there.choices[0].message.content  # type: ignore[attr-defined]
        assert there.usage.completion_tokens >= sum(node["tokens"] for node in ponder["tree"]) > 0  # type: ignore[attr-defined]
        return
    assert there.choices[0].message.content == here.choices[0].message.content  # type: ignore[attr-defined]
    assert there.usage.prompt_tokens == here.usage.prompt_tokens  # type: ignore[attr-defined]
    if name.endswith("online_deepconf"):
        assert there.usage.completion_tokens == sum(c["tokens"] for c in ponder["candidates"])  # type: ignore[attr-defined]
        return
    assert there.usage.completion_tokens == here.usage.completion_tokens  # type: ignore[attr-defined]
    assert (there.usage.completion_tokens_details.reasoning_tokens  # type: ignore[attr-defined]
            == here.usage.completion_tokens_details.reasoning_tokens)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "name", ["none", "self_consistency_online_deepconf", "best_of_n", "beam_search", "dvts"])
def test_streams_carry_the_same_answer_and_usage(remote: openai.OpenAI, name: str) -> None:
    whole = _ask(remote, STRATEGIES[name])
    chunks = list(_ask(remote, STRATEGIES[name], stream=True,  # type: ignore[call-overload]
                       stream_options={"include_usage": True}))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    if name == "dvts":  # its lanes batch by timing (see above): an answer is all it owes
        assert content
        return
    assert content == whole.choices[0].message.content  # type: ignore[attr-defined]
    if not name.endswith("online_deepconf"):  # where a stop lands depends on timing
        assert usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[attr-defined]


def test_a_chat_prompt_has_the_same_token_ids_on_every_engine(
    fleet: FleetUnderTest, http: httpx.Client
) -> None:
    """ponder renders the chat template itself, with vLLM's renderer: the ids
    it sends a replica are those the replica's own chat rendering makes,
    and those the embedded engine gets."""
    body = {"model": "smollm2", "messages": QUESTION}
    replica = httpx.post(f"{fleet.replicas[0].base_url}/tokenize", json=body, timeout=30).json()
    remote = httpx.post(f"{fleet.ponder.base_url}/tokenize", json=body, timeout=30).json()
    embedded = http.post("/tokenize", json=body).json()
    assert remote["tokens"] == replica["tokens"] == embedded["tokens"]


def test_prefix_cache_hits_come_back_in_usage(remote: openai.OpenAI) -> None:
    """A search continues each line by its token ids, so the replica's prefix
    cache serves them, and its count reaches the client (the prompt is long
    enough to fill whole KV blocks of 128 tokens, the CPU default)."""
    context = "Apples are counted in whole numbers. " * 40
    response = remote.chat.completions.create(
        model="smollm2", messages=[{"role": "system", "content": context}, *QUESTION],  # type: ignore[list-item]
        max_tokens=48, temperature=0.8, seed=5,
        extra_body={"strategy": STRATEGIES["beam_search"]},
    )
    assert response.usage.prompt_tokens_details.cached_tokens > 0  # type: ignore[attr-defined]


def test_a_client_that_leaves_aborts_the_upstream_request(fleet: FleetUnderTest) -> None:
    """Closing ponder's stream closes the upstream one; vLLM aborts it, as its
    running-requests gauge shows."""
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 2000, "stream": True,
            "ignore_eos": True, "n": 1}
    with httpx.Client(base_url=fleet.ponder.base_url, timeout=60) as session, \
            session.stream("POST", "/v1/chat/completions", json=body) as response:
        events = (line for line in response.iter_lines() if line.startswith("data:"))
        for _ in range(30):  # well into decoding, where the gauge has caught up
            next(events)
        assert sum(_gauge(r) for r in fleet.replicas) >= 1
    deadline = time.monotonic() + 10
    while sum(_gauge(r) for r in fleet.replicas) > 0:
        assert time.monotonic() < deadline, "the upstream request kept running"
        time.sleep(0.2)


def test_bad_requests_stay_400_through_the_remote_engine(fleet: FleetUnderTest) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 100000}
    response = httpx.post(f"{fleet.ponder.base_url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "max_tokens"


def test_zz_one_replica_dies_mid_run_and_nothing_hangs(fleet: FleetUnderTest) -> None:
    """Runs last in this module (it leaves one replica). Requests in flight
    on the replica that dies had produced nothing yet (they are not
    streamed), so they are retried on the other one; every request answers;
    ponder's /health stays 200 while a replica lives. The requests are long
    (320 tokens each), so that they are still running when the test looks
    at the replicas' /metrics, which may answer slowly; if every request
    ends before a replica is seen running one, the failure says how each
    request ended."""
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 320, "ignore_eos": True,
            "strategy": {"name": "self_consistency", "n": 4, "prompt": "direct"}}

    def ask(seed: int) -> int:
        return httpx.post(f"{fleet.ponder.base_url}/v1/chat/completions",
                          json={**body, "seed": seed}, timeout=240).status_code

    with ThreadPoolExecutor(6) as pool:
        answers = [pool.submit(ask, seed) for seed in range(6)]
        deadline = time.monotonic() + 60
        busy: list[RunningServer] = []
        while not busy and time.monotonic() < deadline and not all(a.done() for a in answers):
            busy = [r for r in fleet.replicas
                    if _gauge(r) + _gauge(r, "vllm:num_requests_waiting") > 0]
            time.sleep(0.2)
        assert busy, f"no replica ran a request; answered: {[_outcome(a) for a in answers]}"
        os.killpg(busy[0].process.pid, signal.SIGKILL)
        statuses = [answer.result(timeout=300) for answer in answers]
    assert statuses == [200] * 6
    assert httpx.get(f"{fleet.ponder.base_url}/health", timeout=10).status_code == 200
    metrics = httpx.get(f"{fleet.ponder.base_url}/metrics", timeout=10).text
    assert "ponder_engine_retries_total" in metrics  # the retries, if any, are counted
    survivor = next(r for r in fleet.replicas if r is not busy[0])
    assert asyncio.run(_still_serves(fleet.ponder.base_url)) and _gauge(survivor) == 0


def _outcome(answer: Future[int]) -> str:
    if not answer.done():
        return "pending"
    return repr(answer.exception() or answer.result())


async def _still_serves(base_url: str) -> bool:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as session:
        response = await session.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": QUESTION, "max_tokens": 8})
    return response.status_code == 200
