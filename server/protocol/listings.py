"""The listings: ``/v1/models`` and ponder's ``/v1/strategies``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ponder"
    root: str | None = None
    max_model_len: int | None = None
    strategy: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class StrategyCard(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    defaults: dict[str, Any]
    policy: dict[str, Any] | None = Field(
        None, description="`auto`: the calibrated policy, the model it was fit on and whether it "
        "applies to the served model; when it does, its probe, difficulty bins with their "
        "choices per budget, and the combined verifiers' weights; else the model-neutral rule "
        "and the untrained weights in force."
    )


class StrategyList(BaseModel):
    object: Literal["list"] = "list"
    default: str
    efforts: dict[str, dict[str, Any]] = Field(
        description="The strategy each `reasoning_effort` level picks for a request that "
        "names none (--effort)."
    )
    presets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named presets an operator can give an effort level "
        "(--effort LEVEL=PRESET), each a strategy with its parameters."
    )
    data: list[StrategyCard]
    model: dict[str, str] | None = Field(
        None, description="The served model as data fit on it names it: its name and the "
        "fingerprint of its configuration and tokenizer (what a policy must match).")
    engines: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="The settings each in-process vLLM engine runs with (`policy`, and "
        "`prm:NAME` for each PRM engine), as vLLM resolved them: dtype, memory, KV cache "
        "tokens, graph capture, batch limits.",
    )
