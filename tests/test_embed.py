"""`vibes embed` and `Collection.embed`: vectors out, or stored under an id."""

from __future__ import annotations

import base64
import json
import sqlite3
import struct

import numpy as np
import pytest

import vibes


def test_embed_prints_384_floats_for_the_default_model(invoke, minilm):
    result = invoke(["embed", "-c", "Hello world"])
    assert result.exit_code == 0, result.output
    vector = json.loads(result.output)
    assert len(vector) == 384
    assert np.allclose(vector, minilm.embed("Hello world"), atol=1e-6)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-4  # all-MiniLM-L6-v2 normalises


def test_embed_reads_a_file_and_stdin(invoke, tmp_path, minilm):
    path = tmp_path / "note.txt"
    path.write_text("The quick brown fox", encoding="utf-8")
    from_file = json.loads(invoke(["embed", "-i", path]).output)
    from_stdin = json.loads(invoke(["embed"], input="The quick brown fox").output)
    from_dash = json.loads(invoke(["embed", "-i", "-"], input="The quick brown fox").output)
    assert np.allclose(from_file, from_stdin) and np.allclose(from_file, from_dash)
    other = json.loads(invoke(["embed", "-c", "an entirely different sentence"]).output)
    assert not np.allclose(from_file, other)


def test_embed_output_formats_encode_the_same_vector(invoke, minilm):
    as_json = json.loads(invoke(["embed", "-c", "formats"]).output)
    packed = struct.pack("<384f", *as_json)
    hex_output = invoke(["embed", "-c", "formats", "-f", "hex"]).output.strip()
    b64_output = invoke(["embed", "-c", "formats", "-f", "base64"]).output.strip()
    blob_output = invoke(["embed", "-c", "formats", "-f", "blob"]).stdout_bytes
    assert bytes.fromhex(hex_output) == packed
    assert base64.b64decode(b64_output) == packed
    assert blob_output == packed + b"\n"  # a newline after it, as llm writes it


def test_embed_stores_under_an_id_with_metadata(invoke, db_path, minilm):
    result = invoke(
        ["embed", "notes", "n1", "-c", "Buy milk", "--store", "--metadata", '{"list": "shop"}']
        + ["-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""  # storing prints nothing unless -f is given
    conn = sqlite3.connect(db_path)
    row = conn.execute(
        "select e.id, e.content, e.metadata, length(e.embedding), c.model "
        "from embeddings e join collections c on c.id = e.collection_id"
    ).fetchone()
    assert row == ("n1", "Buy milk", '{"list": "shop"}', 384 * 4, vibes.models.DEFAULT_MODEL_ID)
    shown = invoke(["embed", "notes", "n2", "-c", "Walk the dog", "-f", "json", "-d", db_path])
    assert len(json.loads(shown.output)) == 384


@pytest.mark.parametrize(
    "args, message",
    [
        (["embed", "notes", "-c", "x"], "Give both COLLECTION and ID"),
        (
            ["embed", "-c", "x", "--store"],
            "--store, --metadata and --distance need COLLECTION and ID",
        ),
        (["embed", "c", "1", "-c", "x", "--metadata", "[1]"], "must be a JSON object"),
        (["embed", "c", "1", "-c", "x", "--metadata", "{oops"], "not valid JSON"),
        (["embed", "-c", "x", "-i", "note.txt"], "Give -c TEXT or -i FILE, not both"),
        (["embed", "c", "1", "-c", "x", "-i", "-"], "Give -c TEXT or -i FILE, not both"),
    ],
)
def test_embed_usage_errors(invoke, tmp_path, monkeypatch, db_path, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "note.txt").write_text("from the file")
    result = invoke(args + ["-d", db_path], input="from stdin")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "test.db").exists()  # nothing was stored


def test_embed_empty_content_is_an_error(invoke):
    result = invoke(["embed", "-c", "   "])
    assert result.exit_code == 1
    assert "No content to embed" in result.output


def test_embed_with_the_test_model(invoke, test_plugin):
    from vibes_test_plugin import hash_vector

    result = invoke(["embed", "-c", "two words", "-m", "hash"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == hash_vector("two words")
