"""The server process as a supervisor (Docker, systemd, Kubernetes) sees it,
each scenario with a short-lived server of its own:

* SIGTERM drains: new requests get 503, a request in flight finishes, a
  stream still running when --shutdown-timeout is up ends with an error
  chunk then [DONE], and the process exits 0 with its engine gone;
* the engine core's death (SIGKILL): the requests in flight get a clean 503
  (a stream: an error chunk then [DONE]), and the process exits 1 within
  seconds, so the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from ponder.bench.servers import RunningServer, free_port, launched

from .conftest import STARTUP_TIMEOUT_S

SHUTDOWN_TIMEOUT_S = 20
EXIT_WITHIN_S = 30
"""After the drain (or the engine's death), the HTTP server, the engine and
its processes must be gone within this."""

FINISHES = {"model": "smollm2", "messages": [{"role": "user", "content": "What is 6 - 18?"}],
            "max_tokens": 32, "temperature": 0}
# Four stories of 1500 tokens each (past the end-of-sequence token): still
# being written when the shutdown timeout is up, in a batch small enough that
# the short request beside them finishes within it on a busy core.
OUTLASTS = {"model": "smollm2", "max_tokens": 1500, "temperature": 1.0, "stream": True,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "strategy": {"name": "self_consistency", "n": 4, "prompt": "direct"}}


@dataclass
class Outcome:
    whole: httpx.Response
    frames: list[str]
    """The stream's data frames."""
    finished_after_s: float
    """When the non-streamed request ended, after the event."""
    during: dict[str, httpx.Response | None]
    """What a client got between the event and the exit (None: the server
    had already closed its socket)."""
    exit_code: int
    exited_after_s: float
    survivors: list[int]
    """Processes of the server's tree still alive after it exited."""


@contextlib.contextmanager
def _server(*flags: str) -> Iterator[RunningServer]:
    port = free_port()
    command = [sys.executable, "-m", "ponder.server.cli", "serve", "--port", str(port),
               "--kv-cache-gb", "1", *flags]
    with launched("ponder", command, port, "smollm2", timeout=STARTUP_TIMEOUT_S) as running:
        yield running


async def _scenario(server: RunningServer, event: str) -> Outcome:
    """Two requests in flight (one short, one streamed and long), then
    ``event`` (sigterm or engine-death)."""
    tree = psutil.Process(server.process.pid).children(recursive=True)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as client:
        streamed = asyncio.create_task(_stream_frames(client))
        while not await _in_flight(client):
            await asyncio.sleep(0.1)
        whole = asyncio.create_task(client.post("/v1/chat/completions", json=FINISHES))
        while await _in_flight(client) < 2:
            await asyncio.sleep(0.05)

        start = time.monotonic()
        if event == "sigterm":
            server.process.send_signal(signal.SIGTERM)
        else:
            core = next(p for p in tree if "EngineCore" in " ".join(p.cmdline()))
            core.kill()
        await asyncio.sleep(0.5)
        if event == "engine-death":
            # The server learns of the death from vLLM's thread that watches
            # the engine core's process; on a busy machine that can take more
            # than the half second above (CI once saw /health still 200).
            # Once the request in flight has been answered, the server knows.
            await asyncio.wait([whole])
        during = {
            "health": await _unless_refused(client.get("/health")),
            "new request": await _unless_refused(
                client.post("/v1/chat/completions", json=FINISHES)),
        }
        whole_response = await whole
        finished_after = time.monotonic() - start
        frames = await streamed
    exit_code = await asyncio.to_thread(server.process.wait, SHUTDOWN_TIMEOUT_S + EXIT_WITHIN_S)
    exited_after = time.monotonic() - start
    return Outcome(whole_response, frames, finished_after, during, exit_code, exited_after,
                   await _survivors(tree))


async def _survivors(tree: list[psutil.Process], patience_s: float = 2) -> list[int]:
    """The processes of the server's tree (engine core, workers, resource
    tracker) still alive once ponder has exited: it waits for its engines'
    processes before it exits, and the resource tracker ends with it (the
    patience is for the tracker to see its pipe close)."""
    deadline = time.monotonic() + patience_s
    while True:
        alive = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        await asyncio.sleep(0.5)


async def _unless_refused(call: Awaitable[httpx.Response]) -> httpx.Response | None:
    try:
        return await call
    except httpx.ConnectError:
        return None


async def _stream_frames(client: httpx.AsyncClient) -> list[str]:
    async with client.stream("POST", "/v1/chat/completions", json=OUTLASTS) as response:
        assert response.status_code == 200
        return [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]


async def _in_flight(client: httpx.AsyncClient) -> int:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("ponder_requests_in_flight "):
            return int(float(line.split()[1]))
    return 0


def _error(frames: list[str]) -> dict:
    assert frames[-1] == "[DONE]", frames[-3:]
    return json.loads(frames[-2])["error"]


@pytest.fixture(scope="module")
def drained() -> Outcome:
    with _server("--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S)) as server:
        return asyncio.run(_scenario(server, "sigterm"))


@pytest.fixture(scope="module")
def engine_died() -> Outcome:
    with _server() as server:
        return asyncio.run(_scenario(server, "engine-death"))


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(drained: Outcome) -> None:
    assert drained.whole.status_code == 200, drained.whole.text
    assert drained.whole.json()["choices"][0]["message"]["content"]
    assert drained.finished_after_s < SHUTDOWN_TIMEOUT_S
    assert drained.exit_code == 0
    assert drained.survivors == []


def test_sigterm_refuses_new_work_while_draining(drained: Outcome) -> None:
    health, new = drained.during["health"], drained.during["new request"]
    assert health is not None and new is not None
    assert health.status_code == 503 and health.json() == {"status": "draining"}
    assert new.status_code == 503 and new.headers["retry-after"]
    assert new.json()["error"]["code"] == "server_shutting_down"


def test_the_shutdown_timeout_ends_a_stream_with_an_error_then_done(drained: Outcome) -> None:
    assert _error(drained.frames)["code"] == "server_shutting_down"
    assert any('"reasoning' in frame for frame in drained.frames[:-2])  # it had been streaming
    assert SHUTDOWN_TIMEOUT_S <= drained.exited_after_s < SHUTDOWN_TIMEOUT_S + EXIT_WITHIN_S


def test_engine_death_answers_503_then_exits_1(engine_died: Outcome) -> None:
    assert engine_died.whole.status_code == 503, engine_died.whole.text
    assert engine_died.whole.json()["error"]["code"] == "engine_unavailable"
    assert _error(engine_died.frames)["code"] == "engine_unavailable"
    # The process is on its way out: a client gets 503, or finds no server.
    for probe in engine_died.during.values():
        assert probe is None or probe.status_code == 503
    assert engine_died.exit_code == 1
    assert engine_died.exited_after_s < EXIT_WITHIN_S
    assert engine_died.survivors == []
