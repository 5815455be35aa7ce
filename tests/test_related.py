"""Related items: precomputed exactly, kept in step with every writer through the change
log (vibes, llm-style SQL, deletes), documents as wholes, and the command line."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import vibes
from vibes import vectors as vector_format
from vibes.analysis import related as relations
from vibes.analysis.neighbours import _top, all_nearest, nearest

DIMENSIONS = 16


def random_items(count: int, seed: int, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"id": f"i{i:04d}", "content": f"item {i}", "vector": rng.normal(size=DIMENSIONS).tolist()}
        for i in range(start, start + count)
    ]


def brute_force(collection, n: int) -> dict[str, list[str]]:
    """Every item's n nearest other items by cosine, computed the plain way."""
    ids, matrix = collection.matrix()
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return {
        item_id: [ids[j] for j in np.argsort(-similarity[row], kind="stable")[:n]]
        for row, item_id in enumerate(ids)
    }


def stored_lists(collection) -> dict[str, list[str]]:
    ids = collection.database.store.item_ids(collection.id)
    found = collection.database.store.related(collection.id, ids)
    return {item_id: [other for other, _ in found.get(item_id, [])] for item_id in ids}


@pytest.fixture
def collection(db_path, test_plugin):
    target = vibes.Database(db_path).collection("c", model="hash")
    target.embed_multi(random_items(300, seed=1), store=True)
    return target


def test_build_matches_brute_force_with_scores(collection):
    status = relations.build_related(collection, 5)
    assert status.state == "ready" and status.items == 300 and status.n == 5
    assert stored_lists(collection) == brute_force(collection, 5)
    ids, matrix = collection.matrix()
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    found, warnings = relations.read_related(collection, "i0007")
    assert warnings == [] and len(found) == 5
    row = ids.index("i0007")
    for other, score in found:
        assert score == pytest.approx(float(unit[row] @ unit[ids.index(other)]), abs=1e-5)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_blocks_of_any_size_give_the_same_neighbours():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(97, 8)).astype(np.float32)
    whole = {int(r): b.tolist() for rows, best, _ in nearest(matrix, 4) for r, b in zip(rows, best)}
    for block in (1, 7, 50):
        parts = {
            int(r): b.tolist()
            for rows, best, _ in nearest(matrix, 4, block=block)
            for r, b in zip(rows, best)
        }
        assert parts == whole
    # More neighbours asked than there are other points: all of them, never itself.
    rows, best, scores = next(iter(nearest(matrix[:5], 10)))
    assert best.shape == (5, 4) and all(r not in b for r, b in zip(rows, best.tolist()))


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize(
    "count, n, block", [(300, 7, None), (300, 7, 13), (130, 10, 64), (6, 10, 4)]
)
def test_every_pair_scored_once_gives_the_same_neighbours(distance, count, n, block):
    rng = np.random.default_rng(count + n)
    matrix = rng.normal(size=(count, 8)).astype(np.float32)
    if distance == "cosine":
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    where, best = all_nearest(matrix, n, distance=distance, block=block)
    expected = list(nearest(matrix, n, distance=distance))
    assert where.shape == (count, min(n, count - 1))
    assert np.array_equal(where, np.concatenate([b for _, b, _ in expected]))
    assert np.allclose(best, np.concatenate([s for _, _, s in expected]), atol=1e-5)


def test_wide_rows_are_narrowed_by_their_chunks_exactly():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(20, 5_000)).astype(np.float32)
    values[3, 4_990:] = 50.0 + np.arange(10)  # the best, in the short last chunk
    for k in (1, 10):
        found = np.sort(_top(values, k), axis=1)
        expected = np.sort(np.argsort(-values, axis=1)[:, :k], axis=1)
        assert np.array_equal(found, expected)


@pytest.mark.parametrize("distance", ["dot", "euclidean"])
def test_other_distances(db_path, test_plugin, distance):
    target = vibes.Database(db_path).collection("d", model="hash", distance=distance)
    target.embed_multi(random_items(120, seed=4))
    relations.build_related(target, 3)
    ids, matrix = target.matrix()
    if distance == "dot":
        similarity = matrix @ matrix.T
    else:
        similarity = -np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2)
    np.fill_diagonal(similarity, -np.inf)
    expected = {i: [ids[j] for j in np.argsort(-similarity[r])[:3]] for r, i in enumerate(ids)}
    assert stored_lists(target) == expected
    # Scores are those a search gives (1 / (1 + distance) for euclidean).
    found, _ = relations.read_related(target, "i0002")
    searched = target.similar_by_id("i0002", 3, exact=True)
    assert [m.id for m in searched] == [other for other, _ in found]
    assert [s for _, s in found] == pytest.approx([m.score for m in searched], abs=1e-5)


def test_every_kind_of_change_is_applied_incrementally(collection, db_path):
    relations.build_related(collection, 5)
    rng = np.random.default_rng(9)
    # vibes writes: new items, and changed vectors for existing ones (applied by the
    # write itself: few items changed).
    collection.embed_multi(random_items(15, seed=11, start=1000))
    changed = [
        {"id": f"i{i:04d}", "content": f"new {i}", "vector": rng.normal(size=DIMENSIONS).tolist()}
        for i in (3, 50, 51, 200)
    ]
    collection.embed_multi(changed)
    assert relations.related_status(collection).pending == 0
    assert stored_lists(collection) == brute_force(collection, 5)
    # vibes deletes.
    collection.delete_items(["i0010", "i0011", "i1003"])
    assert stored_lists(collection) == brute_force(collection, 5)
    # Another program writes with plain SQL (as llm does): the next read applies it.
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO embeddings (collection_id, id, embedding, content) "
            "VALUES (?, 'from-sql', ?, 'x')",
            (collection.id, vector_format.encode(rng.normal(size=DIMENSIONS).tolist())),
        )
        conn.execute(
            "UPDATE embeddings SET embedding = ? WHERE collection_id = ? AND id = 'i0100'",
            (vector_format.encode(rng.normal(size=DIMENSIONS).tolist()), collection.id),
        )
        conn.execute(
            "DELETE FROM embeddings WHERE collection_id = ? AND id = 'i0020'", (collection.id,)
        )
    conn.close()
    assert relations.related_status(collection).pending == 3
    # Applied incrementally: the lists that changed, not all of them.
    applied = relations.update_related(collection)
    assert applied is not None and 3 <= applied.updated < 100
    found, _ = relations.read_related(collection, "from-sql")
    assert [other for other, _ in found] == brute_force(collection, 5)["from-sql"]
    assert stored_lists(collection) == brute_force(collection, 5)
    assert "i0020" not in {o for lists in stored_lists(collection).values() for o in lists}


def test_a_large_write_is_left_for_the_next_read(collection, monkeypatch):
    relations.build_related(collection, 4)
    monkeypatch.setattr(relations, "INLINE_CHANGES", 5)
    collection.embed_multi(random_items(20, seed=12, start=2000))
    assert relations.related_status(collection).pending == 20
    # A read applies few changes, and reads stale lists (saying so) past that.
    assert relations.read_related(collection, "i0001")[1] == [
        "The related items of collection 'c' miss 20 changed items "
        "(run 'vibes related c' to apply them)"
    ]
    monkeypatch.setattr(relations, "INLINE_CHANGES", 50)
    assert relations.read_related(collection, "i2003")[1] == []
    assert relations.related_status(collection).pending == 0
    assert stored_lists(collection) == brute_force(collection, 4)


def test_many_changes_rebuild(collection):
    relations.build_related(collection, 3)
    collection.embed_multi(random_items(100, seed=13, start=3000))  # past REBUILD_SHARE
    assert stored_lists(collection) == brute_force(collection, 3)


def test_documents_relate_as_wholes(db_path, test_plugin, invoke):
    target = vibes.Database(db_path).collection("docs", model="hash")
    topics = {
        "cats": "cats purr\ncats nap in the sun\nkittens chase string",
        "dogs": "dogs bark\ndogs fetch sticks\npuppies chase balls",
        "kittens": "kittens purr\nkittens nap\ncats chase string",
        "rust": "rust compiler borrow checker\ncargo builds crates",
    }
    target.embed_multi(topics.items(), store=True, chunk="lines")
    assert len(target.database.store.chunk_ids(target.id)) == 11
    relations.build_related(target, 2, documents=True)
    found, _ = relations.read_related(target, "cats")
    assert [other for other, _ in found][0] == "kittens"
    assert relations.related_status(target).items == 4
    # Printed with the document's text (its chunks', in order).
    printed = json.loads(invoke(["related", "docs", "cats", "-n", "1", "-d", db_path]).output)
    assert printed["id"] == "kittens" and printed["content"] == topics["kittens"]
    # A changed document is related again as a whole; a deleted one leaves every list.
    target.embed_multi([("rust", "cats purr and nap\nkittens chase string")], chunk="lines")
    assert relations.read_related(target, "rust")[0][0][0] in ("cats", "kittens")
    target.delete_items(["kittens"])
    lists = target.database.store.related(target.id, ["cats", "dogs", "rust"])
    assert all("kittens" not in [o for o, _ in pairs] for pairs in lists.values())
    assert "kittens" not in lists and set(lists) == {"cats", "dogs", "rust"}


def test_command_line(collection, db_path, invoke):
    result = invoke(["related", "c", "-n", "4", "-d", db_path])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["state"] == "ready" and status["n"] == 4 and status["items"] == 300
    result = invoke(["related", "c", "i0001", "-d", db_path])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["id"] for r in rows] == brute_force(collection, 4)["i0001"]
    assert rows[0]["content"].startswith("item ") and rows[0]["score"] >= rows[-1]["score"]
    assert len(invoke(["related", "c", "i0001", "-n", "2", "-d", db_path]).output.splitlines()) == 2
    table = invoke(["related", "c", "i0001", "--table", "-d", db_path]).output
    assert table.splitlines()[0].split() == ["id", "score", "content"]
    # Asking again with another n recomputes; the same n only applies changes.
    again = json.loads(invoke(["related", "c", "-n", "6", "-d", db_path]).output)
    assert again["n"] == 6 and again["updated"] == 300
    same = json.loads(invoke(["related", "c", "-d", db_path]).output)
    assert same["n"] == 6 and same["pending"] == 0
    assert json.loads(invoke(["related", "c", "--status", "-d", db_path]).output)["n"] == 6
    dropped = json.loads(invoke(["related", "c", "--drop", "-d", db_path]).output)
    assert dropped == {"state": "none"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["related", "nope"], "does not exist"),
        (["related", "c", "i0001"], "has no related items yet"),
        (["related", "c", "i0001", "--rebuild"], "only reads"),
        (["related", "c", "--drop", "--status"], "one of"),
        (["related", "c", "-n", "0"], "0"),
    ],
)
def test_command_line_errors(collection, db_path, invoke, args, message):
    result = invoke([*args, "-d", db_path])
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output


def test_unknown_item_and_read_only_database(collection, db_path, run, writes_refused):
    relations.build_related(collection, 3)
    result = run(["related", "c", "missing", "-d", db_path])
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: No item 'missing' in collection 'c'"
    # A change from another program, on a database that cannot be written: the stored
    # lists are read as they are, with a warning.
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "DELETE FROM embeddings WHERE collection_id = ? AND id = 'i0005'", (collection.id,)
        )
    conn.close()
    writes_refused()
    found, warnings = relations.read_related(collection, "i0001")
    assert len(found) == 3
    assert warnings == [
        "The related items of collection 'c' miss 1 changed items (the database cannot be written)"
    ]
