"""``pooling:MODEL_DIR``: a PRM with a classification head per token, such
as Qwen2.5-Math-PRM (``Qwen2ForProcessRewardModel``), in a second
in-process engine. vLLM's STEP pooler returns [P(bad), P(good)] at each step
tag; the score is P(good), ``outputs.data[:, 1]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ponder.prm.engine import StepTagScorer, open_scoring_engine
from ponder.prm.prompts import QWEN_STEP_TAG, qwen_prm_messages

GOOD_LABEL = 1


@asynccontextmanager
async def open_pooling_prm(
    model: str, *, engine_args: Mapping[str, Any], tag: str = QWEN_STEP_TAG
) -> AsyncIterator[StepTagScorer]:
    async with open_scoring_engine(model, engine_args=engine_args) as engine:
        # The chat template writes the special tokens itself.
        yield StepTagScorer(engine, tag, qwen_text, column=GOOD_LABEL, add_special_tokens=False)


def qwen_text(tokenizer: Any, question: str, steps: Sequence[str], tag: str) -> str:
    messages = qwen_prm_messages(question, steps, tag)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
