"""What the real server's /metrics says about the engine, for tests that
check a request's generation really stopped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest


def gauge(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def engine_requests(http: httpx.Client) -> tuple[float, float]:
    """vLLM's own count of the policy engine's requests and of the choices
    they asked for."""
    values = {}
    for line in http.get("/metrics").text.splitlines():
        for name in ("vllm:request_params_n_count", "vllm:request_params_n_sum"):
            if line.startswith(name + "{"):
                values[name] = values.get(name, 0.0) + float(line.split()[-1])
    return values["vllm:request_params_n_count"], values["vllm:request_params_n_sum"]


def running_requests(http: httpx.Client) -> float:
    return gauge(http, "ponder_engine_unfinished_requests")


def requests_in_flight(http: httpx.Client) -> float:
    return gauge(http, "ponder_requests_in_flight")


def wait_idle(http: httpx.Client, timeout: float = 10) -> float:
    """Engine requests still running once the server has let go of every
    request (its admission slot included), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (
        (running := running_requests(http)) or requests_in_flight(http)
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert requests_in_flight(http) == 0
    return running


async def leave_once_running(
    base_url: str, headers: dict[str, str], http: httpx.Client, body: dict[str, Any]
) -> float:
    """Post ``body``, hang up as soon as the engine runs it, and return the
    engine requests still running once the server let go of it."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as session:
        task = asyncio.create_task(session.post("/v1/chat/completions", json=body, timeout=120))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if running_requests(http):
                break
        assert running_requests(http) >= 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return wait_idle(http)
