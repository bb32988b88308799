"""``prm: "probe"``: a verifier learned from the served model's own hidden
states.

Zhang et al. (2025, "Reasoning Models Know When They're Right") find that a
small probe on the hidden state at the end of each reasoning chunk predicts
whether the answer the line reaches will be right. ``ponder calibrate
--probe`` fits one on the user's questions (:mod:`ponder.bench.probe_fit`):
each step of the model's own samples, labelled by whether its sample's final
answer was right. Serving, each step's score is that probability, read at
the step's end (:mod:`ponder.prm.hidden_states`) and put through the probe
in numpy.

The score of a step is the probe's estimate of the value of the line so
far, so a line is as good as its latest step (``aggregate = "last"``). The
hidden states are causal: a known step's score does not change when steps
follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ponder.core.fingerprint import ModelIdentity
from ponder.core.scoring import Solution, StepScores
from ponder.prm.hidden_states import (
    EngineReader,
    HiddenStateReader,
    Rendered,
    StepRenderer,
    open_remote_reader,
)
from ponder.prm.model_cut import cut_model, model_layers
from ponder.prm.probe_file import ProbeFile, ProbeFileError, read_probe


class ProbeScorer:
    aggregate = "last"
    reads_logprobs: int | None = None

    def __init__(self, probe: ProbeFile, renderer: StepRenderer, reader: HiddenStateReader):
        self.probe = probe
        self.renderer = renderer
        self.reader = reader

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Solutions with new steps are read whole, all in one pooling call;
        the tokens read are theirs."""
        todo = [i for i, s in enumerate(solutions) if s.new_steps]
        rendered = await asyncio.to_thread(
            lambda: [self.renderer.render(question, solutions[i].steps) for i in todo])
        states = await self.reader.read(rendered) if rendered else []
        scores = [list(s.known) for s in solutions]
        for index, rows in zip(todo, states):
            known = solutions[index].known
            probabilities = self.probe.weights.probability(rows)
            scores[index] = [*known, *map(float, probabilities[len(known):])]
        return StepScores(scores, tokens=sum(len(r.token_ids) for r in rendered))


@dataclass(frozen=True)
class ProbeSetup:
    """Where the probe and its hidden states come from."""

    path: Path
    model_dir: Path
    """The served model's directory, whose weights the in-process engine
    loads."""
    cut_cache: Path
    """Where the model cut after the probe's layer is written once
    (:mod:`ponder.prm.model_cut`): the server's cache directory."""
    url: str | None = None
    """A vLLM pooling server on the same model; None: an in-process engine."""
    engine_args: Mapping[str, Any] = field(default_factory=dict)
    """The in-process pooling engine's vLLM arguments (its memory, graph
    capture, dtype: the server decides them for the device)."""


def load_checked(setup: ProbeSetup, served: ModelIdentity) -> ProbeFile:
    """The probe, refused (ProbeFileError) if it was fit on another model
    or reads a layer the in-process engine cannot cut the model at."""
    probe = read_probe(setup.path)
    probe.check_model(served)
    if setup.url is None:
        needs_cut(setup.model_dir, probe.layer)
    return probe


@asynccontextmanager
async def open_probe(setup: ProbeSetup) -> AsyncIterator[ProbeScorer]:
    """The scorer of a probe already checked against the served model
    (:func:`load_checked`). The in-process pooling engine starts at the
    first request that asks for the probe, not with the server: a server
    whose clients never use it pays nothing for it."""
    probe = await asyncio.to_thread(read_probe, setup.path)
    from transformers import AutoTokenizer

    tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, str(setup.model_dir))
    renderer = StepRenderer(tokenizer)
    if setup.url is not None:
        async with open_remote_reader(setup.url, renderer.newline_id, probe.weights.features,
                                      None) as remote:
            yield ProbeScorer(probe, renderer, remote)
        return
    async with contextlib.AsyncExitStack() as stack:
        yield ProbeScorer(probe, renderer, LazyReader(
            lambda: _engine_reader(setup, probe, renderer.newline_id), stack))


class LazyReader:
    """A reader opened at its first read and kept open until ``stack`` closes."""

    def __init__(self, opener: Callable[[], AbstractAsyncContextManager[HiddenStateReader]],
                 stack: contextlib.AsyncExitStack) -> None:
        self._opener = opener
        self._stack = stack
        self._lock = asyncio.Lock()
        self._reader: HiddenStateReader | None = None

    @property
    def calls(self) -> int:
        return getattr(self._reader, "calls", 0)

    async def read(self, inputs: Sequence[Rendered]) -> list[np.ndarray]:
        async with self._lock:
            if self._reader is None:
                self._reader = await self._stack.enter_async_context(self._opener())
        return await self._reader.read(inputs)


@asynccontextmanager
async def _engine_reader(setup: ProbeSetup, probe: ProbeFile, newline_id: int
                         ) -> AsyncIterator[EngineReader]:
    from vllm.config import PoolerConfig

    from ponder.prm.engine import open_scoring_engine

    model = setup.model_dir
    if needs_cut(model, probe.layer):
        model = await asyncio.to_thread(cut_model, model, probe.layer, setup.cut_cache)
    async with open_scoring_engine(
            str(model), engine_args=setup.engine_args, convert="embed",
            pooler_config=PoolerConfig(tok_pooling_type="STEP")) as engine:
        yield EngineReader(engine, newline_id, probe.weights.features)


def needs_cut(model_dir: Path, layer: int) -> bool:
    """Whether reading after ``layer`` needs the model cut there (every layer
    but the last); a layer the model does not have is a ProbeFileError."""
    layers = model_layers(model_dir)
    if layers is None or not 1 <= layer <= layers:
        raise ProbeFileError(f"probe file: 'layer' is {layer}; the served model has "
                             f"{layers} layers")
    return layer < layers
