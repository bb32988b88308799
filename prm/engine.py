"""What the in-process PRM engines share: a second ``AsyncLLM`` with the
pooling runner, and scoring by STEP pooling, where the engine returns the
classifier's output at each step tag token of the input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from vllm import AsyncEngineArgs, PoolingParams
from vllm.exceptions import VLLMClientError
from vllm.inputs import tokens_input
from vllm.outputs import PoolingRequestOutput
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError

from ponder.core.generation import RequestRejected
from ponder.core.scoring import ScorerFailed
from ponder.prm.base import WholeSolutionPRM

Render = Callable[[Any, str, Sequence[str], str], str]
"""(tokenizer, question, steps, tag) -> the PRM's input text, each step
followed by the tag (and the tag removed from inside the steps)."""

_KV_CACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"


@asynccontextmanager
async def open_scoring_engine(
    model: str, *, engine_args: Mapping[str, Any], **overrides: Any
) -> AsyncIterator[AsyncLLM]:
    """A pooling engine with its own memory (``engine_args``: the server
    sizes it for the device), shut down on exit. vLLM's defaults are those
    of its OpenAI server, as under ``vllm serve --runner pooling``, but for
    its statistics: vLLM's Prometheus logger takes every ``vllm:`` metric
    out of the process's registry when an engine starts, so a second engine
    logging them would hide the policy engine's from ``/metrics``."""
    args = AsyncEngineArgs(model=model, runner="pooling", disable_log_stats=True,
                           **engine_args, **overrides)
    with _without_env(_KV_CACHE_ENV):
        engine = AsyncLLM.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER)
    try:
        yield engine
    finally:
        engine.shutdown()


@contextlib.contextmanager
def _without_env(name: str) -> Iterator[None]:
    """vLLM's CPU platform lets this variable override every engine's
    ``kv_cache_memory_bytes``; the policy engine may have set it for itself,
    and the PRM engine must keep its own size. Engine creation is
    synchronous, so nothing else reads the environment meanwhile."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def single_token_id(tokenizer: Any, text: str, what: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"The {what} {text!r} must be one token of this model's tokenizer; it is {len(ids)}."
        )
    return ids[0]


class StepTagScorer(WholeSolutionPRM):
    """One pooling request per candidate; the probability of label ``column``
    at each step tag is that step's score."""

    def __init__(
        self, engine: AsyncLLM, tag: str, render: Render, *, column: int, add_special_tokens: bool
    ) -> None:
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        self.tag_id = single_token_id(self.tokenizer, tag, "step tag")
        self.tag = tag
        self.render = render
        self.column = column
        self.add_special_tokens = add_special_tokens

    async def score_solution(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """The tokens read are the whole input's."""
        ids = await asyncio.to_thread(self._tokenize, question, steps)
        if ids.count(self.tag_id) != len(steps):
            raise ScorerFailed(
                f"The step tag {self.tag!r} is not one token wherever it follows a step "
                f"({ids.count(self.tag_id)} tags for {len(steps)} steps); choose another tag."
            )
        output = await self._pool(ids)
        return output.outputs.data[:, self.column].tolist(), len(ids)

    def _tokenize(self, question: str, steps: Sequence[str]) -> list[int]:
        text = self.render(self.tokenizer, question, steps, self.tag)
        return self.tokenizer.encode(text, add_special_tokens=self.add_special_tokens)

    async def _pool(self, ids: list[int]) -> PoolingRequestOutput:
        params = PoolingParams(task="token_classify", step_tag_id=self.tag_id)
        return await pool_once(self.engine, ids, params, "PRM")


async def pool_once(engine: AsyncLLM, ids: list[int], params: PoolingParams,
                    who: str) -> PoolingRequestOutput:
    """One pooling request to an in-process engine, its failures in the
    scorer's terms: a solution the engine refuses is the request's fault
    (400), a stopped engine is a scorer that is unavailable."""
    final: PoolingRequestOutput | None = None
    try:
        async with contextlib.aclosing(engine.encode(
                tokens_input(ids), params, f"{who.lower()}-{uuid.uuid4().hex}")) as outputs:
            async for output in outputs:
                final = output
    except VLLMClientError as error:  # e.g. longer than the engine's context
        raise RequestRejected(f"The {who} cannot score this solution: {error}") from error
    except EngineDeadError as error:
        raise ScorerFailed(f"The {who}'s engine has stopped.", "unavailable") from error
    if final is None:  # aborted: the engine is shutting down
        raise ScorerFailed(f"The {who}'s engine returned no output.", "unavailable")
    return final
