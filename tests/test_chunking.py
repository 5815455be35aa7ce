"""Chunkers, and long documents stored, searched and answered chunk by chunk."""

from __future__ import annotations

import json
import sqlite3

import pytest
from checks import one_line_error

import vibes
from vibes.chunking import get_chunker

MARKDOWN = """# Project

Intro text.

## Install

Run the installer.

```bash
# this is a shell comment, not a heading
make install
```

### On macOS

Use Homebrew.

## Usage

Call it.
"""

PYTHON = '''"""A module."""

import os


@decorator
class Store(Base):
    """Keeps things."""

    limit = 3

    def put(self, key: str, value: int = 0) -> None:
        """Put a value."""

        def check(x):
            return x

        return None

    @property
    async def size(self) -> int:
        return 1


def helper(*args, **kwargs):
    """Help."""
    return args
'''


def assert_located(text, chunks):
    """Every chunk's offsets and lines point at its text in the document."""
    lines = text.split("\n")
    for index, chunk in enumerate(chunks):
        assert chunk.index == index and chunk.number == index + 1
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.start_line == text[: chunk.start].count("\n") + 1
        assert chunk.end_line == text[: chunk.end].count("\n") + 1 - text[: chunk.end].endswith(
            "\n"
        )
        assert chunk.text.split("\n")[0].strip() in lines[chunk.start_line - 1]


def test_markdown_sections_carry_their_heading_path():
    chunks = vibes.chunk(MARKDOWN, "markdown")
    assert [c.context for c in chunks] == [
        "Project",
        "Project > Install",
        "Project > Install > On macOS",
        "Project > Usage",
    ]
    assert "# this is a shell comment" in chunks[1].text  # a fence is not a heading
    assert (chunks[2].start_line, chunks[2].end_line) == (14, 16)
    assert chunks[3].embed_text == "Project > Usage\n\n## Usage\n\nCall it."
    assert_located(MARKDOWN, chunks)
    long_section = "# Big\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(10))
    parts = vibes.chunk(long_section, "markdown", size=400)
    assert len(parts) > 3 and all(len(p.text) <= 400 for p in parts)
    assert {p.context for p in parts} == {"Big"}
    assert_located(long_section, parts)


def test_python_chunks_functions_classes_and_methods_with_qualified_names():
    chunks = vibes.chunk(PYTHON, "python")
    contexts = [c.context.split("\n")[0] for c in chunks]
    assert contexts == [
        "module",
        "class Store(Base)",
        "def Store.put(self, key: str, value: int=0) -> None",
        "def Store.put.check(x)",
        "async def Store.size(self) -> int",
        "def helper(*args, **kwargs)",
    ]
    by_name = {c.context.split("\n")[0]: c for c in chunks}
    store = by_name["class Store(Base)"]
    assert store.text.startswith("@decorator\nclass Store(Base):") and "limit = 3" in store.text
    assert "def put" not in store.text  # methods are chunks of their own
    assert store.context.endswith("Keeps things.")
    size = by_name["async def Store.size(self) -> int"]
    assert size.text.startswith("@property")
    assert_located(PYTHON, chunks)


def test_python_module_level_code_is_kept():
    script = '"""A script."""\nimport sys\n\nX = 1\n\ndef f():\n    pass\n\nprint(f(), X)\n'
    chunks = vibes.chunk(script, "python")
    assert [(c.context.split("\n")[0], c.text) for c in chunks] == [
        ("module", '"""A script."""\nimport sys\n\nX = 1'),
        ("def f()", "def f():\n    pass"),
        ("module", "print(f(), X)"),
    ]
    assert_located(script, chunks)


def test_python_that_does_not_parse_falls_back_to_code_blocks():
    broken = "def ok():\n    return 1\n\ndef broken(:\n    pass\n\nx = 1\n"
    chunks = vibes.chunk(broken, "python", fallback_size=10)
    assert [c.text.split("\n")[0] for c in chunks] == ["def ok():", "def broken(:", "x = 1"]


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Dr. Smith paid $3.50 for it. He left.",
            ["Dr. Smith paid $3.50 for it.", "He left."],
        ),
        (
            'She said "Stop." Then she left! Was it late? Yes.',
            ['She said "Stop."', "Then she left!", "Was it late?", "Yes."],
        ),
        ("Use tools, e.g. a hammer. It works.", ["Use tools, e.g. a hammer.", "It works."]),
        (
            "J. R. R. Tolkien wrote it. The U.S. Army read it.",
            ["J. R. R. Tolkien wrote it.", "The U.S. Army read it."],
        ),
        (
            "Wait... What happened? (Nothing.) Fine.",
            ["Wait...", "What happened?", "(Nothing.)", "Fine."],
        ),
        ("Version 2.0 is out. see the notes", ["Version 2.0 is out. see the notes"]),
        (
            "First line\n\nsecond paragraph without a stop",
            ["First line", "second paragraph without a stop"],
        ),
    ],
)
def test_sentences_handle_abbreviations_decimals_and_quotes(text, sentences):
    chunks = vibes.chunk(text, "sentences")
    assert [c.text for c in chunks] == sentences
    assert_located(text, chunks)


def test_sentence_groups_with_overlap():
    text = "One. Two. Three. Four. Five."
    assert [c.text for c in vibes.chunk(text, "sentences", group=2, overlap=1)] == [
        "One. Two.",
        "Two. Three.",
        "Three. Four.",
        "Four. Five.",
    ]


def test_crlf_and_unicode_offsets():
    text = "Première ligne ☕.\r\n\r\nSecond paragraphe — ünïcödé 🎉.\r\nSuite.\r\n"
    for name in ("lines", "paragraphs", "sentences", "markdown", "code"):
        chunks = vibes.chunk(text, name)
        assert chunks, name
        assert all("\r" not in c.text[-1:] and not c.text.startswith("\n") for c in chunks)
        assert_located(text, chunks)
    assert [c.text for c in vibes.chunk(text, "lines")] == [
        "Première ligne ☕.",
        "Second paragraphe — ünïcödé 🎉.",
        "Suite.",
    ]


def test_paragraphs_merge_short_ones_up_to_the_size():
    text = "a\n\nb\n\nc\n\n" + "long " * 50
    chunks = vibes.chunk(text, "paragraphs", size=20)
    assert [c.text for c in chunks] == ["a\n\nb\n\nc", ("long " * 50).strip()]


def test_token_windows_never_exceed_what_the_model_reads(minilm):
    text = " ".join(f"word{i}" for i in range(600))
    chunks = vibes.chunk(text, "tokens", model="minilm", size=100, overlap=20)
    tokenizer = minilm.load().tokenizer
    counts = [len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for c in chunks]
    assert max(counts) <= 100 and len(chunks) > 3
    assert chunks[0].text.startswith("word0") and chunks[-1].text.endswith("word599")
    assert_located(text, chunks)
    default = vibes.chunk(text, "tokens", model="minilm")
    assert max(len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for c in default) <= (
        minilm.max_tokens
    )
    with pytest.raises(vibes.VibesError, match="exceed the 254 tokens"):
        vibes.chunk(text, "tokens", model="minilm", size=1000)
    with pytest.raises(vibes.VibesError, match="overlap"):
        vibes.chunk(text, "tokens", model="minilm", size=10, overlap=10)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("nope", {}, "Unknown chunker: 'nope'"),
        ("lines", {"size": 3}, "Unknown option 'size' for chunker 'lines'"),
        ("paragraphs", {"size": "big"}, "must be an integer, not 'big'"),
        ("paragraphs", {"size": 0}, "must be at least 1"),
        ("sentences", {"group": True}, "must be a int"),
    ],
)
def test_bad_chunker_or_options(name, options, message):
    with pytest.raises(vibes.VibesError, match=message):
        vibes.chunk("Some text.", name, **options)


def test_binary_content_is_refused_by_text_chunkers():
    with pytest.raises(vibes.VibesError, match="cuts text, not binary"):
        get_chunker("lines").chunk(b"bytes")  # type: ignore[arg-type]


def test_cli_chunkers_and_chunk(invoke, tmp_path, test_plugin):
    names = [json.loads(line)["name"] for line in invoke(["chunkers"]).output.splitlines()]
    builtin = ["lines", "paragraphs", "sentences", "tokens", "markdown", "python", "code"]
    assert [name for name in names if name in builtin] == builtin
    assert "words" in names  # from the plugin, through its entry point
    path = tmp_path / "doc.md"
    path.write_text(MARKDOWN)
    rows = [json.loads(x) for x in invoke(["chunk", "markdown", path]).output.splitlines()]
    assert [r["context"] for r in rows][1] == "Project > Install"
    assert list(rows[0]) == ["number", "text", "start", "end", "start_line", "end_line", "context"]
    assert [r["number"] for r in rows] == [1, 2, 3, 4]
    words = invoke(["chunk", "words", "-", "-o", "n=2"], input="a b c d e")
    assert [json.loads(x)["text"] for x in words.output.splitlines()] == ["a b", "c d", "e"]
    bad = invoke(["chunk", "words", path, "-o", "n"])
    assert bad.exit_code == 2 and "expected key=value" in bad.output
    wrong = invoke(["chunk", "paragraphs", path, "-o", "size=x"])
    assert wrong.exit_code == 1 and "must be an integer" in wrong.output


def test_chunk_numbers_are_those_of_the_stored_ids(invoke, docs, db_path, test_plugin):
    shown = invoke(["chunk", "markdown", docs / "guide.md"])
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.output.splitlines()]
    invoke(
        ["embed-multi", "d", "--files", docs, "*.md", "--chunk", "markdown", "-m", "hash"]
        + ["-d", db_path]
    )
    stored = {r[0]: r[3:5] for r in chunk_rows(db_path)}
    # `vibes chunk` numbers chunks as their ids do: guide.md#1 is chunk number 1.
    assert {f"guide.md#{r['number']}": (r["start"], r["end"]) for r in rows} == stored
    chunks = vibes.chunk(MARKDOWN, "markdown")
    assert [f"guide.md#{c.number}" for c in chunks] == sorted(stored)
    assert [c.to_dict() for c in chunks] == rows


def test_chunk_reads_files_as_embed_multi_files_does(invoke, tmp_path):
    latin = tmp_path / "old.txt"
    latin.write_bytes("Caf\u00e9 cr\u00e8me.\nNa\u00efve.\n".encode("latin-1"))
    # Not UTF-8: decoded as Latin-1, as `embed-multi --files` decodes it.
    result = invoke(["chunk", "lines", latin])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["text"] for x in result.output.splitlines()] == [
        "Caf\u00e9 cr\u00e8me.",
        "Na\u00efve.",
    ]
    strict = invoke(["chunk", "lines", latin, "--encoding", "utf-8"])
    line = one_line_error(strict, "not valid text in 'utf-8'", "--encoding")
    assert "--binary" not in line  # `vibes chunk` has no --binary to suggest
    one_line_error(invoke(["chunk", "lines", latin, "--encoding", "nope"]), "Unknown encoding")
    one_line_error(invoke(["chunk", "lines", tmp_path / "missing.txt"]), "Cannot read")
    cp1252 = invoke(
        ["chunk", "lines", "-", "--encoding", "cp1252"], input="\u201cquoted\u201d".encode("cp1252")
    )
    assert json.loads(cp1252.output)["text"] == "\u201cquoted\u201d"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    nothing = invoke(["chunk", "sentences", empty])
    assert nothing.exit_code == 0 and nothing.output == ""


class MetaspaceModel:
    """A model whose tokenizer gives the offsets of older SentencePiece conversions: "▁dog"
    covers the space before "dog", and a lone "▁" covers a space."""

    model_id = "metaspace"
    max_tokens = 20

    def __init__(self):
        from tokenizers import Tokenizer, models, pre_tokenizers

        words = ["\u2581the", "\u2581dog", "\u2581cat", "."]
        vocab = [("<unk>", 0.0), ("\u2581", -2.0)] + [(w, -3.0) for w in words]
        vocab += [(c, -6.0) for c in "abcdefghijklmnopqrstuvwxyz"]
        self.tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0))
        self.tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()

    def count(self, text):
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def token_spans(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).offsets


def test_token_chunks_from_sentencepiece_offsets_start_at_words():
    model = MetaspaceModel()
    text = "the dog  zebra the cat.\n\nquick brown dog. the cat " * 4
    assert model.token_spans("the dog")[1] == (3, 7)  # the space is in "▁dog"'s span
    chunks = vibes.chunk(text, "tokens", model=model, size=9, overlap=2)
    assert_located(text, chunks)
    for chunk in chunks:
        assert chunk.text == chunk.text.strip() and model.count(chunk.text) <= 9
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())
    assert {w for c in chunks for w in c.text.split()} == set(text.split())  # none cut


def chunk_rows(db_path):
    conn = sqlite3.connect(db_path)
    return conn.execute(
        "select c.id, c.document_id, c.chunk_index, c.start_offset, c.end_offset, "
        "c.start_line, c.end_line, c.context, d.chunker, d.settings "
        "from vibes_chunks c join vibes_documents d "
        "on d.collection_id = c.collection_id and d.document_id = c.document_id "
        "order by c.document_id, c.chunk_index"
    ).fetchall()


def model_calls(log):
    return [int(n) for n in log.read_text().split()] if log.exists() else []


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "guide.md").write_text(MARKDOWN)
    (folder / "sub" / "notes.md").write_text("# Notes\n\nBread needs time.\n")
    return folder


def test_embed_multi_stores_chunks_with_their_positions(invoke, docs, db_path, test_plugin):
    result = invoke(
        ["embed-multi", "d", "--files", docs, "**/*.md", "--chunk", "markdown", "--store"]
        + ["-m", "hash", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert "2 documents chunked" in result.stderr
    rows = chunk_rows(db_path)
    assert [r[0] for r in rows] == [
        "guide.md#1",
        "guide.md#2",
        "guide.md#3",
        "guide.md#4",
        "sub/notes.md#1",
    ]
    guide_install = rows[1]
    assert guide_install[1:3] == ("guide.md", 1)
    start, end = guide_install[3:5]
    assert MARKDOWN[start:end].startswith("## Install")
    assert guide_install[5:8] == (5, 12, "Project > Install")
    assert guide_install[8] == "markdown" and json.loads(guide_install[9]) == {"size": 2000}
    stored = vibes.Database(db_path).collection("d").get("guide.md#4")
    assert stored.content == "Project > Usage\n\n## Usage\n\nCall it."


def test_rerun_and_changed_documents(invoke, docs, db_path, test_plugin, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("VIBES_TEST_LOG", str(log))
    args = ["embed-multi", "d", "--files", docs, "**/*.md", "--chunk", "markdown"]
    args += ["-m", "hash", "-d", db_path, "--store"]
    invoke(args)
    assert sum(model_calls(log)) == 5
    again = invoke(args)
    assert "0 documents chunked, 2 unchanged" in again.stderr and sum(model_calls(log)) == 5
    # One section changes and the last one goes: one chunk embedded, one stale chunk removed.
    (docs / "guide.md").write_text(
        MARKDOWN.replace("Use Homebrew.", "Use MacPorts.").split("## Usage")[0]
    )
    changed = invoke(args)
    # guide.md: 1 chunk embedded, 2 unchanged; notes.md: unchanged, not even cut again.
    assert "Embedded 1, skipped 3 unchanged, 1 documents chunked, 1 unchanged" in changed.stderr
    assert "deleted 1 stale chunks" in changed.stderr
    assert sum(model_calls(log)) == 6
    assert [r[0] for r in chunk_rows(db_path)] == [
        "guide.md#1",
        "guide.md#2",
        "guide.md#3",
        "sub/notes.md#1",
    ]
    assert vibes.Database(db_path).collection("d").count() == 4
    # Other chunker settings cut again.
    resized = invoke(args + ["--chunk-option", "size=30"])
    assert "2 documents chunked" in resized.stderr


def test_prune_removes_chunks_of_deleted_files(invoke, docs, db_path, test_plugin):
    args = ["embed-multi", "d", "--files", docs, "**/*.md", "--chunk", "markdown"]
    args += ["-m", "hash", "-d", db_path]
    invoke(args)
    (docs / "sub" / "notes.md").unlink()
    kept = invoke(args)
    assert vibes.Database(db_path).collection("d").count() == 5  # without --prune, kept
    assert "pruned" not in kept.stderr
    pruned = invoke(args + ["--prune"])
    assert "pruned 1 item of deleted files" in pruned.stderr
    assert [r[0] for r in chunk_rows(db_path)][-1] == "guide.md#4"
    assert vibes.Database(db_path).collection("d").count() == 4


def test_a_document_that_gives_no_chunks_is_counted_and_loses_its_old_chunks(
    invoke, tmp_path, db_path, test_plugin
):
    code = tmp_path / "code"
    code.mkdir()
    (code / "a.py").write_text("def f():\n    return 1\n")
    args = ["embed-multi", "c", "--files", code, "*.py", "--chunk", "python", "-m", "hash"]
    args += ["-d", db_path]
    assert invoke(args).exit_code == 0
    assert vibes.Database(db_path).collection("c").count() == 1
    (code / "a.py").write_text("# only a comment now\n")
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "1 documents gave no chunks" in result.stderr
    assert vibes.Database(db_path).collection("c").count() == 0
    assert chunk_rows(db_path) == []


def test_documents_without_chunks_are_counted_and_bad_combinations_refused(
    invoke, tmp_path, db_path, test_plugin
):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "blank.txt").write_text("   \n\t\n")  # whitespace: empty for the reader too
    (folder / "ok.txt").write_text("Some words here.")
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": "a", "text": "One. Two."}\n{"id": "b", "text": "..."}\n')
    result = invoke(["embed-multi", "d", data, "--chunk", "sentences", "-m", "hash", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert vibes.Database(db_path).collection("d").count() == 3  # a#1, a#2, b#1
    refused = invoke(
        ["embed-multi", "d", "--files", folder, "*", "--binary", "--chunk", "lines", "-d", db_path]
    )
    assert refused.exit_code == 2 and "--chunk cuts text" in refused.output
    orphan = invoke(["embed-multi", "d", data, "--chunk-option", "size=3", "-d", db_path])
    assert orphan.exit_code == 2 and "--chunk-option needs --chunk" in orphan.output
    unknown = invoke(["embed-multi", "d", data, "--chunk", "nope", "-d", db_path])
    assert unknown.exit_code == 1 and "Unknown chunker: 'nope'" in unknown.output
    assert vibes.Database(db_path).collection("d").count() == 3


def test_similar_documents_and_context(invoke, docs, db_path, minilm):
    (docs / "sub" / "bread.md").write_text(
        "# Baking\n\nKnead the dough and let it rise.\n\n"
        "## Oven\n\nBake the bread at 220 degrees.\n"
    )
    invoke(
        ["embed-multi", "d", "--files", docs, "**/*.md", "--chunk", "markdown", "--store"]
        + ["-d", db_path]
    )
    result = invoke(["similar", "d", "-c", "baking bread in an oven", "--documents", "-d", db_path])
    assert result.exit_code == 0, result.output
    documents = [json.loads(line) for line in result.output.splitlines()]
    assert documents[0]["id"] == "sub/bread.md"
    assert len({d["id"] for d in documents}) == len(documents) == 3
    best = documents[0]["chunks"][0]
    assert best["id"] == "sub/bread.md#2" and best["lines"] == [5, 7]
    plain = invoke(
        ["similar", "d", "-c", "install on a mac", "-n", "1", "--context", "1", "-d", db_path]
    )
    hit = json.loads(plain.output)
    assert hit["id"] == "guide.md#3" and hit["document"] == "guide.md"
    assert [c["id"] for c in hit["context"]] == ["guide.md#2", "guide.md#3", "guide.md#4"]
    collection = vibes.Database(db_path).collection("d")
    summed = collection.similar_documents("baking", 2, document_score="sum")
    assert summed[0].score >= max(c.score for c in summed[0].chunks)
    with pytest.raises(vibes.VibesError, match="Unknown document score"):
        collection.similar_documents("baking", document_score="median")
    # Deleting a document by its id deletes all its chunks.
    assert collection.delete_items(["sub/bread.md"]) == 2
    assert "sub/bread.md#1" not in [m.id for m in collection.similar("baking", 10)]


def test_plugin_chunker_through_embed_multi(invoke, db_path, test_plugin):
    result = invoke(
        ["embed-multi", "w", "-", "--chunk", "words", "--chunk-option", "n=2", "-m", "hash"]
        + ["--store", "-d", db_path],
        input='{"id": "doc", "text": "one two three four five"}\n',
    )
    assert result.exit_code == 0, result.output
    collection = vibes.Database(db_path).collection("w")
    assert [m["content"] for m in collection.items()] == ["one two", "three four", "five"]


def test_python_api_chunking_options_on_embed_multi(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("api", model="hash")
    stats = collection.embed_multi(
        [("story", "One. Two. Three.")], chunk="sentences", chunk_options={"group": 2}
    )
    assert (stats.embedded, stats.documents) == (2, 1)
    assert [m["id"] for m in collection.items()] == ["story#1", "story#2"]


def test_a_document_repeated_empty_loses_the_chunks_of_its_earlier_copy(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("api", model="hash")
    # The last copy wins, as for plain items: here one that gives no chunks, coming while
    # the first copy's chunks still wait in the batch.
    with pytest.warns(UserWarning, match="repeated an id"):
        stats = collection.embed_multi(
            [("doc", "One. Two. Three."), ("other", "Four."), ("doc", "   ")],
            chunk="sentences",
        )
    assert [m["id"] for m in collection.items()] == ["other#1"]
    assert (stats.empty_documents, stats.stale_chunks) == (1, 3)
    # And again after that: chunks, no chunks, chunks; the last copy's are kept.
    with pytest.warns(UserWarning, match="repeated an id"):
        collection.embed_multi(
            [("doc", "One. Two."), ("doc", " "), ("doc", "Five. Six. Seven.")],
            chunk="sentences",
            batch_size=2,
            store=True,
        )
    assert [m["content"] for m in collection.items() if m["id"].startswith("doc")] == [
        "Five.",
        "Six.",
        "Seven.",
    ]
    # The chunks' positions are those of the last copy.
    assert [row[3:5] for row in chunk_rows(db_path) if row[1] == "doc"] == [
        (0, 5),
        (6, 10),
        (11, 17),
    ]
    # A last copy the same as what is stored still wins over an earlier, different one.
    with pytest.warns(UserWarning, match="repeated an id"):
        collection.embed_multi(
            [("doc", "Eight."), ("doc", "Five. Six. Seven.")], chunk="sentences", store=True
        )
    assert [m["content"] for m in collection.items() if m["id"].startswith("doc")] == [
        "Five.",
        "Six.",
        "Seven.",
    ]


def test_long_text_without_a_chunker_warns_how_much_was_cut(run, db_path, tmp_path, minilm):
    long_text = " ".join(f"token{i}" for i in range(400))
    data = tmp_path / "long.jsonl"
    rows = [{"id": "long", "text": long_text}, {"id": "long2", "text": long_text + " more"}]
    rows.append({"id": "short", "text": "short text"})
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run(["embed-multi", "c", data, "-d", db_path, "--batch-size", "1"])
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1  # once for the run, not once a batch
    assert "2 of 3 texts are longer than the 254 tokens" in warning[0]
    assert "tokens were cut" in warning[0] and "--chunk tokens" in warning[0]
    chunked = run(["embed-multi", "c2", data, "--chunk", "tokens", "-d", db_path])
    assert "Warning" not in chunked.stderr
