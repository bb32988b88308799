"""Log-probabilities in OpenAI's two shapes (server/formats.py)."""

from __future__ import annotations

import json
import math

from ponder.core.generation import TokenLogprob
from ponder.server.formats import LOWEST_LOGPROB, chat_logprobs, completion_logprobs

ENTRIES = [
    TokenLogprob("Hé", -0.5, (("Hé", -0.5), ("Ho", -1.5), ("Hi", -2.5))),
    TokenLogprob(" there", -math.inf, ((" you", -0.1), (" there", -math.inf))),
]


def test_chat_shape_carries_bytes_and_the_asked_alternatives() -> None:
    shaped = chat_logprobs(ENTRIES, top=2)
    assert shaped is not None and shaped.content is not None
    first, second = shaped.content
    assert (first.token, first.logprob, first.bytes) == ("Hé", -0.5, [72, 195, 169])
    assert [t.token for t in first.top_logprobs] == ["Hé", "Ho"]
    # JSON has no -inf: OpenAI and vLLM send -9999.0.
    assert second.logprob == LOWEST_LOGPROB == second.top_logprobs[1].logprob
    json.loads(shaped.model_dump_json())
    assert chat_logprobs(ENTRIES, top=None) is None  # not asked for
    assert chat_logprobs(None, top=0) is not None  # asked, but no tokens


def test_legacy_shape_with_offsets_from_where_a_piece_starts() -> None:
    shaped = completion_logprobs(ENTRIES, top=1, offset=10)
    assert shaped is not None
    assert shaped.tokens == ["Hé", " there"]
    assert shaped.token_logprobs == [-0.5, LOWEST_LOGPROB]
    assert shaped.text_offset == [10, 12]
    # The token itself, and its best alternatives.
    assert shaped.top_logprobs == [{"Hé": -0.5}, {" there": LOWEST_LOGPROB, " you": -0.1}]
