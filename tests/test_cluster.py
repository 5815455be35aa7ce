"""`vibes cluster` and `vibes.analysis.cluster`: llm-cluster's output shape, reproducible
k-means (full and mini-batch), hdbscan's noise, names from distinctive words (c-TF-IDF),
summaries from an LLM within its context (tests/fake_chat.py), --store, --documents, and
one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from checks import one_line_error
from fake_chat import KEY

import vibes
from vibes.analysis import cluster as clustering
from vibes.analysis.cluster import (
    DEFAULT_SAMPLE_TOKENS,
    DEFAULT_SUMMARY_PROMPT,
    cluster_collection,
    summarise_cluster,
    summary_sample,
)
from vibes.analysis.naming import cluster_names, distinctive_words, tokens

# Three topics of different sizes, so that the clusters' order (largest first) is known.
TOPICS = {
    "astronomy": ("planet", "orbit", "telescope", "galaxy", "comet", "nebula"),
    "cooking": ("recipe", "oven", "flour", "butter", "simmer", "garlic"),
    "sailing": ("boat", "anchor", "harbour", "sail", "keel", "mooring"),
}
SIZES = {"astronomy": 10, "cooking": 8, "sailing": 6}
# Words every topic uses now and then, and stop words: never a cluster's name.
FILLER = ("notes", "daily", "guide", "handbook")
STOP = ("the", "about", "with", "and")


def topic_rows(seed: int = 0, noise: float = 0.05, dims: int = 16) -> list[dict]:
    """Items around one well-separated centre per topic, each text four of its topic's
    words, a filler word and stop words."""
    rng = np.random.default_rng(seed)
    rows = []
    for topic, words in TOPICS.items():
        centre = rng.normal(size=dims)
        centre /= np.linalg.norm(centre)
        for i in range(SIZES[topic]):
            picked = list(rng.choice(words, size=4, replace=False))
            text = " ".join([STOP[i % 4], *picked[:2], "the", FILLER[rng.integers(4)], *picked[2:]])
            vector = centre + noise * rng.normal(size=dims)
            rows.append({"id": f"{topic}-{i:02d}", "content": text, "vector": vector.tolist()})
    return rows


def topic_of(item_id: str) -> str:
    return item_id.split("-")[0]


@pytest.fixture
def topics(db_path, test_plugin):
    collection = vibes.Database(db_path).collection("topics", model="hash")
    collection.embed_multi(topic_rows(), store=True)
    return collection


def cli_clusters(invoke, *args):
    result = invoke(["cluster", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result


# -- shape -----------------------------------------------------------------------------------


def test_output_has_llm_clusters_shape_plus_name_and_size(invoke, topics, db_path):
    rows, _ = cli_clusters(invoke, "topics", "3", "-d", db_path)
    assert isinstance(rows, list) and len(rows) == 3
    seen = []
    for number, row in enumerate(rows):
        assert set(row) == {"id", "items", "summary", "name", "size"}
        assert row["id"] == str(number)  # a string, as llm-cluster prints it
        assert row["summary"] is None
        assert row["size"] == len(row["items"])
        for item in row["items"]:
            assert set(item) == {"id", "content"}
            assert isinstance(item["content"], str)
            seen.append(item["id"])
    assert sorted(seen) == sorted(r["id"] for r in topic_rows())
    # Largest first.
    assert [row["size"] for row in rows] == [10, 8, 6]
    # The Python API gives the same thing.
    result = cluster_collection(topics, 3)
    assert result.to_json() == rows
    assert result.unclustered == 0 and result.algorithm == "kmeans" and result.n == 3
    assert {i: c for i, c in result.assignments.items()} == {
        item["id"]: int(row["id"]) for row in rows for item in row["items"]
    }


def test_nl_prints_one_cluster_a_line_and_truncate_cuts_content(invoke, topics, db_path):
    rows, _ = cli_clusters(invoke, "topics", "3", "-d", db_path)
    result = invoke(["cluster", "topics", "3", "--nl", "--truncate", "7", "-d", db_path])
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    parsed = [json.loads(line) for line in lines]
    assert [p["id"] for p in parsed] == [r["id"] for r in rows]
    for short, full in zip(parsed, rows):
        assert [i["content"] for i in short["items"]] == [i["content"][:7] for i in full["items"]]
        assert max(len(i["content"]) for i in short["items"]) == 7
    whole, _ = cli_clusters(invoke, "topics", "3", "--truncate", "0", "-d", db_path)
    texts = {r["id"]: r["content"] for r in topic_rows()}
    assert all(i["content"] == texts[i["id"]] for r in whole for i in r["items"])
    long_text = "word " * 60
    topics.embed_multi([{"id": "long", "content": long_text, "vector": [1.0] * 16}], store=True)
    cut, _ = cli_clusters(invoke, "topics", "3", "-d", db_path)
    found = [i for r in cut for i in r["items"] if i["id"] == "long"]
    assert found[0]["content"] == long_text[:100]  # llm-cluster's default: 100 characters


def test_items_without_text_have_null_content(invoke, topics, db_path):
    topics.embed_multi([{"id": "bare", "vector": [0.3] * 16}])
    rows, _ = cli_clusters(invoke, "topics", "2", "-d", db_path)
    found = [i for r in rows for i in r["items"] if i["id"] == "bare"]
    assert found == [{"id": "bare", "content": None}]


# -- clusters --------------------------------------------------------------------------------


def test_kmeans_recovers_the_topics_and_names_them_by_their_words(topics):
    result = cluster_collection(topics, 3)
    for cluster, (topic, words) in zip(result.clusters, TOPICS.items()):
        assert {topic_of(item.id) for item in cluster.items} == {topic}
        assert len(cluster.words) == 4
        assert set(cluster.words) <= set(words), (topic, cluster.name)
        assert cluster.name == ", ".join(cluster.words)


def test_items_run_from_the_centre_outwards(test_plugin, db_path):
    rng = np.random.default_rng(3)
    rows = [
        {"id": f"i{n:03d}", "content": f"text {n}", "vector": rng.normal(size=16).tolist()}
        for n in range(120)
    ]
    collection = vibes.Database(db_path).collection("blob", model="hash")
    collection.embed_multi(rows, store=True)
    result = cluster_collection(collection, 4)
    points = clustering.load_points(collection)
    row_of = {item_id: i for i, item_id in enumerate(points.ids)}
    for cluster in result.clusters:
        members = points.vectors[[row_of[item.id] for item in cluster.items]]
        centre = members.mean(axis=0)  # k-means' centre, once converged
        distances = ((members - centre) ** 2).sum(axis=1)
        assert np.all(np.diff(distances) >= -1e-4), cluster.id
    sizes = [c.size for c in result.clusters]
    assert sizes == sorted(sizes, reverse=True)


def random_collection(db_path, count=300, name="random"):
    rng = np.random.default_rng(11)
    rows = [
        {"id": f"r{n:04d}", "content": f"item {n}", "vector": rng.normal(size=16).tolist()}
        for n in range(count)
    ]
    collection = vibes.Database(db_path).collection(name, model="hash")
    collection.embed_multi(rows, store=True)
    return collection


def test_the_same_seed_gives_identical_output_another_seed_may_not(invoke, test_plugin, db_path):
    random_collection(db_path)
    first = invoke(["cluster", "random", "6", "--seed", "5", "-d", db_path]).stdout
    again = invoke(["cluster", "random", "6", "--seed", "5", "-d", db_path]).stdout
    assert first == again and json.loads(first)
    others = {
        invoke(["cluster", "random", "6", "--seed", str(seed), "-d", db_path]).stdout
        for seed in (1, 2, 3)
    }
    # Points with no structure: k-means' local optimum depends on where it starts.
    assert others - {first}


def test_mini_batch_k_means_above_the_threshold_is_reproducible(test_plugin, db_path, monkeypatch):
    collection = random_collection(db_path)
    import sklearn.cluster

    made = []
    original = sklearn.cluster.MiniBatchKMeans

    def spy(*args, **kwargs):
        made.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", spy)
    monkeypatch.setattr(clustering, "MINIBATCH_ABOVE", 100)
    first = cluster_collection(collection, 5, seed=9)
    second = cluster_collection(collection, 5, seed=9)
    assert len(made) == 2 and made[0]["random_state"] == 9
    assert first.to_json() == second.to_json()
    assert first.assignments == second.assignments
    monkeypatch.setattr(clustering, "MINIBATCH_ABOVE", 10_000)
    cluster_collection(collection, 5, seed=9)
    assert len(made) == 2  # below the threshold: full k-means


def test_hdbscan_reports_what_it_left_unclustered(invoke, test_plugin, db_path):
    rows = topic_rows(noise=0.02)
    rng = np.random.default_rng(7)
    outliers = [
        {"id": f"odd-{i}", "content": "strange", "vector": (rng.normal(size=16) * 4).tolist()}
        for i in range(4)
    ]
    collection = vibes.Database(db_path).collection("mixed", model="hash")
    collection.embed_multi(rows + outliers, store=True)
    result = cluster_collection(collection, algorithm="hdbscan", min_cluster_size=4)
    assert result.unclustered == 4 and result.n is None and result.min_cluster_size == 4
    assert {i for i, c in result.assignments.items() if c == -1} == {o["id"] for o in outliers}
    assert len(result.clusters) == 3
    assert sum(c.size for c in result.clusters) + result.unclustered == len(rows) + 4
    for cluster in result.clusters:
        assert len({topic_of(item.id) for item in cluster.items}) == 1
    cli = invoke(
        ["cluster", "mixed", "--algorithm", "hdbscan", "--min-cluster-size", "4", "-d", db_path]
    )
    assert cli.exit_code == 0
    assert "left 4 of 28 items unclustered" in cli.stderr
    printed = json.loads(cli.stdout)
    assert [row["id"] for row in printed] == ["0", "1", "2"]  # no cluster -1
    assert "odd-0" not in cli.stdout


def test_hdbscan_on_many_points_runs_on_principal_components(
    invoke, test_plugin, db_path, monkeypatch
):
    collection = vibes.Database(db_path).collection("mixed", model="hash")
    outlier = {"id": "odd", "content": "strange", "vector": [9.0] * 16}
    collection.embed_multi([*topic_rows(noise=0.02), outlier], store=True)
    exact = cluster_collection(collection, algorithm="hdbscan", min_cluster_size=4)
    assert exact.reduced_to is None
    monkeypatch.setattr(clustering, "HDBSCAN_EXACT_UP_TO", 10)
    monkeypatch.setattr(clustering, "HDBSCAN_DIMENSIONS", 4)
    reduced = cluster_collection(collection, algorithm="hdbscan", min_cluster_size=4)
    assert reduced.reduced_to == 4 and reduced.settings()["reduced_to"] == 4
    # Well-separated topics stay apart in 4 dimensions.
    assert sorted(sorted(i.id for i in c.items) for c in reduced.clusters) == sorted(
        sorted(i.id for i in c.items) for c in exact.clusters
    )
    cli = invoke(["cluster", "mixed", "--algorithm", "hdbscan", "--min-cluster-size", "4",
                  "-d", db_path])  # fmt: skip
    assert "reduced to 4 dimensions by PCA" in cli.stderr


def test_principal_components_match_scikit_learns_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(5)
    vectors = (rng.normal(size=(300, 12)) * np.linspace(3, 0.1, 12) + 2).astype(np.float32)
    ours = clustering._principal_components(vectors, 4)
    theirs = PCA(4, svd_solver="full").fit_transform(vectors)
    signs = np.sign((ours * theirs).sum(axis=0))  # each component's sign is arbitrary
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-3)


def test_hdbscan_with_fewer_points_than_a_cluster_leaves_all_unclustered(topics):
    result = cluster_collection(topics, algorithm="hdbscan", min_cluster_size=50)
    assert result.clusters == [] and result.unclustered == 24
    assert set(result.assignments.values()) == {-1}
    assert clustering.default_min_cluster_size(24) == 5
    assert clustering.default_min_cluster_size(10_000) == 50


def test_fewer_distinct_vectors_than_clusters_is_a_warning(test_plugin, db_path):
    collection = vibes.Database(db_path).collection("same", model="hash")
    collection.embed_multi(
        [{"id": f"s{i}", "content": "same", "vector": [1.0] * 16} for i in range(5)]
    )
    with pytest.warns(clustering.ClusterWarning, match="Only 1 clusters instead of 3"):
        result = cluster_collection(collection, 3)
    assert len(result.clusters) == 1 and result.clusters[0].size == 5


# -- names -----------------------------------------------------------------------------------


def test_c_tf_idf_prefers_words_frequent_here_and_rare_elsewhere():
    clusters = [
        ["python library for parsing", "a python module library", "python packaging library"],
        ["the cat sat on the mat", "a cat and a dog", "cats and dogs and a library"],
    ]
    words = distinctive_words(clusters, words=2)
    assert words[0] == ["python", "library"]
    assert words[1][0] == "cat"  # "cats" is the same word: never both
    assert "cats" not in words[1]
    assert "library" not in words[1]  # once here, three times in the other cluster
    assert tokens("The C++ and Node.js guide, e.g. 2024's x11 libs") == [
        "c++", "node.js", "guide", "x11", "libs",
    ]  # fmt: skip
    assert cluster_names([["the of and"], ["rare words"]]) == ["cluster 0", "rare, words"]
    assert cluster_names([[]], fallback=["nameless"]) == ["nameless"]


def test_items_without_text_are_named_by_their_ids(test_plugin, db_path):
    rows = topic_rows()
    collection = vibes.Database(db_path).collection("bare", model="hash")
    collection.embed_multi([{"id": f"docs/{r['id']}.md", "vector": r["vector"]} for r in rows])
    result = cluster_collection(collection, 3)
    assert [c.words[0] for c in result.clusters] == list(TOPICS)
    without = cluster_collection(collection, 3, names=False)
    assert [c.name for c in without.clusters] == ["cluster 0", "cluster 1", "cluster 2"]


# -- storing ---------------------------------------------------------------------------------


def test_store_saves_each_items_cluster_and_rerunning_replaces_it(invoke, topics, db_path):
    store = topics.database.store
    assert store.clustering(topics.id) is None
    rows, _ = cli_clusters(invoke, "topics", "3", "--store", "--seed", "2", "-d", db_path)
    fresh = vibes.Database(db_path).collection("topics")
    stored = fresh.database.store.clustering(fresh.id)
    assert json.loads(stored.settings) == {
        "algorithm": "kmeans",
        "n": 3,
        "seed": 2,
        "documents": False,
        "min_cluster_size": None,
        "reduced_to": None,
    }
    assert [(c.cluster, c.name, c.size) for c in stored.clusters] == [
        (int(r["id"]), r["name"], r["size"]) for r in rows
    ]
    assert fresh.database.store.cluster_assignments(fresh.id) == {
        item["id"]: int(r["id"]) for r in rows for item in r["items"]
    }
    # Without --store nothing changes; with it, the new clustering replaces the old one.
    cli_clusters(invoke, "topics", "2", "-d", db_path)
    assert len(store.clustering(topics.id).clusters) == 3
    cli_clusters(invoke, "topics", "2", "--store", "-d", db_path)
    again = vibes.Database(db_path).collection("topics")
    assert len(again.database.store.clustering(again.id).clusters) == 2
    assert set(again.database.store.cluster_assignments(again.id).values()) == {0, 1}


def test_hdbscan_store_keeps_the_unclustered_as_minus_one(test_plugin, db_path):
    collection = vibes.Database(db_path).collection("mixed", model="hash")
    outlier = {"id": "odd", "content": "strange", "vector": [9.0] * 16}
    collection.embed_multi([*topic_rows(noise=0.02), outlier], store=True)
    cluster_collection(collection, algorithm="hdbscan", min_cluster_size=4, store=True)
    assert collection.database.store.cluster_assignments(collection.id)["odd"] == -1
    settings = json.loads(collection.database.store.clustering(collection.id).settings)
    assert settings["algorithm"] == "hdbscan" and settings["min_cluster_size"] == 4


# -- documents -------------------------------------------------------------------------------


@pytest.fixture
def chunked(db_path, test_plugin):
    """Documents of one line a chunk, each about one topic (hash model: shared words make
    near vectors), and one unchunked item."""
    collection = vibes.Database(db_path).collection("docs", model="hash")
    documents = []
    for topic, words in TOPICS.items():
        for d in range(2):
            lines = [" ".join(words[(i + d) % 6 :] + words[: (i + d) % 6]) for i in range(4)]
            documents.append((f"{topic}-{d}.md", "\n".join(lines)))
    collection.embed_multi(documents, chunk="lines", store=True)
    collection.embed_multi([("sailing-note", " ".join(TOPICS["sailing"]))], store=True)
    return collection


def test_documents_are_clustered_as_wholes(invoke, chunked, db_path):
    every_chunk = cluster_collection(chunked, 3)
    assert sum(c.size for c in every_chunk.clusters) == 3 * 2 * 4 + 1
    result = cluster_collection(chunked, 3, documents=True, truncate=None)
    ids = sorted(item.id for c in result.clusters for item in c.items)
    assert ids == sorted([f"{t}-{d}.md" for t in TOPICS for d in range(2)] + ["sailing-note"])
    assert result.documents and result.settings()["documents"] is True
    for cluster in result.clusters:
        (topic,) = {topic_of(item.id) for item in cluster.items}
        assert set(cluster.words) <= set(TOPICS[topic])
    # A document's content is its chunks' text, in order.
    first = next(i for c in result.clusters for i in c.items if i.id == "astronomy-0.md")
    assert first.content.splitlines()[0] == " ".join(TOPICS["astronomy"])
    rows, _ = cli_clusters(invoke, "docs", "3", "--documents", "--store", "-d", db_path)
    assert not any("#" in i["id"] for r in rows for i in r["items"])
    # Stored per item: every chunk gets its document's cluster.
    assignments = chunked.database.store.cluster_assignments(chunked.id)
    cluster_of = {i["id"]: int(r["id"]) for r in rows for i in r["items"]}
    assert assignments["astronomy-0.md#1"] == assignments["astronomy-0.md#4"]
    assert assignments["astronomy-0.md#1"] == cluster_of["astronomy-0.md"]
    assert assignments["sailing-note"] == cluster_of["sailing-note"]
    assert len(assignments) == 3 * 2 * 4 + 1


# -- summaries -------------------------------------------------------------------------------


def first_line_title(messages):
    """The fake LLM's summary: 'Title: ' and the first text it was sent."""
    user = [m for m in messages if m["role"] == "user"][-1]["content"]
    return ' "Title: ' + user.splitlines()[0][2:] + '" '


def test_summary_asks_the_llm_once_per_cluster(invoke, topics, chat, fake_llm, db_path):
    chat.reply = first_line_title
    rows, _ = cli_clusters(invoke, "topics", "3", "--summary", "-d", db_path)
    assert len(chat.requests) == 3
    texts = {r["id"]: r["content"] for r in topic_rows()}
    for row, request in zip(rows, chat.requests):
        messages = request["body"]["messages"]
        assert messages[0] == {"role": "system", "content": DEFAULT_SUMMARY_PROMPT}
        sent = messages[1]["content"].splitlines()
        # Small clusters are sent whole, nearest the centre first.
        assert sent == ["- " + texts[item["id"]] for item in row["items"]]
        # The answer, without its quotes and spaces.
        assert row["summary"] == "Title: " + texts[row["items"][0]["id"]]
    invoke(["cluster", "topics", "3", "--summary", "--prompt", "Name it.", "-m", "fake",
            "-d", db_path])  # fmt: skip
    assert chat.requests[-1]["body"]["messages"][0]["content"] == "Name it."


def test_summary_sample_fits_a_small_context(invoke, test_plugin, chat, monkeypatch, db_path):
    from vibes.llms import get_llm, register_llm

    monkeypatch.setenv("FAKE_CHAT_KEY", KEY)
    register_llm("small", api_url=chat.url, api_model="fake-chat", api_key_env="FAKE_CHAT_KEY",
                 context_length=600)  # fmt: skip
    chat.context_length = 600  # the server refuses what does not fit
    rng = np.random.default_rng(1)
    centre = rng.normal(size=16)
    rows = [
        {
            "id": f"n{i:03d}",
            "content": f"entry{i:03d} "
            + " ".join(f"word{(i * 7 + j) % 97:02d}" for j in range(30)),
            "vector": (centre + 0.1 * rng.normal(size=16)).tolist(),
        }
        for i in range(80)
    ]
    collection = vibes.Database(db_path).collection("big", model="hash")
    collection.embed_multi(rows, store=True)
    everything = sum(len(r["content"].split()) for r in rows)
    assert everything > 600 * 3  # llm-cluster would send all of it, and overflow
    chat.reply = first_line_title
    result = invoke(["cluster", "big", "1", "--summary", "-m", "small", "-d", db_path])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    body = chat.requests[-1]["body"]
    user = body["messages"][1]["content"]
    model = get_llm("small")
    # Within the context: the texts, the instructions and the room kept for the summary.
    fixed = model.count_tokens(DEFAULT_SUMMARY_PROMPT) + 8
    assert model.count_tokens(user) + fixed + body["max_tokens"] + 32 <= 600
    assert body["max_tokens"] == 150  # a quarter of a small context
    sent = [line[2:].split()[0] for line in user.splitlines()]
    order = [item["content"].split()[0] for item in row["items"]]
    assert 5 < len(sent) < 80
    # The core (about half the budget): the items nearest the centre, in order; the rest
    # spread out to the cluster's far end.
    positions = [order.index(word) for word in sent]
    assert positions[:3] == [0, 1, 2]
    assert positions == sorted(positions) and max(positions) > 40
    assert row["summary"] == "Title: " + user.splitlines()[0][2:]


def test_summary_sample_never_exceeds_its_budget():
    texts = [f"text number {i} " + "x" * (i * 13 % 400) for i in range(200)]

    def count(text):
        return len(text) // 4 + 1

    for budget in (40, 100, 1000, 5000):
        sample = summary_sample(texts, budget, count)
        assert count(sample) <= budget
        lines = sample.splitlines()
        assert lines[0] == "- text number 0"  # the nearest first, spaces tidied
        assert all(count(line) <= max(budget // 8, 16) for line in lines)
    short = ["one", "two", "three"]
    assert summary_sample(short, 1000, count) == "- one\n- two\n- three"
    assert summary_sample(["  ", "real"], 100, count) == "- real"


def test_summary_budget_without_a_context_length_is_the_default(chat, monkeypatch):
    from vibes.llms import get_llm, register_llm

    monkeypatch.setenv("FAKE_CHAT_KEY", KEY)
    register_llm("unsized", api_url=chat.url, api_model="fake-chat", api_key_env="FAKE_CHAT_KEY")
    model = get_llm("unsized")
    texts = ["lorem ipsum dolor sit amet " * 4] * 2000
    assert summarise_cluster(model, texts) == "No source answers this."
    sent = chat.requests[-1]["body"]["messages"][1]["content"]
    assert DEFAULT_SAMPLE_TOKENS - 200 < model.count_tokens(sent) <= DEFAULT_SAMPLE_TOKENS
    assert summarise_cluster(model, ["", "  "]) is None  # nothing to send: no call
    assert len(chat.requests) == 1


def test_summary_errors_are_one_line_and_store_nothing(invoke, topics, chat, fake_llm, db_path):
    chat.reply = first_line_title
    chat.fail(400, b'{"error": {"message": "the request was refused"}}')
    result = invoke(["cluster", "topics", "3", "--summary", "--store", "-d", db_path])
    one_line_error(result, "cluster 0", "refused")
    assert topics.database.store.clustering(topics.id) is None
    one_line_error(invoke(["cluster", "topics", "3", "--summary", "-m", "nope", "-d", db_path]),
                   "nope")  # fmt: skip


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_is_one_line(invoke, topics, db_path):
    one_line_error(invoke(["cluster", "nope", "3", "-d", db_path]), "nope")
    one_line_error(invoke(["cluster", "topics", "25", "-d", db_path]), "25 clusters of 24 items")
    for args, fragment in (
        (["topics"], "Give N"),
        (["topics", "0"], "N must be 1 or more"),
        (["topics", "3", "--algorithm", "hdbscan"], "give no N"),
        (["topics", "3", "--min-cluster-size", "4"], "hdbscan only"),
        (["topics", "--algorithm", "hdbscan", "--min-cluster-size", "1"], "2 or more"),
        (["topics", "3", "--truncate", "-1"], "--truncate"),
        (["topics", "3", "--seed", "-1"], "--seed"),
        (["topics", "3", "-m", "fake"], "--summary"),
        (["topics", "3", "--algorithm", "dbscan"], "dbscan"),
    ):
        result = invoke(["cluster", *args, "-d", db_path])
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.stderr and "Traceback" not in result.output
    topics.delete_items([r["id"] for r in topic_rows()])
    one_line_error(invoke(["cluster", "topics", "3", "-d", db_path]), "empty")


def test_api_refuses_bad_arguments(topics):
    for kwargs, fragment in (
        ({"n": None}, "number of clusters"),
        ({"n": 0}, "1 or more"),
        ({"n": 2, "algorithm": "hdbscan"}, "give no number"),
        ({"n": 2, "seed": -3}, "seed"),
        ({"n": 2, "truncate": -1}, "Truncate"),
        ({"n": 2, "prompt": "x"}, "summar"),
        ({"n": 2, "algorithm": "spectral"}, "spectral"),
    ):
        with pytest.raises(vibes.VibesError, match=fragment):
            cluster_collection(topics, **kwargs)


def test_the_real_command_runs_and_start_up_imports_no_sklearn(run, topics, db_path):
    done = run(["cluster", "topics", "3", "--nl", "-d", db_path])
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, vibes.cli; print('sklearn' in sys.modules, "
         "'numpy' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split()[0] == "False"
