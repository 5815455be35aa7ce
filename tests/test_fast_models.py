"""The fast path: sentence-transformers models converted to ONNX and run by ONNX Runtime.

Every conversion here is real (torch's exporter, onnxruntime's quantiser) and every
comparison is against the same model run by sentence-transformers on PyTorch.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vibes
from vibes.models import onnx
from vibes.models.onnx import cache
from vibes.models.sentence_transformers import ModelRuntimeWarning, SentenceTransformerModel

#: Texts of every shape a user sends: mixed lengths (so batches pad), whitespace at the
#: ends, empty, accents and CJK, code, and one longer than the tiny models read.
TEXTS = [
    "the dog",
    "  the dog runs on the sand  ",
    "",
    "zebras quickly! the cat sleeps on a warm mat, dreaming of fish and birds",
    "Der Zug nach Berlin fährt um acht Uhr ab. 東京",
    "def add(a, b):\n    return a + b",
    "the dog runs on the sand, zebras quickly! " * 40,
]


def cosines(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def both_runtimes(path: Path, **options) -> tuple[SentenceTransformerModel, ...]:
    return (
        SentenceTransformerModel("fast", path, runtime="onnx", **options),
        SentenceTransformerModel("slow", path, runtime="torch", **options),
    )


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    from tiny_models import make_roberta_sentence_transformer

    return make_roberta_sentence_transformer(tmp_path_factory.mktemp("roberta"))


@pytest.mark.parametrize("which", ["st", "t5", "roberta"])
def test_onnx_vectors_and_truncation_match_pytorch(which, tiny_models, tiny_t5, tiny_roberta):
    path = {"st": tiny_models["st"], "t5": tiny_t5, "roberta": tiny_roberta}[which]
    fast, slow = both_runtimes(path)
    onnx_vectors = np.asarray(fast.embed_batch(TEXTS))
    torch_vectors = np.asarray(slow.embed_batch(TEXTS))
    assert (fast.runtime_used, slow.runtime_used) == ("onnxruntime", "torch")
    assert fast.device == slow.device == "cpu"
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == torch_vectors.shape
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    # One at a time (as queries are embedded) gives the same vectors as in a padded batch.
    alone = np.concatenate([np.asarray(fast.embed_query_batch([t])) for t in TEXTS])
    assert cosines(alone, torch_vectors).min() >= 0.9999
    # The same tokens are counted and cut, with the same message.
    assert fast.max_tokens == slow.max_tokens
    fast.take_truncation(), slow.take_truncation()
    fast.embed_batch(TEXTS[-2:])
    slow.embed_batch(TEXTS[-2:])
    message = fast.take_truncation()
    assert message is not None and message.replace("fast", "slow") == slow.take_truncation()
    # Spaces at the ends are tokens to byte-level BPE: kept as sentence-transformers
    # keeps them (releases from 6 on do not strip texts).
    padded = np.asarray(fast.embed_batch(["  the dog", "the dog"]))
    if which == "roberta":
        assert cosines(padded[:1], padded[1:])[0] < 0.9999
        assert cosines(padded, slow.embed_batch(["  the dog", "the dog"])).min() >= 0.9999
    # Token chunking asks the tokenizer for offsets: the same chunks on either runtime.
    text = TEXTS[-1] * 3
    chunks = [vibes.chunk(text, "tokens", model=m, size=10, overlap=2) for m in (fast, slow)]
    assert [(c.start, c.end) for c in chunks[0]] == [(c.start, c.end) for c in chunks[1]]


def test_a_query_process_never_imports_torch(run, db_path, minilm):
    result = run(["embed-multi", "notes", "-", "-d", db_path], input='{"id": "a", "content": "x"}')
    assert result.returncode == 0, result.stderr
    docs = [("dogs", "dogs bark at the postman"), ("tax", "how to file a tax return")]
    for key, text in docs:
        assert run(["embed", "notes", key, "-c", text, "-d", db_path]).returncode == 0
    script = inspect.cleandoc(
        f"""
        import sys
        from vibes.cli import cli
        try:
            cli.main(["similar", "notes", "-c", "puppies", "-n", "1", "-d", {db_path!r}])
        except SystemExit as exit:
            code = exit.code
        print("torch" in sys.modules, "transformers" in sys.modules, code, file=sys.stderr)
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert process.stderr.strip().splitlines()[-1] == "False False 0", process.stderr
    assert json.loads(process.stdout)["id"] == "dogs"


def test_an_index_opened_before_the_model_loads_leaves_onnxruntime_working(db_path, minilm):
    # usearch's own C++ runtime once made onnxruntime, loaded after it, crash the process:
    # a search by id (index, no model) followed by a search by text (model) in one process,
    # as a server answers them.
    notes = vibes.Database(db_path).collection("notes", "minilm")
    notes.embed_multi([("dogs", "dogs bark"), ("cats", "cats sleep"), ("tax", "tax forms")])
    notes.build_index()
    script = inspect.cleandoc(
        f"""
        import sys, vibes
        notes = vibes.Database({db_path!r}).collection("notes")
        assert "onnxruntime" not in sys.modules
        print(notes.similar_by_id("dogs", 1)[0].id, notes.similar("puppies", 1)[0].id)
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["cats", "dogs"]


def test_collections_embedded_by_either_runtime_search_each_other(run, db_path, minilm):
    lines = [
        {"id": "dogs", "content": "dogs bark at the postman every morning"},
        {"id": "tax", "content": "how to file a tax return online"},
        {"id": "bread", "content": "baking sourdough bread with a starter"},
    ]
    body = "\n".join(json.dumps(line) for line in lines)
    made = run(["embed-multi", "c", "-", "-d", db_path], input=body, env={"VIBES_RUNTIME": "torch"})
    assert made.returncode == 0, made.stderr
    found = {}
    for runtime in ("torch", "onnx"):
        result = run(
            ["similar", "c", "-c", "loaf of bread", "-d", db_path], env={"VIBES_RUNTIME": runtime}
        )
        assert result.returncode == 0, result.stderr
        found[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [h["id"] for h in found["onnx"]] == [h["id"] for h in found["torch"]]
    assert found["onnx"][0]["id"] == "bread"
    for a, b in zip(found["onnx"], found["torch"]):
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_conversions_are_cached_by_the_model_files(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENVIRONMENT, str(tmp_path / "cache"))
    model_dir = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_models["st"], model_dir)
    first = onnx.load_encoder("m", model_dir)
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert len(entries) == 1 and entries[0].startswith("model-fp32-")
    assert (
        json.loads((first.directory / "meta.json").read_text())["agreement"]["min_cosine"] > 0.9999
    )
    # Found again without converting: the same directory.
    assert onnx.load_encoder("m", model_dir).directory == first.directory
    # A changed weights file is a new key: never a stale conversion.
    weights = next(model_dir.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert onnx.load_encoder("m", model_dir).directory != first.directory
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_two_processes_converting_at_once_publish_one_whole_directory(tiny_models, tmp_path):
    script = inspect.cleandoc(
        f"""
        from pathlib import Path
        from vibes.models import onnx
        print(onnx.load_encoder("m", Path({str(tiny_models["st"])!r})).directory)
        """
    )
    env = {**os.environ, cache.CACHE_ENVIRONMENT: str(tmp_path / "cache")}
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].strip() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert outputs[0] == outputs[1]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()) == [
        Path(outputs[0]).name
    ]


def test_a_conversion_that_disagrees_falls_back_to_pytorch_once_warned(
    tiny_models, tmp_path, monkeypatch
):
    monkeypatch.setenv(cache.CACHE_ENVIRONMENT, str(tmp_path / "cache"))
    # An agreement no conversion can reach: the real check fails the real conversion.
    monkeypatch.setattr("vibes.models.onnx.convert.FP32_AGREEMENT", 1.5)
    model = SentenceTransformerModel("tiny", tiny_models["st"])
    assert model.runtime == "onnxruntime"
    with pytest.warns(ModelRuntimeWarning, match="runs on PyTorch, not ONNX Runtime: its ONNX"):
        vectors = np.asarray(model.embed_batch(["the dog"]))
    assert vectors.shape == (1, 32) and model.runtime_used == "torch"
    # Remembered: the next load goes straight to PyTorch, without a warning or a retry.
    again = SentenceTransformerModel("tiny", tiny_models["st"])
    assert again.runtime.startswith("torch (no ONNX: its ONNX vectors agree")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.embed_batch(["the dog"])
    assert again.runtime_used == "torch"
    # Asked for explicitly, it is an error instead.
    explicit = SentenceTransformerModel("tiny", tiny_models["st"], runtime="onnx")
    with pytest.raises(vibes.VibesError, match="cannot run on ONNX Runtime"):
        explicit.embed_batch(["the dog"])


def test_models_list_says_what_runs_each_model(invoke, monkeypatch):
    def rows():
        result = invoke(["models"])
        assert result.exit_code == 0, result.output
        return {tuple(r["aliases"]): r for r in map(json.loads, result.output.splitlines())}

    listed = rows()
    assert listed[("minilm", "all-MiniLM-L6-v2")]["runtime"] == "onnxruntime"
    assert listed[("minilm-int8",)]["runtime"] == "onnxruntime int8"
    assert listed[("minilm-int8",)]["id"] == vibes.models.DEFAULT_MODEL_ID
    assert [r["default"] for r in listed.values()].count(True) == 1
    assert listed[("minilm", "all-MiniLM-L6-v2")]["default"]
    assert invoke(["models", "default", "minilm-int8"]).exit_code == 0
    listed = rows()
    assert (
        listed[("minilm-int8",)]["default"]
        and not listed[("minilm", "all-MiniLM-L6-v2")]["default"]
    )
    assert vibes.get_model(None).quantize == "int8"
    monkeypatch.setenv("VIBES_RUNTIME", "torch")
    vibes.models._reset_registry()  # models not yet loaded: what they will run on
    assert rows()[("minilm", "all-MiniLM-L6-v2")]["runtime"] == "torch"
    monkeypatch.setenv("VIBES_RUNTIME", "fast")
    result = invoke(["embed", "c", "x", "-c", "hello"])
    assert result.exit_code != 0
    assert "VIBES_RUNTIME='fast': the runtime must be one of auto, onnx, torch" in result.output


def test_models_convert_prepares_the_default_model(invoke, minilm):
    result = invoke(["models", "convert"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["id"] == vibes.models.DEFAULT_MODEL_ID and row["runtime"] == "onnxruntime"
    assert (Path(row["directory"]) / "model.onnx").is_file()
    refused = invoke(["models", "convert", "3-small"])
    assert refused.exit_code == 1 and "3-small is not a sentence-transformers model" in (
        refused.output
    )


def test_register_with_runtime_and_quantize(invoke, tiny_models, minilm):
    result = invoke(
        ["models", "register", tiny_models["st"], "--alias", "q", "--runtime", "torch",
         "--quantize", "int8"]
    )  # fmt: skip
    assert result.exit_code != 0 and "not with --runtime torch" in result.output
    result = invoke(["models", "register", tiny_models["st"], "--alias", "t", "--runtime", "torch"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runtime"] == "torch"
    vibes.models._reset_registry()
    assert vibes.get_model("t").runtime == "torch"
    minilm_dir = str(minilm.path)
    result = invoke(
        ["models", "register", minilm_dir, "--alias", "mq", "--model-id", "mine/minilm-q",
         "--quantize", "int8"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    vibes.models._reset_registry()
    quantized = vibes.get_model("mq")
    assert quantized.runtime == "onnxruntime int8"
    texts = ["how do I reset my password", "a recipe for sourdough bread"]
    agreement = cosines(quantized.embed_batch(texts), minilm.embed_batch(texts))
    assert quantized.runtime_used == "onnxruntime int8"
    assert agreement.min() >= 0.99 and agreement.max() < 0.99999  # close, and really int8


def _docstrings() -> list[str]:
    """Real text: the first paragraphs of the standard library's docstrings."""
    import importlib
    import pydoc

    found: dict[str, None] = {}
    for name in ("json", "os", "pathlib", "re", "sqlite3", "textwrap", "urllib.parse", "zipfile"):
        module = importlib.import_module(name)
        for value in vars(module).values():
            doc = pydoc.getdoc(value) if callable(value) else ""
            paragraph = doc.split("\n\n")[0].strip()
            if len(paragraph) > 20:
                found[paragraph] = None
    return list(found)[:300]


@pytest.mark.slow
def test_minilm_fast_paths_agree_on_a_real_corpus(minilm):
    texts = _docstrings()
    long = [(" ".join(texts[i : i + 30])) for i in range(0, 300, 30)]  # past 256 tokens
    corpus = texts + long
    assert len(corpus) >= 250
    torch_model = SentenceTransformerModel("m", minilm.path, runtime="torch")
    int8 = SentenceTransformerModel("m", minilm.path, quantize="int8")
    reference = np.asarray(torch_model.embed_batch(corpus))
    assert cosines(minilm.embed_batch(corpus), reference).min() >= 0.999
    assert cosines(int8.embed_batch(corpus), reference).min() >= 0.99
    # Queries are embedded one at a time: the int8 variant's hardest case.
    alone = np.concatenate([np.asarray(int8.embed_query_batch([t])) for t in corpus[:80]])
    assert cosines(alone, reference[:80]).min() >= 0.99

    # Searching keeps its answers: each text's nearest neighbours barely move.
    def top(vectors):
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = unit @ unit.T
        np.fill_diagonal(scores, -1)
        return np.argsort(-scores, axis=1)[:, :10]

    exact, fast = top(reference), top(np.asarray(int8.embed_batch(corpus)))
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, fast)])
    assert overlap >= 0.9
    assert int8.runtime_used == "onnxruntime int8"


def test_a_cache_that_cannot_be_written_leaves_the_model_on_pytorch(
    tiny_models, tmp_path, monkeypatch
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv(cache.CACHE_ENVIRONMENT, str(blocked / "onnx"))
    model = SentenceTransformerModel("tiny", tiny_models["st"])
    with pytest.warns(ModelRuntimeWarning, match="cannot write the conversion in"):
        vectors = np.asarray(model.embed_batch(["the dog", "a cat"]))
    assert vectors.shape == (2, 32) and model.runtime_used == "torch"
    assert blocked.read_text().startswith("a file")


def test_a_killed_conversion_leaves_nothing_for_long(tiny_models, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENVIRONMENT, str(root))
    # What a conversion killed mid-way (SIGKILL, power cut) leaves: its temporary directory.
    abandoned, recent = root / ".model-fp32-0123-abcd", root / ".model-fp32-4567-efgh"
    for path in (abandoned, recent):
        path.mkdir(parents=True)
        (path / "model.onnx").write_bytes(b"half")
    os.utime(abandoned, (0, 0))
    encoder = onnx.load_encoder("m", tiny_models["st"])
    assert not abandoned.exists()
    assert recent.exists()  # perhaps another process's conversion, still running
    assert (encoder.directory / "model.onnx.data").is_file()
