"""The one HTTP client vibes talks to APIs with: embedding models, re-rankers and chat
models. Standard library only.

A request is retried when the answer is 429 or 5xx (honouring Retry-After, else with
exponential backoff and full jitter), when the connection drops or times out, and when
the answer is not what the caller can read (malformed JSON, or what ``parse`` refuses).
401, 404 and other refusals become one-line :class:`~vibes.errors.VibesError` messages
that never show the key.

:func:`post_json` reads a whole JSON answer; :func:`post_stream` reads server-sent events
(a chat model's streamed answer) as they arrive. Both retry through :func:`_failed`; a
stream is retried only until its first event has been handed on, since after that a
second attempt would repeat what the caller already has: a stream that breaks later is
an error saying the answer was cut off.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from .errors import VibesError

if TYPE_CHECKING:
    import urllib.error

# urllib.request (and http.client under it) load on the first request: `vibes --help`
# and every command that talks to no server stay quick to start.

T = TypeVar("T")

#: Answers worth another try: rate limits and the server's own failures.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest wait between two attempts, whatever Retry-After asks for.
MAX_WAIT = 60.0
#: The most characters of a server's error message quoted in an error.
MAX_DETAIL = 300


class APIError(VibesError):
    """An API refused a request; ``status`` is the HTTP status (0: no answer at all)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def redact(text: str, key: str | None) -> str:
    """``text`` with every occurrence of ``key`` shown as ``[key]``."""
    return text.replace(key, "[key]") if key else text


def key_hint(key_name: str | None, key_env: str | None) -> str:
    """What a refused key's error suggests: ``; check $ENV or 'vibes keys set NAME'``
    (nothing for a model without a saved key's name)."""
    if not key_name:
        return ""
    ways = ([f"${key_env}"] if key_env else []) + [f"'vibes keys set {key_name}'"]
    return "; check " + " or ".join(ways)


@overload
def post_json(
    url: str,
    payload: Any,
    *,
    what: str,
    key: str | None = ...,
    parse: None = ...,
    key_hint: str = ...,
    not_found: str | None = ...,
    timeout: float = ...,
    max_retries: int = ...,
    backoff: float = ...,
) -> Any: ...


@overload
def post_json(
    url: str,
    payload: Any,
    *,
    what: str,
    key: str | None = ...,
    parse: Callable[[Any], T],
    key_hint: str = ...,
    not_found: str | None = ...,
    timeout: float = ...,
    max_retries: int = ...,
    backoff: float = ...,
) -> T: ...


def post_json(
    url: str,
    payload: Any,
    *,
    what: str,
    key: str | None = None,
    parse: Callable[[Any], Any] | None = None,
    key_hint: str = "",
    not_found: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 6,
    backoff: float = 1.0,
) -> Any:
    """POST ``payload`` as JSON to ``url`` and return the decoded answer, passed through
    ``parse`` when given (a ``ValueError`` from it means a malformed answer: retried, then
    reported as an invalid answer, with the message it carries).

    ``what`` names the thing asked, for messages (``"model text-embedding-3-small"``);
    ``key`` goes as a bearer token; ``key_hint`` ends a 401's message (see
    :func:`key_hint`); ``not_found`` says what a 404 means (``"has no model 'm' or no
    embeddings endpoint"``). ``max_retries`` retries follow the first attempt.
    """
    import urllib.request

    call = _Call(url, what, key, key_hint, not_found, max_retries, backoff)
    body = json.dumps(payload).encode("utf-8")
    headers = _headers(key)
    for attempt in range(max_retries + 1):
        request = urllib.request.Request(url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except _connection_errors() as error:
            _failed(call, error, attempt)
            continue
        try:
            data = _decode(raw)
            return parse(data) if parse is not None else data
        except ValueError as error:
            if attempt < max_retries:
                _wait(attempt, backoff, None)
                continue
            message = f"{url} gave an invalid answer for {what}: {error}"
            raise APIError(redact(message, key)) from None
    raise AssertionError("unreachable")


def post_stream(
    url: str,
    payload: Any,
    *,
    what: str,
    key: str | None = None,
    key_hint: str = "",
    not_found: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 6,
    backoff: float = 1.0,
) -> Iterator[str]:
    """POST ``payload`` as JSON to ``url`` and yield the data of each server-sent event of
    the answer as it arrives (the lines of an event's ``data`` fields, joined with a
    newline, as the event-stream format says; comments and other fields are skipped).

    An answer that is not an event stream (a server that ignored ``"stream": true`` and
    answered with JSON) comes as one piece of data: its whole body.

    The arguments are those of :func:`post_json`; ``timeout`` bounds each wait for the
    server (the first answer, and every read of the stream after it), not the whole
    answer. Refusals, 429, 5xx and dropped connections are handled as by
    :func:`post_json` until the first event has been yielded. After that, a connection
    that drops or times out, or bytes that are not UTF-8 text, raise an
    :class:`APIError` saying the answer was cut off. The stream ending cleanly is not
    checked here: whether the answer was complete is for the caller to tell (a chat
    completion ends with ``data: [DONE]``).
    """
    import urllib.request

    call = _Call(url, what, key, key_hint, not_found, max_retries, backoff)
    body = json.dumps(payload).encode("utf-8")
    headers = {**_headers(key), "Accept": "text/event-stream"}
    failures: tuple[type[BaseException], ...] = (*_connection_errors(), UnicodeDecodeError)
    attempt = 0
    while True:
        request = urllib.request.Request(url, body, headers, method="POST")
        yielded = False
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if "text/event-stream" not in (response.headers.get("Content-Type") or ""):
                    raw = response.read()
                    text = raw.decode("utf-8")
                    yielded = True
                    yield text
                    return
                for data in _events(response):
                    yielded = True
                    yield data
                return
        except failures as error:
            if yielded:
                reason = (
                    "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else _reason(error)
                )
                message = f"{url} cut off the answer for {what} ({reason}): it is incomplete"
                raise APIError(redact(message, key)) from None
            if isinstance(error, UnicodeDecodeError):
                if attempt >= max_retries:
                    message = f"{url} gave an invalid answer for {what}: not UTF-8 text"
                    raise APIError(redact(message, key)) from None
                _wait(attempt, backoff, None)
            else:
                _failed(call, error, attempt)
            attempt += 1


def _events(response: Any) -> Iterator[str]:
    """The data of each event of a ``text/event-stream`` body, read line by line."""
    data: list[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment: servers send them to keep the connection open
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What a request that got no (complete) answer raises: a refusal (``HTTPError``, an
    ``OSError``), no connection or a time-out (other ``OSError`` subclasses), a connection
    dropped mid-answer (``IncompleteRead``, ``RemoteDisconnected``: ``HTTPException``)."""
    import http.client

    return (OSError, http.client.HTTPException)


class _Call(NamedTuple):
    """What a request's errors are worded with, and how often it is tried."""

    url: str
    what: str
    key: str | None
    key_hint: str
    not_found: str | None
    max_retries: int
    backoff: float


def _failed(call: _Call, error: BaseException, attempt: int) -> None:
    """After attempt ``attempt`` failed with ``error`` (a refusal, or no answer): wait
    before the next attempt when one is left and worth making, else raise the one-line
    :class:`APIError` that says what went wrong."""
    import urllib.error

    retry = attempt < call.max_retries
    if isinstance(error, urllib.error.HTTPError):
        detail = _error_detail(error, call.key)
        if error.code in RETRY_STATUSES and retry:
            _wait(attempt, call.backoff, error.headers.get("Retry-After"))
            return
        message = _refusal(
            call.url,
            error.code,
            detail,
            call.what,
            call.key_hint,
            call.not_found,
            call.max_retries,
        )
        raise APIError(redact(message, call.key), error.code) from None
    if retry:
        _wait(attempt, call.backoff, None)
        return
    message = f"Cannot reach {call.url} for {call.what}: {_reason(error)}"
    raise APIError(redact(message, call.key)) from None


def _reason(error: BaseException) -> str:
    """Why a connection failed, in a few words."""
    reason = getattr(error, "reason", None) or error
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:MAX_DETAIL]


def _headers(key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "vibes"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise ValueError("an answer that is not UTF-8 text") from None


def _wait(attempt: int, backoff: float, retry_after: str | None) -> None:
    """Sleep before attempt ``attempt + 1``: what Retry-After asks (in seconds), else
    exponential backoff with full jitter, so that many clients do not retry in step."""
    delay = None
    if retry_after:
        try:
            delay = float(retry_after)
        except ValueError:
            delay = None
    if delay is None:
        delay = backoff * (2**attempt) * random.uniform(0.5, 1.5)
    time.sleep(min(max(delay, 0.0), MAX_WAIT))


def _error_detail(error: urllib.error.HTTPError, key: str | None) -> str:
    """The first line of the server's error message, else the HTTP reason; the key
    redacted, cut to :data:`MAX_DETAIL` characters."""
    try:
        message = _server_message(json.loads(error.read() or b"{}"))
    except (ValueError, OSError):
        message = None
    lines = str(message or error.reason or "").strip().splitlines()[0:1]
    text = lines[0] if lines else ""
    return redact(text, key)[:MAX_DETAIL]


def _server_message(data: Any) -> str | None:
    """The message in an error answer, in the shapes APIs use: OpenAI's and llama.cpp's
    ``{"error": {"message"}}``, text-embeddings-inference's ``{"error": "..."}``,
    Cohere's ``{"message"}`` and Jina's (FastAPI's) ``{"detail": "..."}``."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    for message in (error, data.get("message"), data.get("detail")):
        if isinstance(message, str) and message.strip():
            return message
    return None


def _refusal(
    url: str,
    status: int,
    detail: str,
    what: str,
    key_hint: str,
    not_found: str | None,
    max_retries: int,
) -> str:
    suffix = f": {detail}" if detail else ""
    if status == 401:
        return f"{url} refused the API key for {what} (401){key_hint}"
    if status == 404:
        return f"{url} {not_found or 'was not found'} (404){suffix}"
    if status in RETRY_STATUSES:
        return f"{url} kept failing for {what} ({status}) after {max_retries} retries{suffix}"
    return f"{url} rejected the request for {what} ({status}){suffix}"
