"""What a vLLM OpenAI-compatible server says, read for the remote engine
(server/remote.py): a completion's choices as samples, a stream's chunks
as per-child deltas, its failures as the API errors they end a request in.
The request and response shapes are vLLM 0.32's ``/v1/completions``
(``vllm/entrypoints/openai/completion/protocol.py``)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ponder.core.generation import RequestRejected, Sample, SampleDelta, Sampling, TokenLogprob
from ponder.core.redaction import describe_body, failure_cause, redact
from ponder.server.engine import stop_reason_of
from ponder.server.errors import EngineUnavailable, PonderError, UpstreamFailed, UpstreamTimeout
from ponder.server.rendering import clean_message
from ponder.server.request_context import current_request

RETRIED_STATUSES = frozenset({500, 502, 503, 504})
"""A replica that died, a router with no live replica for a moment: worth
one more try for a call that produced nothing."""


class UpstreamError(Exception):
    """One failed upstream call: the API error it ends in, and whether a
    call that has produced nothing may be tried again."""

    def __init__(self, error: PonderError | RequestRejected, retryable: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable


class StreamState:
    """What a stream's chunks have said so far."""

    def __init__(self, n: int, prompt_tokens: int, sampling: Sampling) -> None:
        self.n = n
        self.prompt_tokens = prompt_tokens
        self.sampling = sampling
        self.cumulative = [0.0] * n
        self.finished = 0
        self.last: SampleDelta | None = None
        self.first_token_seen = False

    def last_delta(self) -> SampleDelta:
        """The held-back last delta, once the stream has ended; a stream that
        ended before every child did is a replica that went away."""
        if self.last is None or self.finished < self.n:
            raise UpstreamError(
                UpstreamFailed("The upstream engine's stream ended before its samples did."),
                retryable=True,
            )
        return self.last

    def read(self, chunk: dict[str, Any]) -> list[SampleDelta]:
        if "error" in chunk:
            message = _error_message(chunk) or "The upstream engine's stream reported an error."
            raise UpstreamError(UpstreamFailed(message), retryable=True)
        if not chunk.get("choices"):
            if self.last is not None:
                self.last.cached_tokens = cached_tokens(chunk)
            return []
        deltas = []
        for choice in chunk["choices"]:
            delta = self._delta(choice)
            if delta.stop_reason is not None:
                self.finished += 1
                if self.finished == self.n:
                    self.last = delta
                    continue
            deltas.append(delta)
        return deltas

    def _delta(self, choice: dict[str, Any]) -> SampleDelta:
        index = int(choice["index"])
        token_ids = choice.get("token_ids") or []
        if token_ids and not self.first_token_seen:
            self.first_token_seen = True
            context = current_request()
            if context is not None:
                context.saw_first_token(time.monotonic())
        logprobs = _token_logprobs(choice.get("logprobs"), self.sampling)
        cumulative = None
        if logprobs is not None:
            self.cumulative[index] += sum(entry.logprob for entry in logprobs)
            cumulative = self.cumulative[index]
        finish = choice.get("finish_reason")
        stop_reason = stop_reason_of(finish, choice.get("stop_reason")) if finish else None
        return SampleDelta(
            index=index, text=choice.get("text") or "", token_ids=token_ids,
            prompt_tokens=self.prompt_tokens, stop_reason=stop_reason,
            stop_string=_stop_string(choice) if finish else None,
            cumulative_logprob=cumulative, logprobs=logprobs,
        )


def choice_index(choice: dict[str, Any]) -> int:
    return int(choice["index"])


def sample_of(choice: dict[str, Any], sampling: Sampling) -> Sample:
    logprobs = _token_logprobs(choice.get("logprobs"), sampling)
    return Sample(
        text=choice["text"],
        token_ids=choice.get("token_ids") or [],
        stop_reason=stop_reason_of(choice.get("finish_reason"), choice.get("stop_reason")),
        stop_string=_stop_string(choice),
        cumulative_logprob=(
            None if logprobs is None else sum(entry.logprob for entry in logprobs)
        ),
        logprobs=logprobs,
    )


def _stop_string(choice: dict[str, Any]) -> str | None:
    stop = choice.get("stop_reason")
    return stop if isinstance(stop, str) else None


def _token_logprobs(
    logprobs: dict[str, Any] | None, sampling: Sampling
) -> list[TokenLogprob] | None:
    """OpenAI's completion log-probabilities (the sampled token's, and a dict
    of the likeliest ones, which vLLM fills with the sampled token plus the
    top k) as one entry per token with exactly the top k, best first, as
    the embedded engine gives them. Token strings are vLLM's own decoding,
    the same as in-process; two alternatives that decode to the same text
    are one key in that dict, so one of them is missing (rare: byte tokens)."""
    if not (sampling.logprobs or sampling.top_logprobs) or logprobs is None:
        return None
    entries = []
    for token, logprob, top in zip(
        logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"]
    ):
        ranked = sorted((top or {}).items(), key=lambda item: -item[1])[:sampling.top_logprobs]
        entries.append(TokenLogprob(token, float(logprob), tuple(ranked)))
    return entries


def cached_tokens(payload: dict[str, Any]) -> int:
    """Prompt tokens the upstream's prefix cache served: reported when vLLM
    runs with --enable-prompt-tokens-details, else 0."""
    details = (payload.get("usage") or {}).get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


MESSAGE_CHARS = 300
"""The most of an upstream's own error message passed on to a client."""


def _error_message(payload: Any) -> str | None:
    """The upstream's OpenAI-shaped error message, without secrets and cut to
    :data:`MESSAGE_CHARS`; None when the payload is not an error of that shape."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str) or not error.strip():
        return None
    message = redact(clean_message(error))
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "..."


def raise_for_status(response: httpx.Response, body: dict[str, Any]) -> None:
    status = response.status_code
    if status == 200:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = None
    # The upstream's own message, or else only the body's type and length: a
    # proxy's error page is not passed on.
    own = _error_message(payload)
    shown = own or describe_body(response.headers.get("content-type"), len(response.content))
    if status in (400, 422):
        # The upstream refused what ponder sent on the client's behalf: a
        # grammar its compiler refuses, a logit bias out of range.
        error = payload.get("error") if isinstance(payload, dict) else None
        param = error.get("param") if isinstance(error, dict) else None
        param = param if isinstance(param, str) else None
        json_param = "response_format" if "structured_outputs" in body else None
        message = own or f"The upstream engine refused the request with {shown}."
        raise UpstreamError(RequestRejected(message, param or json_param), retryable=False)
    if status == 503 or status == 429:
        failure: PonderError = EngineUnavailable(f"The upstream engine is unavailable: {shown}")
    elif status == 504:
        failure = UpstreamTimeout(f"The upstream engine timed out: {shown}")
    else:
        failure = UpstreamFailed(f"The upstream engine answered {status}: {shown}")
    raise UpstreamError(failure, retryable=status in RETRIED_STATUSES)


def transport_failure(error: httpx.HTTPError) -> UpstreamError:
    """The failed call as a client may hear of it: what went wrong in plain
    words, neither the upstream's address nor the HTTP client's text."""
    if isinstance(error, httpx.ConnectTimeout):
        return UpstreamError(EngineUnavailable(
            "The upstream engine is unreachable (the connection timed out)."), retryable=True)
    if isinstance(error, httpx.ConnectError):
        cause = failure_cause(error) or "could not connect"
        return UpstreamError(
            EngineUnavailable(f"The upstream engine is unreachable ({cause})."), retryable=True
        )
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(
            UpstreamTimeout("The upstream engine sent nothing within --engine-timeout."),
            retryable=False,
        )
    # Dropped mid-answer (RemoteProtocolError, ReadError): a replica that died.
    cause = failure_cause(error) or "closed before its answer was whole"
    return UpstreamError(
        UpstreamFailed(f"The upstream engine dropped the connection ({cause})."), retryable=True
    )
