"""The ``prompt`` option shared by every sampling strategy.

``cot`` adds a chain-of-thought instruction that ends in a final-answer
marker, so the answer can be cut out of the sample; ``direct`` sends the
messages as they came, which is what natively thinking models (and very small
models, whose written-out steps are mostly wrong) do best with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from ponder.core.generation import Prompt, RequestRejected, message_text
from ponder.strategies.base import Task
from ponder.strategies.early_exit import AnswerCues, Cue
from ponder.strategies.reasoning import MarkerSplitter, NoReasoning, ReasoningSplitter

PromptStyle = Literal["cot", "direct"]

ANSWER_MARKER = "Answer:"
COT_INSTRUCTION = (
    "Think step by step, then give the final answer on its own line after "
    f"'{ANSWER_MARKER}'."
)


PLAIN_CUE = "\nThe final answer is"
"""What an early-exit probe appends after messages sent as they are."""


def answer_cues(encode: Callable[[str], Sequence[int]], thinking_close: str | None) -> AnswerCues:
    """The cues a probe asks a chain for its answer with, in the served
    model's token ids: each prompt style's own way to the answer, or the end
    of thinking for a model that thinks in tags."""

    def cue(text: str) -> Cue:
        return Cue(text, tuple(encode(text)))

    return AnswerCues(cue(f"\n{ANSWER_MARKER}"), cue(PLAIN_CUE),
                      None if thinking_close is None else cue(thinking_close))


def chosen_style(style: PromptStyle, task: Task, explicit: bool, param: str) -> PromptStyle:
    """The prompt a run sends. When the answer is JSON or a tool call, the
    messages go as sent unless the CoT prompt is asked for by name: a model
    calls tools in the format it was trained to, not after an answer marker.
    Constrained output (JSON, a forced call) is all answer and leaves no room
    for a trace at all, so asking for the CoT prompt there is a 400."""
    constrained = task.sampling.json_output
    if style == "direct" or (constrained is None and task.tools is None):
        return style
    if explicit and constrained is not None:
        raise RequestRejected(
            "The chain-of-thought prompt asks for reasoning before an answer marker, but "
            f"{constrained.field} constrains every sample to JSON; use the `direct` prompt "
            "(or strategy none).",
            param=param,
        )
    return style if explicit else "direct"


def apply_prompt(prompt: Prompt, style: PromptStyle) -> Prompt:
    if style == "direct":
        return prompt
    if prompt.messages is not None:
        messages = list(prompt.messages)
        last_user = max(
            (i for i, m in enumerate(messages) if m.get("role") == "user"), default=None
        )
        if last_user is None:
            messages.append({"role": "user", "content": COT_INSTRUCTION})
        else:
            message = dict(messages[last_user])
            message["content"] = f"{message_text(message.get('content'))}\n\n{COT_INSTRUCTION}"
            messages[last_user] = message
        return replace(prompt, messages=tuple(messages), token_ids=None)
    return replace(prompt, text=f"{prompt.text or ''}\n\n{COT_INSTRUCTION}\n", token_ids=None)


def splitter_for(style: PromptStyle, model_splitter: ReasoningSplitter) -> ReasoningSplitter:
    """A thinking model's own tags win over our marker: its trace is inside
    them whatever we asked for."""
    if style == "cot" and isinstance(model_splitter, NoReasoning):
        return MarkerSplitter(ANSWER_MARKER)
    return model_splitter

