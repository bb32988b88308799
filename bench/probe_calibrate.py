"""``ponder calibrate --probe``: fit the hidden-state probe on the user's
questions and say, on questions it never saw, whether it works.

Each step of each recorded sample is a row: the served model's hidden state
at the step's end (after each of a few decoder layers), labelled by whether
the sample's final answer was right. Questions are split between training
and held out. On the held-out questions the report gives the probe's ROC-AUC
by layer and by step depth with the step checker's beside it, its
calibration, and best-of-N@N with the probe against pass@N, the step
checker, the combined verifier and the combined verifier with the probe in
it, replayed over the recorded samples, per data source.

The layer served is chosen on the fitting questions (the logistic probe
that validates best), so the choice is a measurement; serving reads it from
a pooling engine over the model cut after that layer, whose final norm
applies to it, so every layer is read here as that engine gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ponder.bench.calibrate_fit import COMBINED_PARTS, Outcome, _row, best_of, pass_at, vote
from ponder.bench.probe_fit import (
    FittedProbe,
    calibration,
    fit_probe,
    roc_auc,
    split_groups,
)
from ponder.bench.probe_samples import StepRows, read_hidden_states
from ponder.core.fingerprint import ModelIdentity
from ponder.core.scoring import Solution
from ponder.core.steps import StepSpec
from ponder.prm.combination import Weights, fit_with_labels
from ponder.prm.probe_file import ProbeFile, ProbeWeights
from ponder.prm.step_checker import StepChecker

KINDS = ("logistic", "network")
DEPTHS = (1, 2, 3)
"""Step depths reported apart; the last gathers every deeper step too."""


def layers_to_read(num_layers: int) -> list[int]:
    """About five layers spread from a fifth of the way in to the last."""
    picks = {max(1, round(num_layers * share)) for share in (0.2, 0.4, 0.6, 0.8)}
    return sorted(picks | {num_layers})


def served_layer_of(fits: dict[int, FittedProbe]) -> int:
    """The layer whose logistic probe validated best on the training
    questions; a tie at three decimals goes to the shallower layer, whose
    pooling engine runs fewer layers (serving reads layer L from the model
    cut after L layers)."""
    return min(fits, key=lambda layer: (round(fits[layer].validation_log_loss, 3), layer))


@dataclass(frozen=True)
class ProbeFit:
    probe: ProbeFile
    report: dict[str, Any]


def checker_prefix_scores(rows: Sequence[dict[str, Any]], steps: StepRows,
                          delimiter: str) -> np.ndarray:
    """The step checker's score of each row's prefix: the minimum of its
    steps' levels so far (how a search weighs a line by it), the answer
    judged at the last step."""
    spec, checker = StepSpec(delimiter), StepChecker()
    cache: dict[tuple[int, int], list[float]] = {}
    out = np.empty(len(steps.label))
    for index, (q, s, depth) in enumerate(zip(steps.question, steps.sample, steps.depth)):
        if (q, s) not in cache:
            sample = rows[q]["samples"][s]
            solution = Solution(tuple(spec.split(sample["text"])), answer=sample["answer"])
            levels = checker._score(rows[q]["question"], [solution]).scores[0]
            cache[q, s] = list(np.minimum.accumulate(levels))
        out[index] = cache[q, s][depth - 1]
    return out


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    value = roc_auc(scores, labels)
    return None if value is None else round(value, 3)


def within_question_auc(scores: np.ndarray, steps: StepRows, mask: np.ndarray
                        ) -> dict[str, Any]:
    """The ROC-AUC among one question's samples (their last steps), averaged
    over the questions that have right and wrong samples: what best-of-N
    needs. A pooled AUC also rewards telling easy questions from hard ones,
    which ranks no candidate of one question above another."""
    aucs = []
    for question in np.unique(steps.question[mask]):
        inside = mask & steps.last & (steps.question == question)
        value = roc_auc(scores[inside], steps.label[inside])
        if value is not None:
            aucs.append(value)
    return {"auc": round(float(np.mean(aucs)), 3) if aucs else None, "questions": len(aucs)}


def _by_depth(scores: np.ndarray, steps: StepRows, mask: np.ndarray) -> dict[str, Any]:
    table = {}
    for depth in DEPTHS:
        inside = mask & ((steps.depth == depth) if depth < DEPTHS[-1]
                         else (steps.depth >= depth))
        name = str(depth) if depth < DEPTHS[-1] else f"{depth}+"
        table[name] = {"auc": _auc(scores[inside], steps.label[inside]),
                       "rows": int(inside.sum())}
    table["last"] = {"auc": _auc(scores[mask & steps.last], steps.label[mask & steps.last]),
                     "rows": int((mask & steps.last).sum())}
    return table


def _sample_scores(scores: np.ndarray, steps: StepRows, rows: Sequence[dict[str, Any]]
                   ) -> list[list[float]]:
    """Each sample's last step's score (0 for a sample without a step)."""
    out = [[0.0] * len(row["samples"]) for row in rows]
    for index in np.flatnonzero(steps.last):
        out[steps.question[index]][steps.sample[index]] = float(scores[index])
    return out


def _with_probe(rows: Sequence[dict[str, Any]], probe: list[list[float]]
                ) -> list[list[dict[str, Any]]]:
    return [[{**s, "parts": {**s["parts"], "probe": p}} for s, p in zip(row["samples"], ps)]
            for row, ps in zip(rows, probe)]


def selection_table(rows: Sequence[dict[str, Any]], samples: list[list[dict[str, Any]]],
                    questions: Sequence[int], verifiers: dict[str, Weights], n: int
                    ) -> list[dict[str, Any]]:
    """best_of_n@n under each verifier, the vote and pass@n, on ``questions``."""
    firsts = [samples[q][:n] for q in questions]
    table = [_row(f"bon[{name}]@{n}", [best_of(s, w.score, w.names) for s in firsts])
             for name, w in verifiers.items()]
    table.append(_row(f"self_consistency@{n}", [vote(s) for s in firsts]))
    table.append(_row(f"pass@{n}", [pass_at(s) for s in firsts]))
    return table


def paired_difference(a: Sequence[Outcome], b: Sequence[Outcome]) -> dict[str, float]:
    """Mean of a - b (right = 1) over paired questions, with a normal 95%
    interval of the paired differences."""
    diffs = np.array([float(x.correct) - float(y.correct) for x, y in zip(a, b)])
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {"difference": round(float(diffs.mean()), 4),
            "ci95": [round(float(diffs.mean() - half), 4), round(float(diffs.mean() + half), 4)],
            "questions": len(diffs)}


def fit_and_report(rows: Sequence[dict[str, Any]], model_dir: Path, model: ModelIdentity,
                   *, delimiter: str, held_out_share: float, seed: int, samples: int,
                   command: str, dtype: str = "float32") -> ProbeFit:
    import json

    num_layers = json.loads((model_dir / "config.json").read_text())["num_hidden_layers"]
    layers = layers_to_read(num_layers)
    steps = read_hidden_states(model_dir, rows, delimiter, layers, dtype)
    held = split_groups(steps.question, held_out_share, seed)
    train = ~held
    held_questions = sorted(set(steps.question[held].tolist()))
    train_questions = sorted(set(steps.question[train].tolist()))
    checker = checker_prefix_scores(rows, steps, delimiter)

    by_layer, logistic = {}, {}
    for layer in layers:
        x = steps.features[layer]
        logistic[layer] = fit_probe(x[train], steps.label[train], steps.question[train],
                                    "logistic", seed)
        scores = logistic[layer].weights.probability(x)
        by_layer[str(layer)] = {"auc": _auc(scores[held], steps.label[held]),
                                "l2": logistic[layer].l2,
                                "validation_log_loss":
                                    round(logistic[layer].validation_log_loss, 4),
                                "by_depth": _by_depth(scores, steps, held),
                                "within_question": within_question_auc(scores, steps, held)}
    served_layer = served_layer_of(logistic)
    x = steps.features[served_layer]
    # The kind, like the layer, is chosen on the training questions alone.
    fits = {"logistic": logistic[served_layer],
            "network": fit_probe(x[train], steps.label[train], steps.question[train],
                                 "network", seed)}
    kinds = {kind: {"auc": _auc(fit.weights.probability(x[held]), steps.label[held]),
                    "l2": fit.l2, "validation_log_loss": round(fit.validation_log_loss, 4)}
             for kind, fit in fits.items()}
    kind = min(KINDS, key=lambda k: fits[k].validation_log_loss)
    chosen: ProbeWeights = fits[kind].weights
    probabilities = chosen.probability(x)
    ece, bins = calibration(probabilities[held], steps.label[held])

    probe_scores = _sample_scores(probabilities, steps, rows)
    with_probe = _with_probe(rows, probe_scores)
    train_samples = [s for q in train_questions for s in with_probe[q][:samples]]
    names = list(COMBINED_PARTS)

    def feature_rows(names: Sequence[str]) -> list[list[float]]:
        from ponder.bench.calibrate_fit import rows as part_rows

        return [r for q in train_questions for r in part_rows(with_probe[q][:samples], names)]

    labels = [s["correct"] for s in train_samples]
    combined = fit_with_labels(names, feature_rows(names), labels)
    combined_probe = fit_with_labels([*names, "probe"], feature_rows([*names, "probe"]), labels)
    verifiers = {"probe": Weights(("probe",), (1.0,)),
                 "step-checker": Weights(("step-checker",), (1.0,)),
                 "combined": combined, "combined+probe": combined_probe}
    sources = sorted({rows[q]["source"] for q in held_questions})
    selection = {"all": selection_table(rows, with_probe, held_questions, verifiers, samples)}
    paired = {}
    for source in sources:
        mine = [q for q in held_questions if rows[q]["source"] == source]
        selection[source] = selection_table(rows, with_probe, mine, verifiers, samples)
        outcomes = {name: [best_of(with_probe[q][:samples], w.score, w.names) for q in mine]
                    for name, w in verifiers.items()}
        paired[source] = {
            "probe - step-checker": paired_difference(outcomes["probe"],
                                                      outcomes["step-checker"]),
            "combined+probe - probe": paired_difference(outcomes["combined+probe"],
                                                        outcomes["probe"]),
            "combined+probe - combined": paired_difference(outcomes["combined+probe"],
                                                           outcomes["combined"])}
    report = {
        "command": command, "samples": samples, "delimiter": delimiter,
        "train_questions": len(train_questions), "held_out_questions": len(held_questions),
        "train_steps": int(train.sum()), "held_out_steps": int(held.sum()),
        "right_share_held_out_steps": round(float(steps.label[held].mean()), 4),
        "served": {"layer": served_layer, "kind": kind, "kinds": kinds},
        "auc_by_layer": by_layer,
        "step_checker": {"auc": _auc(checker[held], steps.label[held]),
                         "by_depth": _by_depth(checker, steps, held),
                         "within_question": within_question_auc(checker, steps, held)},
        "calibration": {"ece": round(ece, 4), "bins": bins},
        "combined+probe weights": {"bias": round(combined_probe.bias, 4),
                                   **{n: round(w, 4) for n, w in zip(combined_probe.names,
                                                                      combined_probe.weights)}},
        "selection": selection, "paired": paired,
    }
    probe = ProbeFile(model, served_layer, "step-end", chosen, report)
    return ProbeFit(probe, report)


def print_report(report: dict[str, Any]) -> None:
    print(f"held out: {report['held_out_questions']} questions, {report['held_out_steps']} "
          f"steps ({report['right_share_held_out_steps']:.0%} of them on right lines)")
    print(f"{'layer':>6}{'AUC':>8}{'depth 1':>9}{'depth 2':>9}{'depth 3+':>10}{'last':>7}"
          f"{'within a question':>19}")
    rows = [*report["auc_by_layer"].items(), ("checker", report["step_checker"])]
    for name, entry in rows:
        cells = [entry["by_depth"][d]["auc"] for d in ("1", "2", "3+", "last")]
        print(f"{name:>6}{entry['auc']!s:>8}" + "".join(f"{c!s:>9}" for c in cells)
              + f"{entry['within_question']['auc']!s:>19}")
    served = report["served"]
    print(f"served: layer {served['layer']}, {served['kind']}; calibration error "
          f"{report['calibration']['ece']}")
    for source, table in report["selection"].items():
        print(f"-- {source}")
        for row in table:
            print(f"  {row['run']:28}{row['accuracy']:>8.3f}  {row['ci95']}  "
                  f"{row['questions']} questions")

