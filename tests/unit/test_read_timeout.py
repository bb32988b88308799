"""Slow clients against the real HTTP server (uvicorn with ponder's protocol,
as ``ponder serve`` configures it, on a socket): a client that sends its
request a byte at a time (slowloris) is closed once --request-read-timeout
has passed since it connected, however steadily it trickles, while clients
that send their requests whole are served. The engine's server does the same
in tests/engine/test_api_reliability.py."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI

from ponder.bench.servers import free_port
from ponder.server.config import Settings
from ponder.server.runner import uvicorn_config

READ_TIMEOUT_S = 1.0
GIVE_UP_S = READ_TIMEOUT_S + 5


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    return app


@pytest.fixture
async def port() -> AsyncIterator[int]:
    chosen = free_port()
    settings = Settings(host="127.0.0.1", port=chosen, request_read_timeout=READ_TIMEOUT_S)
    server = uvicorn.Server(uvicorn_config(_app(), settings))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield chosen
    server.should_exit = True
    await serving


def _trickle(port: int, head: bytes, drip: bytes) -> float:
    """Send ``head``, then ``drip`` a byte every 50 ms for as long as the
    server listens; the seconds from connecting to the server's close."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sock.settimeout(0.05)
        for byte in drip * 1000:
            if time.monotonic() - started > GIVE_UP_S:
                break
            try:
                sock.send(bytes([byte]))
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - started
    return float("inf")


def _whole_request(port: int) -> bytes:
    body = b'{"say": "hi"}'
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: ponder\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize(("head", "drip"), [
    (b"", b"POST /echo HTTP/1.1\r\nHost: ponder\r\n"),
    (b"POST /echo HTTP/1.1\r\nHost: ponder\r\n", b"X-Slow: aaaaaaaa\r\n"),
    (b"POST /echo HTTP/1.1\r\nHost: ponder\r\nContent-Type: application/json\r\n"
     b"Content-Length: 100000\r\n\r\n", b'{"say": "'),
], ids=["request-line", "headers", "body"])
async def test_a_client_that_trickles_its_request_is_closed_within_the_read_timeout(
    port: int, head: bytes, drip: bytes
) -> None:
    trickling = asyncio.create_task(asyncio.to_thread(_trickle, port, head, drip))
    await asyncio.sleep(READ_TIMEOUT_S / 2)
    assert b'{"say":"hi"}' in await asyncio.to_thread(_whole_request, port)
    closed_after = await trickling
    assert READ_TIMEOUT_S * 0.9 <= closed_after < READ_TIMEOUT_S + 1.5
    assert b"200 OK" in await asyncio.to_thread(_whole_request, port)
