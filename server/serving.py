"""Turning a validated chat request into strategy runs, and their results
into an OpenAI response. Streaming lives in ``streaming.py``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ponder.server.config import Settings
from ponder.server.errors import InvalidRequest, NotFound, Overloaded
from ponder.server.metrics import Metrics
from ponder.server.protocol import (
    CandidateInfo,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    CompletionTokensDetails,
    PonderInfo,
    PonderRun,
    ResponseMessage,
    UsageInfo,
)
from ponder.strategies import STRATEGIES, Strategy
from ponder.strategies.base import (
    Emitter,
    Generator,
    Prompt,
    Sampling,
    StrategyConfig,
    StrategyResult,
    Task,
    Usage,
    Verifiers,
)
from ponder.strategies.budget import Budget, BudgetedGenerator
from ponder.strategies.reasoning import ReasoningSplitter

ALIAS_SEPARATOR = "@"


@dataclass
class ChatRun:
    """One request, resolved: the strategy and one task per choice."""

    request: ChatCompletionRequest
    strategy: Strategy
    config: StrategyConfig
    tasks: list[Task]
    started: float = field(default_factory=time.monotonic)

    @property
    def visible(self) -> bool:
        return self.request.reasoning == "visible"


@dataclass
class ChatService:
    settings: Settings
    generator: Generator
    splitter: ReasoningSplitter
    verifiers: Verifiers
    metrics: Metrics
    max_model_len: int
    in_flight: int = 0

    def resolve(self, request: ChatCompletionRequest) -> ChatRun:
        strategy, config = self._strategy(request)
        if request.n > self.settings.max_choices:
            raise InvalidRequest(
                f"n is {request.n}; this server allows at most {self.settings.max_choices}.",
                param="n",
            )
        samples = getattr(config, "n", 1)
        if samples > self.settings.max_samples:
            raise InvalidRequest(
                f"strategy.n is {samples}; this server allows at most "
                f"{self.settings.max_samples} samples per run.",
                param="strategy.n",
            )
        cap = request.token_cap
        if cap is not None and cap >= self.max_model_len:
            param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            raise InvalidRequest(
                f"{param} is {cap}; this model's context is {self.max_model_len} tokens.",
                param=param,
            )
        tasks = [self._task(request, choice) for choice in range(request.n)]
        return ChatRun(request, strategy, config, tasks)

    async def run_strategy(
        self, run: ChatRun, task: Task, emit: Emitter | None = None
    ) -> StrategyResult:
        generator: Generator = self.generator
        limits = run.request.budget
        if limits is not None:
            generator = BudgetedGenerator(generator, Budget(limits.max_tokens, limits.seconds))
        result = await run.strategy.run(task, generator, run.config, emit)
        if isinstance(generator, BudgetedGenerator) and generator.exhausted:
            result.budget_exhausted = True
            if result.answer is None:
                result.finish_reason = "length"
        self.metrics.record_result(run.strategy.name, result)
        return result

    def admit(self, run: ChatRun) -> None:
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

    def finished(self, run: ChatRun, status: int) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.set(self.in_flight)
        seconds = time.monotonic() - run.started
        self.metrics.record_request(run.strategy.name, run.request.stream, status, seconds)

    def _strategy(self, request: ChatCompletionRequest) -> tuple[Strategy, StrategyConfig]:
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

    def _task(self, request: ChatCompletionRequest, choice: int) -> Task:
        template_kwargs: dict[str, object] = {}
        if request.reasoning_effort is not None:
            template_kwargs = {
                "reasoning_effort": request.reasoning_effort,
                "enable_thinking": request.reasoning_effort != "none",
            }
        # Each choice is an independent run: give it its own seed range, wide
        # enough for the children a fanned-out strategy derives from it.
        seed = None if request.seed is None else request.seed + choice * self.settings.max_samples
        return Task(
            prompt=Prompt(
                messages=tuple(m.model_dump(exclude_none=True) for m in request.messages),
                template_kwargs=tuple(template_kwargs.items()),
            ),
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


def total_usage(results: list[StrategyResult]) -> UsageInfo:
    usage = Usage()
    for result in results:
        usage += result.usage
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens),
        scoring_tokens=usage.scoring_tokens,
    )


def ponder_run(result: StrategyResult, include_candidates: bool) -> PonderRun:
    return PonderRun(
        samples=len(result.candidates),
        answer=result.answer,
        votes=result.votes,
        scores=result.scores,
        stopped_early=result.stopped_early,
        budget_exhausted=result.budget_exhausted,
        details=result.extra or None,
        candidates=[CandidateInfo(**vars(c)) for c in result.candidates]
        if include_candidates
        else None,
    )


def ponder_info(run: ChatRun, results: list[StrategyResult]) -> PonderInfo:
    runs = [ponder_run(r, run.request.include_candidates) for r in results]
    return PonderInfo(
        **runs[0].model_dump(),
        strategy=run.config.model_dump(),
        elapsed_ms=round((time.monotonic() - run.started) * 1000),
        choices=runs if len(runs) > 1 else None,
    )


def build_response(run: ChatRun, results: list[StrategyResult]) -> ChatCompletionResponse:
    choices = [
        Choice(
            index=i,
            message=ResponseMessage(
                content=r.content,
                reasoning_content=r.reasoning if run.visible else None,
                reasoning=r.reasoning if run.visible else None,
            ),
            finish_reason=r.finish_reason,
        )
        for i, r in enumerate(results)
    ]
    return ChatCompletionResponse(
        model=run.request.model,
        choices=choices,
        usage=total_usage(results),
        ponder=ponder_info(run, results),
    )
