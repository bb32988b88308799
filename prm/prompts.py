"""Input formats of published PRMs, shared by the in-process and remote
clients (this module imports no engine)."""

from __future__ import annotations

from collections.abc import Sequence

QWEN_STEP_TAG = "<extra_0>"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def qwen_prm_messages(question: str, steps: Sequence[str], tag: str) -> list[dict[str, str]]:
    """Qwen2.5-Math-PRM's conversation, as its model card builds it: the
    answer is the steps, each followed by the step tag, where the model
    reads off one score per step. A tag inside a step, or in the question a
    client sent, would add a score, so it is removed."""
    answer = "".join(step.replace(tag, "") + tag for step in steps)
    return [
        {"role": "system", "content": QWEN_SYSTEM},
        {"role": "user", "content": question.replace(tag, "")},
        {"role": "assistant", "content": answer},
    ]
