"""A local HTTP server that answers like OpenAI's /v1/embeddings, over real sockets.

Tests script its answers: queue failures (429 with Retry-After, 500, 401, 404, 400,
malformed JSON) that are served before the normal answers, and read back every request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vibes_test_plugin import hash_vector


class FakeOpenAI:
    def __init__(self, key: str | None = "sk-test-secret-123") -> None:
        self.key = key
        self.requests: list[dict] = []
        self.failures: list[tuple[int, dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                if server.failures:
                    status, headers, payload = server.failures.pop(0)
                    return self._send(status, payload, headers)
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    error = {"error": {"message": "Incorrect API key provided", "type": "auth"}}
                    return self._send(401, json.dumps(error).encode())
                if self.path != "/v1/embeddings":
                    return self._send(404, b'{"error": {"message": "Not found"}}')
                texts = body["input"]
                data = [
                    {"object": "embedding", "index": i, "embedding": hash_vector(text)}
                    for i, text in reversed(list(enumerate(texts)))  # any order: sorted by index
                ]
                answer = {"object": "list", "data": data, "model": body["model"]}
                self._send(200, json.dumps(answer).encode())

            def _send(self, status, payload, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, status: int, payload: bytes = b"{}", **headers: str) -> None:
        self.failures.append(
            (status, {k.replace("_", "-"): v for k, v in headers.items()}, payload)
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
