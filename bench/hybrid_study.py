"""Hybrid search study: full-text (SQLite FTS5, BM25) and vector (MiniLM, exact cosine)
retrieval, alone and fused, on the labelled sets of ``retrieval_sets.py``; then the cost
of the full-text query at 5,000 and 100,000 documents, and what making it cheaper costs
the text leg at 100,000.

It measures what the defaults of ``vibes similar --hybrid`` should be: the FTS5
tokenizer, whether English stop words leave the query, OR against AND between the
words, leaving out the query's most common terms (over a share of the documents, or past
a budget of postings), the fusion (reciprocal rank, or a weighted sum of scores min-max
normalised per leg) and how deep each leg reads. It does not use vibes' search API, only
its default model, which cuts documents at 256 tokens as ``vibes embed`` does. Vectors
are cached in ``bench/.cache`` (about 25 minutes to embed on two CPU cores, once), as are
all the figures of the last run (``hybrid_study_results.json``).

    python bench/hybrid_study.py [--sets man,gcloud,python] [--queries 800]
                                 [--latency-sizes 5000,100000]
                                 [--no-quality] [--no-latency] [--no-timing] [--no-scale]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval_sets as rs  # noqa: E402

#: English function words that carry no topic: left out of a full-text query they no
#: longer make BM25 score (and the engine visit) nearly every document. Question words
#: are among them ("how do I ...").
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during
    each either else etc even ever every few for from further get gets got had has have
    having he her here hers herself him himself his how i if in into is it its itself
    just let like may me might more most much must my myself no nor not now of off on
    once one only or other ought our ours ourselves out over own per please same shall
    she should since so some such than that the their theirs them themselves then there
    these they this those though through thus to too under until up upon us use used
    using very via was way we were what whatever when where whether which while who whom
    whose why will with within without would yet you your yours yourself yourselves
    """.split()
)

TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",
    "porter": "porter unicode61 remove_diacritics 2",
    "trigram": "trigram",
}
DEPTH = 100  # each leg's list for the single-leg figures (recall@100)
LEG_DEPTHS = (20, 50, 100)
RRF_KS = (10, 30, 60)
ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: Query terms held by more than this share of the documents are left out (a stop list
#: the collection itself gives), as variants of the text leg.
MAX_SHARES = (0.05, 0.1, 0.2)
#: Query terms kept, rarest first, while the documents they hold add up to at most this
#: many (a bound on the postings BM25 reads), as variants of the text leg.
BUDGETS = (2_000, 5_000, 10_000, 20_000)

Ranking = list[tuple[str, float]]  # (doc id, score), best first

#: The variant recommended as vibes' default (see the closing tables), and those it is
#: compared with query by query.
DEFAULT = "weighted a=0.6 depth=100 | text unicode61 -stop"
ALTERNATIVES = (
    "vector",
    "text unicode61 -stop",
    "weighted a=0.6 depth=100 | text porter -stop",
    "weighted a=0.6 depth=100 | text trigram -stop",
    "weighted a=0.6 depth=100 | text unicode61",
    "weighted a=0.5 depth=100 | text unicode61 -stop",
    "weighted a=0.7 depth=100 | text unicode61 -stop",
    "weighted a=0.6 depth=50 | text unicode61 -stop",
    "weighted a=0.6 depth=20 | text unicode61 -stop",
    "weighted a=0.6 depth=100 | text unicode61 -stop -df>0.2",
    "weighted a=0.6 depth=100 | text unicode61 -stop -budget=2000",
    "weighted a=0.6 depth=100 | text unicode61 -stop -budget=5000",
    "weighted a=0.6 depth=100 | text unicode61 -stop -budget=20000",
    "rrf k=10 depth=100 | text unicode61 -stop",
    "rrf k=60 depth=100 | text unicode61 -stop",
    "rrf k=60 depth=100 | text porter -stop",
)


# --- the vector leg -------------------------------------------------------------------------


def _cached_vectors(kind: str, texts: Sequence[str], embed: Callable) -> np.ndarray:
    digest = hashlib.sha1(("\x00".join(texts)).encode()).hexdigest()[:16]
    path = rs.CACHE / f"minilm-{kind}-{digest}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    parts = []
    for i in range(0, len(texts), 256):
        parts.append(np.asarray(embed(list(texts[i : i + 256])), dtype=np.float32))
        print(f"\r  embedding {kind}: {i + len(parts[-1])}/{len(texts)}", end="", file=sys.stderr)
    vectors = np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    print(f" ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    rs.CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def vector_rankings(
    doc_vectors: np.ndarray, doc_ids: Sequence[str], query_vectors: np.ndarray, depth: int
) -> list[Ranking]:
    """Exact cosine top-``depth`` of each query (vectors are unit length)."""
    rankings = []
    for start in range(0, len(query_vectors), 256):
        scores = query_vectors[start : start + 256] @ doc_vectors.T
        top = np.argpartition(-scores, min(depth, scores.shape[1] - 1), axis=1)[:, :depth]
        for row, candidates in zip(scores, top):
            order = candidates[np.argsort(-row[candidates], kind="stable")]
            rankings.append([(doc_ids[i], float(row[i])) for i in order])
    return rankings


# --- the text leg ---------------------------------------------------------------------------


def fts_table(documents: Sequence[rs.Document], tokenizer: str) -> sqlite3.Connection:
    """An in-memory FTS5 table of ``documents`` (rowid = position), with a vocabulary
    table beside it (``docs_vocab``: documents per token)."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute(f"CREATE VIRTUAL TABLE docs USING fts5(body, tokenize = '{tokenizer}')")
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO docs(rowid, body) VALUES (?, ?)",
        ((i, text) for i, (_id, text) in enumerate(documents)),
    )
    connection.execute("COMMIT")
    connection.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    connection.execute("CREATE VIRTUAL TABLE docs_vocab USING fts5vocab(docs, 'row')")
    # Query words go through the same tokenizer (stemmed, split) in a scratch table.
    connection.execute(f"CREATE VIRTUAL TABLE temp.scratch USING fts5(x, tokenize = '{tokenizer}')")
    connection.execute(
        "CREATE VIRTUAL TABLE temp.scratch_tokens USING fts5vocab(temp, scratch, 'instance')"
    )
    _TOTALS[id(connection)] = len(documents)
    return connection


#: Documents in each table (counting an FTS5 table reads all of it): {id(connection): n}.
_TOTALS: dict[int, int] = {}


def document_shares(connection: sqlite3.Connection, terms: Sequence[str]) -> list[float]:
    """For each term, the share of documents holding it."""
    total = max(_TOTALS[id(connection)], 1)
    return [count / total for count in document_counts(connection, terms)]


def document_counts(connection: sqlite3.Connection, terms: Sequence[str]) -> list[int]:
    """For each term, how many documents hold it (a term the tokenizer splits in several
    tokens: as many as hold its rarest token; 0 for one that matches nothing)."""
    connection.execute("DELETE FROM temp.scratch")
    connection.executemany(
        "INSERT INTO temp.scratch(rowid, x) VALUES (?, ?)", list(enumerate(terms))
    )
    tokens: dict[int, set[str]] = {}
    for row, token in connection.execute("SELECT doc, term FROM temp.scratch_tokens"):
        tokens.setdefault(row, set()).add(token)
    distinct = sorted(set().union(*tokens.values())) if tokens else []
    counts = dict(
        connection.execute(
            f"SELECT term, doc FROM docs_vocab WHERE term IN ({','.join('?' * len(distinct))})",
            distinct,
        )
    )
    return [
        min((counts.get(t, 0) for t in tokens.get(i, ())), default=0) for i in range(len(terms))
    ]


def budgeted_terms(connection: sqlite3.Connection, terms: Sequence[str], budget: int) -> list[str]:
    """``terms`` from the rarest on, as long as the documents they hold add up to at most
    ``budget`` (BM25 over OR costs about that many postings read and scored); the rarest
    stays whatever it costs. Terms no document holds are left out (they cost nothing)."""
    counts = document_counts(connection, terms)
    kept: list[int] = []
    spent = 0
    for count, index in sorted((c, i) for i, c in enumerate(counts) if c > 0):
        if kept and spent + count > budget:
            break
        kept.append(index)
        spent += count
    return [terms[i] for i in sorted(kept)]


_TERM = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str, stop_words: bool, min_length: int = 1) -> list[str]:
    """The distinct words of ``text`` in order, lower-cased; without English stop words
    when ``stop_words`` is True (unless that would leave none)."""
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    terms = [t for t in terms if len(t) >= min_length]
    if stop_words:
        kept = [t for t in terms if t not in STOP_WORDS]
        terms = kept or terms
    return terms


def common_terms_dropped(
    connection: sqlite3.Connection, terms: Sequence[str], max_share: float
) -> list[str]:
    """``terms`` without those held by more than ``max_share`` of the documents (they
    weigh little in BM25 and cost the most to score) and without those held by none;
    the rarest one stays if every one is common."""
    shares = document_shares(connection, terms)
    kept = [t for t, share in zip(terms, shares) if 0 < share <= max_share]
    if not kept:
        present = [(share, t) for t, share in zip(terms, shares) if share > 0]
        kept = [min(present)[1]] if present else []
    return kept


def match_expression(terms: Sequence[str], operator: str = "OR") -> str:
    """An FTS5 MATCH expression: each term a quoted string, joined by OR (any word) or
    AND (every word)."""
    return f" {operator} ".join(f'"{t}"' for t in terms)


def text_rankings(
    connection: sqlite3.Connection,
    doc_ids: Sequence[str],
    queries: Sequence[str],
    *,
    stop_words: bool,
    operator: str = "OR",
    min_length: int = 1,
    max_share: float | None = None,
    budget: int | None = None,
    depth: int = DEPTH,
) -> list[Ranking]:
    """BM25 top-``depth`` of each query; score = -rank (higher is better)."""
    rankings = []
    for text in queries:
        terms = query_terms(text, stop_words, min_length)
        if max_share is not None and terms:
            terms = common_terms_dropped(connection, terms, max_share)
        if budget is not None and terms:
            terms = budgeted_terms(connection, terms, budget)
        if not terms:
            rankings.append([])
            continue
        rows = connection.execute(
            "SELECT rowid, rank FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
            (match_expression(terms, operator), depth),
        ).fetchall()
        rankings.append([(doc_ids[rowid], -rank) for rowid, rank in rows])
    return rankings


# --- fusion ---------------------------------------------------------------------------------


def rrf(legs: Sequence[Ranking], k: int, depth: int) -> list[str]:
    """Reciprocal rank fusion of each leg's first ``depth`` items (ties: by id)."""
    fused: dict[str, float] = {}
    for leg in legs:
        for rank, (doc_id, _score) in enumerate(leg[:depth], 1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return [d for d, _ in sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))]


def weighted(vector: Ranking, text: Ranking, alpha: float, depth: int) -> list[str]:
    """alpha * vector + (1 - alpha) * text, each leg's scores min-max normalised over its
    first ``depth`` items (an item a leg did not return scores 0 there)."""

    def normalised(leg: Ranking) -> dict[str, float]:
        leg = leg[:depth]
        if not leg:
            return {}
        scores = [s for _, s in leg]
        low, high = min(scores), max(scores)
        span = high - low
        return {d: (s - low) / span if span > 0 else 1.0 for d, s in leg}

    v, t = normalised(vector), normalised(text)
    fused = {d: alpha * v.get(d, 0.0) + (1 - alpha) * t.get(d, 0.0) for d in v.keys() | t.keys()}
    return [d for d, _ in sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))]


# --- evaluation -----------------------------------------------------------------------------


def scores_of(runs: list[list[str]], query_ids: Sequence[str], relevant: rs.Relevant) -> dict:
    return rs.evaluate(dict(zip(query_ids, runs)), relevant)


def per_query_ndcg(runs: list[list[str]], query_ids: Sequence[str], relevant: rs.Relevant):
    return np.array([rs.ndcg_at_k(r, relevant[q], 10) for r, q in zip(runs, query_ids)])


def bootstrap_gain(a: np.ndarray, b: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) over queries resampled with replacement."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(a), size=(rounds, len(a)))
    differences = (a[picks] - b[picks]).mean(axis=1)
    return float(np.percentile(differences, 2.5)), float(np.percentile(differences, 97.5))


def ids_only(rankings: list[Ranking]) -> list[list[str]]:
    return [[d for d, _ in ranking] for ranking in rankings]


def row(label: str, metrics: dict) -> str:
    return (
        f"| {label} | {metrics['ndcg@10']:.4f} | {metrics['recall@10']:.4f} | "
        f"{metrics['recall@100']:.4f} | {metrics['mrr']:.4f} |"
    )


HEADER = "| run | nDCG@10 | R@10 | R@100 | MRR |\n|---|---|---|---|---|"


def study_set(name: str, n_queries: int, model) -> dict[tuple[str, str], dict]:
    """Every variant on one set, keyword queries and question queries; returns
    {(query form, variant): metrics} and prints the tables."""
    build = rs.SETS[name]
    documents, queries, relevant = build(n_queries=n_queries)
    _d, question_queries, _r = build(n_queries=n_queries, questions=True)
    doc_ids = [d for d, _ in documents]
    query_ids = [q for q, _ in queries]
    print(f"\n## {name}: {len(documents)} documents, {len(queries)} queries\n")
    doc_vectors = _cached_vectors(f"{name}-docs", [t for _, t in documents], model.embed_batch)
    connections = {label: fts_table(documents, spec) for label, spec in TOKENIZERS.items()}
    results: dict[tuple[str, str], dict] = {}
    per_query: dict[tuple[str, str], np.ndarray] = {}
    for form, form_queries in (("keywords", queries), ("questions", question_queries)):
        texts = [t for _, t in form_queries]
        query_vectors = _cached_vectors(f"{name}-{form}", texts, model.embed_query_batch)
        vector = vector_rankings(doc_vectors, doc_ids, query_vectors, DEPTH)
        results[(form, "vector")] = scores_of(ids_only(vector), query_ids, relevant)
        lines = [row("vector (MiniLM, exact cosine)", results[(form, "vector")])]
        per_query[(form, "vector")] = per_query_ndcg(ids_only(vector), query_ids, relevant)
        text_legs: dict[str, list[Ranking]] = {}
        for tokenizer, connection in connections.items():
            shares = MAX_SHARES if tokenizer != "trigram" else ()
            budgets = BUDGETS if tokenizer != "trigram" else ()
            variants = [(False, None, None), (True, None, None)]
            variants += [(True, share, None) for share in shares]
            variants += [(True, None, budget) for budget in budgets]
            for stop, share, budget in variants:
                label = f"text {tokenizer}{' -stop' if stop else ''}"
                label += f" -df>{share}" if share else ""
                label += f" -budget={budget}" if budget else ""
                min_length = 3 if tokenizer == "trigram" else 1
                start = time.perf_counter()
                text = text_rankings(
                    connection,
                    doc_ids,
                    texts,
                    stop_words=stop,
                    min_length=min_length,
                    max_share=share,
                    budget=budget,
                )
                elapsed = (time.perf_counter() - start) / len(texts) * 1000
                text_legs[label] = text
                metrics = scores_of(ids_only(text), query_ids, relevant)
                results[(form, label)] = metrics
                per_query[(form, label)] = per_query_ndcg(ids_only(text), query_ids, relevant)
                lines.append(row(f"{label} ({elapsed:.2f} ms/query)", metrics))
        for stop in (False, True):
            label = f"text porter AND{' -stop' if stop else ''}"
            text = text_rankings(
                connections["porter"], doc_ids, texts, stop_words=stop, operator="AND"
            )
            metrics = scores_of(ids_only(text), query_ids, relevant)
            results[(form, label)] = metrics
            answered = sum(bool(t) for t in text) / len(text)
            lines.append(row(f"{label} (answers {answered:.0%} of queries)", metrics))
        for leg_label, text in text_legs.items():
            for depth in LEG_DEPTHS:
                for k in RRF_KS:
                    runs = [rrf((v, t), k, depth) for v, t in zip(vector, text)]
                    label = f"rrf k={k} depth={depth} | {leg_label}"
                    results[(form, label)] = scores_of(runs, query_ids, relevant)
                    per_query[(form, label)] = per_query_ndcg(runs, query_ids, relevant)
                for alpha in ALPHAS:
                    runs = [weighted(v, t, alpha, depth) for v, t in zip(vector, text)]
                    label = f"weighted a={alpha} depth={depth} | {leg_label}"
                    results[(form, label)] = scores_of(runs, query_ids, relevant)
                    per_query[(form, label)] = per_query_ndcg(runs, query_ids, relevant)
        print(f"### {name}, {form} (e.g. {texts[0]!r})\n\n{HEADER}")
        print("\n".join(lines))
        fused = sorted(
            (label for f, label in results if f == form and "|" in label),
            key=lambda label: -results[(form, label)]["ndcg@10"],
        )
        for label in fused[:8]:
            print(row(label, results[(form, label)]))
        print()
    study_set.per_query[name] = per_query  # type: ignore[attr-defined]
    return results


study_set.per_query = {}  # type: ignore[attr-defined]


def summarise(all_results: dict[str, dict[tuple[str, str], dict]]) -> str:
    """Macro-average nDCG@10 over every (set, query form) for each variant, and the chosen
    variant's gain over the better single leg on each."""
    cells = [(s, f) for s, results in all_results.items() for f in ("keywords", "questions")]
    labels = set.intersection(*({lb for f, lb in res} for res in all_results.values()))

    def mean(label: str, metric: str = "ndcg@10") -> float:
        return statistics.fmean(all_results[s][(f, label)][metric] for s, f in cells)

    out = ["\n## Averaged over every set and query form (nDCG@10)\n"]
    single = sorted((lb for lb in labels if "|" not in lb), key=lambda lb: -mean(lb))
    out.append("| run | " + " | ".join(f"{s} {f}" for s, f in cells) + " | mean |")
    out.append("|---" * (len(cells) + 2) + "|")

    def line(label: str) -> str:
        values = " | ".join(f"{all_results[s][(f, label)]['ndcg@10']:.4f}" for s, f in cells)
        return f"| {label} | {values} | {mean(label):.4f} |"

    out.extend(line(lb) for lb in single)
    fused = sorted((lb for lb in labels if "|" in lb), key=lambda lb: -mean(lb))
    out.append("\nFused, best 25 by mean:\n")
    out.extend(line(lb) for lb in fused[:25])
    out.append("\nFused, by fusion method and depth (each with its best text leg):\n")
    methods = [f"rrf k={k}" for k in RRF_KS] + [f"weighted a={a}" for a in ALPHAS]
    for method in methods:
        for depth in LEG_DEPTHS:
            group = [lb for lb in fused if lb.startswith(f"{method} depth={depth} |")]
            if group:
                out.append(line(group[0]))
    out.append("\nFused, by text leg (RRF k=60 depth=100 / the best fusion for that leg):\n")
    for leg in single:
        if leg.startswith("text") and "AND" not in leg:
            out.append(line(f"rrf k=60 depth=100 | {leg}"))
            group = [lb for lb in fused if lb.endswith(f"| {leg}")]
            out.append(line(group[0]))
    leg = DEFAULT.split(" | ")[1]
    out.append(
        f"\nEvery fusion with the default text leg ({leg}), mean over the six cells "
        "(nDCG@10 / R@10 / R@100):\n"
    )
    out.append("| fusion | " + " | ".join(f"depth {d}" for d in LEG_DEPTHS) + " |")
    out.append("|---" * (len(LEG_DEPTHS) + 1) + "|")
    for method in methods:
        values = []
        for depth in LEG_DEPTHS:
            label = f"{method} depth={depth} | {leg}"
            values.append(
                " / ".join(f"{mean(label, m):.4f}" for m in ("ndcg@10", "recall@10", "recall@100"))
            )
        out.append(f"| {method} | " + " | ".join(values) + " |")
    for title, label in (("Best fused variant on average", fused[0]), ("Chosen default", DEFAULT)):
        out.append(f"\n## {title}: {label}\n")
        out.extend(gain_table(all_results, cells, labels, label))
    out.append(
        f"\n## The chosen default against alternatives (nDCG@10 of default minus other, "
        f"95% bootstrap interval over queries)\n\nDefault: {DEFAULT}\n"
    )
    out.append("| other | " + " | ".join(f"{s} {f}" for s, f in cells) + " |")
    out.append("|---" * (len(cells) + 1) + "|")
    for other in ALTERNATIVES:
        if other not in labels:
            continue
        values = []
        for s, f in cells:
            per_query = study_set.per_query[s]  # type: ignore[attr-defined]
            a, b = per_query[(f, DEFAULT)], per_query[(f, other)]
            low, high = bootstrap_gain(a, b)
            values.append(f"{a.mean() - b.mean():+.4f} [{low:+.3f}, {high:+.3f}]")
        out.append(f"| {other} | " + " | ".join(values) + " |")
    return "\n".join(out)


def gain_table(all_results, cells, labels, label: str) -> list[str]:
    """The fused ``label`` against the better single leg (by nDCG@10) of each cell."""
    out = [
        "| set | form | better single leg | its nDCG@10 | hybrid nDCG@10 | gain | 95% CI of "
        "difference | R@10 leg→hybrid | R@100 leg→hybrid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, f in cells:
        results = all_results[s]
        legs = [lb for lb in labels if "|" not in lb and "AND" not in lb]
        leader = max(legs, key=lambda lb: results[(f, lb)]["ndcg@10"])
        lead, hybrid = results[(f, leader)], results[(f, label)]
        per_query = study_set.per_query[s]  # type: ignore[attr-defined]
        low, high = bootstrap_gain(per_query[(f, label)], per_query[(f, leader)])
        gain = hybrid["ndcg@10"] / lead["ndcg@10"] - 1
        out.append(
            f"| {s} | {f} | {leader} | {lead['ndcg@10']:.4f} | {hybrid['ndcg@10']:.4f} | "
            f"{gain:+.1%} | [{low:+.4f}, {high:+.4f}] | {lead['recall@10']:.3f}→"
            f"{hybrid['recall@10']:.3f} | {lead['recall@100']:.3f}→{hybrid['recall@100']:.3f} |"
        )
    return out


# --- latency --------------------------------------------------------------------------------


def latency(sizes: Sequence[int], queries: Sequence[str]) -> str:
    """Milliseconds per FTS5 query (median, 95th percentile, max) by table size, tokenizer,
    query construction and LIMIT, the look-up of the terms' document counts included;
    documents are real text (``rs.filler_documents``)."""
    out = ["\n## Full-text query latency (ms per query)\n"]
    documents = rs.filler_documents(max(sizes))
    characters = sum(len(t) for _, t in documents)
    out.append(
        f"Corpus: {len(documents)} documents ({characters / 1e6:.0f} million characters); "
        f"{len(queries)} queries, keyword and question forms.\n"
    )
    out.append(
        "| documents | tokenizer | query | LIMIT | median | p95 | max | postings (median) "
        "| µs per posting |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    variants = [
        ("OR, every word", False, None, None),
        ("OR, stop words removed", True, None, None),
        ("OR, stop words removed, terms in >20% of documents dropped", True, 0.2, None),
    ]
    variants += [
        (f"OR, stop words removed, rarest terms up to {b:,} postings", True, None, b)
        for b in sorted(BUDGETS, reverse=True)
    ]
    for size in sizes:
        part = documents[:size]
        for tokenizer in ("porter", "unicode61", "trigram"):
            start = time.perf_counter()
            connection = fts_table(part, TOKENIZERS[tokenizer])
            built = time.perf_counter() - start
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            megabytes = pages * connection.execute("PRAGMA page_size").fetchone()[0] / 1e6
            out.append(
                f"| {len(part)} | {tokenizer} (built in {built:.1f} s, {megabytes:.0f} MB) "
                "| | | | | | | |"
            )
            minimum = 3 if tokenizer == "trigram" else 1
            for query_kind, stop, share, budget in variants:
                if tokenizer == "trigram" and (share or budget):
                    continue  # a word's trigrams are not one term: pruning does not fit
                for limit in (50, 100) if stop and not share and not budget else (100,):
                    times, postings = [], []
                    for query in queries:
                        begin = time.perf_counter()  # the terms' look-up counts too
                        terms = query_terms(query, stop, minimum)
                        if share is not None and terms:
                            terms = common_terms_dropped(connection, terms, share)
                        if budget is not None and terms:
                            terms = budgeted_terms(connection, terms, budget)
                        if not terms:
                            continue
                        connection.execute(
                            "SELECT rowid, rank FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
                            (match_expression(terms), limit),
                        ).fetchall()
                        times.append((time.perf_counter() - begin) * 1000)
                        if tokenizer != "trigram":
                            postings.append(sum(document_counts(connection, terms)))
                    median_postings = f"{statistics.median(postings):,.0f}" if postings else ""
                    if postings:  # time over postings, summed over the queries
                        median_postings += f" | {sum(times) / sum(postings) * 1000:.1f}"
                    else:
                        median_postings += " |"
                    times.sort()
                    out.append(
                        f"| {len(part)} | {tokenizer} | {query_kind} | {limit} | "
                        f"{statistics.median(times):.2f} | {times[int(0.95 * len(times))]:.2f} "
                        f"| {times[-1]:.2f} | {median_postings} |"
                    )
            connection.close()
    rng = np.random.default_rng(0)
    legs = [
        [(f"d{i}", float(s)) for i, s in enumerate(np.sort(rng.random(DEPTH))[::-1])]
        for _ in range(2)
    ]
    start = time.perf_counter()
    for _ in range(1000):
        weighted(legs[0], legs[1], 0.5, DEPTH)
    weighted_ms = time.perf_counter() - start  # 1000 runs: seconds = ms per run
    start = time.perf_counter()
    for _ in range(1000):
        rrf(legs, 60, DEPTH)
    out.append(
        f"\nFusing two 100-item lists in Python: weighted {weighted_ms:.3f} ms, "
        f"RRF {time.perf_counter() - start:.3f} ms per query."
    )
    return "\n".join(out)


def text_quality_at_scale(names: Sequence[str], size: int, n_queries: int) -> str:
    """The text leg of the default (stop words removed) on each set with the other documents of
    the timing corpus added as distractors up to ``size``: what pruning query terms costs
    where it is needed. Distractors that are a set's own documents (or their copies) are
    left out."""
    tokenizer = DEFAULT.split(" | text ")[1].split()[0]
    out = [
        f"\n## Text leg with distractors up to {size:,} documents ({tokenizer}, keyword queries)\n"
    ]
    out.append("| set | query | nDCG@10 | R@10 | R@100 | ms/query |")
    out.append("|---|---|---|---|---|---|")
    filler = rs.filler_documents(size)
    for name in names:
        documents, queries, relevant = rs.SETS[name](n_queries=n_queries)
        own = {doc_id for doc_id, _ in documents}
        extra = [
            (doc_id, text)
            for doc_id, text in filler
            if doc_id.split(":", 1)[-1].split("#", 1)[0] not in own
        ]
        documents = documents + extra[: max(0, size - len(documents))]
        doc_ids = [d for d, _ in documents]
        query_ids = [q for q, _ in queries]
        texts = [t for _, t in queries]
        connection = fts_table(documents, TOKENIZERS[tokenizer])
        variants = [("stop words removed", None, None)]
        variants += [(f"+ terms in >{s:.0%} of documents dropped", s, None) for s in (0.2,)]
        variants += [(f"+ rarest terms up to {b:,} postings", None, b) for b in BUDGETS[::-1]]
        for label, share, budget in variants:
            start = time.perf_counter()
            runs = text_rankings(
                connection, doc_ids, texts, stop_words=True, max_share=share, budget=budget
            )
            elapsed = (time.perf_counter() - start) / len(texts) * 1000
            metrics = scores_of(ids_only(runs), query_ids, relevant)
            out.append(
                f"| {name} ({len(documents):,} docs) | {label} | {metrics['ndcg@10']:.4f} | "
                f"{metrics['recall@10']:.4f} | {metrics['recall@100']:.4f} | {elapsed:.1f} |"
            )
            print(out[-1], file=sys.stderr)  # progress: this part is slow
        connection.close()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="man,gcloud,python")
    parser.add_argument("--queries", type=int, default=800)
    parser.add_argument("--latency-sizes", default="5000,100000")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality part")
    parser.add_argument("--no-timing", action="store_true", help="skip the latency table")
    parser.add_argument("--no-scale", action="store_true", help="skip the text leg at scale")
    args = parser.parse_args()

    import vibes

    model = vibes.get_model("minilm")
    print(f"SQLite {sqlite3.sqlite_version}; model {model.model_id}")
    if not args.no_quality:
        sets = args.sets.split(",")
        all_results = {name: study_set(name, args.queries, model) for name in sets}
        print(summarise(all_results))
        saved = {
            name: {f"{form} :: {label}": metrics for (form, label), metrics in results.items()}
            for name, results in all_results.items()
        }
        path = rs.CACHE / "hybrid_study_results.json"
        path.write_text(json.dumps(saved, indent=1, sort_keys=True))
        print(f"\nEvery figure: {path}", file=sys.stderr)
    if not args.no_latency:
        timing_queries = []
        for name in args.sets.split(","):
            for questions in (False, True):
                _d, queries, _r = rs.SETS[name](n_queries=100, questions=questions)
                timing_queries.extend(t for _, t in queries)
        sizes = [int(s) for s in args.latency_sizes.split(",")]
        if not args.no_timing:
            print(latency(sizes, timing_queries))
        if not args.no_scale:
            print(text_quality_at_scale(args.sets.split(","), max(sizes), args.queries))


if __name__ == "__main__":
    main()
