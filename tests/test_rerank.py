"""Re-rankers: a tiny cross-encoder saved to disk and loaded offline, registration through
`vibes models register`, and a local HTTP server speaking /v1/rerank in the shapes of
llama.cpp, Jina and Cohere (``{"results": [...]}``) and of text-embeddings-inference (a
list), with its failures: rate limits, refused keys, answers that make no sense."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from checks import one_line_error

import vibes
from vibes.config import settings_path
from vibes.models.registrations import SettingsWarning
from vibes.search.rerank import ApiReranker, CrossEncoderReranker, get_reranker

QUERY = "the dog on the beach"
DOCUMENTS = [
    "a cat sleeps on the sofa",
    "the dog runs on the beach",
    "sand",
    "the dog sleeps",
    "the beach",
]
KEY = "sk-rerank-secret-789"


@pytest.fixture(scope="session")
def cross_encoder(tmp_path_factory):
    from tiny_models import make_cross_encoder

    return make_cross_encoder(tmp_path_factory.mktemp("rerankers"))


def direct_scores(path, query, documents) -> list[float]:
    """What sentence-transformers' own CrossEncoder gives, loaded by hand."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), device="cpu", local_files_only=True)
    return [float(s) for s in model.predict([(query, d) for d in documents])]


# -- a local cross-encoder ----------------------------------------------------------------


def test_cross_encoder_scores_match_sentence_transformers(cross_encoder):
    reranker = get_reranker(str(cross_encoder))
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.model_id.startswith("local:tiny-cross-encoder-")
    scores = reranker.rerank(QUERY, DOCUMENTS)
    assert len(scores) == len(DOCUMENTS) and all(type(s) is float for s in scores)
    assert scores == pytest.approx(direct_scores(cross_encoder, QUERY, DOCUMENTS), abs=1e-6)
    assert len(set(scores)) == len(scores)  # the pairs really are scored, not a constant
    # Deterministic, one score per document whatever the batch, and in the documents' order.
    assert reranker.rerank(QUERY, DOCUMENTS) == scores
    small_batches = CrossEncoderReranker(cross_encoder, batch_size=2)
    assert small_batches.rerank(QUERY, DOCUMENTS) == pytest.approx(scores, abs=1e-6)
    backwards = reranker.rerank(QUERY, DOCUMENTS[::-1])
    assert backwards == pytest.approx(scores[::-1], abs=1e-6)
    assert reranker.rerank(QUERY, []) == []
    # The query matters: another query scores the same documents differently.
    assert reranker.rerank("a cat", DOCUMENTS) != pytest.approx(scores, abs=1e-6)
    # The same directory gives the same (already loaded) re-ranker.
    assert get_reranker(str(cross_encoder)) is reranker


def test_importing_vibes_loads_no_model_library():
    code = (
        "import sys, vibes; vibes.get_reranker; from vibes.search import rerank;"
        "print([m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_or_wrong_directory_is_a_one_line_error(tmp_path, cross_encoder):
    with pytest.raises(vibes.VibesError, match="No cross-encoder directory at './nowhere'"):
        get_reranker("./nowhere")
    embedder = tmp_path / "embedder"
    embedder.mkdir()
    (embedder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(vibes.VibesError, match="is not a cross-encoder: .* names BertModel"):
        get_reranker(str(embedder))
    gone = CrossEncoderReranker(tmp_path / "gone", model_id="gone")
    with pytest.raises(vibes.VibesError, match="Re-ranker gone: directory not found"):
        gone.rerank("q", ["d"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(vibes.VibesError, match="could not be loaded from") as error:
        CrossEncoderReranker(empty, model_id="empty").rerank("q", ["d"])
    assert "\n" not in str(error.value)


# -- registering ----------------------------------------------------------------------------


def test_register_a_cross_encoder_and_use_it_by_alias(invoke, run, cross_encoder, test_plugin):
    # Read from its files, the directory is a cross-encoder; --kind says so explicitly.
    found = invoke(["models", "register", cross_encoder, "--alias", "rr"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["kind"] == "cross-encoder"
    said = invoke(["models", "register", cross_encoder, "--alias", "rr", "--kind", "cross-encoder"])
    assert said.exit_code == 0, said.output
    entry = json.loads(said.output)
    assert entry["kind"] == "cross-encoder" and entry["path"] == str(cross_encoder)
    assert set(entry) == {"alias", "kind", "path", "model_id"}
    vibes.models._reset_registry()

    reranker = get_reranker("rr")
    assert isinstance(reranker, CrossEncoderReranker) and reranker.model_id == entry["model_id"]
    expected = direct_scores(cross_encoder, QUERY, DOCUMENTS)
    assert reranker.rerank(QUERY, DOCUMENTS) == pytest.approx(expected, abs=1e-6)
    assert get_reranker(entry["model_id"]) is reranker  # by its id too, loaded once

    rows = {row["id"]: row for row in map(json.loads, invoke(["models"]).output.splitlines())}
    assert rows[entry["model_id"]] == {
        "id": entry["model_id"],
        "kind": "cross-encoder",
        "dimensions": None,
        "aliases": ["rr"],
        "runtime": "torch",
        "default": False,
    }
    assert rows["hash-test"]["kind"] == "embedding"
    table = invoke(["models", "--table"]).output.splitlines()
    assert table[0].split()[:2] == ["id", "kind"]
    assert any("cross-encoder" in line and "rr" in line for line in table)
    # Not an embedding model, in this process and in a new one; nor the default.
    one_line_error(invoke(["embed", "-c", "hi", "-m", "rr"]), "rr is a re-ranker, not an embedding")
    one_line_error(run(["embed", "-c", "hi", "-m", "rr"]), "rr is a re-ranker, not an embedding")
    one_line_error(invoke(["models", "default", "rr"]), "is a re-ranker, not an embedding model")
    assert "rr" not in invoke(["embed-models"]).output  # llm's listing: embedding models only
    # And an embedding model is not a re-ranker.
    with pytest.raises(vibes.VibesError, match="^hash is an embedding model, not a re-ranker$"):
        get_reranker("hash")
    with pytest.raises(vibes.VibesError, match=r"Unknown re-ranker: nope \(registered: rr;"):
        get_reranker("nope")

    assert invoke(["models", "unregister", "rr"]).exit_code == 0
    with pytest.raises(vibes.UnknownModelError, match=r"nope \(none is registered; add one"):
        get_reranker("nope")
    with pytest.raises(vibes.UnknownModelError, match="Unknown re-ranker: rr"):
        get_reranker("rr")


def test_a_cross_encoder_registered_with_its_max_length(invoke, cross_encoder):
    result = invoke(
        ["models", "register", cross_encoder, "--alias", "short", "--max-length", "8"]
        + ["--model-id", "tiny-ce-short"]
    )
    assert result.exit_code == 0, result.output
    reranker = get_reranker("short")
    assert isinstance(reranker, CrossEncoderReranker)
    assert reranker.model_id == "tiny-ce-short" and reranker.max_length == 8
    long_documents = [d + " " + " ".join(["sand"] * 20) for d in DOCUMENTS]
    scores = reranker.rerank(QUERY, long_documents)
    model = reranker.load()
    limit = getattr(model, "max_seq_length", None)  # sentence-transformers 6; before: max_length
    assert (limit if limit is not None else model.max_length) == 8
    # Read only as far as 8 tokens: not what the whole pairs score.
    assert scores != pytest.approx(direct_scores(reranker.path, QUERY, long_documents), abs=1e-6)


def test_register_refusals(invoke, tmp_path, cross_encoder):
    embedder = tmp_path / "embedder"
    embedder.mkdir()
    (embedder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    api = ["--api", "http://127.0.0.1:9/v1"]
    cases = [
        (
            [embedder, "--alias", "x", "--kind", "cross-encoder"],
            "is not a cross-encoder: its config.json names BertModel",
        ),
        (["--alias", "x", "--kind", "rerank"], "--kind rerank needs --api URL"),
        ([cross_encoder, "--alias", "x", "--kind", "api"], "--kind api needs --api URL"),
        (api + ["--alias", "x", "--kind", "cross-encoder"], "--api URL goes with --kind api or"),
        (
            [cross_encoder, "--alias", "x", "--kind", "cross-encoder", "--query-prefix", "q: "],
            "--query-prefix does not apply to a re-ranker",
        ),
        (api + ["--alias", "x", "--kind", "rerank", "--dimensions", "3"], "--dimensions does"),
        (api + ["--alias", "x", "--kind", "rerank", "--max-length", "9"], "--max-length does"),
        (api + ["--alias", "x", "--kind", "rerank", "--normalize"], "--normalize does not"),
        (api + ["--alias", "minilm", "--kind", "rerank"], "already a name of model"),
        (["--kind", "rerank", "--api", "ftp://h", "--alias", "x"], "must be an http(s) URL"),
    ]
    for args, fragment in cases:
        one_line_error(invoke(["models", "register", *args]), fragment)
    assert not settings_path().exists()  # nothing was saved
    wrong = invoke(["models", "register", *api, "--alias", "x", "--kind", "onnx"])
    assert wrong.exit_code == 2 and "'onnx' is not one of" in wrong.output
    # A re-ranker and an embedding model never share a name.
    assert invoke(["models", "register", *api, "--alias", "rr", "--kind", "rerank"]).exit_code == 0
    one_line_error(
        invoke(["models", "register", *api, "--alias", "rr2", "--api-model", "rr"]),
        "The model id 'rr' (from the API's model name) is already a name of the registered "
        "model 'rr'",
    )


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"alias": "x", "kind": "rerank"}, 'has no "url"'),
        ({"alias": "x", "kind": "rerank", "url": "ftp://h"}, "must be an http(s) URL"),
        (
            {"alias": "x", "kind": "rerank", "url": "http://h/v1", "dimensions": 3},
            'has "dimensions", which a re-ranker (rerank) does not take',
        ),
        ({"alias": "x", "kind": "rerank", "url": "http://h/v1", "key_env": 5}, '"key_env" a'),
        ({"alias": "x", "kind": "cross-encoder"}, 'has no "path"'),
        (
            {"alias": "x", "kind": "cross-encoder", "path": "/m", "query_prefix": "q: "},
            'has "query_prefix", which a re-ranker (cross-encoder) does not take',
        ),
        ({"alias": "x", "kind": "cross-encoder", "path": "/m", "max_length": 0}, "max_length"),
        ({"alias": "x", "kind": "cross-encoder", "path": "/m", "model_id": ""}, 'empty "model'),
    ],
)
def test_a_bad_reranker_registration_is_skipped_and_explained(
    isolated_home, invoke, test_plugin, entry, fragment
):
    good = {"alias": "good", "kind": "rerank", "url": "http://127.0.0.1:9/v1"}
    isolated_home.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps({"models": [entry, good]}))
    vibes.models._reset_registry()
    with pytest.warns(SettingsWarning, match="skipped") as caught:
        assert invoke(["embed", "-c", "hi", "-m", "hash"]).exit_code == 0
    assert fragment in str(caught[0].message)
    assert isinstance(get_reranker("good"), ApiReranker)  # the others keep working
    with pytest.raises(vibes.SettingsError, match="Registered model 'x' cannot be used") as error:
        get_reranker("x")
    assert fragment in str(error.value)


# -- a server speaking /v1/rerank -----------------------------------------------------------


def relevance(query: str, document: str) -> float:
    """The fake server's score: shared words, less a little for length (all distinct here)."""
    words = document.split()
    return len(set(query.split()) & set(words)) - len(words) / 100


class FakeRerankServer:
    """A local /v1/rerank server. ``shape`` is "results" (llama.cpp, Jina, Cohere) or
    "list" (text-embeddings-inference, which also insists on "texts" when ``tei``).
    Queued failures are served first; every request is recorded."""

    def __init__(self, key: str | None = KEY, shape: str = "results", tei: bool = False):
        self.key, self.shape, self.tei = key, shape, tei
        self.requests: list[dict] = []
        self.failures: list[tuple[int, dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                auth = self.headers.get("Authorization")
                server.requests.append({"path": self.path, "body": body, "auth": auth})
                if server.failures:
                    status, headers, payload = server.failures.pop(0)
                    return self.send(status, payload, headers)
                if server.key and auth != f"Bearer {server.key}":
                    return self.send(401, b'{"error": {"message": "Invalid API key"}}')
                if self.path != "/v1/rerank":
                    return self.send(404, b'{"error": {"message": "File Not Found"}}')
                documents = body.get("texts") if server.tei else body.get("documents")
                if documents is None:  # as axum answers a body without a field it needs
                    return self.send(422, b"Failed to deserialize the JSON body: missing field")
                scored = [(i, relevance(body["query"], d), d) for i, d in enumerate(documents)]
                scored.sort(key=lambda row: -row[1])  # best first: not the documents' order
                if server.shape == "list":
                    answer: object = [{"index": i, "score": s} for i, s, _ in scored]
                else:
                    results = [
                        {"index": i, "relevance_score": s, "document": {"text": d}}
                        for i, s, d in scored[: body.get("top_n")]
                    ]
                    answer = {"model": body.get("model"), "results": results}
                self.send(200, json.dumps(answer).encode())

            def send(self, status, payload, headers=None):
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


@pytest.fixture
def server():
    running = FakeRerankServer()
    yield running
    running.close()


EXPECTED = [relevance(QUERY, d) for d in DOCUMENTS]


def quick(server: FakeRerankServer, **options) -> ApiReranker:
    options.setdefault("backoff", 0.001)
    options.setdefault("key_env", "FAKE_RERANK_KEY")
    return ApiReranker(server.url, "bge-reranker", **options)


def test_register_an_api_reranker_and_score_through_it(invoke, server, monkeypatch):
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    result = invoke(
        ["models", "register", "--kind", "rerank", "--api", server.url]
        + [
            "--api-model",
            "bge-reranker",
            "--alias",
            "remote-rr",
            "--api-key-env",
            "FAKE_RERANK_KEY",
        ]
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)
    assert entry == {
        "alias": "remote-rr",
        "kind": "rerank",
        "url": server.url,
        "api_model": "bge-reranker",
        "key_env": "FAKE_RERANK_KEY",
        "model_id": "bge-reranker",
    }
    assert KEY not in settings_path().read_text()
    reranker = get_reranker("remote-rr")
    assert isinstance(reranker, ApiReranker) and reranker.model_id == "bge-reranker"
    scores = reranker.rerank(QUERY, DOCUMENTS)
    # The server answered best first; the scores come back in the documents' order.
    assert scores == pytest.approx(EXPECTED)
    assert max(range(len(scores)), key=scores.__getitem__) == 1
    (request,) = server.requests
    assert request["path"] == "/v1/rerank" and request["auth"] == f"Bearer {KEY}"
    assert request["body"] == {
        "model": "bge-reranker",
        "query": QUERY,
        "documents": DOCUMENTS,
        "top_n": len(DOCUMENTS),
    }
    rows = [json.loads(line) for line in invoke(["models"]).output.splitlines()]
    assert {"id": "bge-reranker", "kind": "rerank", "aliases": ["remote-rr"]}.items() <= [
        row for row in rows if row["id"] == "bge-reranker"
    ][0].items()
    one_line_error(invoke(["embed", "-c", "x", "-m", "remote-rr"]), "is a re-ranker, not an")
    assert reranker.rerank(QUERY, []) == [] and len(server.requests) == 1  # nothing sent


def test_text_embeddings_inference_shape_and_its_texts_field(monkeypatch):
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    tei = FakeRerankServer(shape="list", tei=True)
    try:
        reranker = quick(tei)
        assert reranker.rerank(QUERY, DOCUMENTS) == pytest.approx(EXPECTED)
        # "documents" was refused (422); the same request with "texts" was answered.
        assert ["documents" in r["body"] for r in tei.requests] == [True, False]
        assert tei.requests[1]["body"]["texts"] == DOCUMENTS
        tei.requests.clear()
        assert reranker.rerank("a cat", DOCUMENTS[:2]) == pytest.approx(
            [relevance("a cat", d) for d in DOCUMENTS[:2]]
        )
        assert len(tei.requests) == 1 and "texts" in tei.requests[0]["body"]  # remembered
    finally:
        tei.close()
    plain = FakeRerankServer(shape="list")
    try:
        monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
        assert quick(plain).rerank(QUERY, DOCUMENTS) == pytest.approx(EXPECTED)
        assert len(plain.requests) == 1
        # A 422 that "texts" does not cure is reported as it was.
        plain.fail(422, b'{"error": "bad query"}')
        plain.fail(422, b'{"error": "still bad"}')
        with pytest.raises(vibes.VibesError, match=r"rejected the request .*\(422\): bad query"):
            quick(plain).rerank(QUERY, DOCUMENTS)
    finally:
        plain.close()


def test_rate_limits_and_server_errors_are_retried(server, monkeypatch):
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    server.fail(429, b'{"error": {"message": "Slow down"}}', Retry_After="0")
    server.fail(503)
    assert quick(server).rerank(QUERY, DOCUMENTS) == pytest.approx(EXPECTED)
    assert len(server.requests) == 3
    server.requests.clear()
    for _ in range(3):
        server.fail(429, b'{"message": "Too many requests"}', Retry_After="0")
    with pytest.raises(vibes.VibesError) as error:
        quick(server, max_retries=2).rerank(QUERY, DOCUMENTS)
    assert str(error.value) == (
        f"{server.url}/rerank kept failing for re-ranker bge-reranker (429) after 2 retries: "
        "Too many requests"
    )
    assert len(server.requests) == 3


def test_a_refused_key_is_one_line_without_the_key(server, monkeypatch, invoke):
    invoke(["keys", "set", "work"], input="sk-wrong-000\n")
    reranker = quick(server, key_name="work", key_env=None)
    with pytest.raises(vibes.VibesError) as error:
        reranker.rerank(QUERY, DOCUMENTS)
    message = str(error.value)
    assert message == (
        f"{server.url}/rerank refused the API key for re-ranker bge-reranker (401); "
        "check 'vibes keys set work'"
    )
    assert server.requests[0]["auth"] == "Bearer sk-wrong-000" and len(server.requests) == 1
    # A server that quotes the key back: it is never shown.
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    server.fail(400, json.dumps({"detail": f"key {KEY} may not rerank\nsecond line"}).encode())
    with pytest.raises(vibes.VibesError) as quoted:
        quick(server).rerank(QUERY, DOCUMENTS)
    assert str(quoted.value).endswith("(400): key [key] may not rerank")
    # No key at all, where one is named.
    monkeypatch.delenv("FAKE_RERANK_KEY")
    with pytest.raises(vibes.VibesError, match=r"^Re-ranker bge-reranker needs an API key: set "):
        quick(server).rerank(QUERY, DOCUMENTS)
    # --key for one run (the CLI's apply_key sets it), ahead of the environment.
    keyed = quick(server)
    keyed.key_override = KEY
    assert keyed.rerank(QUERY, DOCUMENTS) == pytest.approx(EXPECTED)


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (b"<html>Bad Gateway</html>", "malformed JSON"),
        (b'{"data": []}', 'expected "results"'),
        (b'{"results": [1, 2]}', "a result is not an object"),
        (b'{"results": [{"index": 7, "relevance_score": 1}]}', "index 7, not one of the 2"),
        (b'{"results": [{"index": "0", "relevance_score": 1}]}', "index '0'"),
        (b'{"results": [{"index": 0, "relevance_score": "high"}]}', "score 'high', not a"),
        (b'[{"index": 0, "score": true}, {"index": 1, "score": 2}]', "score True, not a"),
        (b'[{"index": 0, "score": 1}, {"index": 0, "score": 2}]', "document 0 is scored twice"),
        (b'{"results": [{"index": 1, "relevance_score": 0.5}]}', "expected 2 scores, got 1"),
    ],
)
def test_an_answer_that_makes_no_sense_is_one_line(server, monkeypatch, answer, fragment):
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    for _ in range(3):
        server.fail(200, answer)
    with pytest.raises(vibes.VibesError) as error:
        quick(server, max_retries=2).rerank(QUERY, DOCUMENTS[:2])
    message = str(error.value)
    assert message.startswith(f"{server.url}/rerank gave an invalid answer for re-ranker ")
    assert fragment in message and "\n" not in message
    assert len(server.requests) == 3  # retried, then reported
    # Once the server makes sense again, so do the scores.
    assert quick(server).rerank(QUERY, DOCUMENTS[:2]) == pytest.approx(EXPECTED[:2])


def test_wrong_path_unreachable_server_and_long_lists(server, monkeypatch):
    monkeypatch.setenv("FAKE_RERANK_KEY", KEY)
    wrong = ApiReranker(server.url + "/nope", "bge-reranker", key_env="FAKE_RERANK_KEY")
    with pytest.raises(
        vibes.VibesError, match=r"has no model 'bge-reranker' or no rerank endpoint \(404\)"
    ):
        wrong.rerank(QUERY, DOCUMENTS)
    closed = FakeRerankServer()
    closed.close()
    with pytest.raises(vibes.VibesError, match=f"^Cannot reach {closed.url}/rerank for re-r"):
        quick(closed, max_retries=1).rerank(QUERY, DOCUMENTS)
    server.requests.clear()
    # More documents than one request carries: several requests, the scores in order.
    chunked = quick(server, max_documents=2)
    assert chunked.rerank(QUERY, DOCUMENTS) == pytest.approx(EXPECTED)
    assert [len(r["body"]["documents"]) for r in server.requests] == [2, 2, 1]
    assert [r["body"]["top_n"] for r in server.requests] == [2, 2, 1]
