"""What a pruning checkpoint can read, measured offline on samples already
drawn and judged: ``ponder calibrate``'s records with their texts (the
probe's ``--work``), each sample cut at ``t`` tokens the way speculative
rejection cuts it (``strategies/pruning.py``) and scored by the step
checker with its default ``min``.

Pruning pays only if the partial score tells right samples from wrong ones
before they end. For each ``t`` this says how many of each the checker
flags (scores below 1), and how often keeping the best half of a
question's samples still keeps a right one, beside keeping a random half
(both exact expectations: a tie at the cut is broken at random). A sample
shorter than ``t`` is read whole and ranked with the rest, where a real
checkpoint would keep it (it has finished): this measures the checker's
signal, not a pruning run. No model runs: the tokenizer cuts, the checker
reads.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any

from ponder.core.steps import DEFAULT_STEPS
from ponder.prm.step_checker import grade
from ponder.strategies.pruning import settled_end

CUTS = (16, 32, 48, 64)


@dataclass(frozen=True)
class Judged:
    text: str
    right: bool


def load(records: Path) -> dict[str, list[tuple[str, list[Judged]]]]:
    """Questions with their judged samples, by source level (``one-op``,
    ``two-op``, ``gsm8k``)."""
    levels: dict[str, list[tuple[str, list[Judged]]]] = {}
    for line in records.read_text().splitlines():
        row = json.loads(line)
        if "samples" not in row or "question" not in row:
            continue
        source = row.get("source", "")
        level = next((name for name in ("one-op", "two-op") if name in source), "gsm8k")
        samples = [Judged(s["text"], bool(s["correct"])) for s in row["samples"]]
        levels.setdefault(level, []).append((row["question"], samples))
    return levels


def keeps_a_right_one(scores: Sequence[float], right: Sequence[bool], keep: int) -> float:
    """The chance that the ``keep`` best-scored samples hold a right one,
    ties at the cut broken at random."""
    ordered = sorted(set(scores), reverse=True)
    above = 0
    for score in ordered:
        group = [r for s, r in zip(scores, right) if s == score]
        if above + len(group) <= keep:
            if any(group):
                return 1.0
            above += len(group)
            continue
        drawn, right_in_group = keep - above, sum(group)
        return 1 - comb(len(group) - right_in_group, drawn) / comb(len(group), drawn)
    return 0.0


def partial_score(tokenizer: Any, question: str, text: str, ids: Sequence[int],
                  tokens: int) -> float:
    """``text`` (whose token ids are ``ids``) as a checkpoint at ``tokens``
    scores it."""
    if len(ids) > tokens:
        text = tokenizer.decode(ids[:tokens])
        text = text[:settled_end(text, len(text))]
    steps = DEFAULT_STEPS.split(text)
    return min((level.score for level in grade(question, steps)), default=1.0)


def measure(levels: dict[str, list[tuple[str, list[Judged]]]], tokenizer: Any,
            cuts: Sequence[int] = CUTS) -> list[dict[str, Any]]:
    rows = []
    encoded = functools.cache(lambda text: tokenizer.encode(text, add_special_tokens=False))
    for level, questions in sorted(levels.items()):
        for tokens in cuts:
            kept, random_kept, flagged = 0.0, 0.0, {True: [0, 0], False: [0, 0]}
            for question, samples in questions:
                scores = [partial_score(tokenizer, question, s.text, encoded(s.text), tokens)
                          for s in samples]
                right = [s.right for s in samples]
                half = len(samples) // 2
                kept += keeps_a_right_one(scores, right, half)
                random_kept += keeps_a_right_one([0.0] * len(samples), right, half)
                for score, is_right in zip(scores, right):
                    flagged[is_right][0] += score < 1
                    flagged[is_right][1] += 1
            count = len(questions)
            rows.append({
                "level": level, "tokens": tokens, "questions": count,
                "samples_per_question": len(questions[0][1]),
                "pass_at_n": round(sum(any(s.right for s in q[1]) for q in questions) / count, 4),
                "right_flagged": round(flagged[True][0] / max(flagged[True][1], 1), 4),
                "wrong_flagged": round(flagged[False][0] / max(flagged[False][1], 1), 4),
                "best_half_keeps_right": round(kept / count, 4),
                "random_half_keeps_right": round(random_kept / count, 4),
            })
    return rows


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(f"{'level':8} {'t':>4} {'right flagged':>14} {'wrong flagged':>14} "
          f"{'best half':>10} {'random half':>12} {'pass@n':>7}")
    for row in rows:
        print(f"{row['level']:8} {row['tokens']:>4} {row['right_flagged']:>14.0%} "
              f"{row['wrong_flagged']:>14.0%} {row['best_half_keeps_right']:>10.1%} "
              f"{row['random_half_keeps_right']:>12.1%} {row['pass_at_n']:>7.1%}")


def _run(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    from ponder.bench.provenance import write_result
    from ponder.server.embedded_model import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(args.model or str(embedded_model_dir()))
    rows = measure(load(args.records), tokenizer)
    write_result(args.output, {"records": str(args.records), "rows": rows})
    print_table(rows)
    print(f"wrote {args.output}")


def add_prune_signal_command(kinds: Any) -> None:
    command = kinds.add_parser(
        "prune-signal", help="offline, on judged samples with their texts: how well the step "
        "checker tells right from wrong samples cut at 16..64 tokens, as pruning checkpoints "
        "read them (no model runs).")
    command.add_argument("--records", type=Path, default=Path("bench/results/probe/records.jsonl"),
                         help="`ponder calibrate --probe-only --work` records "
                         "(default: %(default)s)")
    command.add_argument("--model", help="whose tokenizer cuts the samples "
                         "(default: the embedded model)")
    command.add_argument("--output", type=Path,
                         default=Path("bench/results/cheaper/prune-signal.json"),
                         help="the JSON result file (default: %(default)s)")
    command.set_defaults(handler=_run)
