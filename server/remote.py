"""The strategies' :class:`Generator` over a vLLM OpenAI-compatible server
(``ponder serve --engine remote --engine-url URL``): one replica, or a
router such as ``vllm-router`` in front of several.

It keeps what the embedded engine gives the strategies:

* Prompts are rendered here, with the same vLLM renderer built from
  ``--model``, and sent as token ids to ``/v1/completions``; a partial
  solution is continued by exactly the ids generated so far, so step-level
  search hits the replica's prefix cache, and a chat prompt has the same ids
  on either engine.
* ``n`` fans out in ONE upstream request; ``return_token_ids`` brings the
  generated ids back (usage stays exact), ``logprobs`` the log-probabilities
  (the confidence rules read them), ``stop_reason`` the stop string.
* ``stream`` reads the upstream's server-sent events per child; closing it
  (early stopping, a budget, a client that left) closes the HTTP stream, and
  vLLM aborts the request and all its children.
* A call that has produced nothing yet is retried once when the upstream
  refused the connection, dropped it, or answered 5xx (a replica that died,
  a router with no healthy replica for a moment); otherwise the request ends
  with 503 (unreachable), 502 (it failed) or 504 (no byte within
  ``--engine-timeout``), in OpenAI's error shape. A read timeout is not
  retried: that would double an already long wait.

All calls share one pooled ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from vllm.renderers import BaseRenderer

from ponder.core.generation import (
    Generation,
    Prompt,
    SampleDelta,
    Sampling,
)
from ponder.core.redaction import failure_cause, redact
from ponder.server.errors import UpstreamFailed
from ponder.server.rendering import PromptRenderer
from ponder.server.request_context import current_request
from ponder.server.upstream import (
    StreamState,
    UpstreamError,
    cached_tokens,
    choice_index,
    raise_for_status,
    sample_of,
    transport_failure,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
HEALTH_TIMEOUT_S = 2.0
HEALTH_CACHE_S = 1.0
"""/health of ponder asks the upstream at most this often (load balancers
and Kubernetes probe every few seconds; many ponder replicas share one router)."""
RETRY_DELAY_S = 1.0
"""Before the one retry: time for a router's health check to take a dead
replica out of its rotation, so the retry lands on a live one."""
STARTUP_POLL_S = 2.0


def api_root(url: str) -> str:
    """The upstream's ``/v1`` URL, whether ``url`` ends in ``/v1`` or not."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


class RemoteGenerator(PromptRenderer):
    def __init__(
        self, renderer: BaseRenderer, client: httpx.AsyncClient, url: str,
        model_name: str, max_model_len: int,
    ) -> None:
        super().__init__(renderer, max_model_len)
        self.client = client
        self.url = url
        self.model_name = model_name
        self.in_flight = 0
        self.on_retry: Callable[[], None] = lambda: None
        """Told of each call tried a second time (the server counts them in
        ``ponder_engine_retries``)."""
        self._health: tuple[float, bool] = (-HEALTH_CACHE_S, False)
        self._health_check: asyncio.Future[bool] | None = None

    # What the server asks of whatever engine it holds (app.state.engine):
    # a remote engine never dies with ponder's process, so it never errors;
    # /health asks the upstream instead.
    errored = False

    def get_num_unfinished_requests(self) -> int:
        return self.in_flight

    async def healthy(self) -> bool:
        """Whether the upstream can serve, asked at most once a second and
        never twice at once: callers that come while a check runs await that
        one. A vLLM server's /health is 200; vllm-router's is 503 as soon as
        one replica is down, while its /readiness stays 200 as long as one lives."""
        checked_at, healthy = self._health
        if time.monotonic() - checked_at < HEALTH_CACHE_S:
            return healthy
        if self._health_check is None:
            self._health_check = asyncio.ensure_future(self._check_health())
            self._health_check.add_done_callback(self._health_checked)
        # Shielded: a caller that leaves does not cancel the others' answer.
        return await asyncio.shield(self._health_check)

    def _health_checked(self, check: asyncio.Future[bool]) -> None:
        self._health_check = None
        if not check.cancelled() and check.exception() is None:
            self._health = (time.monotonic(), check.result())

    async def _check_health(self) -> bool:
        root = self.url.removesuffix("/v1")
        for path in ("/health", "/readiness"):
            try:
                response = await self.client.get(root + path, timeout=HEALTH_TIMEOUT_S)
            except httpx.HTTPError:
                return False
            if response.status_code == 200:
                return True
        return False

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        ids = await self.prompt_ids(prompt)
        body = self._body(ids, n, sampling, stream=False)
        for attempt in (1, 2):
            try:
                payload = await self._post(body)
                break
            except UpstreamError as failure:
                self._give_up_or_retry(failure, attempt)
                await asyncio.sleep(RETRY_DELAY_S)
        context = current_request()
        if context is not None:
            context.saw_first_token(time.monotonic())
        samples = [
            sample_of(choice, sampling) for choice in sorted(payload["choices"], key=choice_index)
        ]
        return Generation(len(ids), samples, cached_tokens(payload))

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        ids = await self.prompt_ids(prompt)
        body = self._body(ids, n, sampling, stream=True)
        for attempt in (1, 2):
            produced = False
            try:
                # Closed with this generator (a consumer that stops early closes
                # it at a yield): the upstream stream closes, vLLM aborts.
                async with contextlib.aclosing(
                    self._stream_once(body, len(ids), n, sampling)
                ) as deltas:
                    async for delta in deltas:
                        produced = True
                        yield delta
                return
            except UpstreamError as failure:
                if produced:
                    raise failure.error from failure
                self._give_up_or_retry(failure, attempt)
                await asyncio.sleep(RETRY_DELAY_S)

    def _give_up_or_retry(self, failure: UpstreamError, attempt: int) -> None:
        if not failure.retryable or attempt == 2:
            raise failure.error from failure
        self.on_retry()
        logger.warning("upstream call failed before producing anything (%s); trying once more",
                       failure)

    def _body(self, ids: list[int], n: int, sampling: Sampling, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "prompt": ids,
            "n": n,
            "max_tokens": self.max_tokens(ids, sampling.max_tokens),
            "min_tokens": sampling.min_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "repetition_penalty": sampling.repetition_penalty,
            "ignore_eos": sampling.ignore_eos,
            "stop": list(sampling.stop),
            "stop_token_ids": list(sampling.stop_token_ids),
            "include_stop_str_in_output": sampling.include_stop,
            "skip_special_tokens": sampling.skip_special_tokens,
            "return_token_ids": True,
            "stream": stream,
        }
        context = current_request()
        if context is not None:
            body["user"] = context.id  # the OpenAI field routers and logs know
        if sampling.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.logprobs or sampling.top_logprobs:
            body["logprobs"] = sampling.top_logprobs
        if sampling.json_output is not None:
            schema = sampling.json_output.schema
            body["structured_outputs"] = {"json_object": True} if schema is None else {"json": schema}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _headers(self) -> dict[str, str]:
        """The upstream request's id (vLLM takes X-Request-Id as its own, so its
        logs name ponder's request), and ponder's request id as the session,
        the same on every call of the request: vllm-router's consistent_hash
        policy hashes X-Session-Id, so all of them land on one replica, where
        their prefixes are cached."""
        context = current_request()
        own = context.id if context else "ponder"
        return {"X-Request-Id": f"{own}-{uuid.uuid4().hex[:16]}", "X-Session-Id": own}

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        self.in_flight += 1
        try:
            response = await _detached(
                self.client.post("/completions", json=body, headers=self._headers())
            )
        except httpx.HTTPError as error:
            raise transport_failure(error) from error
        finally:
            self.in_flight -= 1
        raise_for_status(response, body)
        try:
            payload = response.json()
            payload["choices"]
        except (ValueError, KeyError, TypeError) as error:
            raise UpstreamError(UpstreamFailed("The upstream engine's answer is not a "
                                               "completion."), retryable=True) from error
        return payload  # type: ignore[no-any-return]

    async def _stream_once(
        self, body: dict[str, Any], prompt_tokens: int, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        """One upstream stream, child by child. The delta that ends the last
        child waits for the usage chunk right behind it, which carries the
        prefix-cache hits. The HTTP exchange runs in a task of its own (see
        :func:`_detached`), cancelled once when this generator closes."""
        state = StreamState(n, prompt_tokens, sampling)
        chunks: asyncio.Queue[dict[str, Any] | UpstreamError | None] = asyncio.Queue()
        pump = asyncio.ensure_future(self._pump(body, chunks))
        self.in_flight += 1
        try:
            while (chunk := await chunks.get()) is not None:
                if isinstance(chunk, UpstreamError):
                    raise chunk
                for delta in state.read(chunk):
                    yield delta
        finally:
            self.in_flight -= 1
            _let_finish(pump)
        yield state.last_delta()

    async def _pump(
        self, body: dict[str, Any], chunks: asyncio.Queue[dict[str, Any] | UpstreamError | None]
    ) -> None:
        """The upstream's events, parsed, into ``chunks``; then None, or the
        failure, whatever it is. Cancelled, it closes the stream and so its
        connection."""
        try:
            async with self.client.stream(
                "POST", "/completions", json=body, headers=self._headers()
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise_for_status(response, body)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunks.put_nowait(json.loads(data))
            chunks.put_nowait(None)
        except UpstreamError as failure:
            chunks.put_nowait(failure)
        except httpx.HTTPError as error:
            chunks.put_nowait(transport_failure(error))
        except ValueError:
            chunks.put_nowait(UpstreamError(
                UpstreamFailed("The upstream engine sent an event that is not JSON."),
                retryable=True,
            ))
        except Exception as error:  # noqa: BLE001 - any end the reader must hear of
            # httpx's StreamError, a client closed at shutdown: without an
            # end marker the reader would wait on the queue for ever.
            chunks.put_nowait(UpstreamError(UpstreamFailed(
                f"The upstream engine's stream broke off ({type(error).__name__})."),
                retryable=True))


async def _detached(call: Awaitable[T]) -> T:
    """``call`` in a task of its own. Starlette cancels a request whose client
    left through an anyio scope, which cancels every await in it again and
    again, including the awaits of httpx's cleanup: the connection would stay
    open and vLLM go on generating into it. A task of its own is cancelled
    once, so its cleanup closes the connection and vLLM aborts."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        _let_finish(task)
        raise


def _let_finish(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` once, and keep it referenced while it cleans up (the
    loop holds only weak references to tasks)."""
    task.cancel()
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)


_FINISHING: set[asyncio.Future[Any]] = set()


async def _upstream_model(client: httpx.AsyncClient, url: str, wait_s: float,
                          wanted: str | None) -> tuple[str, int]:
    """The upstream's model name and context length, from its /v1/models,
    waiting for it to come up (replicas load their weights for minutes)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            response = await client.get("/models", timeout=HEALTH_TIMEOUT_S * 5)
            if response.status_code == 200:
                break
            problem = f"/v1/models answered {response.status_code}"
        except httpx.HTTPError as error:
            problem = failure_cause(error) or type(error).__name__
        if time.monotonic() > deadline:
            raise RuntimeError(f"the upstream engine at {redact(url)} did not answer: {problem}")
        logger.info("waiting for the upstream engine at %s (%s)", redact(url), problem)
        await asyncio.sleep(STARTUP_POLL_S)
    models = response.json()["data"]
    chosen = next((m for m in models if m["id"] == wanted), models[0])
    if len(models) > 1 and chosen["id"] != wanted:
        logger.warning("the upstream serves %d models; using %s", len(models), chosen["id"])
    return chosen["id"], int(chosen["max_model_len"])


@asynccontextmanager
async def open_remote_engine(
    url: str, model: str, timeout: float, served_model_name: str | None = None
) -> AsyncIterator[RemoteGenerator]:
    """The remote generator: the tokenizer and chat template of ``model``
    (vLLM's renderer, no weights), the upstream's name and context length,
    and one pooled client (no cap on connections: ponder's admission bounds
    the work it sends)."""
    from vllm.config import DeviceConfig, ModelConfig, VllmConfig
    from vllm.renderers import renderer_from_config

    root = api_root(url)
    client = httpx.AsyncClient(
        base_url=root,
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S, pool=None),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
    )
    async with client:
        name, max_model_len = await _upstream_model(client, root, timeout, served_model_name)
        # Only the tokenizer side, on the CPU whatever the wheel: a ponder
        # without a GPU (its replicas have them) builds it too.
        config = await asyncio.to_thread(lambda: VllmConfig(
            model_config=ModelConfig(model=model), device_config=DeviceConfig(device="cpu")
        ))
        renderer = renderer_from_config(config)
        try:
            logger.info("remote engine: %s serving %s (context %d)", redact(root), name,
                        max_model_len)
            yield RemoteGenerator(renderer, client, root, name, max_model_len)
        finally:
            renderer.shutdown()
