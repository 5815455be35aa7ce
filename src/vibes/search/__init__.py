"""The search pipeline: one place decides how a query is answered.

A query (text, vector or item id) becomes query vectors; a filter becomes candidates;
retrievers (the approximate index, the exact matrix; full-text next) each return scored
rankings; fusion merges the rankings of different retrievers; then the skipped item,
``min_score``, hydration (content, metadata, chunk positions, neighbouring chunks) and,
for documents, chunk grouping follow. Every surface (Python, CLI, SQL, web, ``ask``)
calls :meth:`Searcher.search`, through :meth:`vibes.Collection.search`.
"""

from .fusion import fuse
from .pipeline import DOCUMENT_SCORES, Searcher, SearchOptions
from .retrievers import ApproximateRetriever, ExactRetriever, Ranking, Retrieval, Retriever

__all__ = [
    "DOCUMENT_SCORES",
    "ApproximateRetriever",
    "ExactRetriever",
    "Ranking",
    "Retrieval",
    "Retriever",
    "SearchOptions",
    "Searcher",
    "fuse",
]
