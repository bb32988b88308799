"""Which token log-probabilities go with a strategy's answer.

OpenAI's ``logprobs.content`` lists the tokens of ``message.content``, and
for a reasoning model vLLM lists only the answer's tokens (the trace is not
content). ponder keeps that meaning under every strategy: the
log-probabilities returned are those of the chosen sample's tokens that
spell the returned content.

* ``none``, ``cot``, and answers that are a sample's whole content (JSON,
  tool calls): the tokens of the content, the text after the reasoning.
* An extracted answer (a vote's ``12`` out of "... so the answer is 12."):
  the tokens of its last occurrence in the sample, which is where the
  extractors find it; when the extractor rewrote it (``1,000`` -> ``1000``),
  the tokens of the text it was extracted from (the sample after its
  reasoning).

A token that straddles an edge of that text belongs to it.
"""

from __future__ import annotations

from ponder.core.generation import Generator, Sample, TokenLogprob


def content_logprobs(
    gen: Generator, sample: Sample, content: str, answer_start: int = 0
) -> list[TokenLogprob] | None:
    """The log-probabilities of the tokens of ``sample`` that spell
    ``content``; None when the sample carries none. ``answer_start`` is
    where the text the answer came from begins in the sample."""
    if sample.logprobs is None:
        return None
    if not content:
        return []
    start = sample.text.rfind(content)
    end = start + len(content)
    if start < 0:
        start, end = answer_start, len(sample.text)
    first = max(0, gen.count_tokens(sample.token_ids, start + 1) - 1)
    last = gen.count_tokens(sample.token_ids, end)
    return sample.logprobs[first:last]
