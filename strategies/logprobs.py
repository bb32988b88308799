"""Which token log-probabilities go with a strategy's answer.

OpenAI's ``logprobs.content`` lists the tokens of ``message.content``, and
for a reasoning model vLLM lists only the answer's tokens (the trace is not
content). ponder keeps that meaning under every strategy: the
log-probabilities returned are those of the chosen sample's tokens that
spell the returned content.

* ``none``, ``cot``, and answers that are a sample's whole content (JSON,
  tool calls): the tokens of the content, the text after the reasoning.
* An extracted answer (a vote's ``12`` out of "... the answer is 12."):
  the tokens of its last occurrence in the text it was extracted from (the
  sample after its reasoning), which is where the extractors find it; when
  the extractor rewrote it (``1,000`` -> ``1000``), the tokens of all that
  text.

A token that straddles an edge of that text belongs to it.
"""

from __future__ import annotations

from ponder.core.generation import Generator, Sample, TokenLogprob


def content_logprobs(
    gen: Generator, sample: Sample, content: str, source: str | None = None
) -> list[TokenLogprob] | None:
    """The log-probabilities of the tokens of ``sample`` that spell
    ``content``, an answer extracted from ``source`` (by default, the content
    is the source); None when the sample carries none."""
    if sample.logprobs is None:
        return None
    if not content:
        return []
    source = source or content
    begin = sample.text.rfind(source)
    begin, end = (0, len(sample.text)) if begin < 0 else (begin, begin + len(source))
    start = sample.text.rfind(content, begin, end)
    if start >= 0:
        begin, end = start, start + len(content)
    first = max(0, gen.count_tokens(sample.token_ids, begin + 1) - 1)
    return sample.logprobs[first:gen.count_tokens(sample.token_ids, end)]
