"""GET /v1/models and GET /v1/strategies."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from ponder.core.policy import NEUTRAL_ESCALATION, NEUTRAL_PROBE_SAMPLES, shown_source
from ponder.prm.registry import NEUTRAL_COMBINATIONS
from ponder.server.deps import ServiceDep
from ponder.server.effort import NAMED_PRESETS, strategy_config
from ponder.server.protocol.listings import ModelCard, ModelList, StrategyCard, StrategyList
from ponder.server.serving import ALIAS_SEPARATOR, StrategyService
from ponder.strategies import STRATEGIES

router = APIRouter(tags=["models"])
NEUTRAL_RULE_TEXT = (
    f"model-neutral: the probe's answer when its {NEUTRAL_PROBE_SAMPLES} samples agree, else "
    f"{NEUTRAL_ESCALATION} over the whole budget, scored by auto's verifier")
_STARTED = int(time.time())


@router.get("/v1/models", response_model=ModelList)
async def list_models(service: ServiceDep) -> ModelList:
    """The served model, then one alias per strategy, for clients that can
    only choose a model name."""
    name = service.settings.model_name
    base = ModelCard(
        id=name, created=_STARTED, root=service.settings.model,
        max_model_len=service.max_model_len,
    )
    aliases = [
        base.model_copy(update={"id": f"{name}{ALIAS_SEPARATOR}{strategy}", "strategy": strategy})
        for strategy in STRATEGIES
    ]
    return ModelList(data=[base, *aliases])


def _policy_shown(service: StrategyService) -> dict[str, Any]:
    """The policy file and the model it was fit on; whether it applies to
    the served model; and, when it does, what it decides."""
    fitted = service.settings.calibrated_policy
    shown: dict[str, Any] = {"source": shown_source(fitted.source),
                             "fit_on": fitted.model.as_json(), "applies": service.policy is not None}
    if service.policy is None:
        return {**shown, "rule": NEUTRAL_RULE_TEXT, "verifiers": NEUTRAL_COMBINATIONS}
    policy = service.policy
    return {
        **shown,
        "probe": {"samples": policy.probe.samples, "answer_below": policy.probe.answer_below},
        "bins": [{"upper": b.upper, "choices": {budget: str(c) for budget, c in b.choices.items()}}
                 for b in policy.bins],
        "verifiers": policy.verifiers,
    }


@router.get("/v1/strategies", response_model=StrategyList)
async def list_strategies(service: ServiceDep, request: Request) -> StrategyList:
    cards = [
        StrategyCard(
            name=strategy.name,
            description=strategy.summary,
            parameters=strategy.config.model_json_schema(),
            defaults=service.settings.with_server_defaults(strategy.config()).model_dump(),
            policy=_policy_shown(service) if strategy.name == "auto" else None,
        )
        for strategy in STRATEGIES.values()
    ]
    efforts = {level: config.model_dump() for level, config in service.effort_presets.items()}
    presets = {name: strategy_config(spec, name).model_dump()
               for name, spec in NAMED_PRESETS.items()}
    return StrategyList(default=service.settings.default_strategy, efforts=efforts, data=cards,
                        presets=presets,
                        model=None if service.model is None else service.model.as_json(),
                        engines=request.app.state.engines)
