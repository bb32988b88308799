"""No secret and no foreign text in what ponder says: the user info and query
values of URLs are hidden in errors, logs and listings; an upstream's body
that is not its JSON is described, never quoted; an HTTP client's exception
text stays in the operator's log, never in a client's error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from ponder.core.generation import Sampling
from ponder.core.redaction import describe_body, redact
from ponder.prm.registry import parse_prm_spec
from ponder.prm.reward_free import REWARD_FREE
from ponder.prm.remote import RemotePRM, RemotePRMError
from ponder.server.cli import main as cli_main
from ponder.server.cli import redacting_formatter
from ponder.server.config import SHIPPED_POLICY, Settings
from ponder.server.errors import EngineUnavailable, UpstreamFailed, log_failure
from ponder.server.remote import _upstream_model
from ponder.strategies.base import Verifiers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator
from .test_remote_engine import PROMPT, Upstream, generator

SECRET = "hunter2"
URL = f"http://admin:{SECRET}@10.0.0.7:8000/v1"
PROXY_PAGE = ("<html><body><h1>502 Bad Gateway</h1><script>alert(document.cookie)</script>"
              "<p>upstream 10.0.0.7:8000 failed (nginx/1.25 at edge-3.corp)</p></body></html>")


@pytest.mark.parametrize(("text", "shown"), [
    (URL, "http://***@10.0.0.7:8000/v1"),
    ("https://token@host/v1", "https://***@host/v1"),
    ("at http://h:1/v1?api_key=k1&x=2#top, then", "at http://h:1/v1?api_key=***&x=***#top, then"),
    (f"PRM 'j=remote:{URL}?model=m'", "PRM 'j=remote:http://***@10.0.0.7:8000/v1?model=***'"),
    ("http://host:8000/v1 and mail a@b.c", "http://host:8000/v1 and mail a@b.c"),
    ("no url here", "no url here"),
])
def test_urls_lose_their_secrets_but_keep_where(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_a_body_is_described_by_type_and_length() -> None:
    assert describe_body("text/html; charset=utf-8", 312) == "a text/html body of 312 bytes"
    assert describe_body(None, 0) == "a body of 0 bytes"
    assert describe_body("text/html<script>alert(1)</script>", 9) == "a body of 9 bytes"


def _clean(message: str) -> None:
    for leak in (SECRET, "admin", "10.0.0.7", "<", "corp", "Error(", "httpx"):
        assert leak not in message, message


async def test_an_unreachable_upstream_is_named_without_its_address() -> None:
    refused = httpx.ConnectError("All connection attempts failed")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed ('10.0.0.7', 8000)")
    remote = generator(Upstream(refused, refused))
    remote.url = URL
    with pytest.raises(EngineUnavailable) as raised:
        await remote.generate(PROMPT, 1, Sampling(max_tokens=5))
    _clean(raised.value.message)
    assert "unreachable" in raised.value.message and "connection refused" in raised.value.message


@pytest.mark.parametrize("status", [502, 500, 404])
async def test_an_upstream_page_is_described_not_quoted(status: int) -> None:
    page = httpx.Response(status, text=PROXY_PAGE, headers={"content-type": "text/html"})
    with pytest.raises(UpstreamFailed) as raised:
        await generator(Upstream(lambda _: page, lambda _: page)).generate(
            PROMPT, 1, Sampling(max_tokens=5))
    _clean(raised.value.message)
    assert f"a text/html body of {len(PROXY_PAGE)} bytes" in raised.value.message


async def test_a_foreign_json_body_is_described_and_an_error_message_is_redacted() -> None:
    foreign = httpx.Response(502, json={"detail": PROXY_PAGE})
    with pytest.raises(UpstreamFailed) as raised:
        await generator(Upstream(lambda _: foreign, lambda _: foreign)).generate(
            PROMPT, 1, Sampling(max_tokens=5))
    _clean(raised.value.message)
    assert "application/json" in raised.value.message
    quoted = httpx.Response(500, json={"error": {"message": f"cannot reach {URL}"}})
    with pytest.raises(UpstreamFailed) as raised:
        await generator(Upstream(lambda _: quoted, lambda _: quoted)).generate(
            PROMPT, 1, Sampling(max_tokens=5))
    assert SECRET not in raised.value.message and "http://***@" in raised.value.message


async def test_a_dropped_connection_does_not_quote_the_http_client() -> None:
    dropped = httpx.RemoteProtocolError(f"peer closed connection to {URL}")
    with pytest.raises(UpstreamFailed) as raised:
        await generator(Upstream(dropped, dropped)).generate(PROMPT, 1, Sampling(max_tokens=5))
    _clean(raised.value.message)


async def test_the_remote_prm_names_what_failed_without_quoting_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        error = httpx.ConnectError(f"cannot connect to {URL}")
        error.__cause__ = ConnectionRefusedError(111, "refused")
        raise error

    prm = RemotePRM(httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url=URL))
    with pytest.raises(RemotePRMError) as raised:
        await prm.score_solution("q", ["a step"])
    _clean(str(raised.value))
    assert "connection refused" in str(raised.value)

    page = httpx.MockTransport(lambda _: httpx.Response(200, text=PROXY_PAGE))
    prm = RemotePRM(httpx.AsyncClient(transport=page, base_url=URL))
    with pytest.raises(RemotePRMError) as raised:
        await prm.score_solution("q", ["a step"])
    _clean(str(raised.value))


async def test_startup_waits_and_gives_up_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {URL}")

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url=URL)
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError) as raised:
        await _upstream_model(client, URL, wait_s=0, wanted=None)
    assert SECRET not in str(raised.value) and "http://***@10.0.0.7:8000/v1" in str(raised.value)
    assert SECRET not in caplog.text


def test_settings_errors_hide_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError) as raised:
        Settings(engine="remote", engine_url=f"ftp://admin:{SECRET}@10.0.0.7/")
    assert SECRET not in str(raised.value.errors()[0]["msg"])
    with pytest.raises(ValueError) as raised:
        parse_prm_spec(f"judge=remote:{URL}?tag=x&key=sk-1&model=m")
    assert SECRET not in str(raised.value) and "sk-1" not in str(raised.value)
    with pytest.raises(SystemExit) as stopped:
        cli_main(["serve", "--engine", "remote", "--engine-url", f"ftp://admin:{SECRET}@h/"])
    assert SECRET not in str(stopped.value)


def test_the_log_hides_secrets_in_messages_and_tracebacks() -> None:
    formatter = redacting_formatter()
    try:
        raise httpx.HTTPStatusError(f"Server error '500' for url '{URL}/pooling'",
                                    request=httpx.Request("POST", URL), response=httpx.Response(500))
    except httpx.HTTPStatusError as error:
        record = logging.LogRecord("ponder", logging.ERROR, __file__, 1, "calling %s",
                                   (URL,), (type(error), error, error.__traceback__))
    record.request_id = "-"
    line = formatter.format(record)
    assert SECRET not in line and "http://***@10.0.0.7:8000/v1" in line


def test_a_logged_failure_cause_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    error = EngineUnavailable("The upstream engine is unreachable.")
    error.__cause__ = httpx.ConnectError(f"cannot connect to {URL}")
    with caplog.at_level(logging.WARNING):
        log_failure(error, error)
    assert "unreachable" in caplog.text and SECRET not in caplog.text


async def test_listings_and_metrics_show_no_secret() -> None:
    app = asgi_app(ScriptedGenerator.of("4"), prm=[f"judge=remote:{URL}"], default_prm="judge")
    async with asgi_client(app) as client:
        for path in ("/v1/strategies", "/v1/models", "/metrics", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 200 and SECRET not in response.text, path


async def test_a_policy_is_shown_without_paths_or_secrets(tmp_path: Path) -> None:
    """Clients see the policy's source in /v1/strategies and in every auto
    decision: the data by file name, a URL without its user info."""
    policy = json.loads(SHIPPED_POLICY.read_text())
    policy["source"] = f"ponder calibrate --url {URL}?key=k1 --data /home/someone/data/mine.jsonl:40"
    del policy["hidden_state_probe"]  # a file beside the shipped policy, not beside this copy
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    app = asgi_app(ScriptedGenerator.of(*["2 + 2 = 4\nAnswer: 4"] * 8),
                   Verifiers.of(**REWARD_FREE), policy=path)
    async with asgi_client(app) as client:
        listing = (await client.get("/v1/strategies")).json()
        answer = (await client.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
            "strategy": {"name": "auto", "n": 4, "prm": "self-certainty"}})).json()
    shown = next(card for card in listing["data"] if card["name"] == "auto")["policy"]["source"]
    assert "ponder" in answer, answer
    decided = answer["ponder"]["strategy"]["decision"]["policy"]
    for text in (shown, decided):
        assert "mine.jsonl:40" in text and "http://***@10.0.0.7:8000/v1?key=***" in text
        assert "someone" not in text and SECRET not in text and "k1" not in text
