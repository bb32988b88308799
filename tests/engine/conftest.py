"""One real ponder server on the embedded model for the whole session (for
each pytest-xdist worker, under `make test`).

Every test in this folder needs the real vLLM engine and is marked
``engine``; ``tests/unit/`` needs none (``make test-fast``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from ponder.bench.servers import free_port, launched

HERE = Path(__file__).parent
API_KEY = "test-key-ponder"
STARTUP_TIMEOUT_S = 600  # the first run also converts the embedded model
REQUEST_READ_TIMEOUT_S = 3  # short, so the slow-client test need not wait long


@dataclass(frozen=True)
class Server:
    base_url: str
    api_key: str
    log: Path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _one_core_per_worker() -> None:
    """``make test`` runs two pytest-xdist workers, each starting its own
    servers. vLLM's CPU engines all bind to core 0 unless told otherwise, so
    each worker's engines get a core of their own (an explicit setting wins)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if worker.startswith("gw") and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        cores = sorted(os.sched_getaffinity(0))
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(cores[int(worker[2:]) % len(cores)])


_one_core_per_worker()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "ponder.server.cli", "serve", "--port", str(port),
               "--api-key", API_KEY, "--request-read-timeout", str(REQUEST_READ_TIMEOUT_S),
               "--tool-call-parser", "hermes"]
    with launched("ponder", command, port, "smollm2", timeout=STARTUP_TIMEOUT_S) as running:
        yield Server(running.base_url, API_KEY, running.log)


@pytest.fixture(scope="session")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)


@pytest.fixture(scope="session")
def async_client(server: Server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=120) as session:
        yield session
