"""Prometheus metrics, per strategy, in a registry owned by the app (so two
apps in one process, as in tests, do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ponder.strategies.base import StrategyResult


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

    def record_request(self, strategy: str, stream: bool, status: int, seconds: float) -> None:
        self.requests.labels(strategy, str(stream).lower(), str(status)).inc()
        self.latency.labels(strategy).observe(seconds)

    def record_result(self, strategy: str, result: StrategyResult) -> None:
        self.samples.labels(strategy).inc(result.samples)
        usage = result.usage
        for kind, count in (
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("reasoning", usage.reasoning_tokens),
            ("scoring", usage.scoring_tokens),
        ):
            self.tokens.labels(strategy, kind).inc(count)
