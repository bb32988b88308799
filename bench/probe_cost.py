"""What the hidden-state probe adds to best-of-N's wall time: best_of_n@N
scored by the step checker (free) and by the probe, on the same questions
and seeds, alternating, one request at a time, after one request that
starts the probe's engine. Run on one core:
``python -m ponder.bench.probe_cost OUT.json [QUESTIONS]``."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import httpx

from ponder.bench.problems import generated
from ponder.bench.servers import free_port, launched, ponder_command
from ponder.server.embedded_model import embedded_model_dir

SAMPLES = 8
PRMS = ("step-checker", "probe")


def main() -> None:
    out, count = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 16
    problems = generated("two-op", count, seed=77)
    port = free_port()
    command = ponder_command(port, str(embedded_model_dir()), "smollm2", 2.0)
    with launched("ponder", command, port, "smollm2") as server, \
            httpx.Client(base_url=server.base_url, timeout=600) as client:
        def ask(question: str, prm: str, seed: int) -> float:
            started = time.perf_counter()
            response = client.post("/v1/chat/completions", json={
                "model": "smollm2", "messages": [{"role": "user", "content": question}],
                "max_tokens": 160, "temperature": 0.7, "seed": seed,
                "strategy": {"name": "best_of_n", "n": SAMPLES, "prm": prm}})
            response.raise_for_status()
            return time.perf_counter() - started

        ask(problems[0].question, "probe", 0)  # starts the probe's engine
        seconds: dict[str, list[float]] = {prm: [] for prm in PRMS}
        for index, problem in enumerate(problems):
            order = PRMS if index % 2 == 0 else PRMS[::-1]
            for prm in order:
                seconds[prm].append(ask(problem.question, prm, 1000 + index))
    ratios = [p / c for p, c in zip(seconds["probe"], seconds["step-checker"])]
    result = {"command": f"python -m ponder.bench.probe_cost {out} {count} (one core)",
              "questions": count, "samples": SAMPLES,
              "median_seconds": {prm: round(statistics.median(s), 3) for prm, s in seconds.items()},
              "total_seconds": {prm: round(sum(s), 2) for prm, s in seconds.items()},
              "median_ratio_probe_over_checker": round(statistics.median(ratios), 3),
              "total_ratio": round(sum(seconds["probe"]) / sum(seconds["step-checker"]), 3)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
