"""What the real server's /metrics says about the engine, for tests that
check a request's generation really stopped."""

from __future__ import annotations

import time

import httpx


def gauge(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


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
