"""vLLM's /tokenize and /detokenize shapes, which its clients call on any
server."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ponder.server.protocol.chat import ChatMessage, ChatTool
from ponder.server.protocol.common import TOKEN_ID, OpenAIModel


class TokenizeRequest(OpenAIModel):
    """vLLM's POST /tokenize: a raw ``prompt``, or ``messages`` rendered as
    for a chat completion."""

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    tools: list[ChatTool] | None = Field(None, description="With messages: shown to the template.")
    add_generation_prompt: bool = Field(True, description="With messages: end with the "
                                        "assistant's turn, as a chat completion does.")
    add_special_tokens: bool | None = Field(
        None, description="With a prompt (default true): add BOS and friends. Messages get "
        "them from the chat template."
    )
    return_token_strs: bool = False

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise PydanticCustomError("prompt_or_messages", "send either prompt or messages")
        if self.messages is not None and self.add_special_tokens:
            raise PydanticCustomError(
                "special_tokens", "add_special_tokens is for a prompt: the chat template adds "
                "what a conversation needs"
            )
        return self


class DetokenizeRequest(OpenAIModel):
    model: str | None = None
    tokens: list[TOKEN_ID]

class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeResponse(BaseModel):
    prompt: str
