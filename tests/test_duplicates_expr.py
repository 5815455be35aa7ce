"""`vibes duplicates` (near-duplicate pairs by blocked matrix products) and
`vibes similar --expr` (vector arithmetic)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import vibes
from vibes.analysis.arithmetic import (
    expression_ids,
    expression_search,
    expression_vector,
    parse_expression,
)
from vibes.analysis.duplicates import duplicate_pairs, find_duplicates, group_pairs


def unit(matrix):
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


def store_vectors(collection, vectors):
    collection.embed_multi(
        [{"id": item_id, "vector": np.asarray(v).tolist()} for item_id, v in vectors.items()]
    )
    return collection


def with_near_copies(count=150, seed=2):
    """Random vectors, a third of them followed by a slightly moved copy (or two)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, 16))
    rows = [base]
    for scale in (0.05, 0.2):
        chosen = rng.choice(count, count // 3, replace=False)
        rows.append(base[chosen] + scale * rng.normal(size=(len(chosen), 16)))
    return np.concatenate(rows).astype(np.float32)


def brute_force(matrix, threshold, distance):
    """Every pair i < j scoring at least threshold, from the whole n x n matrix."""
    x = matrix.astype(np.float64)
    if distance == "cosine":
        scores = unit(x) @ unit(x).T
    elif distance == "dot":
        scores = x @ x.T
    else:
        gaps = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
        scores = 1 / (1 + gaps)
    scores = np.round(scores, 6)
    rows, columns = np.nonzero(np.triu(scores >= threshold, k=1))
    return {(int(i), int(j)): float(scores[i, j]) for i, j in zip(rows, columns)}


@pytest.mark.parametrize(
    "distance, thresholds",
    [
        ("cosine", [0.3, 0.8, 0.95, 0.999]),
        ("dot", [5.0, 15.0]),
        ("euclidean", [0.3, 0.6]),
    ],
)
def test_pairs_equal_a_brute_force_reference(distance, thresholds):
    matrix = with_near_copies()
    compared = unit(matrix).astype(np.float32) if distance == "cosine" else matrix
    for threshold in thresholds:
        want = brute_force(matrix, threshold, distance)
        assert want, "each threshold should find some pairs"
        for block in (1, 7, 64, None, 10_000):
            rows, columns, scores = duplicate_pairs(
                compared, threshold, distance=distance, block=block
            )
            got = dict(zip(zip(rows.tolist(), columns.tolist()), scores.tolist()))
            assert got.keys() == want.keys(), (threshold, block)
            assert np.allclose([got[k] for k in want], list(want.values()), atol=2e-6)
            assert list(scores) == sorted(scores, reverse=True)
            assert all(i < j for i, j in got)


def test_a_limit_keeps_the_best_pairs_whatever_the_block():
    matrix = unit(with_near_copies()).astype(np.float32)
    everything = duplicate_pairs(matrix, 0.3, block=5)
    for limit in (1, 10, 37):
        for block in (3, 50):
            best = duplicate_pairs(matrix, 0.3, block=block, limit=limit)
            for got, want in zip(best, everything):
                assert np.array_equal(got, want[:limit])


@pytest.fixture
def copies(db_path, test_plugin):
    """A cosine collection of random vectors with near and exact copies, and its matrix."""
    matrix = with_near_copies(60)
    ids = [f"item-{i:03d}" for i in range(len(matrix))]
    collection = vibes.Database(db_path).collection("c", model="hash")
    store_vectors(collection, dict(zip(ids, matrix)))
    return collection, matrix, ids


def test_find_duplicates_names_each_pair_once(copies):
    collection, matrix, ids = copies
    want = brute_force(matrix, 0.9, "cosine")
    pairs = find_duplicates(collection, 0.9, block=8)
    assert {(p.id, p.other_id) for p in pairs} == {(ids[i], ids[j]) for i, j in want}
    assert all(p.id < p.other_id for p in pairs)
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)
    assert find_duplicates(collection, 0.9, limit=3) == pairs[:3]


def test_identical_vectors_score_exactly_one(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("same", model="hash")
    collection.embed_multi([("a", "the same words"), ("b", "the same words"), ("c", "other")])
    pairs = find_duplicates(collection, 1.0)
    assert [(p.id, p.other_id, p.score) for p in pairs] == [("a", "b", 1.0)]


def test_groups_join_pairs_through_their_members():
    from vibes.analysis.duplicates import Pair

    pairs = [Pair("a", "b", 0.99), Pair("c", "d", 0.97), Pair("b", "e", 0.96)]
    groups = group_pairs(pairs)
    assert [g.ids for g in groups] == [["a", "b", "e"], ["c", "d"]]
    assert (groups[0].max_score, groups[0].min_score) == (0.99, 0.96)
    assert groups[1].to_dict() == {
        "ids": ["c", "d"],
        "size": 2,
        "max_score": 0.97,
        "min_score": 0.97,
    }


def test_documents_are_compared_as_wholes(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    text = "apple fruit pie car engine wheel"
    collection.embed_multi(
        [("one", text), ("two", text), ("three", "snow ice cold")],
        chunk="words",
        chunk_options={"n": 3},
    )
    wholes = find_duplicates(collection, 0.999, documents=True)
    assert [(p.id, p.other_id) for p in wholes] == [("one", "two")]
    chunks = {(p.id, p.other_id) for p in find_duplicates(collection, 0.999)}
    assert chunks == {("one#1", "two#1"), ("one#2", "two#2")}


def test_cli_duplicates(invoke, copies, db_path):
    collection, matrix, ids = copies
    result = invoke(["duplicates", "c", "-d", db_path, "--threshold", "0.9", "--block", "8"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [p.to_dict() for p in find_duplicates(collection, 0.9)]
    assert rows and all(set(row) == {"id", "other_id", "score"} for row in rows)

    top = invoke(["duplicates", "c", "-d", db_path, "-t", "0.9", "-n", "2"])
    assert [json.loads(line) for line in top.output.splitlines()] == rows[:2]
    table = invoke(["duplicates", "c", "-d", db_path, "-t", "0.9", "--table"])
    assert table.output.splitlines()[0].split() == ["id", "other_id", "score"]
    assert len(table.output.splitlines()) == len(rows) + 2

    grouped = invoke(["duplicates", "c", "-d", db_path, "-t", "0.9", "--group"])
    groups = [json.loads(line) for line in grouped.output.splitlines()]
    assert groups == [g.to_dict() for g in group_pairs(find_duplicates(collection, 0.9))]
    members = {item for row in rows for item in (row["id"], row["other_id"])}
    assert sorted(i for g in groups for i in g["ids"]) == sorted(members)
    assert [g["size"] for g in groups] == sorted((g["size"] for g in groups), reverse=True)
    one = invoke(["duplicates", "c", "-d", db_path, "-t", "0.9", "--group", "-n", "1"])
    assert [json.loads(line) for line in one.output.splitlines()] == groups[:1]

    for args in (["-n", "0"], ["--block", "0"], ["-t", "high"]):
        bad = invoke(["duplicates", "c", "-d", db_path, *args])
        assert bad.exit_code == 2
    missing = invoke(["duplicates", "nope", "-d", db_path])
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1


# -- expressions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("germany + paris - france", [(1, "germany"), (1, "paris"), (-1, "france")]),
        ("-king + queen", [(-1, "king"), (1, "queen")]),
        ("+ a", [(1, "a")]),
        ("new york + city", [(1, "new york"), (1, "city")]),
        ("e-mail - spam", [(1, "e-mail"), (-1, "spam")]),
        ("c++ -java", [(1, "c++"), (-1, "java")]),
        ("a+b", [(1, "a+b")]),
        ('"rock - paper" + scissors', [(1, "rock - paper"), (1, "scissors")]),
        ("'it''s' - x", [(1, "its"), (-1, "x")]),
        ("id:'notes - 1.md' - id:x", [(1, "id:notes - 1.md"), (-1, "id:x")]),
        ('"a"-b', [(1, "a"), (-1, "b")]),
        ("0.5*paris + 2 * london - 1e-1*rome", [(0.5, "paris"), (2, "london"), (-0.1, "rome")]),
        ("2024 report", [(1, "2024 report")]),
        ("  spaced   out  ", [(1, "spaced   out")]),
    ],
)
def test_parse_expression(text, parsed):
    assert parse_expression(text) == parsed


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "Empty expression"),
        ("   ", "Empty expression"),
        ("paris +", "ends with '+'"),
        ("paris -  ", "ends with '-'"),
        ("-", "ends with '-'"),
        ('"paris + london', 'Unclosed quote (") at position 1'),
        ("a - 'b", "Unclosed quote (') at position 5"),
        ("a + + b", "Two operators in a row at position 5"),
        ('"" + a', "Empty term at position 1"),
        ("a + 3*", "The weight 3 multiplies no term"),
    ],
)
def test_bad_expressions_say_what_is_wrong(text, problem):
    with pytest.raises(vibes.InputError, match=re.escape(problem)):
        parse_expression(text)


def test_expression_ids():
    assert expression_ids("id:a + b - id:c + 2*id:a") == ["a", "c"]


@pytest.fixture
def arithmetic(db_path, test_plugin):
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(40, 16)).astype(np.float32)
    ids = [f"w{i:02d}" for i in range(40)]
    collection = vibes.Database(db_path).collection("w", model="hash")
    collection.embed_multi(
        [
            {"id": item_id, "vector": row.tolist(), "metadata": {"even": i % 2 == 0}}
            for i, (item_id, row) in enumerate(zip(ids, matrix))
        ]
    )
    return collection, matrix


def test_expression_vector_is_the_signed_sum_of_unit_terms(arithmetic):
    collection, matrix = arithmetic
    got = expression_vector(collection, "id:w01 + 0.5*id:w02 - id:w03")
    want = unit(matrix[1]) + 0.5 * unit(matrix[2]) - unit(matrix[3])
    assert np.allclose(got, want, atol=1e-6)
    text = expression_vector(collection, "cats - dogs")
    cats, dogs = (unit(collection.model().embed(word)) for word in ("cats", "dogs"))
    assert np.allclose(text, cats - dogs, atol=1e-6)
    with pytest.raises(vibes.VibesError, match="cancel out"):
        expression_vector(collection, "id:w01 - id:w01")
    with pytest.raises(vibes.ItemNotFoundError, match="No item 'w99'"):
        expression_vector(collection, "id:w01 - id:w99")


def test_expression_search_leaves_the_terms_out(arithmetic):
    collection, matrix = arithmetic
    vector = unit(matrix[1]) + unit(matrix[2]) - unit(matrix[3])
    reference = [m.id for m in collection.search(vector.astype(np.float32), 40)]
    found = expression_search(collection, "id:w01 + id:w02 - id:w03", 5)
    assert [m.id for m in found] == [i for i in reference if i not in {"w01", "w02", "w03"}][:5]
    kept = expression_search(collection, "id:w01 + id:w02 - id:w03", 5, keep_terms=True)
    assert [m.id for m in kept] == reference[:5]
    assert {"w01", "w02"} & {m.id for m in kept}
    # Filters still give n hits: the terms are left out after the filtered search.
    pair = (unit(matrix[1]) + unit(matrix[2])).astype(np.float32)
    filtered = [m.id for m in collection.search(pair, 40, filters=["even=true"])]
    even = expression_search(collection, "id:w01 + id:w02", 5, filters=["even=true"])
    assert [m.id for m in even] == [i for i in filtered if i != "w02"][:5]
    assert "w02" in filtered[:5]


def test_cli_similar_expr(invoke, arithmetic, db_path):
    collection, matrix = arithmetic
    expression = "id:w01 + id:w02 - id:w03"
    result = invoke(["similar", "w", "--expr", expression, "-n", "4", "-d", db_path])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    want = expression_search(collection, expression, 4)
    assert [row["id"] for row in rows] == [m.id for m in want]
    assert [row["score"] for row in rows] == pytest.approx([m.score for m in want])
    kept = invoke(["similar", "w", "--expr", expression, "--keep-terms", "-d", db_path, "-n", "40"])
    assert {"w01", "w02", "w03"} <= {json.loads(line)["id"] for line in kept.output.splitlines()}
    odd = invoke(
        ["similar", "w", "--expr", expression, "-f", "even=false", "--table", "-d", db_path]
    )
    assert odd.exit_code == 0, odd.output
    listed = [line.split()[0] for line in odd.output.splitlines()[2:]]
    assert listed and all(int(i[1:]) % 2 == 1 for i in listed) and "w01" not in listed


def test_cli_similar_expr_documents(invoke, db_path, test_plugin):
    collection = vibes.Database(db_path).collection("docs", model="hash")
    collection.embed_multi(
        [("a", "apple fruit pie car engine wheel"), ("b", "apple fruit pie snow ice cold")],
        chunk="words",
        chunk_options={"n": 3},
    )
    collection.embed_multi([("c", "car engine wheel")])
    result = invoke(["similar", "docs", "--expr", "id:a#2 + fruit", "--documents", "-d", db_path])
    assert result.exit_code == 0, result.output
    found = [json.loads(line)["id"] for line in result.output.splitlines()]
    assert "a" not in found and set(found) == {"b", "c"}


@pytest.mark.parametrize(
    "args, problem",
    [
        (["w01", "--expr", "a + b"], "not both"),
        (["-c", "text", "--expr", "a + b"], "not both"),
        (["-i", "-", "--expr", "a + b"], "not both"),
        (["--expr", "a + b", "--mode", "text"], "searches by vector"),
        (["--expr", "a + b", "--hybrid"], "searches by vector"),
        (["-c", "a", "--keep-terms"], "--keep-terms applies with --expr"),
    ],
)
def test_cli_similar_expr_usage_errors(invoke, arithmetic, db_path, args, problem):
    result = invoke(["similar", "w", *args, "-d", db_path])
    assert result.exit_code == 2 and problem in result.output


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("paris +", "ends with '+'"),
        ("", "Empty expression"),
        ("'paris", "Unclosed quote"),
        ("id:nope - a", "No item 'nope'"),
        ("id:w01 - id:w01", "cancel out"),
    ],
)
def test_cli_similar_expr_errors_are_one_line(invoke, arithmetic, db_path, expression, problem):
    result = invoke(["similar", "w", "--expr", expression, "-d", db_path])
    assert result.exit_code == 1 and problem in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
