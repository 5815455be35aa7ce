"""Chat models behind an OpenAI-compatible ``/v1/chat/completions`` API: OpenAI itself, or a
server that speaks the same protocol (Ollama, llama.cpp's server, vLLM, LM Studio).

Requests go through :mod:`vibes.http`, the client the embedding models use: 429 and 5xx
answers and dropped connections are retried with backoff (honouring Retry-After) until the
answer starts; 401, 404 and 400 are one-line errors that never show the key. Answers are
streamed as server-sent events; a stream that stops before the server said it was done
is an error saying the answer was cut off.

The answer's length limit goes as ``max_completion_tokens`` to OpenAI's own API (where
``max_tokens`` is deprecated, and refused by its reasoning models: o1, o3, gpt-5) and as
``max_tokens`` elsewhere (what compatible servers know); a server that refuses
``max_tokens`` and asks for the other is asked again that way, and from then on.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..http import APIError, key_hint, post_json, post_stream, redact
from ..keys import require_key
from .base import ChatModel, Message, Usage, check_messages

_T = TypeVar("_T")

OPENAI_URL = "https://api.openai.com/v1"
#: OpenAI's chat models vibes knows by name: id, context length (tokens), aliases (llm's).
OPENAI_CHAT_MODELS = (
    ("gpt-4o-mini", 128_000, ("4o-mini",)),
    ("gpt-4o", 128_000, ("4o",)),
    ("gpt-4.1-nano", 1_047_576, ("4.1-nano",)),
    ("gpt-4.1-mini", 1_047_576, ("4.1-mini",)),
    ("gpt-4.1", 1_047_576, ("4.1",)),
)


class OpenAIChatModel(ChatModel):
    """A chat model served over an OpenAI-compatible chat completions API.

    ``api_model`` is the name the server knows the model by; ``url`` the API's base URL
    (None: OpenAI's, or ``$OPENAI_BASE_URL``, as openai's SDK does); the key is read from
    ``$key_env``, else the key saved as ``key_name`` (``vibes keys set``), and is required
    when ``needs_key``. ``timeout`` bounds each wait for the server (not a whole answer);
    ``max_retries`` and ``backoff`` are :func:`vibes.http.post_json`'s.
    """

    def __init__(
        self,
        model_id: str,
        api_model: str | None = None,
        *,
        url: str | None = None,
        key_name: str | None = "openai",
        key_env: str | None = "OPENAI_API_KEY",
        needs_key: bool = True,
        context_length: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff: float = 1.0,
    ) -> None:
        self.model_id = model_id
        self.api_model = api_model or model_id
        self._url = url
        self.key_name = key_name
        self.key_env = key_env
        self.needs_key = needs_key
        self.context_length = context_length
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        #: A key given for this run (``--key``), ahead of the environment and saved keys.
        self.key_override: str | None = None
        self.last_usage: Usage | None = None
        self.last_finish_reason: str | None = None
        #: The name the server takes the answer's length limit by (None: not known yet).
        self._limit_field: str | None = None

    @property
    def url(self) -> str:
        """The API's base URL."""
        return (self._url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")

    @property
    def endpoint(self) -> str:
        return self.url + "/chat/completions"

    def _key(self) -> str | None:
        return require_key(
            f"LLM {self.model_id}",
            self.key_name,
            self.key_env,
            override=self.key_override,
            needed=self.needs_key,
        )

    def _payload(
        self, messages: list[Message], max_tokens: int | None, temperature: float | None
    ) -> dict[str, Any]:
        check_messages(messages)
        payload: dict[str, Any] = {
            "model": self.api_model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        }
        if max_tokens is not None:
            payload[self._limit_name()] = max_tokens
        if temperature is not None:
            payload["temperature"] = temperature
        return payload

    def _limit_name(self) -> str:
        if self._limit_field is None:
            host = urllib.parse.urlsplit(self.url).hostname
            return "max_completion_tokens" if host == "api.openai.com" else "max_tokens"
        return self._limit_field

    def _renamed_limit(self, payload: dict[str, Any], error: APIError) -> bool:
        """Whether the server refused ``max_tokens`` and asked for
        ``max_completion_tokens`` instead: then ``payload`` asks that way, as will every
        later request to this model."""
        if error.status != 400 or "max_tokens" not in payload:
            return False
        if "max_completion_tokens" not in str(error):
            return False
        self._limit_field = "max_completion_tokens"
        payload["max_completion_tokens"] = payload.pop("max_tokens")
        return True

    def _asked(self, payload: dict[str, Any], send: Callable[[], _T]) -> _T:
        """``send()``, which posts ``payload``; sent once more if the server refused it
        and wants the limit renamed (see _renamed_limit)."""
        try:
            return send()
        except APIError as error:
            if not self._renamed_limit(payload, error):
                raise
            return send()

    def _events(self, payload: dict[str, Any], options: dict[str, Any]) -> Iterator[str]:
        """The answer's server-sent events. A refusal comes before anything streams, with
        the first event, so only that is inside _asked."""

        def start() -> tuple[Iterator[str], str | None]:
            events = post_stream(self.endpoint, payload, **options)
            return events, next(events, None)

        events, first = self._asked(payload, start)
        if first is not None:
            yield first
            yield from events

    def _options(self, key: str | None) -> dict[str, Any]:
        return {
            "what": f"LLM {self.model_id}",
            "key": key,
            # key_hint names $ENV only beside a saved key's name: a model registered with
            # --api-key-env alone still says where its key came from.
            "key_hint": key_hint(self.key_name, self.key_env)
            or (f"; check ${self.key_env}" if self.key_env else ""),
            "not_found": f"has no model {self.api_model!r} or no chat completions endpoint",
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "backoff": self.backoff,
        }

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        self.last_usage = None
        self.last_finish_reason = None
        payload = self._payload(messages, max_tokens, temperature)
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        key = self._key()
        finished = done = False
        for data in self._events(payload, self._options(key)):
            if data.strip() == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise self._invalid(f"an event that is not JSON: {data[:60]!r}", key) from None
            if not isinstance(chunk, dict):
                raise self._invalid(f"an event that is not an object: {data[:60]!r}", key)
            self._error_in(chunk, key)
            usage = _usage(chunk.get("usage"))
            if usage is not None:
                self.last_usage = usage
            choice = _first_choice(chunk)
            if choice is None:
                continue
            if chunk.get("object") == "chat.completion" or "message" in choice:
                # A server that ignored "stream": the whole answer at once.
                text = _content(choice.get("message"))
                if text:
                    yield text
                self.last_finish_reason = choice.get("finish_reason") or "stop"
                finished = True
                continue
            text = _content(choice.get("delta"))
            if text:
                yield text
            if choice.get("finish_reason"):
                self.last_finish_reason = str(choice["finish_reason"])
                finished = True
        if not (done or finished):
            raise APIError(
                redact(
                    f"{self.url} cut off the answer for LLM {self.model_id} (the stream "
                    "ended before the server said it was done): it is incomplete",
                    key,
                )
            )

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The whole answer, asked for without streaming (malformed answers are retried)."""
        self.last_usage = None
        self.last_finish_reason = None
        payload = self._payload(messages, max_tokens, temperature)
        key = self._key()
        options = self._options(key)
        text, usage, finish = self._asked(
            payload,
            lambda: post_json(self.endpoint, payload, parse=_parse_completion, **options),
        )
        self.last_usage, self.last_finish_reason = usage, finish
        return text

    def _invalid(self, problem: str, key: str | None) -> APIError:
        message = f"{self.url} gave an invalid answer for LLM {self.model_id}: {problem}"
        return APIError(redact(message, key))

    def _error_in(self, chunk: dict[str, Any], key: str | None) -> None:
        """Raise the error a server reports inside the stream (``{"error": ...}``)."""
        error = chunk.get("error")
        if not error:
            return
        message = error.get("message") if isinstance(error, dict) else error
        first = (str(message).strip().splitlines() or ["unknown error"])[0][:300]
        raise APIError(
            redact(
                f"{self.url} failed part way through the answer of LLM {self.model_id}: {first}",
                key,
            )
        )


def _first_choice(chunk: dict[str, Any]) -> dict[str, Any] | None:
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _content(part: Any) -> str:
    """The text of a message or delta; none for a role-only delta or a null content."""
    if not isinstance(part, dict):
        return ""
    content = part.get("content")
    return content if isinstance(content, str) else ""


def _usage(value: Any) -> Usage | None:
    """OpenAI's usage object, with total_tokens filled in when a server leaves it out."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int:
        return None
    total = value.get("total_tokens")
    if type(total) is not int:
        total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _parse_completion(data: Any) -> tuple[str, Usage | None, str | None]:
    """(text, usage, finish reason) of a non-streamed answer; ValueError when malformed."""
    choice = _first_choice(data) if isinstance(data, dict) else None
    message = choice.get("message") if choice else None
    if not isinstance(message, dict) or not isinstance(
        message.get("content", ""), (str, type(None))
    ):
        raise ValueError("no choices[0].message.content in the answer")
    finish = choice.get("finish_reason") if choice else None
    return _content(message), _usage(data.get("usage")), finish if isinstance(finish, str) else None


def openai_chat_models() -> list[tuple[OpenAIChatModel, tuple[str, ...]]]:
    """The built-in OpenAI chat models, each with its aliases."""
    return [
        (OpenAIChatModel(model_id, context_length=length), aliases)
        for model_id, length, aliases in OPENAI_CHAT_MODELS
    ]
