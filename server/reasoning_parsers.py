"""vLLM's reasoning parsers (``--reasoning-parser``) behind the strategies'
:class:`ReasoningSplitter`, for models that think in tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm.reasoning import ReasoningParser, ReasoningParserManager

from ponder.strategies.reasoning import Split
from ponder.strategies.thinking import ThinkingMarkers

CONTINUE_THINKING = "\nWait"
"""What an extension appends in place of the end marker (s1's word)."""


class VLLMReasoningSplitter:
    def __init__(self, parser_name: str, tokenizer: Any) -> None:
        self._parser_class = ReasoningParserManager.get_reasoning_parser(parser_name)
        self._tokenizer = tokenizer
        self._new_parser()  # fail at start-up, not on the first request

    def _new_parser(self) -> ReasoningParser:
        return self._parser_class(self._tokenizer)

    def thinking_markers(self) -> ThinkingMarkers | None:
        """How this model's thinking ends, from its parser (None for a
        parser that marks no end), for forcing thinking budgets."""
        end = getattr(self._new_parser(), "end_token", None)
        if not isinstance(end, str) or not end:
            return None
        close = f"\n{end}\n\n"

        def ids(text: str) -> tuple[int, ...]:
            return tuple(self._tokenizer.encode(text, add_special_tokens=False))

        return ThinkingMarkers(end=end, end_ids=ids(end), close=close, close_ids=ids(close),
                               wait=CONTINUE_THINKING, wait_ids=ids(CONTINUE_THINKING))

    def split(self, text: str) -> Split:
        # Parsers are stateful; a fresh one per sample keeps samples apart.
        reasoning, content = self._new_parser().extract_reasoning(text, None)  # type: ignore[arg-type]
        content = content or ""
        return Split(reasoning or "", content, reasoning_end=len(text) - len(content))

    def streamer(self) -> _ParserStream:
        return _ParserStream(self._new_parser())


class _ParserStream:
    def __init__(self, parser: ReasoningParser) -> None:
        self._parser = parser
        self._text = ""
        self._token_ids: list[int] = []

    def feed(self, delta: str, token_ids: Sequence[int] = ()) -> Split:
        previous_text, previous_ids = self._text, list(self._token_ids)
        self._text += delta
        self._token_ids.extend(token_ids)
        message = self._parser.extract_reasoning_streaming(
            previous_text, self._text, delta, previous_ids, self._token_ids, token_ids
        )
        if message is None:
            return Split("", "")
        return Split(message.reasoning or "", message.content or "")

    def finish(self) -> Split:
        return Split("", "")
