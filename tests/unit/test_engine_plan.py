"""The engines' memory and settings, decided for a faked device: a CPU, and
an 80 GiB GPU with and without --kv-cache-gb, alone and with a PRM engine
beside the policy model. No GPU is needed: the plan is arithmetic over the
device's memory and the PRM's weights on disk, and the arguments it makes
are checked against vLLM's own AsyncEngineArgs."""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm import AsyncEngineArgs
from vllm.config import CacheConfig

from ponder.server.app import CPU_RUNNING_SAMPLES, REMOTE_RUNNING_SAMPLES, sample_scheduler
from ponder.server.config import Settings
from ponder.server.engine import _engine_args
from ponder.server.engine_plan import (
    GIB,
    PRM_WORKING_ROOM_GB,
    Device,
    Memory,
    plan_engines,
    runs_engines,
)

H100 = Device("gpu", 80 * GIB, "NVIDIA H100 80GB HBM3")
CPU = Device("cpu")
PRM_WEIGHTS = 15_231_233_024  # Qwen2.5-Math-PRM-7B's safetensors, bf16


@pytest.fixture
def prm_dir(tmp_path: Path) -> Path:
    """A model directory whose weight files have a 7B PRM's size (sparse:
    nothing is written but their length)."""
    for index, size in enumerate((PRM_WEIGHTS // 2, PRM_WEIGHTS - PRM_WEIGHTS // 2)):
        with (tmp_path / f"model-0000{index + 1}-of-00002.safetensors").open("wb") as file:
            file.truncate(size)
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_the_default_budget_is_vllms() -> None:
    """The same default as `vllm serve --gpu-memory-utilization` of the
    release ponder runs on."""
    assert Settings().gpu_memory_utilization == CacheConfig.gpu_memory_utilization


def test_on_a_cpu_the_kv_caches_are_fixed(prm_dir: Path) -> None:
    plan = plan_engines(Settings(prm=[f"qwen=pooling:{prm_dir}"]), CPU, "/models/m")
    assert plan.policy.memory == Memory(kv_cache_gb=2.0)
    assert plan.policy.memory.engine_args() == {"kv_cache_memory_bytes": 2 * GIB}
    assert plan.prms == {"qwen": {"kv_cache_memory_bytes": 1 * GIB, "enforce_eager": True,
                                  "dtype": "bfloat16"}}
    assert plan.policy.enforce_eager and not plan.policy.chunked_prefill
    assert plan.policy.block_size == 32
    assert plan_engines(Settings(kv_cache_gb=3), CPU, "m").policy.memory.kv_cache_gb == 3


def test_on_a_gpu_the_policy_takes_vllms_utilization() -> None:
    plan = plan_engines(Settings(), H100, "/models/m")
    assert plan.policy.memory.engine_args() == {"gpu_memory_utilization": 0.92}
    assert plan.prms == {}
    # vLLM's own defaults: CUDA graphs, its dtype and block size, chunked prefill.
    assert not plan.policy.enforce_eager and plan.policy.chunked_prefill
    assert plan.policy.dtype == "auto" and plan.policy.block_size is None
    args = _engine_args(plan.policy)
    assert args.gpu_memory_utilization == 0.92 and args.kv_cache_memory_bytes is None
    assert args.enforce_eager is False


def test_on_a_gpu_kv_cache_gb_fixes_the_policys_cache() -> None:
    plan = plan_engines(Settings(kv_cache_gb=8), H100, "/models/m")
    args = _engine_args(plan.policy)
    assert args.kv_cache_memory_bytes == 8 * GIB
    # vLLM still checks the memory free at start against the utilization.
    assert args.gpu_memory_utilization == 0.92


def test_a_prm_engine_gets_its_weights_and_room_the_policy_the_rest(prm_dir: Path) -> None:
    plan = plan_engines(Settings(prm=[f"qwen=pooling:{prm_dir}"]), H100, "/models/m")
    prm = plan.prms["qwen"]["gpu_memory_utilization"]
    policy = plan.policy.memory.gpu_memory_utilization
    assert policy is not None
    # Both fit in vLLM's budget together, each engine's fraction checked by
    # vLLM against what is free when it starts.
    assert policy + prm == pytest.approx(0.92)
    assert prm * H100.memory_bytes >= PRM_WEIGHTS + (PRM_WORKING_ROOM_GB + 1.0) * GIB
    assert prm < 0.22 + 1e-9 and policy > 2 * prm  # the policy model gets most
    assert plan.prms["qwen"]["enforce_eager"] is False and plan.prms["qwen"]["dtype"] == "auto"
    AsyncEngineArgs(model=str(prm_dir), runner="pooling", **plan.prms["qwen"])  # vLLM takes them


def test_the_shares_split_an_explicit_budget(prm_dir: Path) -> None:
    settings = Settings(prm=[f"qwen=pooling:{prm_dir}", f"shepherd=token-logit:{prm_dir}"],
                        gpu_memory_utilization=0.8, prm_gpu_memory_utilization=0.15)
    plan = plan_engines(settings, H100, "/models/m")
    assert [args["gpu_memory_utilization"] for args in plan.prms.values()] == [0.15, 0.15]
    assert plan.policy.memory.gpu_memory_utilization == pytest.approx(0.5)


def test_a_prm_that_leaves_the_policy_nothing_is_refused(prm_dir: Path) -> None:
    small_gpu = Device("gpu", 16 * GIB, "NVIDIA T4")
    with pytest.raises(ValueError, match="nothing of --gpu-memory-utilization 0.92"):
        plan_engines(Settings(prm=[f"qwen=pooling:{prm_dir}"]), small_gpu, "/models/m")


def test_a_prm_without_weights_on_disk_needs_its_share_set(tmp_path: Path) -> None:
    settings = Settings(prm=[f"qwen=pooling:{tmp_path / 'absent'}"])
    with pytest.raises(ValueError, match="set --prm-gpu-memory-utilization"):
        plan_engines(settings, H100, "/models/m")
    explicit = settings.model_copy(update={"prm_gpu_memory_utilization": 0.2})
    assert plan_engines(explicit, H100, "m").policy.memory.gpu_memory_utilization == 0.72


def test_prms_without_an_engine_take_no_share() -> None:
    settings = Settings(prm=["c=step-checker", "r=remote:http://127.0.0.1:9?model=x"])
    plan = plan_engines(settings, H100, "/models/m")
    assert plan.prms == {} and plan.policy.memory.gpu_memory_utilization == 0.92


def test_only_a_process_that_runs_an_engine_asks_for_a_device(prm_dir: Path) -> None:
    remote = {"engine": "remote", "engine_url": "http://127.0.0.1:9"}
    assert runs_engines(Settings())
    assert not runs_engines(Settings(**remote))
    assert runs_engines(Settings(**remote, prm=[f"qwen=pooling:{prm_dir}"]))


def test_enforce_eager_turns_graphs_off_for_every_engine(prm_dir: Path) -> None:
    settings = Settings(prm=[f"qwen=pooling:{prm_dir}"], enforce_eager=True)
    plan = plan_engines(settings, H100, "/models/m")
    assert plan.policy.enforce_eager and plan.prms["qwen"]["enforce_eager"]


@pytest.mark.parametrize(("device", "engine_max_seqs", "capacity"), [
    (CPU, 128, CPU_RUNNING_SAMPLES),
    (H100, 1024, 1024),  # what `vllm serve` batches on that GPU
    (H100, None, REMOTE_RUNNING_SAMPLES),  # a remote engine, PRM engines here
    (None, None, REMOTE_RUNNING_SAMPLES),  # a remote engine, no engine here
])
def test_running_samples_follow_the_engine_on_a_gpu(
    device: Device | None, engine_max_seqs: int | None, capacity: int
) -> None:
    assert sample_scheduler(Settings(), device, engine_max_seqs).capacity == capacity
    assert sample_scheduler(Settings(max_running_samples=7), device, engine_max_seqs).capacity == 7
