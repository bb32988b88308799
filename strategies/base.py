"""What every strategy is given and gives back.

Strategies are pure algorithms over a :class:`~ponder.core.generation.Generator`
and the step scorers in :class:`Verifiers`. They never see HTTP or vLLM, so
the same code runs against the real engine, a remote server, or a scripted
generator in a unit test. They count no tokens either: every call they make
goes through the run's meter (:mod:`ponder.core.metering`), which reports
usage and enforces the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ponder.core.answers import WHOLE_ANSWER_FORMATS
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
from ponder.strategies.early_exit import AnswerCues, EarlyExit, EarlyExitSpec
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
    pruned_at: int | None = None
    """Speculative rejection: the checkpoint (in tokens) at which it was
    scored among the worst and stopped."""


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
class AutoDecision:
    """What ``auto``'s probe said and what ran after it, as a client sees it."""

    policy: str
    """The policy followed (its source), or the model-neutral rule."""
    signals: dict[str, float]
    difficulty: float | None
    """The policy's estimate; None under the model-neutral rule."""
    bin: int | None
    bins: int | None
    choice: str
    """What ran after the probe, as ``best_of_n@8``; ``probe@4`` when the
    probe's answer stood."""
    why: str
    probe_samples_reused: int = 0


@dataclass
class ParticleRound:
    """One round of a particle filter, as a client sees it."""

    particles: list[int]
    """Node ids of the population weighed this round."""
    weights: list[float]
    ess: float
    """Effective sample size of the weights."""
    resampled: bool
    kept: list[int]
    """Node ids that live on (a particle drawn k times is there k times)."""
    iteration: int
    reference: int | None
    """Particle Gibbs: the reference particle's node this round."""


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
    rounds: list[ParticleRound | dict[str, Any]] | None = None
    """Particle filtering: each round's particles, weights and effective
    sample size; genselect: each round's groups, their picks and winners."""
    decision: AutoDecision | None = None
    """``auto``: what the probe said, the difficulty bin, and what ran and why."""
    checkpoints: list[dict[str, Any]] | None = None
    """Speculative rejection: each checkpoint's scores and the samples it stopped."""
    early_exits: int | None = None
    """Early exit: chains stopped because their probes agreed."""
    probe_tokens: int = 0
    """Of the tokens the run generated, those its early-exit probes wrote."""

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
            "rounds": None if self.rounds is None else [
                r if isinstance(r, dict) else asdict(r) for r in self.rounds],
            "checkpoints": self.checkpoints,
            "early_exits": self.early_exits,
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
    cues: AnswerCues | None = None
    """What early-exit probes append to ask a chain for its answer."""

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

    reuses_probe: ClassVar[bool] = False
    """It draws whole samples as ``auto``'s probe does, so a probe's samples
    can count as its first ones."""
    draws_anew_with: ClassVar[frozenset[str]] = frozenset({"early_exit"})
    """Its options under which samples drawn before it cannot count as its
    own (see :class:`ponder.core.policy.Choosable`)."""

    @property
    def max_samples(self) -> int:
        """The most samples one run may draw, checked against the server's
        ``--max-samples``."""
        return 1

    @classmethod
    def sized(cls, size: int) -> dict[str, Any] | None:
        """The fields that make the strategy draw ``size`` samples (for a
        search, ``size`` a round), for a policy's choice such as
        ``best_of_n@8``; None for a strategy a policy does not choose."""
        return None


class EarlyExitOption(StrategyConfig):
    """The ``early_exit`` parameter of the strategies that draw whole
    samples: each sample is probed for its answer as it goes and stopped
    once its probes agree (``early_exit.py``)."""

    early_exit: EarlyExitSpec | None = Field(
        None, description="Dynasor-CoT's certainty probes (Fu et al. 2024): every `every` "
        "tokens ask the chain for its answer; after `agree` equal answers in a row, stop it "
        "and let that answer stand.",
    )

    def probed_as(self, task: Task) -> tuple[str, str]:
        """The prompt style whose answer cue a probe appends, and how its
        answer is read."""
        return "direct", "auto"

    def exiting(
        self, task: Task, chain: Generator, probe: Generator, charge: Callable[[int], None]
    ) -> EarlyExit | None:
        """``chain`` probed for an early exit, when this run asks for one."""
        if self.early_exit is None:
            return None
        style, answer_format = self.probed_as(task)
        if task.sampling.json_output is not None or answer_format in WHOLE_ANSWER_FORMATS:
            raise RequestRejected(
                "early_exit asks a chain for its answer part-way; an answer that is the whole "
                "output (JSON, tool calls) has no part-way answer to ask for.",
                param="strategy.early_exit",
            )
        if task.cues is None:
            raise RequestRejected("This server has no answer cues to probe with.",
                                  param="strategy.early_exit")
        return EarlyExit(chain, probe, self.early_exit, task.cues.for_style(style),
                         answer_format, charge)  # type: ignore[arg-type]
