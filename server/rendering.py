"""The tokenizer side of a generator: chat templates, token ids, room left.

Both engines share it, so a conversation becomes the same prompt token ids
whether the model runs in this process or behind an HTTP server: the
embedded engine hands over its own vLLM renderer, the remote one builds the
same renderer from ``--model`` (no weights are loaded for that). Prompts are
rendered here, once, and sent to the engine as ids.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from jinja2 import TemplateError
from vllm.exceptions import VLLMClientError
from vllm.renderers import BaseRenderer, ChatParams

from ponder.core.fingerprint import ModelIdentity, model_fingerprint
from ponder.core.generation import Prompt, RequestRejected


class PromptRenderer:
    """Renders prompts to token ids with vLLM's own chat rendering, checks
    they leave room to generate, and splits token counts by characters."""

    def __init__(self, renderer: BaseRenderer, max_model_len: int) -> None:
        self.renderer = renderer
        self.tokenizer: Any = renderer.get_tokenizer()
        self.max_model_len = max_model_len
        self.vocab_size: int = len(self.tokenizer)

    def model_identity(self, served_name: str) -> ModelIdentity:
        """Which model this is, for data fit on one model (a policy)."""
        config = self.renderer.model_config.hf_config.to_dict()
        return ModelIdentity(served_name, model_fingerprint(
            config, self.tokenizer.get_vocab(), getattr(self.tokenizer, "chat_template", None)))

    async def warm_up(self) -> None:
        """Render a conversation once, so the first request does not pay for
        what vLLM's renderer prepares on first use (seconds on a CPU)."""
        await self.render(Prompt(messages=({"role": "user", "content": "Hi"},)))

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        """Smallest k whose decoded prefix covers ``chars`` characters: a
        binary search over decodes, log2(len) of them."""
        low, high = 0, len(token_ids)
        while low < high:
            mid = (low + high) // 2
            if len(self.tokenizer.decode(token_ids[:mid])) >= chars:
                high = mid
            else:
                low = mid + 1
        return low

    async def render(self, prompt: Prompt) -> Prompt:
        if prompt.token_ids is not None:
            return prompt
        # Templating and tokenising a long prompt is CPU work: off the loop.
        ids = await asyncio.to_thread(self.rendered_ids, prompt)
        if len(ids) >= self.max_model_len:
            raise RequestRejected(
                f"The prompt is {len(ids)} tokens long; this model's context is "
                f"{self.max_model_len} tokens, and at least one must be left to generate.",
                param="messages" if prompt.messages is not None else "prompt",
            )
        return replace(prompt, token_ids=tuple(ids))

    async def prompt_ids(self, prompt: Prompt) -> list[int]:
        """What the engine receives: the rendered prompt, then the partial
        solution's ids."""
        rendered = await self.render(prompt)
        assert rendered.token_ids is not None
        return [*rendered.token_ids, *rendered.continuation]

    def max_tokens(self, ids: Sequence[int], requested: int | None) -> int:
        """The request's max_tokens, or all the room left when it set none;
        more than the room is a 400."""
        room = self.max_model_len - len(ids)
        max_tokens = requested if requested is not None else room
        if max_tokens > room:
            raise RequestRejected(
                f"max_tokens is {max_tokens}, but the prompt takes {len(ids)} of this "
                f"model's {self.max_model_len} context tokens, leaving {room}.",
                param="max_tokens",
            )
        return max_tokens

    def rendered_ids(self, prompt: Prompt) -> list[int]:
        """The prompt's token ids, however long."""
        if prompt.messages is None:
            return self.tokenize(prompt.text or "", add_special_tokens=True)
        # vLLM's own chat rendering, as its server does it: content given as
        # text parts is joined for templates that read strings (or passed as
        # parts to templates that iterate them), assistant tool calls and
        # tool results are shaped as templates expect, a template that
        # rejects the conversation is a client error.
        params = ChatParams(
            chat_template_kwargs={"add_generation_prompt": True, **dict(prompt.template_kwargs)}
        )
        try:
            _, rendered = self.renderer.render_messages(list(prompt.messages), params)
        except VLLMClientError as error:
            raise rejected(error, "messages") from error
        except TemplateError as error:  # the template's own raise_exception()
            raise RequestRejected(
                f"The messages do not fit this model's chat template: {error}", param="messages"
            ) from error
        return list(rendered["prompt_token_ids"])  # type: ignore[typeddict-item]

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(list(token_ids))


# What a grammar compiler puts before its reason: a time and its source file.
_SOURCE_LOCATION = re.compile(r"\[[0-9:]+\] \S+:[0-9]+: ")


def clean_message(message: str) -> str:
    """An engine's refusal without the source locations a grammar compiler
    adds (a client never sees a file path)."""
    return _SOURCE_LOCATION.sub("", message).strip()


def rejected(error: VLLMClientError, fallback_param: str | None) -> RequestRejected:
    """vLLM's refusal as a 400 naming the field: its own parameter name when
    it gives one, else the field the request's constraint came from."""
    message = str(error.args[0]) if error.args else str(error)
    param = getattr(error, "parameter", None) or fallback_param
    return RequestRejected(clean_message(message), param)
