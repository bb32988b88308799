"""A scripted generator: the strategies' unit tests drive them with it, since
the algorithms must not care where tokens come from."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ponder.strategies.base import Generation, Prompt, Sample, SampleDelta, Sampling

# A "token" here is a word with its leading space, or one punctuation mark.
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


Script = Callable[[Prompt, int, Sampling], list[str]]


@dataclass
class ScriptedGenerator:
    """Answers every call with the texts ``script`` gives for it. Each word
    piece gets a fresh token id, so token counts are exact and checkable."""

    script: Script
    prompt_tokens: int = 7
    calls: list[tuple[Prompt, int, Sampling]] = field(default_factory=list)
    closed_streams: int = 0
    vocabulary: list[str] = field(default_factory=list)  # token id -> its text
    logprobs: dict[str, float] = field(default_factory=dict)  # text -> cumulative logprob

    @classmethod
    def of(cls, *texts: str) -> ScriptedGenerator:
        """The same texts for every call, cycled to ``n``."""
        return cls(lambda _p, n, _s: [texts[i % len(texts)] for i in range(n)])

    def _texts(self, prompt: Prompt, n: int, sampling: Sampling) -> list[str]:
        self.calls.append((prompt, n, sampling))
        texts = self.script(prompt, n, sampling)
        assert len(texts) == n
        return texts

    def _cut(self, text: str, sampling: Sampling) -> tuple[list[str], list[int], str]:
        pieces = tokenize(text)
        reason = "stop"
        if sampling.max_tokens is not None and len(pieces) > sampling.max_tokens:
            pieces, reason = pieces[: sampling.max_tokens], "length"
        ids = list(range(len(self.vocabulary), len(self.vocabulary) + len(pieces)))
        self.vocabulary.extend(pieces)
        return pieces, ids, reason

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        samples = []
        for text in self._texts(prompt, n, sampling):
            pieces, ids, reason = self._cut(text, sampling)
            logprob = self.logprobs.get(text) if sampling.logprobs else None
            samples.append(Sample("".join(pieces), ids, reason, logprob))  # type: ignore[arg-type]
        return Generation(self.prompt_tokens, samples)

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        texts = self._texts(prompt, n, sampling)
        cut = [self._cut(t, sampling) for t in texts]
        try:
            # Round-robin over the children, one token each, like an engine step.
            for step in range(max(len(p) for p, _, _ in cut)):
                for index, (pieces, ids, reason) in enumerate(cut):
                    if step < len(pieces):
                        last = step == len(pieces) - 1
                        logprob = self.logprobs.get(texts[index]) if sampling.logprobs else None
                        yield SampleDelta(
                            index, pieces[step], [ids[step]], self.prompt_tokens,
                            reason if last else None,  # type: ignore[arg-type]
                            logprob if last else None,
                        )
        finally:
            self.closed_streams += 1

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        covered = 0
        for count, token in enumerate(token_ids):
            if covered >= chars:
                return count
            covered += len(self.vocabulary[token])
        return len(token_ids)


class RecordingEmitter:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def reasoning(self, text: str) -> None:
        self.events.append(("reasoning", text))

    async def content(self, text: str) -> None:
        self.events.append(("content", text))

    async def progress(self, text: str) -> None:
        self.events.append(("progress", text))

    def text(self, kind: str) -> str:
        return "".join(t for k, t in self.events if k == kind)
