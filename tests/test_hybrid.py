"""Full-text search (FTS5, BM25) kept in step with every writer, and hybrid search."""

from __future__ import annotations

import json
import sqlite3
import sys
import warnings

import pytest
from checks import one_line_error

import vibes
from vibes.search import SearchWarning

DOCS = {
    "sqlite": "SQLite backup with the online backup API and VACUUM INTO",
    "rust": "Rust compiler error E0425 means an unresolved name in scope",
    "garden": "Planting tomatoes and basil in a sunny vegetable garden",
    "cats": "Cats sleep most of the day and hunt at dawn",
    "trains": "High speed trains connect the capital with the coast",
    "pasta": "Cook the pasta in salted boiling water until al dente",
}


@pytest.fixture
def docs(db_path, test_plugin):
    """A new collection (so with a full-text index) of six short texts, stored."""
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(DOCS.items(), store=True)
    return collection


def ids(results):
    return [match.id for match in results]


def text_hits(collection, query, n=10, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchWarning)  # no silent fallback to vectors
        return ids(collection.search(query, n, mode="text", **options))


def test_a_new_collection_is_searchable_by_its_words(docs):
    assert docs.fulltext_status()["state"] == "ready"
    assert docs.fulltext_status()["indexed"] == len(DOCS)
    assert text_hits(docs, "E0425") == ["rust"]
    # Porter stemming: "planted tomato" finds "Planting tomatoes".
    assert text_hits(docs, "planted tomato") == ["garden"]
    # Any of the words: a question finds the text that holds only some of them.
    assert text_hits(docs, "how do I make a backup of my database with sqlite?")[0] == "sqlite"
    # BM25 scores, higher is better.
    (hit,) = docs.search("E0425", mode="text")
    assert hit.score > 0 and hit.legs is None and hit.content == DOCS["rust"]


def test_text_is_indexed_without_being_stored(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("secret", model="hash")
    collection.embed_multi(DOCS.items())  # no store=True
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM embeddings WHERE content IS NOT NULL").fetchone() == (
        0,
    )
    hits = collection.search("tomatoes", mode="text")
    assert ids(hits) == ["garden"] and hits[0].content is None


def test_query_text_is_never_a_syntax_error(docs):
    for query in [
        'backup"',
        "AND",
        "backup AND",
        "NOT cats",
        "* cats",
        "cats:",
        "title:cats",
        "(cats",
        "NEAR(cats trains)",
        "-cats",
        "^cats",
        "cats OR",
        "café über naïve",
        "猫",
        "🐈 cats",
        "E0425!!!",
        "'; DROP TABLE embeddings; --",
    ]:
        found = docs.search(query, mode="text")
        if "cats" in query:
            assert "cats" in ids(found), query
    assert docs.count() == len(DOCS)


def test_a_query_without_words_falls_back_to_vectors_and_says_so(docs):
    with pytest.warns(SearchWarning, match="no words to search for; searching by vector only"):
        found = docs.search("?!", mode="text")
    assert len(found) == len(DOCS) and found.warnings
    with pytest.raises(vibes.VibesError, match="No content to search for"):
        docs.search("", mode="text")


def test_only_stop_words_still_search(docs):
    assert text_hits(docs, "the") != []  # "the" is in several texts


def test_kept_in_step_with_llm_and_plain_sql(docs, db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    cid = conn.execute("SELECT id FROM collections WHERE name = 'docs'").fetchone()[0]
    blob = conn.execute("SELECT embedding FROM embeddings WHERE id = 'cats'").fetchone()[0]
    # llm writes with INSERT OR REPLACE, with or without content.
    conn.execute(
        "INSERT OR REPLACE INTO embeddings (collection_id, id, embedding, content) "
        "VALUES (?, 'owls', ?, 'Owls hunt mice at night')",
        (cid, blob),
    )
    conn.execute(
        "INSERT OR REPLACE INTO embeddings (collection_id, id, embedding, content) "
        "VALUES (?, 'pasta', ?, NULL)",
        (cid, blob),
    )
    conn.execute("UPDATE embeddings SET content = 'Dogs fetch sticks' WHERE id = 'cats'")
    conn.execute("DELETE FROM embeddings WHERE id = 'trains'")
    conn.close()
    assert text_hits(docs, "owls mice") == ["owls"]
    assert text_hits(docs, "pasta boiling") == []  # replaced without text: no stale entry
    assert text_hits(docs, "dogs") == ["cats"]
    assert text_hits(docs, "sleep dawn") == []  # its old text is gone
    assert text_hits(docs, "trains coast") == []
    status = docs.fulltext_status()
    # Six items (-trains +owls), five with text (pasta has none now).
    assert (status["pending"], status["indexed"], status["without_text"]) == (0, 5, 1)


def test_kept_in_step_with_vibes_deletes_and_rewrites(docs, db_path):
    docs.delete_items(["cats"])
    docs.embed_multi([("garden", "Pruning roses in winter")], store=True)
    assert text_hits(docs, "cats sleep") == []
    assert text_hits(docs, "tomatoes") == []
    assert text_hits(docs, "roses") == ["garden"]


def test_an_existing_collection_gets_its_index_on_demand(db_path, test_plugin, invoke):
    collection = vibes.Database(db_path).collection("old", model="hash")
    collection.embed_multi(DOCS.items(), store=True, fulltext=False)
    assert collection.fulltext_status() == {"state": "none"}
    with pytest.warns(SearchWarning, match="has no full-text index .*'vibes index old --fts'"):
        found = collection.search("E0425", mode="text")
    assert len(found) == len(DOCS)  # answered by vectors instead
    result = invoke(["index", "old", "--fts", "-d", db_path])
    assert result.exit_code == 0, result.output
    fulltext = json.loads(result.stdout)["fulltext"]
    assert fulltext["state"] == "ready" and fulltext["indexed"] == len(DOCS)
    assert text_hits(collection, "E0425") == ["rust"]
    result = invoke(
        ["index", "old", "--fts", "--rebuild", "--tokenizer", "unicode61", "-d", db_path]
    )
    assert json.loads(result.stdout)["fulltext"]["tokenizer"] == "unicode61"
    assert text_hits(collection, "planted tomato") == []  # no stemming now
    result = invoke(["index", "old", "--fts", "--drop", "-d", db_path])
    assert json.loads(result.stdout)["fulltext"] == {"state": "none"}
    one_line_error(
        invoke(["index", "old", "--fts", "--tokenizer", "nonsense", "-d", db_path]),
        "nonsense",
    )
    assert collection.count() == len(DOCS)


def test_items_stored_without_text_are_indexed_by_a_rerun(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("plain", model="hash")
    collection.embed_multi(DOCS.items(), fulltext=False)
    status = collection.build_fulltext()
    assert status["indexed"] == 0 and status["without_text"] == len(DOCS)
    stats = collection.embed_multi(DOCS.items())  # the same input again
    assert stats.embedded == 0 and stats.skipped == len(DOCS)
    assert collection.fulltext_status()["indexed"] == len(DOCS)
    assert text_hits(collection, "E0425") == ["rust"]


def test_chunked_documents_stored_without_text_are_indexed_by_a_rerun(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("chunks", model="hash")
    text = "\n".join(f"Line {i} talks about topic{i}" for i in range(40))
    collection.embed_multi([("doc", text)], chunk="lines", fulltext=False)
    collection.build_fulltext()
    stats = collection.embed_multi([("doc", text)], chunk="lines")
    assert stats.embedded == 0
    assert text_hits(collection, "topic33") == ["doc#34"]


def test_a_damaged_index_falls_back_and_a_rebuild_mends_it(docs, db_path, invoke):
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"DROP TABLE vibes_fts_{docs.id}")
    conn.close()
    with pytest.warns(SearchWarning, match="damaged full-text index"):
        found = docs.search("E0425", mode="hybrid")
    assert len(found) == len(DOCS)
    assert json.loads(invoke(["index", "docs", "-d", db_path]).stdout)["fulltext"]["state"] == (
        "damaged"
    )
    docs.embed_multi([("new", "a new text about E0425")], store=True)  # writes still work
    invoke(["index", "docs", "--fts", "-d", db_path])  # a damaged index is rebuilt
    assert set(text_hits(docs, "E0425")) == {"rust", "new"}


def test_without_fts5_everything_but_text_search_works(db_path, test_plugin, monkeypatch):
    from vibes.store.sqlite import SQLiteStore

    monkeypatch.setattr(SQLiteStore, "fulltext_support", lambda self: "no FTS5 (test)")
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(DOCS.items(), store=True)
    assert collection.fulltext_status() == {"state": "unavailable", "reason": "no FTS5 (test)"}
    with pytest.warns(SearchWarning, match="cannot be searched by text: no FTS5"):
        found = collection.search("E0425", mode="hybrid")
    assert len(found) == len(DOCS)
    with pytest.raises(vibes.VibesError, match="no FTS5"):
        collection.build_fulltext()


def test_a_read_only_database_leaves_unapplied_changes_out(docs, db_path, writes_refused):
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DELETE FROM embeddings WHERE id = 'rust'")
    conn.execute("UPDATE embeddings SET content = 'E0425 again' WHERE id = 'garden'")
    conn.close()
    writes_refused()
    with pytest.warns(SearchWarning, match="behind by 2 changed items .* left out"):
        found = docs.search("E0425 cats", mode="text")
    assert ids(found) == ["cats"]  # neither the deleted item nor the stale text


def test_hybrid_gives_every_legs_rank_and_score(docs):
    found = docs.search("rust compiler error", mode="hybrid", n=6, fusion="rrf", weight=0.5)
    assert found[0].id == "rust"
    legs = found[0].legs
    assert set(legs) == {"vector", "text"}
    assert legs["text"]["rank"] == 1 and legs["text"]["score"] > 0
    expected = sum(1 / (60 + leg["rank"]) * 0.5 for leg in legs.values() if leg)
    assert found[0].score == pytest.approx(expected)
    # The default: 0.6 of the vector leg's scaled score, 0.4 of the text leg's.
    weighted = docs.search("rust compiler error", mode="hybrid", n=6)
    vector = [m.legs["vector"]["score"] for m in weighted if m.legs["vector"]]
    text = [m.legs["text"]["score"] for m in weighted if m.legs["text"]]
    for match in weighted:
        share = 0.0
        if match.legs["vector"]:
            low, high = min(vector), max(vector)
            share += 0.6 * (match.legs["vector"]["score"] - low) / (high - low)
        if match.legs["text"]:
            low, high = min(text), max(text)
            share += 0.4 * ((match.legs["text"]["score"] - low) / (high - low) if high > low else 1)
        assert match.score == pytest.approx(share)
    missed = [m for m in found if m.legs["text"] is None]
    assert missed and all(m.legs["vector"]["rank"] >= 1 for m in missed)
    data = found[0].to_dict()
    assert data["legs"]["text"]["rank"] == 1


def test_filters_return_n_hits_in_every_mode(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("many", model="hash")
    collection.embed_multi(
        (
            {
                "id": f"i{i:03d}",
                "content": f"common word number{i}",
                "metadata": {"even": i % 2 == 0},
            }
            for i in range(300)
        ),
        store=True,
    )
    for mode in ("vector", "text", "hybrid"):
        found = collection.search("common word", 10, mode=mode, filters={"even": True})
        assert len(found) == 10, mode
        assert all(m.metadata["even"] for m in found), mode
        found = collection.search("common", 10, mode=mode, prefix="i29")
        assert sorted(ids(found)) == [f"i29{d}" for d in range(10)], mode


def test_documents_and_context_in_text_mode(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("book", model="hash")
    text = "\n".join(f"Paragraph {i} mentions keyword{i % 7}" for i in range(30))
    collection.embed_multi([("book", text)], store=True, chunk="lines")
    (document,) = collection.search("keyword3", 1, mode="text", documents=True)
    assert document.id == "book" and document.chunks
    (hit, *_) = collection.search("keyword3", 3, mode="text", context=1)
    assert hit.document == "book" and len(hit.context) >= 2


def test_snippets_mark_the_query_words(docs):
    (hit,) = docs.search("backup", 1, mode="text", snippets=True)
    assert "**backup**" in hit.snippet
    (hit,) = docs.search("backup", 1, mode="text", snippets=True, snippet_marks=("<b>", "</b>"))
    assert "<b>backup</b>" in hit.snippet


def test_fts_syntax_passes_operators_and_reports_bad_ones(docs):
    assert text_hits(docs, "backup AND vacuum", text_syntax=True) == ["sqlite"]
    assert text_hits(docs, "back*", text_syntax=True) == ["sqlite"]
    with pytest.raises(vibes.VibesError, match="Invalid full-text query"):
        docs.search('"unbalanced', mode="text", text_syntax=True)


def test_text_search_by_id_uses_the_items_text(docs):
    found = docs.search(vibes.Query(id="rust"), 3, mode="text")
    assert "rust" not in ids(found)
    with pytest.raises(vibes.VibesError, match="needs query text"):
        docs.search([0.0] * 16, mode="text")


def test_cli_modes(docs, db_path, invoke):
    result = invoke(["similar", "docs", "-c", "E0425", "--mode", "text", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["rust"]
    result = invoke(
        ["similar", "docs", "-c", "rust compiler", "--hybrid", "-n", "2", "-d", db_path]
    )
    first = json.loads(result.stdout.splitlines()[0])
    assert first["id"] == "rust" and set(first["legs"]) == {"vector", "text"}
    result = invoke(
        [
            "similar",
            "docs",
            "-c",
            "backup",
            "--mode",
            "text",
            "--snippets",
            "--plain",
            "-d",
            db_path,
        ]
    )
    assert "**backup**" in result.stdout
    result = invoke(["similar", "docs", "-c", "x", "--hybrid", "--mode", "text", "-d", db_path])
    assert result.exit_code == 2 and "Give --hybrid or --mode text, not both" in result.output


def test_cli_says_when_text_search_falls_back(docs, db_path, run):
    result = run(["similar", "docs", "-c", "?!", "--mode", "text", "-n", "2", "-d", db_path])
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2
    assert result.stderr.strip() == (
        "Warning: The query has no words to search for; searching by vector only"
    )


def test_text_search_does_not_load_the_model(docs, db_path, run):
    code = (
        "import sys; from vibes.cli import cli\n"
        "try:\n"
        f"    cli(['similar', 'docs', '-c', 'E0425', '--mode', 'text', '-d', {db_path!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert '"rust"' in result.stdout
    assert result.stdout.strip().endswith("False False"), result.stdout + result.stderr


def test_hybrid_finds_what_each_leg_alone_misses(db_path, minilm):
    """Real MiniLM: an error code only the words pin down (its meaning is close to its
    neighbours'), a paraphrase sharing no word with its answer; hybrid gets both first."""
    texts = {
        "qx7731": "Build failed: linker exit status QX7731 after the upgrade",
        "qx7713": "Build failed: linker exit status QX7713 after the update",
        "qz1177": "Build stopped: compiler exit status QZ1177 after upgrading",
        "qx7371": "Linker failure QX7371 during the build",
        "car": "My car does not start in cold weather",
        "recipes": "Recipes for a cold winter evening",
        "washing": "Press the start button of the washing machine",
    }
    collection = vibes.Database(db_path).collection("real", model=minilm)
    collection.embed_multi(texts.items(), store=True)
    code, paraphrase = "QX7731", "automobile won't turn on when freezing"
    assert ids(collection.search(code, 1, mode="vector")) != ["qx7731"]  # meaning blurs codes
    assert ids(collection.search(code, 3, mode="text")) == ["qx7731"]
    assert "car" not in ids(collection.search(paraphrase, 3, mode="text"))  # no shared word
    assert ids(collection.search(paraphrase, 1, mode="vector")) == ["car"]
    assert ids(collection.search(code, 1, mode="hybrid")) == ["qx7731"]
    assert ids(collection.search(paraphrase, 1, mode="hybrid")) == ["car"]


# -- re-ranking ------------------------------------------------------------------------------


@pytest.fixture
def rerank_server():
    from test_rerank import FakeRerankServer

    running = FakeRerankServer(key=None)
    yield running
    running.close()


def test_rerank_orders_the_best_hits_by_the_rerankers_scores(docs, rerank_server):
    from test_rerank import relevance

    from vibes.search.rerank import ApiReranker

    reranker = ApiReranker(rerank_server.url, "fake", needs_key=False)
    query = "the online backup API of SQLite"
    found = docs.search(query, 3, mode="hybrid", rerank=reranker)
    expected = sorted(DOCS, key=lambda i: -relevance(query, DOCS[i]))[:3]
    assert ids(found) == expected
    assert [m.score for m in found] == pytest.approx([relevance(query, DOCS[i]) for i in expected])
    legs = found[0].legs
    assert set(legs) == {"vector", "text", "fused", "rerank"} and legs["rerank"]["rank"] == 1
    assert legs["fused"]["rank"] >= 1
    # It was sent the best hits of the first stage (rerank_depth of them), with their text.
    (request,) = rerank_server.requests
    assert request["body"]["query"] == query and len(request["body"]["documents"]) == len(DOCS)
    # The minimum score applies to the re-ranker's scores.
    floor = relevance(query, DOCS[expected[1]])
    assert (
        ids(docs.search(query, 3, mode="hybrid", rerank=reranker, min_score=floor))
        == (expected[:2])
    )


def test_hits_without_text_follow_the_reranked_ones(db_path, test_plugin, rerank_server):
    from vibes.search.rerank import ApiReranker

    collection = vibes.Database(db_path).collection("mixed", model="hash")
    collection.embed_multi([("stored", "backup tools for sqlite")], store=True)
    collection.embed_multi([("bare", "backup tools")])
    reranker = ApiReranker(rerank_server.url, "fake", needs_key=False)
    with pytest.warns(SearchWarning, match="1 hits have no stored text to re-rank"):
        found = collection.search("backup tools", 2, mode="text", rerank=reranker)
    assert ids(found) == ["stored", "bare"]


def test_cli_rerank_with_a_registered_server(docs, db_path, invoke, rerank_server):
    from test_rerank import relevance

    result = invoke(
        ["models", "register", "--kind", "rerank", "--api", rerank_server.url]
        + ["--api-model", "fake", "--alias", "rr"]
    )
    assert result.exit_code == 0, result.output
    query = "cook pasta in boiling water"
    result = invoke(["similar", "docs", "-c", query, "--hybrid", "--rerank", "rr", "-d", db_path])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert hits[0]["id"] == "pasta" and hits[0]["score"] == pytest.approx(
        relevance(query, DOCS["pasta"])
    )
    one_line_error(
        invoke(["similar", "docs", "-c", "x", "--rerank", "nope", "-d", db_path]),
        "Unknown re-ranker",
    )


def test_rerank_with_a_local_cross_encoder(docs, tmp_path):
    from tiny_models import make_cross_encoder

    from vibes.search.rerank import CrossEncoderReranker

    path = make_cross_encoder(tmp_path)
    query = "sqlite backup"
    found = docs.search(query, 6, mode="hybrid", rerank=str(path))
    direct = CrossEncoderReranker(path).rerank(query, [DOCS[i] for i in ids(found)])
    assert [m.score for m in found] == pytest.approx(direct, rel=1e-4)
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_the_commonest_words_leave_a_query_beyond_the_postings_budget(
    db_path, test_plugin, monkeypatch
):
    from vibes.index import fulltext

    collection = vibes.Database(db_path).collection("budget", model="hash")
    items = [(f"i{i:03d}", f"common words number {i}") for i in range(300)]
    collection.embed_multi([*items, ("rare", "a zebra among common words")], store=True)
    assert len(collection.search("common zebra", 50, mode="text")) == 50
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 100)
    # "zebra" (1 document) fits; "common" (301 documents) would pass the budget.
    assert ids(collection.search("common zebra", 50, mode="text")) == ["rare"]
    # The rarest word always stays, whatever it costs; --fts-syntax is never cut.
    assert len(collection.search("common words", 50, mode="text")) == 50
    assert len(collection.search("common OR zebra", 50, mode="text", text_syntax=True)) == 50
