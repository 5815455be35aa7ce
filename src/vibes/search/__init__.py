"""The search pipeline: one place decides how a query is answered.

A query (text, vector or item id) becomes query vectors; a filter becomes candidates;
retrievers (the approximate index or the exact matrix for vectors, the full-text index
for words) each return scored rankings; fusion merges the rankings of the legs a mode
uses (``vector``, ``text``, ``hybrid``); then the skipped item, ``min_score``, re-ranking,
hydration (content, metadata, chunk positions, neighbouring chunks, snippets) and, for
documents, chunk grouping follow. Every surface (Python, CLI, SQL, web, ``ask``)
calls :meth:`Searcher.search`, through :meth:`vibes.Collection.search`.
"""

from .fusion import fuse
from .pipeline import DOCUMENT_SCORES, MODES, Searcher, SearchOptions, SearchWarning
from .retrievers import ApproximateRetriever, ExactRetriever, Ranking, Retrieval, Retriever

__all__ = [
    "DOCUMENT_SCORES",
    "MODES",
    "ApproximateRetriever",
    "ExactRetriever",
    "Ranking",
    "Retrieval",
    "Retriever",
    "SearchOptions",
    "SearchWarning",
    "Searcher",
    "fuse",
]
