"""The interface every chat model (LLM) has: messages in, text out, as it arrives."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TypedDict

#: How many characters make a token in :meth:`ChatModel.count_tokens`' estimate: about 4 for
#: English text with the tokenizers of OpenAI's models and of most open models.
CHARS_PER_TOKEN = 4


class Usage(TypedDict):
    """Tokens a request used, as OpenAI's API counts them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


#: A chat message: ``{"role": "system" | "user" | "assistant", "content": TEXT}``.
Message = dict[str, str]


class ChatModel(ABC):
    """A model that answers a conversation.

    ``model_id`` names it (``gpt-4o-mini``, a registration's alias, ``llm:NAME``);
    ``context_length`` is how many tokens it reads (prompt and answer together), when known.
    After :meth:`stream` is exhausted (or :meth:`complete` returns), ``last_usage`` holds
    the tokens the request used, when the model reported them, and ``last_finish_reason``
    why the answer ended (``"stop"``; ``"length"`` when ``max_tokens`` cut it), when known.
    """

    model_id: str
    context_length: int | None = None
    last_usage: Usage | None = None
    last_finish_reason: str | None = None

    @abstractmethod
    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Yield the answer to ``messages`` in pieces, in order, as they arrive.

        ``max_tokens`` bounds the answer's length; ``temperature`` its randomness (the
        model's own default when None). Failures raise :class:`~vibes.errors.VibesError`
        with a one-line message; an answer cut off part way is such an error, never a
        silently shorter answer.
        """

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The whole answer to ``messages`` (by default, :meth:`stream`'s pieces joined)."""
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature))

    def count_tokens(self, text: str) -> int:
        """About how many tokens ``text`` is: one for every :data:`CHARS_PER_TOKEN`
        characters, rounded up (an estimate; models with a tokenizer at hand may count)."""
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"


def check_messages(messages: list[Message]) -> None:
    """Refuse what is not a list of ``{"role", "content"}`` messages, with a role of
    system, user or assistant and text content (a programming error, said in one line)."""
    from ..errors import VibesError

    if not isinstance(messages, list) or not messages:
        raise VibesError("A chat needs a non-empty list of messages")
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("system", "user", "assistant")
            or not isinstance(message.get("content"), str)
        ):
            raise VibesError(
                f"Message {index} must be {{'role': 'system', 'user' or 'assistant', "
                f"'content': TEXT}}, not {message!r:.80}"
            )
