"""Models: registered sentence-transformers (BERT and T5) and CLIP directories,
OpenAI-compatible APIs against a local server speaking the real protocol, API keys, and
llm's models."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vibes
from vibes.models.openai import OpenAICompatibleModel


@pytest.fixture
def registered_st(invoke, tiny_models):
    result = invoke(
        ["models", "register", tiny_models["st"], "--alias", "tiny"]
        + ["--query-prefix", "query: ", "--document-prefix", "passage: ", "--max-length", "32"]
    )
    assert result.exit_code == 0, result.output
    vibes.models._reset_registry()
    return tiny_models["st"]


def test_registered_model_applies_its_prefixes(registered_st, invoke):
    from sentence_transformers import SentenceTransformer

    raw = SentenceTransformer(str(registered_st), device="cpu")
    model = vibes.get_model("tiny")
    assert model.load().max_seq_length == 32
    document = np.asarray(model.embed_batch(["the dog"]))[0]
    query = np.asarray(model.embed_query_batch(["the dog"]))[0]
    assert np.allclose(document, raw.encode(["passage: the dog"])[0], atol=1e-5)
    assert np.allclose(query, raw.encode(["query: the dog"])[0], atol=1e-5)
    assert not np.allclose(document, query)
    # Listed under its portable id (no model card names it: the directory's name and a
    # fingerprint of its files), with the alias.
    listed = [json.loads(x) for x in invoke(["models"]).output.splitlines()]
    (row,) = [row for row in listed if row["aliases"] == ["tiny"]]
    assert row["id"].startswith("local:tiny-st-") and row["id"] == model.model_id


def test_registration_persists_and_unregisters(registered_st, run, invoke, db_path):
    # A new process sees the registration (it lives in the user settings).
    result = run(["embed", "c", "1", "-c", "the cat", "-m", "tiny", "-d", db_path, "-f", "json"])
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 32
    assert run(["similar", "c", "-c", "the dog", "-d", db_path]).returncode == 0
    assert invoke(["models", "unregister", "tiny"]).exit_code == 0
    vibes.models._reset_registry()
    assert "tiny" not in invoke(["models"]).output
    again = invoke(["models", "unregister", "tiny"])
    assert again.exit_code == 1 and "No registered model called 'tiny'" in again.output
    gone = run(["similar", "c", "-c", "x", "-d", db_path])
    assert gone.returncode == 1 and "uses model local:tiny-st-" in gone.stderr
    assert "which is not installed" in gone.stderr


def test_normalize_option(invoke, tiny_models):
    invoke(["models", "register", tiny_models["st"], "--alias", "unit", "--normalize"])
    # The same files make other vectors without normalising: they need an id of their own.
    refused = invoke(["models", "register", tiny_models["st"], "--alias", "raw", "--no-normalize"])
    assert refused.exit_code == 1 and "--model-id" in refused.output
    raw_args = ["--alias", "raw", "--no-normalize", "--model-id", "local:tiny-raw"]
    assert invoke(["models", "register", tiny_models["st"], *raw_args]).exit_code == 0
    vibes.models._reset_registry()
    unit = np.asarray(vibes.get_model("unit").embed_batch(["the beach"]))[0]
    raw = np.asarray(vibes.get_model("raw").embed_batch(["the beach"]))[0]
    assert abs(np.linalg.norm(unit) - 1) < 1e-5 and abs(np.linalg.norm(raw) - 1) > 1e-3


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_t5_model_registers_and_embeds_like_bert(invoke, tiny_t5, db_path):
    from sentence_transformers import SentenceTransformer
    from tiny_models import T5_DIMENSIONS

    registered = invoke(["models", "register", tiny_t5, "--alias", "t5"])
    assert registered.exit_code == 0, registered.output
    vibes.models._reset_registry()
    raw = SentenceTransformer(str(tiny_t5), device="cpu")
    text = "the dog runs on the beach"
    result = invoke(["embed", "-m", "t5", "-c", text])
    assert result.exit_code == 0, result.output
    vector = json.loads(result.output)
    # The Dense layer's size, unit length, and what sentence-transformers itself makes.
    assert len(vector) == T5_DIMENSIONS
    assert abs(np.linalg.norm(vector) - 1) < 1e-5
    assert cosine(vector, raw.encode([text])[0]) >= 0.9999
    rows = [
        {"id": "beach", "text": text},
        {"id": "cat", "text": "the cat sat on a mat"},
        {"id": "zoo", "text": "zebras on the sand"},
    ]
    stored = invoke(
        ["embed-multi", "animals", "-", "-m", "t5", "--store", "-d", db_path],
        input="".join(json.dumps(row) + "\n" for row in rows),
    )
    assert stored.exit_code == 0, stored.output
    collection = vibes.Database(db_path).collection("animals")
    assert collection.dimensions == T5_DIMENSIONS
    for row in rows:
        assert cosine(collection.vector(row["id"]), raw.encode([row["text"]])[0]) >= 0.9999
    found = invoke(["similar", "animals", "-c", text, "-n", "3", "-d", db_path])
    assert found.exit_code == 0, found.output
    hits = [json.loads(line) for line in found.output.splitlines()]
    assert [hit["id"] for hit in hits][0] == "beach" and hits[0]["score"] > 0.9999
    assert len(hits) == 3
    listed = [json.loads(x) for x in invoke(["models"]).output.splitlines()]
    (row,) = [row for row in listed if row["aliases"] == ["t5"]]
    assert row["id"].startswith("local:tiny-t5-")


def test_t5_reads_all_but_its_one_special_token(tiny_t5):
    from sentence_transformers import SentenceTransformer
    from tiny_models import T5_MAX_SEQ_LENGTH

    from vibes.models.sentence_transformers import SentenceTransformerModel

    model = SentenceTransformerModel("t5", tiny_t5)
    # T5 adds one token (</s>), not BERT's two: the model reads one token more than the
    # old "max_seq_length - 2" said, and a text of exactly that many is not cut.
    assert model.max_tokens == T5_MAX_SEQ_LENGTH - 1
    tokenizer = model.load().tokenizer

    def tokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    fits = " ".join(["the"] * model.max_tokens)
    assert tokens(fits) == model.max_tokens
    model.embed_batch([fits])
    assert model.take_truncation() is None
    over = fits + " dog"
    model.embed_batch([over])
    assert model.take_truncation() == (
        f"1 of 1 texts are longer than the {model.max_tokens} tokens t5 reads; 1 tokens were "
        "cut (4 characters; embed with --chunk tokens to keep them)"
    )
    # A text far longer than one window is cut before encoding: the same tokens are read.
    raw = SentenceTransformer(str(tiny_t5), device="cpu")
    long = "the dog runs on the sand, zebras quickly! " * 2_000
    vector = np.asarray(model.embed_batch([long]))[0]
    assert cosine(vector, raw.encode([long])[0]) >= 0.9999
    assert "1 of 1 texts are longer than the 23 tokens" in model.take_truncation()


def test_each_thread_hears_of_its_own_cuts_only(tiny_t5):
    # A server's concurrent searches: one query cut, another not. Each thread's report is
    # its own, however their calls interleave.
    import threading

    from vibes.models.sentence_transformers import SentenceTransformerModel

    model = SentenceTransformerModel("t5", tiny_t5)
    model.load()
    embedded, reports = threading.Barrier(2), {}

    def search(name: str, text: str) -> None:
        model.embed_batch([text])
        embedded.wait(timeout=30)  # both have embedded before either takes its report
        reports[name] = model.take_truncation()

    threads = [
        threading.Thread(target=search, args=("long", "the dog runs " * 40)),
        threading.Thread(target=search, args=("short", "a cat")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert reports["short"] is None
    assert reports["long"] is not None and reports["long"].startswith("1 of 1 texts")


def test_a_t5_saved_without_a_length_limit_reads_texts_whole(tiny_t5):
    from sentence_transformers import SentenceTransformer

    from vibes.models.sentence_transformers import SentenceTransformerModel

    model = SentenceTransformerModel("t5", tiny_t5)
    # What a T5 tokenizer saved without a length says (transformers' "no limit"); T5's
    # relative positions read any length, and sentence-transformers then truncates nothing.
    model.load().tokenizer.model_max_length = int(1e30)
    assert model.max_tokens is None
    raw = SentenceTransformer(str(tiny_t5), device="cpu")
    raw.tokenizer.model_max_length = int(1e30)
    long = "the dog runs on the sand " * 50  # 300 tokens
    vector = np.asarray(model.embed_batch([long]))[0]
    assert cosine(vector, raw.encode([long])[0]) >= 0.9999
    assert model.take_truncation() is None
    chunks = vibes.chunk(long, "tokens", model=model)  # no limit: 256-token windows
    assert len(chunks) == 2 and chunks[-1].text.endswith("sand")


def test_t5_token_chunks_tokenize_to_no_more_than_counted(tiny_t5):
    from vibes.models.sentence_transformers import SentenceTransformerModel

    model = SentenceTransformerModel("t5", tiny_t5)
    tokenizer = model.load().tokenizer
    # Words the vocabulary spells out letter by letter ("▁", "z", "e", ...), punctuation
    # stuck to words, runs of spaces and blank lines.
    text = "the dog runs on the beach. zebras xylophone quickly, the cat!  sand   dunes\n\n" * 6
    for size, overlap in ((10, 3), (12, 0), (23, 5), (4, 1)):
        chunks = vibes.chunk(text, "tokens", model=model, size=size, overlap=overlap)
        assert len(chunks) > 3
        for chunk in chunks:
            assert text[chunk.start : chunk.end] == chunk.text and chunk.text == chunk.text.strip()
            assert len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"]) <= size
        assert [c.number for c in chunks] == list(range(1, len(chunks) + 1))
        assert all(a.start < b.start and a.end < b.end for a, b in zip(chunks, chunks[1:]))
        covered = {i for c in chunks for i in range(c.start, c.end)}
        assert all(i in covered for i, char in enumerate(text) if not char.isspace())
        if size >= 10:  # the longest word, "xylophone", is 10 tokens: none is cut in two
            assert {w for c in chunks for w in c.text.split()} == set(text.split())
    whole = vibes.chunk(text, "tokens", model=model, overlap=4)  # size: the model's limit
    assert max(len(tokenizer(c.text)["input_ids"]) for c in whole) <= 24  # with </s>


def test_register_errors(invoke, tmp_path):
    not_dir = tmp_path / "file.txt"
    not_dir.write_text("x")
    result = invoke(["models", "register", not_dir, "--alias", "x"])
    assert result.exit_code == 1 and "Not a model directory" in result.output
    assert invoke(["models", "register", "--alias", "x"]).exit_code == 1
    no_alias = invoke(["models", "register", tmp_path])
    assert no_alias.exit_code == 2 and "--alias" in no_alias.output
    vibes.models._reset_registry()
    missing = tmp_path / "gone"
    missing.mkdir()
    invoke(["models", "register", missing, "--alias", "gone"])
    missing.rmdir()
    vibes.models._reset_registry()
    broken = invoke(["embed", "-c", "x", "-m", "gone"])
    assert broken.exit_code == 1 and "directory not found" in broken.output


def png(color, size=(40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_clip_finds_images_by_text_and_by_image(invoke, run, tiny_models, tmp_path, db_path):
    assert invoke(["models", "register", tiny_models["clip"], "--alias", "clip"]).exit_code == 0
    vibes.models._reset_registry()
    photos = tmp_path / "photos"
    photos.mkdir()
    colors = {"red": (255, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 255), "gray": (90, 90, 90)}
    for name, color in colors.items():
        (photos / f"{name}.png").write_bytes(png(color))
    (photos / "broken.png").write_bytes(b"this is not an image at all")
    result = run(
        ["embed-multi", "photos", "--files", photos, "*.png", "--binary", "-m", "clip"]
        + ["-d", db_path]
    )
    assert result.returncode == 0, result.stderr
    assert "Embedded 4" in result.stderr and "skipped 1 the model cannot read" in result.stderr
    by_text = run(["similar", "photos", "-c", "a dog on the beach", "-d", db_path])
    assert by_text.returncode == 0, by_text.stderr
    assert {json.loads(x)["id"] for x in by_text.stdout.splitlines()} == {
        f"{name}.png" for name in colors
    }
    query = tmp_path / "query.png"
    query.write_bytes(png((250, 5, 5), size=(60, 45)))  # another red picture
    by_image = run(["similar", "photos", "-i", query, "--binary", "-n", "1", "-d", db_path])
    best = json.loads(by_image.stdout)
    assert best["id"] == "red.png" and best["score"] > 0.99
    collection = vibes.Database(db_path).collection("photos")
    assert collection.dimensions == 16


def test_api_model_against_a_local_server(fake_openai, invoke, db_path, monkeypatch):
    from vibes_test_plugin import hash_vector

    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    result = invoke(
        ["models", "register", "--api", fake_openai.url, "--api-model", "embed-small"]
        + ["--alias", "remote", "--api-key-env", "FAKE_KEY", "--dimensions", "16"]
    )
    assert result.exit_code == 0, result.output
    vibes.models._reset_registry()
    items = "".join(json.dumps({"id": i, "t": f"text number {i}"}) + "\n" for i in range(5))
    stored = invoke(["embed-multi", "api", "-", "-m", "remote", "-d", db_path], input=items)
    assert stored.exit_code == 0, stored.output
    assert fake_openai.requests[0]["body"]["model"] == "embed-small"
    assert fake_openai.requests[0]["auth"] == f"Bearer {fake_openai.key}"
    collection = vibes.Database(db_path).collection("api")
    assert np.allclose(collection.vector("3"), hash_vector("text number 3"))  # order kept
    found = invoke(["similar", "api", "-c", "text number 2", "-n", "1", "-d", db_path])
    assert json.loads(found.output)["id"] == "2"


def test_builtin_openai_models_need_a_key_and_honour_the_base_url(
    fake_openai, invoke, monkeypatch, isolated_home
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    missing = invoke(["embed", "-c", "hello", "-m", "3-small"])
    assert missing.exit_code == 1
    assert "needs an API key: set $OPENAI_API_KEY or run 'vibes keys set openai'" in missing.output
    saved = invoke(["keys", "set", "openai"], input=fake_openai.key + "\n")
    assert saved.exit_code == 0 and fake_openai.key not in saved.output
    keys_file = isolated_home / "keys.json"
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    assert invoke(["keys"]).output.split() == ["openai"]
    ok = invoke(["embed", "-c", "hello", "-m", "text-embedding-3-small"])
    assert ok.exit_code == 0, ok.output
    assert fake_openai.requests[-1]["body"]["model"] == "text-embedding-3-small"
    assert invoke(["keys", "remove", "openai"]).exit_code == 0
    assert invoke(["keys", "remove", "openai"]).exit_code == 1


def test_a_key_saved_by_llm_is_used_when_vibes_has_none(fake_openai, invoke, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    # The real llm saves it, in its own file ($LLM_USER_PATH, set for every test).
    llm = str(Path(sys.executable).parent / "llm")
    subprocess.run(
        [llm, "keys", "set", "openai", "--value", fake_openai.key],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    ok = invoke(["embed", "-c", "hello", "-m", "3-small"])
    assert ok.exit_code == 0, ok.output
    assert fake_openai.requests[-1]["auth"] == f"Bearer {fake_openai.key}"
    assert invoke(["keys"]).output.split() == []  # vibes' own file holds none, nor is written
    # vibes' own saved key, and the environment, come first.
    invoke(["keys", "set", "openai"], input="sk-vibes-own\n")
    assert invoke(["embed", "-c", "hello", "-m", "3-small"]).exit_code == 1
    assert fake_openai.requests[-1]["auth"] == "Bearer sk-vibes-own"
    invoke(["keys", "remove", "openai"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    invoke(["embed", "-c", "hello", "-m", "3-small"])
    assert fake_openai.requests[-1]["auth"] == "Bearer sk-from-env"
    # llm's file unreadable: as if it held no key.
    monkeypatch.delenv("OPENAI_API_KEY")
    (Path(os.environ["LLM_USER_PATH"]) / "keys.json").write_text("{not json")
    missing = invoke(["embed", "-c", "hello", "-m", "3-small"])
    assert missing.exit_code == 1 and "needs an API key" in missing.output


def api_model(server, **options) -> OpenAICompatibleModel:
    options.setdefault("backoff", 0.01)
    return OpenAICompatibleModel(
        "remote", "m", url=server.url, key_name=None, key_env="FAKE_KEY", **options
    )


def test_retries_429_with_retry_after_and_5xx(fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    fake_openai.fail(429, b'{"error": {"message": "Rate limit"}}', Retry_After="0")
    fake_openai.fail(500)
    fake_openai.fail(503)
    vectors = api_model(fake_openai).embed_batch(["a", "b"])
    assert len(vectors) == 2 and len(fake_openai.requests) == 4
    fake_openai.requests.clear()
    for _ in range(3):
        fake_openai.fail(502)
    with pytest.raises(vibes.VibesError, match=r"kept failing .* \(502\) after 2 retries"):
        api_model(fake_openai, max_retries=2).embed_batch(["a"])
    assert len(fake_openai.requests) == 3


def test_malformed_json_is_retried_then_reported(fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    fake_openai.fail(200, b"{not json")
    assert len(api_model(fake_openai).embed_batch(["a"])) == 1
    for _ in range(3):
        fake_openai.fail(200, b'{"data": [{"index": 0}]}')
    with pytest.raises(vibes.VibesError, match="invalid answer .*embeddings missing"):
        api_model(fake_openai, max_retries=2).embed_batch(["a"])


def test_401_404_and_bad_requests_are_clear_errors_without_the_key(
    fake_openai, monkeypatch, run, test_plugin
):
    monkeypatch.setenv("FAKE_KEY", "sk-wrong-key-456")
    with pytest.raises(vibes.VibesError) as error:
        api_model(fake_openai).embed_batch(["a"])
    assert "refused the API key" in str(error.value) and "(401)" in str(error.value)
    assert "sk-wrong-key-456" not in str(error.value)
    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    wrong_path = OpenAICompatibleModel(
        "remote", "m", url=fake_openai.url + "/nope", key_name=None, key_env="FAKE_KEY"
    )
    with pytest.raises(
        vibes.VibesError, match=r"has no model 'm' or no embeddings endpoint \(404\)"
    ):
        wrong_path.embed_batch(["a"])
    fake_openai.fail(400, json.dumps({"error": {"message": "input too long"}}).encode())
    with pytest.raises(vibes.VibesError, match=r"rejected the request .*\(400\): input too long"):
        api_model(fake_openai).embed_batch(["a"])


def test_requests_respect_the_api_limits(fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", fake_openai.key)
    model = api_model(fake_openai, max_items=3, max_chars=25)
    vectors = model.embed_batch([f"text {i:02d}" for i in range(8)])  # 7 characters each
    assert len(vectors) == 8
    sizes = [len(r["body"]["input"]) for r in fake_openai.requests]
    assert sizes == [3, 3, 2]
    fake_openai.requests.clear()
    model.embed_batch(["x" * 20, "y" * 20])  # each alone is within, together not
    assert [len(r["body"]["input"]) for r in fake_openai.requests] == [1, 1]


def test_the_key_never_reaches_the_database_or_the_output(fake_openai, run, db_path, tmp_path):
    env = {"FAKE_KEY": fake_openai.key}
    run(
        [
            "models",
            "register",
            "--api",
            fake_openai.url,
            "--alias",
            "r",
            "--api-key-env",
            "FAKE_KEY",
        ]
    )
    result = run(
        ["embed", "c", "1", "-c", "hello", "-m", "r", "-d", db_path, "-f", "json"], env=env
    )
    assert result.returncode == 0, result.stderr
    assert fake_openai.key not in result.stdout + result.stderr
    assert fake_openai.key.encode() not in open(db_path, "rb").read()
    conn = sqlite3.connect(db_path)
    dump = "\n".join(conn.iterdump())
    assert fake_openai.key not in dump


def test_llm_plugin_models_are_usable(run, db_path, test_plugin):
    from vibes_test_plugin import hash_vector

    result = run(["embed", "-c", "two words", "-m", "llm:llm-hash"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == pytest.approx(hash_vector("two words"))
    stored = run(["embed", "c", "1", "-c", "the dog", "-m", "llm:llm-hash", "-d", db_path])
    assert stored.returncode == 0, stored.stderr
    # The collection records llm's own id for the model, which llm resolves too.
    listed = json.loads(run(["collections", "--nl", "-d", db_path]).stdout)
    assert listed["model"] == "llm-hash"
    again = run(["similar", "c", "-c", "the dog", "-d", db_path])
    assert again.returncode == 0 and json.loads(again.stdout)["id"] == "1"
    unknown = run(["embed", "-c", "x", "-m", "llm:nope"])
    assert unknown.returncode == 1 and "Unknown embedding model: llm:nope" in unknown.stderr


def test_key_option_takes_a_key_or_a_saved_key_name(fake_openai, invoke, db_path):
    invoke(["models", "register", "--api", fake_openai.url, "--alias", "r"])
    vibes.models._reset_registry()
    literal = invoke(["embed", "-c", "hi", "-m", "r", "--key", fake_openai.key])
    assert literal.exit_code == 0, literal.output
    invoke(["keys", "set", "work"], input=fake_openai.key + "\n")
    named = invoke(["embed", "c", "1", "-c", "hi", "-m", "r", "--key", "work", "-d", db_path])
    assert named.exit_code == 0, named.output
    assert fake_openai.requests[-1]["auth"] == f"Bearer {fake_openai.key}"
    wrong = invoke(["similar", "c", "-c", "hi", "--key", "sk-bad-999", "-d", db_path])
    assert wrong.exit_code == 1 and "(401)" in wrong.output and "sk-bad-999" not in wrong.output
    local = invoke(["embed", "-c", "hi", "-m", "hash", "--key", "x"])
    assert local.exit_code == 2 and "--key applies to API models" in local.output
