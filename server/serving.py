"""Turning a validated chat or completion request into strategy runs, one
per choice, on the shared engine. The response shapes live in ``formats.py``,
streaming in ``streaming.py``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ponder.core.generation import Generator, Prompt, Sampling
from ponder.core.metering import Budget
from ponder.server.config import Settings
from ponder.server.errors import InvalidRequest, NotFound, Overloaded
from ponder.server.metrics import Metrics
from ponder.server.protocol import ChatCompletionRequest, CompletionRequest, SamplingRequest
from ponder.strategies import STRATEGIES, Strategy
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task, Verifiers
from ponder.strategies.reasoning import ReasoningSplitter

ALIAS_SEPARATOR = "@"


@dataclass
class RequestRun:
    """One request, resolved: the strategy and one task per choice."""

    request: SamplingRequest
    strategy: Strategy
    config: StrategyConfig
    tasks: list[Task]
    started: float = field(default_factory=time.monotonic)

    @property
    def visible(self) -> bool:
        return self.request.reasoning == "visible"


@dataclass
class StrategyService:
    settings: Settings
    generator: Generator
    splitter: ReasoningSplitter
    verifiers: Verifiers
    metrics: Metrics
    max_model_len: int
    in_flight: int = 0

    def resolve(self, request: SamplingRequest) -> RequestRun:
        strategy, config = self._strategy(request)
        prompts = _prompts(request)
        if request.n * len(prompts) > self.settings.max_choices:
            raise InvalidRequest(
                f"n is {request.n} for each of {len(prompts)} prompt(s); this server allows "
                f"at most {self.settings.max_choices} choices per request.",
                param="n",
            )
        if config.max_samples > self.settings.max_samples:
            raise InvalidRequest(
                f"This strategy may draw {config.max_samples} samples per run; this server "
                f"allows at most {self.settings.max_samples} (--max-samples).",
                param="strategy.n" if "n" in type(config).model_fields else "strategy",
            )
        cap = request.token_cap
        if cap is not None and cap >= self.max_model_len:
            param = request.token_cap_param
            raise InvalidRequest(
                f"{param} is {cap}; this model's context is {self.max_model_len} tokens.",
                param=param,
            )
        choices = [prompt for prompt in prompts for _ in range(request.n)]
        tasks = [self._task(request, prompt, index) for index, prompt in enumerate(choices)]
        return RequestRun(request, strategy, config, tasks)

    async def run_strategy(
        self, run: RequestRun, task: Task, emit: Emitter | None = None
    ) -> StrategyResult:
        limits = run.request.budget
        budget = None if limits is None else Budget(limits.max_tokens, limits.seconds)
        result = await run.strategy.execute(task, self.generator, run.config, emit, budget)
        self.metrics.record_result(run.strategy.name, result)
        return result

    def admit(self, run: RequestRun) -> None:
        """Take a slot for ``run`` until :meth:`finished`, or refuse it with a
        429: past the limit, new work would only queue in the engine and slow
        every request already running."""
        if self.in_flight >= self.settings.max_concurrent_requests:
            self.metrics.record_request(run.strategy.name, run.request.stream, 429, 0.0)
            raise Overloaded(
                f"The server is serving its limit of {self.settings.max_concurrent_requests} "
                "requests; retry shortly."
            )
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)

    def finished(self, run: RequestRun, status: int) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.set(self.in_flight)
        seconds = time.monotonic() - run.started
        self.metrics.record_request(run.strategy.name, run.request.stream, status, seconds)

    def _strategy(self, request: SamplingRequest) -> tuple[Strategy, StrategyConfig]:
        model, _, alias = request.model.partition(ALIAS_SEPARATOR)
        if model != self.settings.model_name or (alias and alias not in STRATEGIES):
            raise NotFound(
                f"The model '{request.model}' does not exist; see GET /v1/models.",
                param="model",
            )
        if request.strategy is not None:
            config = request.strategy
        else:
            name = alias or self.settings.default_strategy
            config = STRATEGIES[name].config()
        return STRATEGIES[config.name], config  # type: ignore[attr-defined]

    def _task(self, request: SamplingRequest, prompt: Prompt, choice: int) -> Task:
        # Each choice is an independent run: give it its own seed range, wide
        # enough for the children a fanned-out strategy derives from it.
        seed = None if request.seed is None else request.seed + choice * self.settings.max_samples
        return Task(
            prompt=prompt,
            sampling=Sampling(
                max_tokens=request.token_cap,
                temperature=1.0 if request.temperature is None else request.temperature,
                top_p=1.0 if request.top_p is None else request.top_p,
                stop=tuple(request.stop or ()),
                seed=seed,
            ),
            splitter=self.splitter,
            verifiers=self.verifiers,
        )


def _prompts(request: SamplingRequest) -> list[Prompt]:
    if isinstance(request, CompletionRequest):
        return [Prompt(text=text) for text in request.prompts]
    assert isinstance(request, ChatCompletionRequest)
    template_kwargs: dict[str, object] = {}
    if request.reasoning_effort is not None:
        template_kwargs = {
            "reasoning_effort": request.reasoning_effort,
            "enable_thinking": request.reasoning_effort != "none",
        }
    return [Prompt(
        messages=tuple(m.model_dump(exclude_none=True) for m in request.messages),
        template_kwargs=tuple(template_kwargs.items()),
    )]
