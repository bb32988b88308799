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
        None, description="`auto`: the calibrated policy in force: its source, probe, difficulty "
        "bins with their choices per budget, and the combined verifiers' weights."
    )


class StrategyList(BaseModel):
    object: Literal["list"] = "list"
    default: str
    efforts: dict[str, dict[str, Any]] = Field(
        description="The strategy each `reasoning_effort` level picks for a request that "
        "names none (--effort)."
    )
    data: list[StrategyCard]
