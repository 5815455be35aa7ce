"""The one HTTP client vibes talks to APIs with: embedding models, re-rankers (and chat
models next). Standard library only.

A request is retried when the answer is 429 or 5xx (honouring Retry-After, else with
exponential backoff and full jitter), when the connection drops or times out, and when
the answer is not what the caller can read (malformed JSON, or what ``parse`` refuses).
401, 404 and other refusals become one-line :class:`~vibes.errors.VibesError` messages
that never show the key.

Streaming answers (server-sent events, for chat models) will be a sibling of
:func:`post_json` built from the same parts: :func:`_headers`, :func:`_wait`,
:func:`_refusal` and :func:`redact`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

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
    import urllib.error
    import urllib.request

    body = json.dumps(payload).encode("utf-8")
    headers = _headers(key)
    for attempt in range(max_retries + 1):
        retry = attempt < max_retries
        request = urllib.request.Request(url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = _error_detail(error, key)
            if error.code in RETRY_STATUSES and retry:
                _wait(attempt, backoff, error.headers.get("Retry-After"))
                continue
            message = _refusal(url, error.code, detail, what, key_hint, not_found, max_retries)
            raise APIError(redact(message, key), error.code) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            if retry:
                _wait(attempt, backoff, None)
                continue
            reason = getattr(error, "reason", error)
            raise APIError(redact(f"Cannot reach {url} for {what}: {reason}", key)) from None
        try:
            data = _decode(raw)
            return parse(data) if parse is not None else data
        except ValueError as error:
            if retry:
                _wait(attempt, backoff, None)
                continue
            message = f"{url} gave an invalid answer for {what}: {error}"
            raise APIError(redact(message, key)) from None
    raise AssertionError("unreachable")


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
