"""Prometheus metrics, per strategy, in a registry owned by the app (so two
apps in one process, as in tests, do not collide). ``GET /metrics`` adds the
engine's own ``vllm:*`` figures after these."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ponder.core.scoring import (
    ProcessRewardModel,
    ScorerFactory,
    ScorerWrapper,
    Solution,
    StepScores,
)
from ponder.server.request_context import RequestContext
from ponder.strategies.base import StrategyResult, Verifiers


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ponder_requests", "Chat requests by strategy and outcome.",
            ["strategy", "stream", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "ponder_request_seconds", "Time from request to last byte.", ["strategy"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=self.registry,
        )
        self.in_flight = Gauge(
            "ponder_requests_in_flight", "Requests being served.", registry=self.registry
        )
        self.samples = Counter(
            "ponder_samples", "Samples drawn by strategies.", ["strategy"], registry=self.registry
        )
        self.engine_requests = Gauge(
            "ponder_engine_unfinished_requests",
            "Requests the engine is running or queueing (read at scrape time).",
            registry=self.registry,
        )
        self.tokens = Counter(
            "ponder_tokens", "Tokens by strategy and kind.", ["strategy", "kind"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "ponder_time_to_first_token_seconds",
            "From the request's arrival to the first token the engine generated for it "
            "(admission wait and prefill included).",
            ["strategy"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.time_per_output_token = Histogram(
            "ponder_time_per_output_token_seconds",
            "Time between one sample's tokens in the engine (per engine call): what the "
            "batch it shares costs it.",
            ["strategy"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5),
            registry=self.registry,
        )
        self.engine_retries = Counter(
            "ponder_engine_retries",
            "Remote-engine calls tried a second time: the first failed (refused, dropped, "
            "5xx) before producing anything.",
            registry=self.registry,
        )
        self.early_stops = Counter(
            "ponder_early_stops", "Strategy runs that stopped sampling early.", ["strategy"],
            registry=self.registry,
        )
        self.budget_exhaustions = Counter(
            "ponder_budget_exhaustions",
            "Strategy runs whose token or time budget (or --request-timeout) ran out.",
            ["strategy"], registry=self.registry,
        )
        self.prm_latency = Histogram(
            "ponder_prm_seconds", "One scoring call of a process reward model.",
            ["strategy", "prm"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.prm_tokens = Counter(
            "ponder_prm_tokens", "Tokens process reward models read (or generated, judging).",
            ["strategy", "prm"], registry=self.registry,
        )
        self.samples_running = Gauge(
            "ponder_samples_running", "Samples admitted into the engine (read at scrape time).",
            registry=self.registry,
        )
        self.asyncio_tasks = Gauge(
            "ponder_asyncio_tasks",
            "Tasks on the API process's event loop (read at scrape time): flat when idle, "
            "or something leaks.",
            registry=self.registry,
        )
        self.samples_waiting = Gauge(
            "ponder_samples_waiting",
            "Samples waiting for their turn in ponder's fair admission (read at scrape time).",
            registry=self.registry,
        )

    def record_request(
        self, strategy: str, stream: bool, status: int, seconds: float,
        context: RequestContext | None = None,
    ) -> None:
        self.requests.labels(strategy, str(stream).lower(), str(status)).inc()
        self.latency.labels(strategy).observe(seconds)
        if context is None:
            return
        if context.first_token is not None:
            self.time_to_first_token.labels(strategy).observe(
                max(0.0, context.first_token - context.started)
            )
        for seconds_per_token in context.decode_seconds_per_token:
            self.time_per_output_token.labels(strategy).observe(seconds_per_token)

    def record_result(self, strategy: str, result: StrategyResult) -> None:
        self.samples.labels(strategy).inc(result.samples)
        if result.stopped_early:
            self.early_stops.labels(strategy).inc()
        if result.budget_exhausted:
            self.budget_exhaustions.labels(strategy).inc()
        usage = result.usage
        for kind, count in (
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("reasoning", usage.reasoning_tokens),
            ("scoring", usage.scoring_tokens),
        ):
            self.tokens.labels(strategy, kind).inc(count)


class TimedScorer(ScorerWrapper):
    """A scorer whose calls are timed and whose tokens are counted, by
    strategy and PRM name."""

    def __init__(self, inner: ProcessRewardModel, latency: Histogram, tokens: Counter) -> None:
        super().__init__(inner)
        self._latency = latency
        self._tokens = tokens

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        start = time.monotonic()
        scored = await self.inner.score(question, solutions)
        self._latency.observe(time.monotonic() - start)
        self._tokens.inc(scored.tokens)
        return scored


def timed_verifiers(verifiers: Verifiers, metrics: Metrics, strategy: str) -> Verifiers:
    def timed(name: str, factory: ScorerFactory) -> ScorerFactory:
        latency = metrics.prm_latency.labels(strategy, name)
        tokens = metrics.prm_tokens.labels(strategy, name)
        return lambda generator: TimedScorer(factory(generator), latency, tokens)

    factories = {name: timed(name, factory) for name, factory in verifiers.factories.items()}
    return replace(verifiers, factories=factories)
