"""``remote:URL``: a PRM served by another vLLM server, through its
``/pooling`` endpoint.

Each candidate is one chat-form pooling request in Qwen2.5-Math-PRM's
format; the server applies its model's chat template and its STEP pooler
answers [P(bad), P(good)] per step tag, of which we keep P(good). The
candidates' requests run concurrently, so the remote engine batches them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ponder.core.redaction import describe_body, failure_cause
from ponder.core.scoring import ScorerFailed
from ponder.prm.base import WholeSolutionPRM
from ponder.prm.prompts import QWEN_STEP_TAG, qwen_prm_messages

GOOD_LABEL = 1
UNAVAILABLE_STATUSES = (429, 503)
"""What the remote server answers when it is busy or starting: worth a retry."""
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class RemotePRMError(ScorerFailed):
    """The remote server failed, or answered in a shape we cannot score from."""


async def post_pooling(client: httpx.AsyncClient, body: dict[str, Any], who: str
                       ) -> httpx.Response:
    """One ``/pooling`` request; what failed is said in plain words (a
    status, a cause such as "connection refused"), never with the server's
    address or the HTTP client's own text, which may carry secrets."""
    try:
        response = await client.post("/pooling", json=body)
        response.raise_for_status()
    except httpx.TimeoutException as error:
        raise RemotePRMError(f"{who} did not answer in time.", "timeout") from error
    except httpx.HTTPStatusError as error:
        status = error.response.status_code
        reason = "unavailable" if status in UNAVAILABLE_STATUSES else "failed"
        raise RemotePRMError(f"{who} answered {status}.", reason) from error
    except httpx.TransportError as error:
        # Refused or dropped: the server is down or restarting.
        cause = failure_cause(error) or "could not connect, or the connection dropped"
        raise RemotePRMError(f"{who} is unreachable ({cause}).", "unavailable") from error
    return response


class RemotePRM(WholeSolutionPRM):
    def __init__(
        self, client: httpx.AsyncClient, *, model: str | None = None, tag: str = QWEN_STEP_TAG
    ) -> None:
        self.client = client
        self.model = model
        self.tag = tag

    async def score_solution(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """The tokens read are the prompt tokens the remote server reports."""
        body: dict[str, Any] = {"messages": qwen_prm_messages(question, steps, self.tag)}
        if self.model is not None:
            body["model"] = self.model
        response = await post_pooling(self.client, body, "The remote PRM")
        return _step_scores(response, len(steps))


def _step_scores(response: httpx.Response, steps: int) -> tuple[list[float], int]:
    try:
        payload = response.json()
        rows = payload["data"][0]["data"]
        scores = [float(row[GOOD_LABEL]) for row in rows]
        tokens = int(payload["usage"]["prompt_tokens"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        body = describe_body(response.headers.get("content-type"), len(response.content))
        raise RemotePRMError(f"The remote PRM's answer, {body}, is not a pooling "
                             "response.") from error
    if len(scores) != steps:
        raise RemotePRMError(
            f"The remote PRM scored {len(scores)} steps of {steps}: "
            "its step tag is not the one sent."
        )
    return scores, tokens


@asynccontextmanager
async def open_remote_prm(
    url: str, *, model: str | None = None, tag: str = QWEN_STEP_TAG
) -> AsyncIterator[RemotePRM]:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        yield RemotePRM(client, model=model, tag=tag)
