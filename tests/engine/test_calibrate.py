"""``ponder calibrate`` against the real server on a few generated
questions and a tiny grid: it writes a policy the server can load, and a
second run continues from the first's records instead of asking again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from ponder.core.policy import load_policy
from ponder.strategies.registry import policy_strategies

from .conftest import Server


def _calibrate(server: Server, work: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ponder.server.cli", "calibrate", "--url", server.base_url,
         "--api-key", server.api_key, "--data", "gen:one-op:6:3", "--output", str(out),
         "--work", str(work), "--grid", "particle_filtering@4", "--max-tokens", "48"],
        capture_output=True, text=True, timeout=1200, check=True)


def test_calibrate_writes_a_policy_the_server_loads(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    first = _calibrate(server, tmp_path / "work", out)
    policy = load_policy(out, policy_strategies())
    assert policy.bins[-1].upper == 1.0 and policy.probe.samples == 4
    served = httpx.get(f"{server.base_url}/v1/strategies", headers=server.headers()).json()["model"]
    assert policy.model.fingerprint == served["fingerprint"]  # fit on the model served
    assert set(policy.verifiers) == {"combined", "reward-free"}
    assert "step-checker" in policy.verifiers["combined"]
    report = json.loads(out.read_text())["report"]
    runs = {row["run"] for row in report["table"]}
    assert {"auto@16", "best_of_n@16", "particle_filtering@4", "pass@8"} <= runs
    assert out.with_suffix(".png").stat().st_size > 0 and "tokens/s" in first.stdout
    records = (tmp_path / "work" / "records.jsonl").read_text().splitlines()
    assert len(records) == 12  # 6 questions x (samples, particle_filtering@4)
    again = _calibrate(server, tmp_path / "work", out)
    assert "resumed" in again.stdout
    assert len((tmp_path / "work" / "records.jsonl").read_text().splitlines()) == 12
