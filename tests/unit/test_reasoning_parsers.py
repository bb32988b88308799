"""vLLM's reasoning parsers behind our splitter, for models that think in
`<think>` tags: streamed and whole splits agree, and the split point lets
reasoning tokens be counted."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from ponder.server.embedded_model import embedded_model_dir
from ponder.server.reasoning_parsers import VLLMReasoningSplitter


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    tokenizer.add_tokens(["<think>", "</think>"])  # as a thinking model's vocabulary has them
    return tokenizer


def _streamed(splitter: VLLMReasoningSplitter, tokenizer, text: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    streamer = splitter.streamer()
    reasoning = content = ""
    for token_id in tokenizer.encode(text, add_special_tokens=False):
        part = streamer.feed(tokenizer.decode([token_id]), [token_id])
        reasoning, content = reasoning + part.reasoning, content + part.content
    return reasoning, content


@pytest.mark.parametrize(
    "text",
    ["<think>6 minus 18 is negative twelve.</think>The answer is -12.",
     "6 minus 18 is negative twelve.</think>The answer is -12."],  # template opened the tag
)
def test_deepseek_r1_parser_splits_think_tags(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    splitter = VLLMReasoningSplitter("deepseek_r1", tokenizer)
    whole = splitter.split(text)
    assert whole.reasoning == "6 minus 18 is negative twelve."
    assert whole.content == "The answer is -12."
    assert text[whole.reasoning_end:] == whole.content
    assert _streamed(splitter, tokenizer, text) == (whole.reasoning, whole.content)


def test_an_unknown_parser_fails_at_start(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError):
        VLLMReasoningSplitter("no_such_parser", tokenizer)
