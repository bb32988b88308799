"""``ponder calibrate``: measure strategies and verifiers on the user's own
questions, then fit the policy ``auto`` and the combined verifiers follow.

What it asks the server, per question (temperature 0.7, the server's
defaults for everything a new user would not set):

* ``samples@16``: one best-of-N request of 16 whole samples scored by the
  combined verifier, with every candidate's answer, tokens and verifier
  parts. The first 4 are the probe; the first n give the vote and
  best-of-N at every n <= 16 offline, with any weights, at no further cost.
* each run in the grid (``particle_filtering@16`` by default): its
  answer and tokens, as ``auto`` would run it
  (:func:`~ponder.strategies.registry.choice_config`). A grid may name
  the cheaper ways to the same answer too, with their options as a policy
  names them: ``self_consistency@16?first=4`` (short-m@k),
  ``best_of_n@16?prune_every=32&prune_keep=0.5`` (speculative rejection).

Results are appended per question and run to ``records.jsonl`` in the work
directory, each with the model it was measured on, so a stopped run
continues where it stopped and a run on another model refuses to mix its
measurements in. The fit is in :mod:`ponder.bench.calibrate_fit`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

import httpx
from tqdm import tqdm

from ponder.bench.problems import LEVELS, Problem, from_jsonl, generated
from ponder.core.answers import answers_equivalent
from ponder.core.fingerprint import ModelIdentity, identity_from_json
from ponder.core.policy import parse_choice
from ponder.strategies.registry import choice_config, policy_strategies

logger = logging.getLogger(__name__)
SAMPLES = "samples@16"
PROBE = 4
TEMPERATURE = 0.7
DEFAULT_GRID = ("particle_filtering@16",)
"""What ``auto`` escalates to at the largest budget: the samples give every
vote and best-of-N; one search fits 200 questions in an hour on 2 cores."""
FULL_GRID = tuple(f"{name}@{n}" for name in ("beam_search", "dvts", "particle_filtering")
                  for n in (4, 8, 16))
SEARCH_COST = {"beam_search": 1.8, "dvts": 1.3, "particle_filtering": 1.1}
"""Tokens a search draws per continuation, over a whole sample's (README:
search at the model's edge; particle filtering's one step per particle).
A vote or best-of-N costs at most its whole samples (1.0)."""


@dataclass(frozen=True)
class Question:
    key: str
    question: str
    answer: str
    source: str = ""
    """The ``--data`` spec it came from, for a report per source."""


def load_questions(specs: Sequence[str]) -> list[Question]:
    """Each spec is a JSONL file of ``{question, answer}`` (GSM8K's too), a
    ``FILE:COUNT`` slice of one, or ``gen:LEVEL:COUNT:SEED`` (bench's seeded
    generated sets)."""
    problems: list[tuple[str, Problem]] = []
    for spec in specs:
        if spec.startswith("gen:"):
            _, level, count, seed = spec.split(":")
            if level not in LEVELS:
                raise ValueError(f"{spec}: level must be one of {', '.join(LEVELS)}")
            problems += [(spec, p) for p in generated(level, int(count),  # type: ignore[arg-type]
                                                      seed=int(seed))]
        else:
            path, _, count = spec.partition(":")
            problems += [(spec, p) for p in from_jsonl(Path(path), int(count) if count else None)]
    return [Question(hashlib.sha1(p.question.encode()).hexdigest()[:12], p.question, p.answer,
                     source) for source, p in problems]


class RecordsError(ValueError):
    """Records that cannot be continued: another model's, or unreadable."""


class Records:
    """What was measured on one model, one JSON line per question and run,
    appended as it arrives (a stopped run loses at most the requests in
    flight). A line cut off by a killed run is dropped, with a warning."""

    def __init__(self, path: Path, model: ModelIdentity) -> None:
        self.path = path
        self.model = model
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        if path.exists():
            self._read()

    @staticmethod
    def model_of(path: Path) -> ModelIdentity:
        """The model the records at ``path`` were measured on."""
        try:
            first = json.loads(path.read_text().splitlines()[0])
            return identity_from_json(first.get("model"), "model")
        except (OSError, IndexError, ValueError) as error:
            raise RecordsError(f"{path}: no measurements to fit from ({error})") from error

    def _read(self) -> None:
        lines = self.path.read_text().splitlines(keepends=True)
        kept = 0
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError as error:
                if number < len(lines):
                    raise RecordsError(f"{self.path}: line {number} is not JSON ({error})"
                                       ) from error
                logger.warning("%s: its last line was cut off (a stopped run); dropped",
                               self.path)
                self.path.write_text("".join(lines[:kept]))
                return
            kept = number
            if row is None:
                continue
            measured = row.get("model", {}).get("fingerprint")
            if measured != self.model.fingerprint:
                raise RecordsError(
                    f"{self.path} holds measurements of model {row.get('model')}; this "
                    f"server serves {self.model.as_json()}. Give each model its own --work "
                    "folder.")
            self.done[row["key"], row["run"]] = row

    def add(self, row: dict[str, Any]) -> None:
        row = {**row, "model": self.model.as_json()}
        self.done[row["key"], row["run"]] = row
        with self.path.open("a") as out:
            out.write(json.dumps(row) + "\n")


def grid_runs(texts: Sequence[str]) -> list[str]:
    """The grid's runs as the policy will name them (the records are keyed
    by these names), each checked before any is measured: a typo found
    after the hour of sampling would cost the hour. A ValueError says
    what does not fit."""
    table = policy_strategies()
    runs = []
    for text in texts:
        choice = parse_choice(text.strip(), table)
        choice_config(choice, {"prm": "combined"})
        runs.append(str(choice))
    return runs


def request_body(model: str, question: Question, run: str, seed: int,
                 max_tokens: int) -> dict[str, Any]:
    choice = parse_choice("best_of_n@16" if run == SAMPLES else run, policy_strategies())
    config = choice_config(choice, {"prm": "combined"})
    strategy = {"name": config.model_dump()["name"], **config.model_dump(exclude_unset=True)}
    return {"model": model, "messages": [{"role": "user", "content": question.question}],
            "max_tokens": max_tokens, "temperature": TEMPERATURE, "seed": seed,
            "include_candidates": True, "strategy": strategy}


def _samples_row(question: Question, body: dict[str, Any]) -> dict[str, Any]:
    samples = [{
        "answer": c.get("answer"), "tokens": c["tokens"], "parts": c.get("verifiers") or {},
        "correct": c.get("answer") is not None and answers_equivalent(c["answer"],
                                                                      question.answer),
    } for c in body["ponder"]["candidates"]]
    return {"key": question.key, "run": SAMPLES, "answer": question.answer, "samples": samples}


def _search_row(question: Question, run: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = body["ponder"].get("answer")
    return {"key": question.key, "run": run, "answer": answer,
            "tokens": body["usage"]["completion_tokens"],
            "correct": answer is not None and answers_equivalent(answer, question.answer)}


async def collect(base_url: str, model: str, questions: Sequence[Question],
                  grid: Sequence[str], records: Records, concurrency: int, max_tokens: int,
                  api_key: str | None = None) -> float:
    """Every measurement not yet in ``records``; returns the seconds spent."""
    started = time.perf_counter()
    async with asker(base_url, model, concurrency, max_tokens, api_key) as ask:
        head = questions[:max(1, min(8, len(questions)))]  # the token rate, measured first
        tokens = await _stage(head, SAMPLES, records, ask, _samples_row)
        _print_estimate(questions, grid, records, tokens, time.perf_counter() - started)
        await _stage(questions, SAMPLES, records, ask, _samples_row)
        for run in grid:
            await _stage(questions, run, records, ask,
                         lambda q, body, run=run: _search_row(q, run, body))
    return time.perf_counter() - started


Ask = Callable[[Question, str, int], Awaitable[dict[str, Any]]]
"""(question, run, seed) -> the server's answer to that run on the question."""


@asynccontextmanager
async def asker(base_url: str, model: str, concurrency: int, max_tokens: int,
                api_key: str | None = None, *, strategy: str | None = None
                ) -> AsyncIterator[Ask]:
    """One client for a calibration's requests, at most ``concurrency`` at a
    time. Each asks for its run as the policy names it, or for ``strategy``
    where the records name the run otherwise (the probe's samples)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(1800),
                                 headers=headers) as client:
        gate = asyncio.Semaphore(concurrency)

        async def ask(question: Question, run: str, seed: int) -> dict[str, Any]:
            async with gate:
                response = await client.post("/v1/chat/completions", json=request_body(
                    model, question, strategy or run, seed, max_tokens))
                response.raise_for_status()
                return response.json()

        yield ask


async def _stage(questions: Sequence[Question], run: str, records: Records, ask: Ask,
                 row_of: Any) -> int:
    """Asks for what is not yet recorded; returns the tokens it generated."""
    todo = [(i, q) for i, q in enumerate(questions) if (q.key, run) not in records.done]
    bar = tqdm(total=len(questions), initial=len(questions) - len(todo), desc=run,
               unit="question")
    generated = 0

    async def one(seed: int, question: Question) -> None:
        nonlocal generated
        body = await ask(question, run, seed)
        generated += body["usage"]["completion_tokens"]
        records.add(row_of(question, body))
        bar.update()

    await asyncio.gather(*(one(seed, q) for seed, q in todo))
    bar.close()
    return generated


def _print_estimate(questions: Sequence[Question], grid: Sequence[str], records: Records,
                    tokens: int, seconds: float) -> None:
    """How long the run and the full grid will take, from the first
    questions' token rate (a search's tokens over a sample's: SEARCH_COST).
    A resumed run that generated nothing yet has no rate to go by."""
    rows = [records.done[q.key, SAMPLES] for q in questions if (q.key, SAMPLES) in records.done]
    per_sample = fmean(s["tokens"] for r in rows for s in r["samples"])
    if tokens == 0:
        print("resumed: the first questions were already measured; no rate to estimate from",
              flush=True)
        return
    rate = tokens / seconds
    samples_tokens = 16 * per_sample * len(questions)

    def minutes(runs: Sequence[str]) -> float:
        choices = [parse_choice(run, policy_strategies()) for run in runs]
        samples = sum(SEARCH_COST.get(c.strategy, 1.0) * c.size for c in choices)
        return (samples_tokens + samples * per_sample * len(questions)) / rate / 60

    print(f"{per_sample:.0f} tokens a sample at {rate:.0f} tokens/s: samples and "
          f"{', '.join(grid)} on {len(questions)} questions take about {minutes(grid):.0f} "
          f"min; the full grid (beam_search, dvts, particle_filtering at 4, 8 and 16) would "
          f"take about {minutes(FULL_GRID):.0f} min.", flush=True)
