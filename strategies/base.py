"""What every strategy is given and gives back.

Strategies are pure algorithms over a :class:`~ponder.core.generation.Generator`
and the step scorers in :class:`Verifiers`. They never see HTTP or vLLM, so
the same code runs against the real engine, a remote server, or a scripted
generator in a unit test. They count no tokens either: every call they make
goes through the run's meter (:mod:`ponder.core.metering`), which reports
usage and enforces the budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ponder.core.generation import (
    FinishReason,
    Generator,
    Prompt,
    RequestRejected,
    Sampling,
    TokenLogprob,
    message_text,
)
from ponder.core.metering import Meter, Usage
from ponder.core.policy import Policy
from ponder.core.scoring import ProcessRewardModel, ScorerFactory, shared
from ponder.strategies.reasoning import ReasoningSplitter
from ponder.strategies.thinking import ThinkingBudget, ThinkingMarkers
from ponder.strategies.tool_calls import ToolCallReader


class Emitter(Protocol):
    """Where a streaming strategy sends what the client should see now."""

    async def reasoning(self, text: str) -> None: ...

    async def content(
        self, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> None:
        """Answer text, with the tokens that spell it (their ids, and their
        log-probabilities when the request asked for them)."""
        ...

    async def progress(self, text: str) -> None:
        """A line about the search itself: shown as reasoning when reasoning
        is visible, sent as an SSE comment (to keep the connection alive)
        when it is hidden."""
        ...

    async def tree(self, nodes: list[TreeNode]) -> None:
        """A search's tree as it stands after a round, for a client that
        asked for the candidates (one that draws it as it grows)."""
        ...


@dataclass
class Candidate:
    """One sample (or final beam) as shown by ``include_candidates``."""

    text: str
    answer: str | None
    finish_reason: FinishReason
    tokens: int
    score: float | None = None
    step_scores: list[float] | None = None
    step_labels: list[str] | None = None
    """What each step score means, from scorers that grade in levels (the
    step checker: "grounded", "answer supported", ...)."""
    confidence: float | None = None
    """Its DeepConf trace confidence, when the vote read it."""
    verifiers: dict[str, float] | None = None
    """What each weak verifier said of it, when a combined scorer chose."""


@dataclass
class TreeNode:
    """One node of a search tree as shown by ``include_candidates``: a step
    and where it sits."""

    id: int
    parent: int | None
    """None for a first step (its parent is the prompt)."""
    subtree: int
    """Which independent subtree it grew in (DVTS); 0 in a beam search."""
    depth: int
    step: str
    step_score: float | None
    score: float
    """The aggregated score of the partial solution ending here."""
    kept: bool
    """Among the best of its round (else pruned there)."""
    completed: bool
    """The solution ends here (end of sequence, a final answer, or its
    token limit)."""
    answer: str | None = None
    tokens: int = 0
    """Tokens generated for this step (its parent's are the parent's)."""


@dataclass
class StrategyResult:
    content: str
    reasoning: str | None
    finish_reason: FinishReason
    logprobs: list[TokenLogprob] | None = None
    """When the request asked for them: the log-probabilities of the chosen
    sample's tokens that spell ``content`` (see ``strategies/logprobs.py``)."""
    reasoning_tokens: int = 0
    """Of the tokens the run generated, those that were reasoning rather than
    answer; the rest of ``usage`` comes from the run's meter."""
    usage: Usage = field(default_factory=Usage)
    answer: str | None = None
    votes: dict[str, int] | None = None
    scores: list[float] | None = None
    stopped_early: bool = False
    budget_exhausted: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    tree: list[TreeNode] | None = None
    scorer: str | None = None
    """The step scorer that chose, by its configured name."""
    selected: int | None = None
    """The index of the chosen candidate."""
    tokens_saved_estimate: int | None = None
    confidence_bar: float | None = None
    """DeepConf online: the group confidence a sample had to keep."""
    stopped_low_confidence: int | None = None
    """DeepConf online: samples stopped for falling below the bar."""
    rounds: list[dict[str, Any]] | None = None
    """Particle filtering: each round's particles, weights and effective sample size."""
    decision: dict[str, Any] | None = None
    """``auto``: what the probe said, the difficulty bin, and what ran and why."""

    @property
    def samples(self) -> int:
        """Samples drawn: every node a search grew, else every candidate."""
        return len(self.tree) if self.tree is not None else len(self.candidates)

    def details(self) -> dict[str, Any]:
        found = {
            "prm": self.scorer,
            "selected_index": self.selected,
            "tokens_saved_estimate": self.tokens_saved_estimate,
            "confidence_bar": self.confidence_bar,
            "stopped_low_confidence": self.stopped_low_confidence,
            "rounds": self.rounds,
        }
        return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class Verifiers:
    """The step scorers the server offers, by name, as one run sees them:
    bound to the run's meter, so what they read and judge is charged to it."""

    factories: Mapping[str, ScorerFactory] = field(default_factory=dict)
    default: str | None = None
    meter: Meter | None = None
    generator: Generator | None = None
    """What a judging scorer generates on (the engine, unmetered)."""

    @classmethod
    def of(cls, default: str | None = None, **scorers: ProcessRewardModel) -> Verifiers:
        """Ready scorers that judge with no generator (tests, fixed PRMs)."""
        return cls({name: shared(s) for name, s in scorers.items()}, default)

    def for_run(self, meter: Meter, generator: Generator) -> Verifiers:
        return replace(self, meter=meter, generator=generator)

    def get(self, name: str | None) -> tuple[str, ProcessRewardModel]:
        chosen = name or self.default
        if chosen is None or chosen not in self.factories:
            known = ", ".join(self.factories) or "none configured"
            raise RequestRejected(
                f"Unknown process reward model {chosen!r}; this server has: {known}.",
                param="strategy.prm",
            )
        if self.meter is None or self.generator is None:
            raise RuntimeError("scorers are handed out only within a metered run (execute)")
        judge_with = self.meter.scoring_generator(self.generator)
        return chosen, self.meter.scorer(self.factories[chosen](judge_with))


@dataclass(frozen=True)
class ThinkingControl:
    markers: ThinkingMarkers
    budget: ThinkingBudget


@dataclass(frozen=True)
class Task:
    """One run of a strategy: the request's prompt and sampling settings, how
    the served model marks its reasoning (``NoReasoning`` for most), the
    verifiers a strategy may score with, and, when the request lets the
    model call tools, how to read its calls."""

    prompt: Prompt
    sampling: Sampling
    splitter: ReasoningSplitter
    verifiers: Verifiers = field(default_factory=Verifiers)
    tools: ToolCallReader | None = None
    thinking: ThinkingControl | None = None
    """A thinking budget to force on every sample, for models that think in tags."""
    policy: Policy | None = None
    """The server's calibrated policy, for ``auto``."""

    @property
    def question(self) -> str:
        """What a verifier is told the problem was: the last user message."""
        if self.prompt.messages is None:
            return self.prompt.text or ""
        users = [m for m in self.prompt.messages if m.get("role") == "user"]
        return message_text(users[-1].get("content")) if users else ""


def _name_is_required(schema: dict[str, Any]) -> None:
    """In a request the name picks the strategy, so an object must carry it,
    though each strategy's model defaults it."""
    schema["required"] = ["name", *schema.get("required", [])]


class StrategyConfig(BaseModel):
    """Base of every strategy's parameters: unknown fields are an error, so a
    typo in a request is a 400 that names it, not a silently ignored knob."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_name_is_required)

    @property
    def max_samples(self) -> int:
        """The most samples one run may draw, checked against the server's
        ``--max-samples``."""
        return 1
