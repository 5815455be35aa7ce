"""Every chat model of ``llm`` and its plugins, usable from vibes as ``llm:NAME`` when llm is
installed (``llm:gpt-4o-mini``, ``llm:4o``, a local model of a plugin).

llm is imported only when such a model is asked for or listed. The conversation goes to
llm as its own messages (``llm.system``, ``llm.user``, ``llm.assistant``), with the last
user message also given as the prompt and the system messages as the system prompt, so
that plugins written before llm had messages (which read ``prompt.prompt`` and
``prompt.system``) still get the question and the instructions. Keys are llm's own
(``llm keys set``), or ``key_override``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import VibesError
from .base import ChatModel, Message, Usage, check_messages

PREFIX = "llm:"


class LLMChatModel(ChatModel):
    """An ``llm.Model`` seen through vibes' interface; ``model_id`` is ``llm:`` and llm's
    own id for the model."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.model_id = PREFIX + model.model_id
        self.context_length = None
        #: A key given for this run, handed to llm ahead of its own keys.
        self.key_override: str | None = None
        self.last_usage: Usage | None = None
        self.last_finish_reason: str | None = None

    @property
    def llm_model(self) -> Any:
        """The ``llm.Model`` itself."""
        return self._model

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        import llm

        check_messages(messages)
        self.last_usage = None
        self.last_finish_reason = None
        key = self.key_override
        try:
            response = self._model.prompt(
                **_prompt_arguments(llm, messages),
                stream=True,
                **self._options(max_tokens=max_tokens, temperature=temperature),
                **({"key": key} if key else {}),
            )
            for chunk in response:
                if chunk:
                    yield chunk
            self.last_usage = _usage(response)
            self.last_finish_reason = "stop"
        except llm.NeedsKeyException as error:
            raise VibesError(f"LLM {self.model_id} needs an API key: {error}") from None
        except VibesError:
            raise
        except Exception as error:  # a plugin's failure, as one line and without the key
            first = (str(error).strip().splitlines() or [""])[0][:300]
            if key:
                first = first.replace(key, "[key]")
            raise VibesError(
                f"LLM {self.model_id} failed: {type(error).__name__}: {first}"
            ) from None

    def _options(self, **wanted: Any) -> dict[str, Any]:
        """The options asked for that the model's ``Options`` take (llm refuses others);
        an option the model does not have is left out."""
        fields = getattr(self._model.Options, "model_fields", {})
        return {
            name: value for name, value in wanted.items() if value is not None and name in fields
        }


def _prompt_arguments(llm: Any, messages: list[Message]) -> dict[str, Any]:
    """``model.prompt``'s arguments for a conversation: the last user message as the
    prompt, the system messages as the system prompt, and the turns before it as
    ``messages`` (only when there are any: a single question goes as llm's plainest
    prompt, which every plugin understands)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users or users[-1] != len(messages) - 1:
        raise VibesError("The last message of a chat for an llm model must be the user's")
    last_user = users[-1]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    arguments: dict[str, Any] = {"prompt": messages[last_user]["content"], "system": system}
    history = [m for m in messages[:last_user] if m["role"] != "system"]
    if history and not hasattr(llm, "user"):
        # An llm without messages: the earlier turns go as text before the question.
        turns_text = "\n\n".join(f"{m['role'].title()}: {m['content']}" for m in history)
        arguments["prompt"] = f"{turns_text}\n\nUser: {arguments['prompt']}"
    elif history:
        build = {"user": llm.user, "assistant": llm.assistant}
        turns = [llm.system(system)] if system else []
        turns += [build[m["role"]](m["content"]) for m in history]
        arguments["messages"] = turns
    return arguments


def _usage(response: Any) -> Usage | None:
    """The tokens llm recorded for the response, as OpenAI counts them; None when the
    plugin did not say."""
    try:
        usage = response.usage()
    except Exception:
        return None
    prompt, completion = getattr(usage, "input", None), getattr(usage, "output", None)
    if type(prompt) is not int or type(completion) is not int:
        return None
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def llm_chat_model(name: str) -> LLMChatModel | None:
    """llm's chat model called ``name`` (with or without ``llm:``), or None when llm is not
    installed or has no such model."""
    try:
        import llm
    except ImportError:
        return None
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    try:
        return LLMChatModel(llm.get_model(bare))
    except llm.UnknownModelError:
        return None


def llm_chat_models() -> list[tuple[LLMChatModel, tuple[str, ...]]]:
    """Each of llm's chat models with its aliases (all with ``llm:``); none when llm is not
    installed. A failing llm plugin is a :class:`VibesError`."""
    try:
        import llm
    except ImportError:
        return []
    try:
        found = llm.get_models_with_aliases()
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:300]
        raise VibesError(f"llm's models could not be listed: {first}") from None
    return [
        (LLMChatModel(entry.model), tuple(PREFIX + alias for alias in entry.aliases))
        for entry in found
        if entry.model is not None
    ]
