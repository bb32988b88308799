"""The served model's hidden state at the end of each step of a solution.

A solution is rendered as the model would read its own answer: the chat
template over the question, the generation prompt, then each step followed
by one newline token, whose hidden state is read (the model has seen the
whole step and not yet begun the next). Steps are tokenised one by one, so
that the newline after each is its own token wherever the tokenizer would
have merged it with what precedes it.

Two readers, one pooling call per batch of solutions either way:

* :class:`EngineReader`: a second in-process vLLM engine with the pooling
  runner over the served model's weights (``convert="embed"``, STEP pooling
  on the newline token, no normalisation): the rows of the newline tokens.
* :class:`RemoteReader`: a vLLM server started with the pooling runner on
  the same model (``/pooling``, ``task: token_embed``), one HTTP request
  with every solution in it; the server may pool every token or only the
  newline tokens, and either answer is understood.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np

from ponder.core.scoring import ScorerFailed
from ponder.prm.remote import TIMEOUT, post_pooling

NEWLINE = "\n"


@dataclass(frozen=True)
class Rendered:
    token_ids: list[int]
    step_ends: list[int]
    """Where each step's newline token is in ``token_ids``."""


class StepRenderer:
    """(question, steps) to the token ids the probe reads."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        ids = tokenizer.encode(NEWLINE, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError("the probe reads each step's end at a newline token, and this "
                             f"model's tokenizer spells a newline in {len(ids)} tokens")
        self.newline_id: int = ids[0]

    def render(self, question: str, steps: Sequence[str]) -> Rendered:
        prompt = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        ids = list(self.tokenizer.encode(prompt, add_special_tokens=False))
        ends = []
        for step in steps:
            ids += self.tokenizer.encode(step, add_special_tokens=False)
            ids.append(self.newline_id)
            ends.append(len(ids) - 1)
        return Rendered(ids, ends)


class HiddenStateReader(Protocol):
    async def read(self, inputs: Sequence[Rendered]) -> list[np.ndarray]:
        """Per input, its hidden states at ``step_ends`` (steps x width),
        from one pooling call for all of them."""
        ...


def at_step_ends(rendered: Rendered, values: np.ndarray, newline_id: int, width: int
                 ) -> np.ndarray:
    """The step ends' rows of a pooling answer (``width`` numbers a row, flat
    or not): one row per token (ALL pooling), or one per newline token (STEP
    pooling on the newline)."""
    newlines = [i for i, token in enumerate(rendered.token_ids) if token == newline_id]
    rows = values.size // width if values.size % width == 0 else -1
    if rows == len(rendered.token_ids):
        return values.reshape(rows, width)[rendered.step_ends]
    if rows != len(newlines):
        raise ScorerFailed(
            f"The probe's hidden states came as {values.size} numbers for "
            f"{len(rendered.token_ids)} tokens with {len(newlines)} newlines: not {width}-wide "
            "rows of every token or of the newline tokens (a pooling engine over the probe's "
            "own model, with --runner pooling --convert embed, gives either)")
    place = {position: row for row, position in enumerate(newlines)}
    return values.reshape(rows, width)[[place[end] for end in rendered.step_ends]]


class EngineReader:
    def __init__(self, engine: Any, newline_id: int, width: int) -> None:
        self.engine = engine
        self.newline_id = newline_id
        self.width = width
        self.calls = 0
        """Pooling calls made: one per :meth:`read`."""

    async def read(self, inputs: Sequence[Rendered]) -> list[np.ndarray]:
        """Every input's request is submitted at once, so the engine runs
        them as one batch."""
        self.calls += 1
        outputs = await asyncio.gather(*(self._pool(r.token_ids) for r in inputs))
        return [at_step_ends(r, values, self.newline_id, self.width)
                for r, values in zip(inputs, outputs)]

    async def _pool(self, ids: list[int]) -> np.ndarray:
        from vllm import PoolingParams

        from ponder.prm.engine import pool_once

        params = PoolingParams(task="token_embed", step_tag_id=self.newline_id,
                               use_activation=False)
        final = await pool_once(self.engine, ids, params, "probe")
        return final.outputs.data.float().numpy()


class RemoteReader:
    def __init__(self, client: httpx.AsyncClient, newline_id: int, width: int,
                 model: str | None) -> None:
        self.client = client
        self.newline_id = newline_id
        self.width = width
        self.model = model
        self.calls = 0

    async def read(self, inputs: Sequence[Rendered]) -> list[np.ndarray]:
        self.calls += 1
        body: dict[str, Any] = {"input": [r.token_ids for r in inputs], "task": "token_embed",
                                "use_activation": False, "encoding_format": "base64",
                                "embed_dtype": "float32", "endianness": "little"}
        if self.model is not None:
            body["model"] = self.model
        response = await post_pooling(self.client, body, "The probe's pooling server")
        return [at_step_ends(r, values, self.newline_id, self.width)
                for r, values in zip(inputs, _flat_answers(response, len(inputs)))]


def _flat_answers(response: httpx.Response, count: int) -> list[np.ndarray]:
    try:
        items = sorted(response.json()["data"], key=lambda item: item["index"])
        flat = [np.frombuffer(base64.b64decode(item["data"]), dtype="<f4") for item in items]
    except (KeyError, TypeError, ValueError) as error:
        raise ScorerFailed(f"The probe's pooling server answered in a shape it cannot "
                           f"read: {error!r}") from error
    if len(flat) != count:
        raise ScorerFailed(f"The probe's pooling server answered {len(flat)} of {count} inputs.")
    return flat


@asynccontextmanager
async def open_remote_reader(url: str, newline_id: int, width: int, model: str | None
                             ) -> AsyncIterator[RemoteReader]:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        yield RemoteReader(client, newline_id, width, model)
