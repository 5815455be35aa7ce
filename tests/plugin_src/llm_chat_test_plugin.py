"""A plugin for llm itself (entry point group "llm") with chat models, to prove vibes uses
llm's chat models through llm's own ``register_models`` hook. Deterministic, no network.

- ``chat-echo`` (alias ``echo``): reads llm's messages (``prompt.messages``) and answers
  ``"system=... | user=... | assistant=... | user=..."`` (one ``ROLE=TEXT`` a message, in
  order), streamed a word at a time (each word after the first with its leading space);
  takes the options ``max_tokens`` (keeps that many words) and ``temperature`` (shown as
  `` (t=0.5)`` at the end); usage: input = the words of every message, output = pieces.
- ``chat-legacy``: reads only ``prompt.system`` and ``prompt.prompt``, as plugins written
  before llm had messages do; answers ``"system=SYSTEM prompt=PROMPT"``; takes no options.
- ``chat-keyed``: needs the key ``chattest`` ($CHAT_TEST_KEY); the key "good" answers
  ``"keyed answer"``, any other fails with a message that shows the key.
- ``chat-broken``: yields ``"partial"`` and then raises RuntimeError with two lines.
"""

from __future__ import annotations

import llm
from pydantic import Field


def _text(message) -> str:
    return "".join(getattr(part, "text", "") for part in message.parts)


class ChatEcho(llm.Model):
    model_id = "chat-echo"
    can_stream = True

    class Options(llm.Options):
        max_tokens: int | None = Field(default=None)
        temperature: float | None = Field(default=None)

    def execute(self, prompt, stream, response, conversation):
        messages = prompt.messages
        answer = " | ".join(f"{m.role}={_text(m)}" for m in messages)
        words = answer.split(" ")
        if prompt.options.max_tokens is not None:
            words = words[: prompt.options.max_tokens]
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        if prompt.options.temperature is not None:
            pieces.append(f" (t={prompt.options.temperature})")
        response.set_usage(input=sum(len(_text(m).split()) for m in messages), output=len(pieces))
        yield from pieces


class ChatLegacy(llm.Model):
    model_id = "chat-legacy"
    can_stream = True

    def execute(self, prompt, stream, response, conversation):
        yield f"system={prompt.system}"
        yield f" prompt={prompt.prompt}"


class ChatKeyed(llm.KeyModel):
    model_id = "chat-keyed"
    needs_key = "chattest"
    key_env_var = "CHAT_TEST_KEY"
    can_stream = True

    def execute(self, prompt, stream, response, conversation, key):
        if key != "good":
            raise ValueError(f"the key {key} was refused")
        yield "keyed answer"


class ChatBroken(llm.Model):
    model_id = "chat-broken"
    can_stream = True

    def execute(self, prompt, stream, response, conversation):
        yield "partial"
        raise RuntimeError("the plugin broke\nand said more on a second line")


@llm.hookimpl
def register_models(register):
    register(ChatEcho(), aliases=["echo"])
    register(ChatLegacy())
    register(ChatKeyed())
    register(ChatBroken())
