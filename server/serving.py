"""Turning a validated chat or completion request into strategy runs, one
per choice, on the shared engine. The response shapes live in ``formats.py``,
streaming in ``streaming.py``."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from ponder.core.fingerprint import ModelIdentity
from ponder.core.generation import Generator, JsonOutput, Prompt, Sampling
from ponder.core.metering import Allowance, Budget
from ponder.core.policy import Policy
from ponder.core.tasks import gather_all
from ponder.server.admission import AdmittedGenerator, SampleScheduler, Ticket
from ponder.server.config import Settings
from ponder.server.errors import (
    InvalidRequest,
    NotFound,
    Overloaded,
    RequestTimedOut,
    ShuttingDown,
)
from ponder.server.lifecycle import Lifecycle
from ponder.server.metrics import Metrics, timed_verifiers
from ponder.server.protocol.chat import ChatCompletionRequest
from ponder.server.protocol.common import BudgetLimits, JsonSchemaFormat, SamplingRequest
from ponder.server.protocol.completions import CompletionRequest
from ponder.server.request_context import RequestContext, current_request
from ponder.server.tool_calls import ToolParsers, ToolUse
from ponder.strategies import STRATEGIES, Strategy
from ponder.strategies.base import (
    Emitter,
    StrategyConfig,
    StrategyResult,
    Task,
    ThinkingControl,
    Verifiers,
)
from ponder.strategies.early_exit import AnswerCues
from ponder.strategies.reasoning import ReasoningSplitter
from ponder.strategies.thinking import ThinkingBudget, ThinkingMarkers

ALIAS_SEPARATOR = "@"
ANSWER_ROOM = 256
"""Tokens of a request's cap kept for the answer when its thinking is capped
for it (a quarter of the cap when that is less)."""
SEED_SPAN = 2**64
"""Seeds wrap within what the engine takes (two's complement 64-bit)."""


@dataclass
class RequestRun:
    """One request, resolved: the strategy, one task per choice, and which
    choices run together."""

    request: SamplingRequest
    strategy: Strategy
    config: StrategyConfig
    tasks: list[Task]
    batches: list[range]
    """Choices that one run serves: a prompt's ``n`` choices when the
    strategy draws them from one engine request (``none``, ``cot``, not
    greedy), else each choice alone."""
    context: RequestContext
    tools: ToolUse | None = None
    ticket: Ticket = field(default_factory=Ticket)
    effort: str | None = None
    """The `reasoning_effort` level whose preset chose the strategy, if one did."""
    allowance: Allowance | None = None
    """What the request may still spend, over all its choices (set when its
    first run starts)."""

    @property
    def started(self) -> float:
        return self.context.started

    @property
    def visible(self) -> bool:
        return self.request.reasoning == "visible"

    @property
    def samples(self) -> int:
        """The most samples the request may draw over all its choices."""
        return self.config.max_samples * len(self.tasks)


@dataclass
class StrategyService:
    settings: Settings
    generator: Generator
    splitter: ReasoningSplitter
    verifiers: Verifiers
    metrics: Metrics
    max_model_len: int
    tool_parsers: ToolParsers = field(default_factory=ToolParsers)
    scheduler: SampleScheduler = field(default_factory=SampleScheduler.unlimited)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    thinking_markers: ThinkingMarkers | None = None
    """How the served model's thinking ends, when it thinks in tags."""
    model: ModelIdentity | None = None
    """The served model, as data fit on it names it."""
    policy: Policy | None = None
    """The calibrated policy ``auto`` follows: None when none was fit on
    the served model (``auto`` then follows the model-neutral rule)."""
    answer_cues: AnswerCues | None = None
    """What early-exit probes append to ask a chain for its answer."""
    in_flight: int = 0
    effort_presets: dict[str, StrategyConfig] = field(init=False)

    def __post_init__(self) -> None:
        self.effort_presets = self.settings.effort_presets

    def resolve(self, request: SamplingRequest) -> RequestRun:
        strategy, config, effort = self._strategy(request)
        prompts = _prompts(request)
        choices_asked = request.n * len(prompts)
        if choices_asked > self.settings.max_choices:
            raise InvalidRequest(
                f"n is {request.n} for each of {len(prompts)} prompt(s); this server allows "
                f"at most {self.settings.max_choices} choices per request.",
                param="n",
            )
        samples = config.max_samples * choices_asked
        if samples > self.settings.max_samples:
            each = f" ({choices_asked} choices of {config.max_samples})" if choices_asked > 1 \
                else ""
            raise InvalidRequest(
                f"This request may draw {samples} samples{each}; this server allows at most "
                f"{self.settings.max_samples} per request (--max-samples).",
                param="strategy.n" if "n" in type(config).model_fields else "strategy",
            )
        cap = request.token_cap
        if cap is not None and cap >= self.max_model_len:
            param = request.token_cap_param
            raise InvalidRequest(
                f"{param} is {cap}; this model's context is {self.max_model_len} tokens.",
                param=param,
            )
        if cap is not None and request.min_tokens > cap:
            raise InvalidRequest(
                f"min_tokens is {request.min_tokens}, more than {request.token_cap_param} "
                f"({cap}) allows.",
                param="min_tokens",
            )
        tools = (self.tool_parsers.for_request(request)
                 if isinstance(request, ChatCompletionRequest) else None)
        sampling = _sampling(request, tools)
        choices = [prompt for prompt in prompts for _ in range(request.n)]
        verifiers = timed_verifiers(self.verifiers, self.metrics, strategy.name)
        thinking = self._thinking(request)
        tasks = [
            Task(prompt, self._seeded(sampling, request, index), self.splitter, verifiers,
                 tools=None if tools is None else tools.reader, thinking=thinking,
                 policy=self.policy, cues=self.answer_cues)
            for index, prompt in enumerate(choices)
        ]
        # Greedy children would all be one sample, and vLLM refuses n > 1 at
        # temperature 0: greedy choices run one request each.
        shared = strategy.run_choices is not None and sampling.temperature > 0
        batches = [
            range(start, start + (request.n if shared else 1))
            for start in range(0, len(choices), request.n if shared else 1)
        ]
        context = current_request() or RequestContext("-")
        run = RequestRun(request, strategy, config, tasks, batches, context, tools, effort=effort)
        context.priority = run.samples  # lower runs first in the engine's queue
        return run

    async def check_prompts(self, run: RequestRun) -> None:
        """Render each prompt of ``run`` before a stream commits to its 200:
        a prompt the model cannot take (too long, refused by the chat
        template, no room left for the requested tokens) is then an HTTP
        error however slowly a loaded machine renders it, not an error chunk
        after the 200. The strategy renders its own prompt style again."""
        cap = run.request.token_cap
        for prompt in {id(task.prompt): task.prompt for task in run.tasks}.values():
            rendered = await self.generator.render(prompt)
            length = len(rendered.token_ids or ())
            if cap is not None and length + cap > self.max_model_len:
                raise InvalidRequest(
                    f"{run.request.token_cap_param} is {cap}, but the prompt takes {length} of "
                    f"this model's {self.max_model_len} context tokens, leaving "
                    f"{self.max_model_len - length}.",
                    param=run.request.token_cap_param,
                )

    async def run_batch(
        self, run: RequestRun, batch: range, emitters: Sequence[Emitter] | None = None
    ) -> list[StrategyResult]:
        """The results of ``batch``'s choices, from one strategy run when
        the strategy draws them together, else from one run each."""
        generator = AdmittedGenerator(self.generator, self.scheduler, run.ticket)
        allowance = self._allowance(run)
        task = run.tasks[batch.start]
        if len(batch) > 1:
            results = await run.strategy.execute_choices(
                task, generator, run.config, len(batch), emitters, allowance
            )
        else:
            emit = None if emitters is None else emitters[0]
            results = [await run.strategy.execute(task, generator, run.config, emit, allowance)]
        for result in results:
            self.metrics.record_result(run.strategy.name, result)
        if any(r.budget_exhausted and not r.content for r in results) and self._past_timeout(run):
            raise RequestTimedOut(
                f"The request took longer than this server's limit of "
                f"{self.settings.request_timeout} s before it had any answer."
            )
        return results

    async def run_all(self, run: RequestRun) -> list[StrategyResult]:
        batches = await gather_all(*(self.run_batch(run, batch) for batch in run.batches))
        return [result for batch in batches for result in batch]

    def _allowance(self, run: RequestRun) -> Allowance:
        """The request's one allowance, which all its choices draw on: the
        client's budget, with --request-timeout as a deadline of its own."""
        if run.allowance is None:
            run.allowance = Allowance(self._budget(run))
        return run.allowance

    def _budget(self, run: RequestRun) -> Budget | None:
        limits = run.request.budget
        max_tokens = limits.max_tokens if limits else None
        seconds = limits.seconds if limits else None
        timeout = self.settings.request_timeout
        if timeout is not None:
            left = max(0.0, timeout - (time.monotonic() - run.started))
            seconds = left if seconds is None else min(seconds, left)
        if max_tokens is None and seconds is None:
            return None
        return Budget(max_tokens, seconds)

    def _past_timeout(self, run: RequestRun) -> bool:
        timeout = self.settings.request_timeout
        return timeout is not None and time.monotonic() - run.started >= timeout

    def admit(self, run: RequestRun) -> None:
        """Take a slot for ``run`` until :meth:`finished`, or refuse it with a
        429: past the limit, new work would only queue in the engine and slow
        every request already running. A draining server takes nothing new."""
        refusal = self._refusal()
        if refusal is not None:
            self.metrics.record_request(run.strategy.name, run.request.stream, refusal.status, 0.0)
            raise refusal
        self._change_in_flight(+1)

    def finished(self, run: RequestRun, status: int) -> None:
        self._change_in_flight(-1)
        seconds = time.monotonic() - run.started
        self.metrics.record_request(
            run.strategy.name, run.request.stream, status, seconds, run.context
        )

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """A slot, as :meth:`admit` gives one, for the length of the block:
        for a request that runs no strategy but costs the server work of the
        same kind (tokenizing renders prompts on the threads chat renders on)."""
        refusal = self._refusal()
        if refusal is not None:
            raise refusal
        self._change_in_flight(+1)
        try:
            yield
        finally:
            self._change_in_flight(-1)

    def _refusal(self) -> ShuttingDown | Overloaded | None:
        if self.lifecycle.draining:
            return ShuttingDown("The server is shutting down; retry shortly.")
        if self.in_flight >= self.settings.max_concurrent_requests:
            return Overloaded(
                f"The server is serving its limit of {self.settings.max_concurrent_requests} "
                "requests; retry shortly."
            )
        return None

    def _change_in_flight(self, change: int) -> None:
        self.in_flight += change
        self.metrics.in_flight.set(self.in_flight)

    def strategy_alias(self, model: str) -> str:
        """The strategy a model name picks (``smollm2@cot``: ``cot``; none:
        ""), or a 404 for a model this server does not serve."""
        name, _, alias = model.partition(ALIAS_SEPARATOR)
        if name != self.settings.model_name or (alias and alias not in STRATEGIES):
            raise NotFound(
                f"The model '{model}' does not exist; see GET /v1/models.", param="model"
            )
        return alias

    def _strategy(
        self, request: SamplingRequest
    ) -> tuple[Strategy, StrategyConfig, str | None]:
        """The request's own strategy, else its model alias's, else its
        reasoning effort's preset, else the server's default; with the
        effort level when a preset chose it."""
        alias = self.strategy_alias(request.model)
        effort = None
        if request.strategy is not None:
            config = request.strategy
        elif alias:
            config = STRATEGIES[alias].config()
        elif request.effort is not None:
            effort = request.effort
            config = self.effort_presets[effort]
        else:
            config = STRATEGIES[self.settings.default_strategy].config()
        config = self.settings.with_server_defaults(config)
        return STRATEGIES[config.name], config, effort  # type: ignore[attr-defined]

    def _thinking(self, request: SamplingRequest) -> ThinkingControl | None:
        """The thinking budget every sample is held to: the request's own,
        or, for a whole (unstreamed) answer under a token cap, one that
        leaves room to answer, so a thinking model is not cut off mid-thought
        with no answer at all. Streams force only budgets asked for: a forced
        sample is sent whole, once settled."""
        limits = request.budget or BudgetLimits()
        asked = limits.thinking_tokens is not None or limits.min_thinking_tokens is not None
        if self.thinking_markers is None:
            if asked:
                raise InvalidRequest(
                    "A thinking budget needs a model that thinks in tags, served with "
                    "--reasoning-parser; this server has none.",
                    param="budget.thinking_tokens" if limits.thinking_tokens is not None
                    else "budget.min_thinking_tokens",
                )
            return None
        cap = limits.thinking_tokens
        if cap is None and request.token_cap is not None and not request.stream:
            cap = max(1, request.token_cap - min(ANSWER_ROOM, request.token_cap // 4))
        if cap is None and limits.min_thinking_tokens is None:
            return None
        budget = ThinkingBudget(cap, limits.min_thinking_tokens or 0, limits.thinking_extensions)
        return ThinkingControl(self.thinking_markers, budget)

    def _seeded(self, sampling: Sampling, request: SamplingRequest, choice: int) -> Sampling:
        """Each choice is an independent run: give it its own seed range,
        wide enough for the children a fanned-out strategy derives from it."""
        if request.seed is None:
            return sampling
        seed = request.seed + choice * self.settings.max_samples
        return replace(sampling, seed=(seed + SEED_SPAN // 2) % SEED_SPAN - SEED_SPAN // 2)


def _sampling(request: SamplingRequest, tools: ToolUse | None) -> Sampling:
    """The request's sampling settings, for every sample of every choice."""
    top_logprobs = request.top_logprobs_asked
    return Sampling(
        max_tokens=request.token_cap,
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=request.top_k or 0,
        min_p=request.min_p or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        repetition_penalty=request.repetition_penalty or 1.0,
        logit_bias=tuple((int(token), bias) for token, bias in (request.logit_bias or {}).items()),
        min_tokens=request.min_tokens,
        ignore_eos=request.ignore_eos,
        stop=tuple(request.stop or ()),
        stop_token_ids=tuple(request.stop_token_ids or ()),
        include_stop=request.include_stop_str_in_output,
        skip_special_tokens=request.skip_special_tokens and not (
            tools is not None and tools.keeps_special_tokens
        ),
        logprobs=top_logprobs is not None,
        top_logprobs=top_logprobs or 0,
        json_output=_json_output(request, tools),
    )


def _json_output(request: SamplingRequest, tools: ToolUse | None) -> JsonOutput | None:
    """A forced tool call is generated under its tools' schema; otherwise
    ``response_format`` says what every sample must be."""
    if tools is not None and tools.json_output is not None:
        return tools.json_output
    wanted = request.response_format
    if wanted is None or wanted.type == "text":
        return None
    if isinstance(wanted, JsonSchemaFormat) and wanted.json_schema.schema_ is not None:
        return JsonOutput(json.dumps(wanted.json_schema.schema_))
    return JsonOutput()


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
    if request.tools:
        template_kwargs["tools"] = [tool.model_dump(exclude_none=True) for tool in request.tools]
    return [Prompt(
        messages=tuple(m.model_dump(exclude_none=True) for m in request.messages),
        template_kwargs=tuple(template_kwargs.items()),
    )]
