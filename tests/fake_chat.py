"""A local HTTP server that answers like OpenAI's ``POST /v1/chat/completions``, over real
sockets, streaming (server-sent events) and not. Deterministic: the answer follows from the
prompt, so tests can assert what was retrieved, how it was cited and what it cost.

Use it in a test (or a fixture of your own)::

    chat = FakeChat()          # chat.url == "http://127.0.0.1:PORT/v1"
    try:
        ...                    # point a model at chat.url, key chat.key
    finally:
        chat.close()
    # or: with FakeChat() as chat: ...

The answer rule (:func:`answer_for`; exactly):

1. Only the LAST message whose role is ``"user"`` is read. In it, the question is the text
   after the first line that starts with ``Question:`` (the rest of that line and every line
   after it). Without such a line, the whole message is the question.
2. Sources are the lines BEFORE that ``Question:`` line whose first non-blank characters are
   ``[N]`` (N decimal digits). A source's text is the rest of its ``[N]`` line plus the lines
   that follow it, up to the next ``[M]`` line or the ``Question:`` line. The same N twice:
   both texts count as N's.
3. Words are the lowercase runs of ``[a-z0-9]`` (text lowercased first) of at least 4
   characters that are not in :data:`STOPWORDS`. A source is cited when its text shares a
   word with the question (whole words: ``cat`` never matches ``category``; ``cats`` never
   matches ``cat``).
4. The answer is ``"Answer from [1][3]."``: every cited N once, ascending, each in brackets,
   no spaces. When no source is cited (or there are none): ``"No source answers this."``
   (:data:`NO_ANSWER`).

So a prompt like::

    Sources:
    [1] Cats purr when they are content.
    [2] Dogs bark at strangers.
    [3] A purring cat is usually a calm cat.

    Question: why do cats purr?

is answered ``"Answer from [1]."`` (``purr`` is in [1]; [3] has ``purring`` and ``cat``,
neither of which is a question word: ``cats`` and ``purr`` are). Set ``chat.reply`` to a
function ``messages -> str`` to answer something else.

Token counts (deterministic, for budget tests; see :func:`count_words`):

- ``prompt_tokens`` = the number of whitespace-separated words in the ``content`` of all
  messages (every role), summed.
- The answer is sent in pieces of :attr:`FakeChat.piece_size` characters (default 4; the
  last may be shorter), so a citation like ``[12]`` can arrive split across two chunks.
  ``completion_tokens`` = the number of pieces sent; ``total_tokens`` = the sum.
- ``max_tokens`` (or ``max_completion_tokens``) in the request keeps only that many pieces,
  with ``finish_reason: "length"`` (else ``"stop"``).

Non-streaming (``"stream": false`` or absent): one JSON ``chat.completion``:
``{"id", "object": "chat.completion", "created", "model", "choices": [{"index": 0,
"message": {"role": "assistant", "content": ANSWER}, "finish_reason"}], "usage":
{"prompt_tokens", "completion_tokens", "total_tokens"}}``.

Streaming (``"stream": true``): ``Content-Type: text/event-stream``, HTTP/1.1 chunked
transfer encoding, events separated by a blank line:

- a first chunk with ``delta: {"role": "assistant", "content": ""}``;
- one ``chat.completion.chunk`` a piece, ``choices[0].delta.content`` = the piece;
- a final chunk with ``delta: {}`` and ``finish_reason``;
- when the request has ``"stream_options": {"include_usage": true}``, a chunk with
  ``"choices": []`` and ``usage``;
- ``data: [DONE]``.

Controls (attributes; set them before the request):

- ``fail(status, payload=b"{}", **headers)``: queue an answer (any status, even 200 with a
  bad body); queued answers are served first, one per request, before any other check.
  Header names take ``_`` for ``-``: ``chat.fail(429, Retry_After="0")``. The answer is
  sent whole, with a Content-Length, as ``application/json`` unless a ``Content_Type`` is
  given (``Content_Type="text/event-stream"`` sends a hand-made stream, e.g.
  :func:`sse` of some events).
- ``drop(n=1)``: the next ``n`` requests get their connection closed with no answer at all
  (ahead of the queued ``fail`` answers, which wait for the requests after them).
- ``key``: the bearer key required (default :data:`KEY`); a missing or wrong one gets 401
  ``{"error": {"message": "Incorrect API key provided: ...", ...}}``. ``None``: no key needed.
- ``models``: the model names served (default ``{"fake-chat"}``); another gets 404 with
  OpenAI's ``{"error": {"message": "The model `NAME` does not exist or you do not have access
  to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}``.
  ``None``: any name.
- ``context_length``: when set, a request whose prompt_tokens + (max_tokens or 0) exceeds it
  gets 400 ``{"error": {"message": "This model's maximum context length is N tokens. However,
  your messages resulted in M tokens. Please reduce the length of the messages.", "type":
  "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}``.
- ``reasoning``: model names that refuse ``max_tokens`` as OpenAI's reasoning models do
  (o1, o3, gpt-5): 400 ``{"error": {"message": "Unsupported parameter: 'max_tokens' is not
  supported with this model. Use 'max_completion_tokens' instead.", "type":
  "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}``.
- ``delay``: seconds to wait before answering (before the status line).
- ``slow``: seconds to wait before each streamed chunk.
- ``cut``: when set to k, a streamed answer's connection is closed (abruptly, mid chunked
  body, no final chunk, no ``[DONE]``) after k content pieces; applies to every streamed
  request while set. ``cut = 0``: closed right after the headers and the role chunk.
- ``reply``: a function ``messages -> str`` replacing :func:`answer_for`.

Read back: ``requests`` lists every request as ``{"path", "body" (decoded JSON or None),
"headers" (dict), "auth" (the Authorization header or None)}``; ``answers`` lists the full
answers computed (before ``max_tokens`` and ``cut``), one per answered request.
Any other path than ``/v1/chat/completions`` gets 404; ``GET /v1/models`` lists ``models``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-chat-secret-456"
NO_ANSWER = "No source answers this."
STOPWORDS = frozenset(
    """
    about after again also been before being between both could does doing down during each
    from further have having here into just more most only other over same should some such
    than that their them then there these they this those through under until very were what
    when where which while whom will with would your yours
    """.split()
)

_SOURCE = re.compile(r"^\s*\[(\d+)\]")
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set[str]:
    """The words of rule 3: lowercase ``[a-z0-9]`` runs of 4+ characters, no stopwords."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in STOPWORDS}


def count_words(messages: list[dict[str, Any]]) -> int:
    """prompt_tokens: whitespace-separated words of every message's content."""
    return sum(len(str(m.get("content") or "").split()) for m in messages)


def parse_prompt(text: str) -> tuple[dict[int, str], str]:
    """(sources by number, question) of a user message, by rules 1 and 2."""
    lines = text.splitlines()
    question_at = next((i for i, line in enumerate(lines) if line.startswith("Question:")), None)
    if question_at is None:
        return {}, text
    question = "\n".join([lines[question_at][len("Question:") :], *lines[question_at + 1 :]])
    sources: dict[int, str] = {}
    current: int | None = None
    for line in lines[:question_at]:
        match = _SOURCE.match(line)
        if match:
            current = int(match.group(1))
            line = line[match.end() :]
            sources[current] = sources[current] + "\n" + line if current in sources else line
        elif current is not None:
            sources[current] += "\n" + line
    return sources, question


def cited(messages: list[dict[str, Any]]) -> list[int]:
    """The source numbers the answer cites, ascending."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        return []
    sources, question = parse_prompt(str(users[-1].get("content") or ""))
    asked = words(question)
    return sorted(n for n, text in sources.items() if words(text) & asked)


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer (rule 4)."""
    numbers = cited(messages)
    if not numbers:
        return NO_ANSWER
    return "Answer from " + "".join(f"[{n}]" for n in numbers) + "."


def sse(*events: str | dict[str, Any]) -> bytes:
    """A server-sent event stream of ``events`` (dicts are sent as JSON), for ``fail``."""
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def chunk(content: str | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with ``content`` as its delta, for :func:`sse`."""
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "model": "fake-chat",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that went away (a test's time-out, a cut stream) is not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeChat:
    def __init__(
        self,
        key: str | None = KEY,
        models: set[str] | None = None,
        piece_size: int = 4,
    ) -> None:
        self.key = key
        self.models: set[str] | None = {"fake-chat"} if models is None else models
        self.piece_size = piece_size
        self.context_length: int | None = None
        self.reasoning: set[str] = set()
        self.delay = 0.0
        self.slow = 0.0
        self.cut: int | None = None
        self.reply: Callable[[list[dict[str, Any]]], str] | None = None
        self.requests: list[dict[str, Any]] = []
        self.answers: list[str] = []
        self.failures: list[tuple[int, dict[str, str], bytes]] = []
        self.drops = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path != "/v1/models":
                    return self._send(404, b'{"error": {"message": "Not found"}}')
                names = sorted(server.models or [])
                data = [{"id": n, "object": "model", "owned_by": "fake"} for n in names]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                auth = self.headers.get("Authorization")
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "headers": dict(self.headers),
                            "auth": auth,
                        }
                    )
                    dropping = server.drops > 0
                    if dropping:
                        server.drops -= 1
                    failure = server.failures.pop(0) if server.failures and not dropping else None
                if server.delay:
                    time.sleep(server.delay)
                if dropping:
                    return self._abort()
                if failure is not None:
                    status, headers, payload = failure
                    return self._send(status, payload, headers)
                if server.key and auth != f"Bearer {server.key}":
                    shown = (auth or "")[7:][:3] + "..."
                    error = {
                        "error": {
                            "message": f"Incorrect API key provided: {shown}",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_api_key",
                        }
                    }
                    return self._send(401, json.dumps(error).encode())
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": {"message": "Not found"}}')
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    error = {
                        "error": {
                            "message": "'messages' is a required property",
                            "type": "invalid_request_error",
                        }
                    }
                    return self._send(400, json.dumps(error).encode())
                model = body.get("model")
                if server.models is not None and model not in server.models:
                    error = {
                        "error": {
                            "message": f"The model `{model}` does not exist or you do not "
                            "have access to it.",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "model_not_found",
                        }
                    }
                    return self._send(404, json.dumps(error).encode())
                if model in server.reasoning and "max_tokens" in body:
                    error = {
                        "error": {
                            "message": "Unsupported parameter: 'max_tokens' is not supported "
                            "with this model. Use 'max_completion_tokens' instead.",
                            "type": "invalid_request_error",
                            "param": "max_tokens",
                            "code": "unsupported_parameter",
                        }
                    }
                    return self._send(400, json.dumps(error).encode())
                messages = body["messages"]
                prompt_tokens = count_words(messages)
                limit = body.get("max_tokens", body.get("max_completion_tokens"))
                if server.context_length is not None and (
                    prompt_tokens + (limit or 0) > server.context_length
                ):
                    error = {
                        "error": {
                            "message": "This model's maximum context length is "
                            f"{server.context_length} tokens. However, your messages "
                            f"resulted in {prompt_tokens} tokens. Please reduce the length "
                            "of the messages.",
                            "type": "invalid_request_error",
                            "param": "messages",
                            "code": "context_length_exceeded",
                        }
                    }
                    return self._send(400, json.dumps(error).encode())
                answer = (server.reply or answer_for)(messages)
                with server._lock:
                    server.answers.append(answer)
                size = max(1, server.piece_size)
                pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
                finish = "stop"
                if limit is not None and len(pieces) > limit:
                    pieces, finish = pieces[:limit], "length"
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(pieces),
                    "total_tokens": prompt_tokens + len(pieces),
                }
                if body.get("stream"):
                    include = (body.get("stream_options") or {}).get("include_usage")
                    return self._stream(model, pieces, finish, usage if include else None)
                answer = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(pieces)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
                self._send(200, json.dumps(answer).encode())

            def _stream(self, model, pieces, finish, usage):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def chunk(delta=None, finish_reason=None, **extra):
                    data = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
                        ],
                        **extra,
                    }
                    return json.dumps(data)

                self._event(chunk({"role": "assistant", "content": ""}))
                for number, piece in enumerate(pieces):
                    if server.cut is not None and number >= server.cut:
                        return self._abort()
                    if server.slow:
                        time.sleep(server.slow)
                    self._event(chunk({"content": piece}))
                if server.cut is not None and server.cut < len(pieces):
                    return self._abort()
                self._event(chunk({}, finish))
                if usage is not None:
                    self._event(
                        json.dumps(
                            {
                                "id": "chatcmpl-fake",
                                "object": "chat.completion.chunk",
                                "model": model,
                                "choices": [],
                                "usage": usage,
                            }
                        )
                    )
                self._event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _event(self, data: str) -> None:
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.wfile.flush()

            def _abort(self) -> None:
                """Close the connection at once, mid-answer."""
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _send(self, status, payload, headers=None):
                self.send_response(status)
                headers = headers or {}
                if not any(name.lower() == "content-type" for name in headers):
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
                self.close_connection = True

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, status: int, payload: bytes = b"{}", **headers: str) -> None:
        """Queue an answer served before the normal ones (see the module docstring)."""
        self.failures.append(
            (status, {k.replace("_", "-"): v for k, v in headers.items()}, payload)
        )

    def drop(self, n: int = 1) -> None:
        """Close the next ``n`` requests' connections without answering."""
        self.drops += n

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
