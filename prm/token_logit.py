"""``token-logit:MODEL_DIR``: a causal LM trained as a PRM the Math-Shepherd
/ RLHFlow way, which after each step tag predicts a "good" or a "bad"
token; the step's score is P(good) / (P(good) + P(bad)) at the tag.

vLLM computes exactly that: loaded with ``convert="classify"`` and
``classifier_from_token=[good, bad]``, the LM head is cut down to those two
rows, and the STEP pooler returns their softmax at each step tag, so one
pooling request scores a whole solution.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from transformers import AutoTokenizer
from vllm.config import PoolerConfig

from ponder.prm.engine import StepTagScorer, open_scoring_engine, single_token_id

SHEPHERD_TAG = "ки"
GOOD_COLUMN = 0  # the classifier's outputs are [good, bad]


@asynccontextmanager
async def open_token_logit_prm(
    model: str, *, engine_args: Mapping[str, Any], good: str = "+", bad: str = "-",
    tag: str = SHEPHERD_TAG,
) -> AsyncIterator[StepTagScorer]:
    async with open_scoring_engine(
        model,
        engine_args=engine_args,
        convert="classify",
        hf_overrides={
            "classifier_from_token": _vocabulary_tokens(model, good, bad),
            "method": "no_post_processing",
        },
        pooler_config=PoolerConfig(tok_pooling_type="STEP"),
    ) as engine:
        # Default encoding: Math-Shepherd's input starts with the BOS token.
        yield StepTagScorer(engine, tag, shepherd_text, column=GOOD_COLUMN, add_special_tokens=True)


def shepherd_text(_tokenizer: Any, question: str, steps: Sequence[str], tag: str) -> str:
    """Math-Shepherd's input: the question, then one step per line, each
    ending in the tag (and the tag nowhere else)."""
    return f"{question.replace(tag, '')} " + "\n".join(
        f"{step.replace(tag, '')} {tag}" for step in steps
    )


def _vocabulary_tokens(model: str, *texts: str) -> list[str]:
    """vLLM takes the classifier tokens as vocabulary entries ("Ġ+" for " +"
    in a byte-level BPE), so the texts are mapped through the tokenizer, and
    a text that is not one token is an error before the engine starts."""
    tokenizer = AutoTokenizer.from_pretrained(model)
    return [
        tokenizer.convert_ids_to_tokens(single_token_id(tokenizer, text, "good/bad token"))
        for text in texts
    ]
