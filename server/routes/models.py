"""GET /v1/models and GET /v1/strategies."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from ponder.core.policy import Policy
from ponder.server.deps import ServiceDep
from ponder.server.protocol.listings import ModelCard, ModelList, StrategyCard, StrategyList
from ponder.server.serving import ALIAS_SEPARATOR
from ponder.strategies import STRATEGIES

router = APIRouter(tags=["models"])
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


def _policy_shown(policy: Policy) -> dict[str, Any]:
    return {
        "source": policy.source,
        "probe": {"samples": policy.probe.samples, "answer_below": policy.probe.answer_below},
        "bins": [{"upper": b.upper, "choices": b.choices} for b in policy.bins],
        "verifiers": policy.verifiers,
    }


@router.get("/v1/strategies", response_model=StrategyList)
async def list_strategies(service: ServiceDep) -> StrategyList:
    cards = [
        StrategyCard(
            name=strategy.name,
            description=strategy.summary,
            parameters=strategy.config.model_json_schema(),
            defaults=service.settings.with_server_defaults(strategy.config()).model_dump(),
            policy=_policy_shown(service.settings.calibrated_policy)
            if strategy.name == "auto" else None,
        )
        for strategy in STRATEGIES.values()
    ]
    efforts = {level: config.model_dump() for level, config in service.effort_presets.items()}
    return StrategyList(default=service.settings.default_strategy, efforts=efforts, data=cards)
