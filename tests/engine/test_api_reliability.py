"""The real server as a hostile client and an operator find it: a lone
surrogate is a 400, a client that leaves is one log line,
stalled connections are closed while others are served, every response
and log line carries the request's id, and /metrics has what an operator
runs on. Process signals and engine death: test_lifecycle.py."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import REQUEST_READ_TIMEOUT_S, Server

VALID = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


def _raw_post(http: httpx.Client, path: str, json_text: str) -> httpx.Response:
    return http.post(path, content=json_text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(("path", "json_text", "param"), [
    ("/v1/chat/completions",
     '{"model": "smollm2", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
     "messages.0.content"),
    ("/v1/chat/completions",
     '{"model": "smollm2\\udfff", "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ("/v1/chat/completions",
     '{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "stop": ["\\ud800"]}',
     "stop.0"),
    ("/v1/completions", '{"model": "smollm2", "prompt": ["ok", "x\\udc00"]}', "prompt.1"),
], ids=["chat-content", "model", "stop", "completion-prompt"])
def test_a_lone_surrogate_is_a_400_naming_the_field(
    http: httpx.Client, path: str, json_text: str, param: str
) -> None:
    response = _raw_post(http, path, json_text)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and "surrogate" in error["message"]
    assert http.post("/v1/chat/completions", json=VALID).status_code == 200


def test_the_largest_seed_still_seeds_every_choice_and_sample(http: httpx.Client) -> None:
    """Choices and samples derive their seeds from the request's: at the top
    of the range they wrap around rather than overflow the engine."""
    body = {**VALID, "seed": 2**63 - 1, "n": 2, "temperature": 0.9,
            "strategy": {"name": "self_consistency", "n": 3, "prompt": "direct"}}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["ponder"]["choices"][1]["samples"] == 3


def test_every_response_and_its_log_lines_carry_the_request_id(
    server: Server, http: httpx.Client
) -> None:
    mine = f"trace-{uuid.uuid4().hex[:8]}"
    served = http.post("/v1/chat/completions", json=VALID, headers={"X-Request-Id": mine})
    refused = httpx.post(f"{server.base_url}/v1/chat/completions", json=VALID)  # no key
    assert served.headers["x-request-id"] == mine
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
    assert _wait_for_log(server, f"[{mine}] ")


async def test_a_client_that_leaves_is_one_log_line_not_a_traceback(
    server: Server, http: httpx.Client
) -> None:
    mine = f"leaver-{uuid.uuid4().hex[:8]}"
    # ignore_eos: the answer must still be running when the client leaves.
    body = {**VALID, "max_tokens": 2000, "temperature": 1.0, "ignore_eos": True}
    async with httpx.AsyncClient(base_url=server.base_url, headers={
        **server.headers(), "X-Request-Id": mine}) as session:
        task = asyncio.create_task(session.post("/v1/chat/completions", json=body, timeout=60))
        await asyncio.sleep(1.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = _wait_for_log(server, f"[{mine}] ")
    assert len(lines) == 1 and "client closed the connection" in lines[0], lines
    assert "CancelledError" not in server.log.read_text(errors="replace")


def _wait_for_log(server: Server, marker: str, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in server.log.read_text(errors="replace").splitlines()
                 if marker in line]
        if lines:
            return lines
        time.sleep(0.1)
    return []


def test_connections_that_stall_are_closed_while_others_are_served(
    server: Server, http: httpx.Client
) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    half_header = b"POST /v1/chat/completions HTTP/1.1\r\nHost: ponder\r\nContent-Le"
    half_body = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: ponder\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"model\": ")
    stalled = []
    for count in range(50):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(half_body if count % 5 == 0 else half_header)
        stalled.append(sock)
    started = time.monotonic()
    try:
        assert http.post("/v1/chat/completions", json=VALID).status_code == 200
        closed = 0
        for sock in stalled:
            sock.settimeout(REQUEST_READ_TIMEOUT_S + 10 - (time.monotonic() - started))
            try:
                # A stalled header gets nothing back; a stalled body may get
                # the 400 its unfinished JSON earns. Either way, then EOF.
                while sock.recv(4096):
                    pass
                closed += 1
            except ConnectionResetError:
                closed += 1
        assert closed == 50
        assert time.monotonic() - started < REQUEST_READ_TIMEOUT_S + 10
    finally:
        for sock in stalled:
            sock.close()
    assert http.post("/v1/chat/completions", json=VALID).status_code == 200


def test_metrics_an_operator_runs_on(http: httpx.Client) -> None:
    http.post("/v1/chat/completions", json=VALID)
    http.post("/v1/chat/completions", json={
        **VALID, "max_tokens": 24, "temperature": 0.8,
        "strategy": {"name": "self_consistency", "n": 3, "early_stop": True}})
    text = http.get("/metrics").text
    for family in (
        'ponder_time_to_first_token_seconds_count{strategy="none"}',
        'ponder_time_per_output_token_seconds_count{strategy="none"}',
        'ponder_requests_total{status="200",strategy="self_consistency",stream="false"}',
        "ponder_samples_running", "ponder_samples_waiting",
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    ):
        assert _value(text, family) >= 0, family
    assert _value(text, 'ponder_time_to_first_token_seconds_count{strategy="none"}') >= 1
    ttft = _value(text, 'ponder_time_to_first_token_seconds_sum{strategy="none"}')
    assert 0 < ttft < 60 * _value(text, 'ponder_time_to_first_token_seconds_count{strategy="none"}')
    for help_line in ("ponder_early_stops_total", "ponder_budget_exhaustions_total",
                      "ponder_prm_seconds", "ponder_prm_tokens_total"):
        assert f"# HELP {help_line.removesuffix('_total')}" in text


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " ") or line.startswith(series + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics")



def test_the_grafana_dashboard_reads_only_series_the_server_exports(http: httpx.Client) -> None:
    dashboard = json.loads((Path(__file__).parents[2] / "docker/grafana/dashboards/ponder.json")
                           .read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\b(?:ponder_|vllm:)[a-z_:]+", expr)}
    exported = {line.split()[2] for line in http.get("/metrics").text.splitlines()
                if line.startswith("# TYPE ")}
    # A histogram is read through its _bucket series, a counter through _total.
    missing = {name for name in used
               if name not in exported and name.removesuffix("_bucket") not in exported
               and name.removesuffix("_total") not in exported}
    assert not missing and len(used) >= 15, missing
