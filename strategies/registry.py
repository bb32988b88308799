"""The one table of strategies, and what a policy's choice runs.

Each strategy is one module with a pydantic ``Config`` (its parameters, with
``name`` as the tag) and ``async def run(task, gen, cfg, emit)``. A strategy
whose choices can share one engine request (one sample each: ``none``,
``cot``) also has ``run_choices(task, gen, cfg, n, emitters)``.
``strategies/__init__.py`` registers every module here; the API's request
schema, ``/v1/strategies``, the ``model@strategy`` aliases and the
strategies a policy may choose all follow from this table. It is filled
when the package is imported, so a strategy that runs others (``auto``)
reads it at run time, not when its own module loads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from ponder.core.generation import Generator
from ponder.core.metering import Allowance, Meter, Usage
from ponder.core.policy import Choice, Choosable
from ponder.strategies.base import EarlyExitOption, Emitter, StrategyConfig, StrategyResult, Task
from ponder.strategies.early_exit import EarlyExit
from ponder.strategies.thinking import BudgetForcing

RunFn = Callable[[Task, Generator, Any, Emitter | None], Awaitable[StrategyResult]]
RunChoicesFn = Callable[
    [Task, Generator, Any, int, Sequence[Emitter] | None], Awaitable[list[StrategyResult]]
]


@dataclass(frozen=True)
class Strategy:
    name: str
    config: type[StrategyConfig]
    run: RunFn
    summary: str
    run_choices: RunChoicesFn | None = None

    async def execute(
        self,
        task: Task,
        generator: Generator,
        config: StrategyConfig,
        emit: Emitter | None = None,
        allowance: Allowance | None = None,
    ) -> StrategyResult:
        """One metered run: every engine and scorer call it makes is counted
        in its usage and drawn on its request's ``allowance``."""
        meter = Meter(allowance)
        task = replace(task, verifiers=task.verifiers.for_run(meter, generator))
        forced, exits = _forced(task, meter, generator, config)
        result = await self.run(task, forced, config, emit)
        result.usage = replace(meter.usage, reasoning_tokens=result.reasoning_tokens)
        if exits is not None:
            result.early_exits = exits.ledger.exits
        _account_budget(result, meter)
        return result

    async def execute_choices(
        self,
        task: Task,
        generator: Generator,
        config: StrategyConfig,
        n: int,
        emitters: Sequence[Emitter] | None = None,
        allowance: Allowance | None = None,
    ) -> list[StrategyResult]:
        """``n`` choices in one metered run (``run_choices``: one engine
        request with n children), all drawn on one ``allowance``. Each
        choice's usage is what it generated; the first also carries the
        prompt, which the engine read once for all of them."""
        assert self.run_choices is not None
        meter = Meter(allowance)
        task = replace(task, verifiers=task.verifiers.for_run(meter, generator))
        forced, exits = _forced(task, meter, generator, config)
        results = await self.run_choices(task, forced, config, n, emitters)
        for index, result in enumerate(results):
            result.usage = Usage(
                prompt_tokens=meter.usage.prompt_tokens if index == 0 else 0,
                cached_tokens=meter.usage.cached_tokens if index == 0 else 0,
                completion_tokens=sum(c.tokens for c in result.candidates),
                reasoning_tokens=result.reasoning_tokens,
            )
            if exits is not None:
                # What its chain wrote, kept or cut off, and its probes.
                result.usage.completion_tokens = exits.ledger.generated.get(index, 0)
                result.usage.probe_tokens = exits.ledger.probe_tokens.get(index, 0)
                result.early_exits = int(index in exits.ledger.exited)
            _account_budget(result, meter)
        return results


STRATEGIES: dict[str, Strategy] = {}
"""Every strategy, by name (filled by ``strategies/__init__.py``)."""


def register(module: ModuleType) -> Strategy:
    name = module.Config.model_fields["name"].default
    summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    strategy = Strategy(name=name, config=module.Config, run=module.run, summary=summary,
                        run_choices=getattr(module, "run_choices", None))
    STRATEGIES[name] = strategy
    return strategy


def policy_strategies() -> dict[str, Choosable]:
    """The strategies a policy may choose (those that can be sized), each
    with whether (and with which options not) it reuses the probe's
    samples."""
    return {name: Choosable(s.config.reuses_probe, s.config.draws_anew_with)
            for name, s in STRATEGIES.items() if s.config.sized(1) is not None}


def choice_config(choice: Choice, shared: Mapping[str, Any] | None = None) -> StrategyConfig:
    """The configuration ``choice`` names: the one definition ``ponder
    calibrate`` measures and ``auto`` runs. The strategy's size fields come
    from its ``sized``, its options from the choice; ``shared`` fills what
    the strategy has of the rest (prompt, answer format, step delimiter).
    A choice that reuses the probe's samples scores them with the probe's
    verifier, ``shared["prm"]``; any other keeps its own default. A
    ValueError says what does not fit."""
    strategy = STRATEGIES.get(choice.strategy)
    size_fields = None if strategy is None else strategy.config.sized(choice.size)
    if strategy is None or size_fields is None:
        raise ValueError(f"{choice.strategy!r} is not a strategy a policy can choose")
    fields = strategy.config.model_fields
    common = {key: value for key, value in (shared or {}).items()
              if key in fields and (key != "prm" or choice.reuses_probe)}
    try:
        return strategy.config(**{**common, **dict(choice.options), **size_fields})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in error.errors())
        raise ValueError(f"{choice} is not a valid {choice.strategy} ({problems})") from None


def _forced(
    task: Task, meter: Meter, generator: Generator, config: StrategyConfig
) -> tuple[Generator, EarlyExit | None]:
    """The run's metered generator, probing every sample for an early exit
    when the config asks, and forcing the request's thinking budget on
    every sample (over the meter, so each engine call they make is counted,
    and so are the tokens they write in); and the early exit, if any."""
    metered = meter.generator(generator)
    exits = None
    if isinstance(config, EarlyExitOption):
        exits = config.exiting(
            task, metered, meter.probe_generator(generator),
            charge=lambda tokens: meter.charge_generated(tokens, scoring=False, probing=True))
    forced = metered if exits is None else exits
    if task.thinking is None:
        return forced, exits
    return BudgetForcing(forced, task.thinking.markers, task.thinking.budget,
                         charge=lambda tokens: meter.charge_generated(tokens, scoring=False)), exits


def _account_budget(result: StrategyResult, meter: Meter) -> None:
    if meter.exhausted:
        result.budget_exhausted = True
        if result.answer is None:
            result.finish_reason = "length"
