"""`ponder` command line and settings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ponder.server.cli import _settings, main
from ponder.server.config import SHIPPED_POLICY, Settings
from ponder.server.hardware import CPU_KV_CACHE_GB


def _serve_args(*argv: str) -> Settings:
    import argparse

    from ponder.server.cli import _add_settings_options

    parser = argparse.ArgumentParser()
    _add_settings_options(parser)
    return _settings(parser.parse_args(list(argv)))


def test_help_lists_every_option_with_its_environment_variable() -> None:
    out = subprocess.run([sys.executable, "-m", "ponder.server.cli", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in out
        assert f"PONDER_{name.upper()}" in out


def test_help_shows_real_defaults() -> None:
    out = subprocess.run([sys.executable, "-m", "ponder.server.cli", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "PydanticUndefined" not in out
    assert "(default:step-checker=step-checker,self-judge=self-judge)" in "".join(out.split())


@pytest.mark.parametrize(("argv", "named"), [
    (["--default-strategy", "telepathy"], "--default-strategy"),
    (["--prm", "a=step-checker", "--prm", "a=self-judge"], "given more than once"),
    (["--prm", "mean-logprob=step-checker"], "built-in scorer"),
    (["--prm", "x=pooling"], "needs a model directory"),
    (["--default-prm", "nope"], "--default-prm"),
    (["--request-timeout", "0"], "--request-timeout"),
])
def test_a_bad_configuration_stops_the_server_before_it_starts(
    argv: list[str], named: str
) -> None:
    result = subprocess.run([sys.executable, "-m", "ponder.server.cli", "serve", *argv],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert named in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("change", "named"), [
    (lambda p: p["bins"][0].pop("upper"), "'bins[0].upper' is missing"),
    (lambda p: p["bins"][0]["choices"].update({"8": "telepathy@8"}), "'bins[0].choices.8'"),
    (lambda p: p["verifiers"]["combined"].update(oracle=1.0), "'verifiers.combined.oracle'"),
])
def test_a_malformed_policy_stops_the_server_naming_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], named: str
) -> None:
    policy = json.loads(SHIPPED_POLICY.read_text())
    change(policy)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    result = subprocess.run([sys.executable, "-m", "ponder.server.cli", "serve",
                             "--policy", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert named in result.stderr and "Traceback" not in result.stderr


def test_options_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_PORT", "9100")
    monkeypatch.setenv("PONDER_DEFAULT_STRATEGY", "cot")
    assert _serve_args().port == 9100
    settings = _serve_args("--port", "9200", "--enforce-eager")
    assert settings.port == 9200 and settings.enforce_eager is True
    assert settings.default_strategy == "cot"


def test_prms_from_environment_and_repeated_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_PRM", "a=step-checker, b=self-judge")
    assert _serve_args().prm == ["a=step-checker", "b=self-judge"]
    assert _serve_args("--prm", "x=step-checker", "--prm", "y=self-judge").prm == [
        "x=step-checker", "y=self-judge"]


def test_bad_settings_exit_with_a_message() -> None:
    with pytest.raises(SystemExit) as caught:
        _serve_args("--port", "70000")
    assert "--port" in str(caught.value)


def test_served_name_defaults() -> None:
    assert Settings().model_name == "smollm2"
    assert Settings(model="/models/Qwen2.5-7B-Instruct/").model_name == "Qwen2.5-7B-Instruct"
    assert Settings(model="x", served_model_name="y").model_name == "y"


def test_empty_api_key_means_no_auth() -> None:
    assert Settings(api_key="").api_key is None


def test_top_level_help() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0


@pytest.mark.parametrize(("flags", "dtype"), [
    ("fpu sse avx2 fma", "float32"),
    ("fpu avx2 avx512f avx512_bf16", "bfloat16"),
    ("fpu avx2 amx_bf16 amx_tile", "bfloat16"),
])
def test_cpu_dtype_follows_native_bfloat16(tmp_path, flags: str, dtype: str) -> None:  # type: ignore[no-untyped-def]
    from ponder.server.hardware import fastest_cpu_dtype

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert fastest_cpu_dtype(str(cpuinfo)) == dtype
    assert fastest_cpu_dtype(str(tmp_path / "missing")) == "float32"


def test_help_states_the_defaults_the_code_applies() -> None:
    """Defaults that depend on the hardware or live in a table are written
    into the help from the code, never twice."""
    from ponder.server.effort import DEFAULT_PRESETS
    from ponder.server.hardware import CPU_BLOCK_SIZE, CPU_RUNNING_SAMPLES, REMOTE_RUNNING_SAMPLES

    out = " ".join(subprocess.run(
        [sys.executable, "-m", "ponder.server.cli", "serve", "--help"],
        capture_output=True, text=True, check=True).stdout.split())
    for level, preset in DEFAULT_PRESETS.items():
        assert f"{level} = {preset}" in out or f"{level} and" in out or f"{level}," in out
    assert f"high = {DEFAULT_PRESETS['high']}" in out
    assert f"default: {CPU_BLOCK_SIZE} on a CPU" in out
    assert f"{CPU_RUNNING_SAMPLES} on a CPU" in out
    assert f"{REMOTE_RUNNING_SAMPLES} for a remote engine" in out


def test_the_benchmarks_and_calibrate_say_one_thing_one_way() -> None:
    """The same flag for the same idea in every `ponder bench` command and
    `ponder calibrate`: --output for the file written, --problems for how
    many, --kv-cache-gb at ponder serve's default."""
    import argparse

    from ponder.bench.calibrate_cli import add_calibrate_command
    from ponder.bench.cli import add_bench_commands

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    add_bench_commands(commands)
    add_calibrate_command(commands)
    bench = commands.choices["bench"]._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    parsers = {f"bench {name}": p for name, p in bench.items()}
    parsers["calibrate"] = commands.choices["calibrate"]
    kv_default = CPU_KV_CACHE_GB  # what ponder serve takes on a CPU
    for name, command in parsers.items():
        options = {o: a for a in command._actions for o in a.option_strings}
        if name not in ("bench plot", "bench report"):
            assert "--output" in options, name
        assert "--out" not in options or options["--out"].help == argparse.SUPPRESS, name
        assert "--count" not in options or options["--count"].help == argparse.SUPPRESS, name
        assert "--requests" not in options, name
        if "--kv-cache-gb" in options:
            assert options["--kv-cache-gb"].default == kv_default, name
        assert "engine-slot" not in (command.description or "") + str(command.format_help())


def test_earlier_spellings_that_documented_commands_used_still_parse() -> None:
    import argparse

    from ponder.bench.calibrate_cli import add_calibrate_command
    from ponder.bench.cli import add_bench_commands

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    add_bench_commands(commands)
    add_calibrate_command(commands)
    assert parser.parse_args(["bench", "accuracy", "--count", "7"]).problems == 7
    assert parser.parse_args(["calibrate", "--out", "p.json"]).output == Path("p.json")
