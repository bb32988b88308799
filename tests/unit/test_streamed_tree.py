"""A streamed search with include_candidates sends its tree after every
round, so a client can draw it as it grows (the explorer at /ui does)."""

from __future__ import annotations

import json

from ponder.strategies.base import Verifiers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedPRM
from .test_search import QUESTION, SCORES, tree_generator


async def test_the_tree_streams_round_by_round_before_the_answer() -> None:
    app = asgi_app(tree_generator(), Verifiers.of(default="judge", judge=ScriptedPRM(SCORES)))
    body = {"model": "smollm2", "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 100, "temperature": 0.8, "stream": True, "include_candidates": True,
            "strategy": {"name": "beam_search", "beam_width": 2, "expand": 2,
                         "prompt": "direct", "step_delimiter": "\n\n"}}
    async with asgi_client(app) as http:
        reply = await http.post("/v1/chat/completions", json=body)
        hidden = await http.post("/v1/chat/completions",
                                 json={**body, "include_candidates": False})
    chunks = [json.loads(line[6:]) for line in reply.text.splitlines()
              if line.startswith("data: {")]
    trees = [c["ponder"]["tree"] for c in chunks if "ponder" in c and not c["choices"]]
    assert len(trees) >= 2 and all(len(a) < len(b) for a, b in zip(trees, trees[1:]))
    final = next(c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason"))
    assert len(final["ponder"]["tree"]) == len(trees[-1])
    assert '"tree"' not in hidden.text  # only for a client that asked for candidates
