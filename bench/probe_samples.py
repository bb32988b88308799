"""The samples a hidden-state probe is fit on, and their hidden states.

``ponder calibrate --probe`` asks the server for ``best_of_n@N`` of each
question (the combined verifier's parts with every candidate) and keeps
each sample's text, so the fit can read the served model's hidden states
at the end of each of its steps. The records are calibrate's own
(:class:`~ponder.bench.calibrate.Records`: one line per question, keyed
by model, resumable), under the run name ``probe-samples@N``.

The hidden states are read after every decoder layer at once with
``transformers`` (one forward pass per batch, on the served model's
directory): a pooling engine gives one layer, and the layer the probe
serves at is measured, not guessed. Each solution is rendered as the
probe's scorer renders it when serving (:class:`~ponder.prm.hidden_states.StepRenderer`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ponder.bench.calibrate import Question, Records, _stage, asker
from ponder.core.answers import answers_equivalent
from ponder.core.steps import StepSpec
from ponder.prm.hidden_states import StepRenderer

SAMPLES = 8
BATCH = 16
"""Solutions per forward pass when reading hidden states."""


RUN = "probe-samples"


def run_name(samples: int) -> str:
    return f"{RUN}@{samples}"


def interleaved(questions: Sequence[Question]) -> list[Question]:
    """The questions with their sources taking turns, so that a run stopped
    early has measured every source alike."""
    by_source: dict[str, list[Question]] = {}
    for question in questions:
        by_source.setdefault(question.source, []).append(question)
    longest = max((len(group) for group in by_source.values()), default=0)
    return [group[i] for i in range(longest) for group in by_source.values() if i < len(group)]


def _row(question: Question, samples: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"key": question.key, "run": run_name(samples), "answer": question.answer,
            "question": question.question, "source": question.source, "samples": [{
                "text": c["text"], "answer": c.get("answer"), "tokens": c["tokens"],
                "parts": c.get("verifiers") or {},
                "correct": c.get("answer") is not None and answers_equivalent(
                    c["answer"], question.answer),
            } for c in body["ponder"]["candidates"]]}


async def collect_samples(base_url: str, model: str, questions: Sequence[Question],
                          records: Records, *, samples: int = SAMPLES, concurrency: int = 4,
                          max_tokens: int = 160, api_key: str | None = None) -> float:
    """Every question's samples not yet in ``records``; returns the seconds spent."""
    started = time.perf_counter()
    async with asker(base_url, model, concurrency, max_tokens, api_key,
                     strategy=f"best_of_n@{samples}") as ask:
        await _stage(questions, run_name(samples), records, ask,
                     lambda q, body: _row(q, samples, body))
    return time.perf_counter() - started


@dataclass(frozen=True)
class StepRows:
    """One row per step of every sample: where it came from and its label."""

    question: np.ndarray
    """Index of the question (its key's position in the records)."""
    sample: np.ndarray
    depth: np.ndarray
    """1 for a sample's first step."""
    last: np.ndarray
    """The sample's last step (whose score best-of-N compares)."""
    label: np.ndarray
    """The sample's final answer is right."""
    features: dict[int, np.ndarray]
    """Per layer (1 = after the first decoder layer), rows x width."""


def solutions(rows: Sequence[dict[str, Any]], delimiter: str) -> Iterator[tuple[int, int, str,
                                                                               list[str]]]:
    """(question index, sample index, question, steps) of every sample with a step."""
    spec = StepSpec(delimiter)
    for q_index, row in enumerate(rows):
        for s_index, sample in enumerate(row["samples"]):
            steps = spec.split(sample["text"])
            if steps:
                yield q_index, s_index, row["question"], steps


def read_hidden_states(model_dir: Path, rows: Sequence[dict[str, Any]], delimiter: str,
                       layers: Sequence[int], dtype: str = "float32") -> StepRows:
    """Every step's hidden state after each of ``layers``, in one forward
    pass per :data:`BATCH` solutions (on one CPU core: a few minutes for a
    few thousand samples of a 135M model), as a pooling engine over the
    model cut after that layer gives it: through the model's final norm."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))  # not the machine's cores: the slot's
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
    model.eval()
    last = model.config.num_hidden_layers
    final_norm = model.base_model.norm
    renderer = StepRenderer(tokenizer)
    items = [(q, s, renderer.render(question, steps))
             for q, s, question, steps in solutions(rows, delimiter)]
    items.sort(key=lambda item: len(item[2].token_ids))
    meta: list[tuple[int, int, int, bool, bool]] = []
    features: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in tqdm(range(0, len(items), BATCH), desc="hidden states", unit="batch"):
            batch = items[start:start + BATCH]
            width = max(len(r.token_ids) for _, _, r in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for index, (_, _, rendered) in enumerate(batch):
                ids[index, :len(rendered.token_ids)] = torch.tensor(rendered.token_ids)
                mask[index, :len(rendered.token_ids)] = 1
            hidden = model(input_ids=ids, attention_mask=mask,
                           output_hidden_states=True).hidden_states
            for index, (q, s, rendered) in enumerate(batch):
                correct = bool(rows[q]["samples"][s]["correct"])
                for depth, _ in enumerate(rendered.step_ends, start=1):
                    meta.append((q, s, depth, depth == len(rendered.step_ends), correct))
                for layer in layers:
                    state = hidden[layer][index, rendered.step_ends]
                    if layer < last:  # transformers gives the last layer normed already
                        state = final_norm(state)
                    features[layer].append(state.float().numpy())
    columns = list(zip(*meta)) if meta else [[]] * 5
    return StepRows(np.asarray(columns[0], dtype=int), np.asarray(columns[1], dtype=int),
                    np.asarray(columns[2], dtype=int), np.asarray(columns[3], dtype=bool),
                    np.asarray(columns[4], dtype=bool),
                    {layer: np.concatenate(parts) for layer, parts in features.items()})

