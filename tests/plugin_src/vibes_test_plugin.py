"""A small vibes plugin used by the tests, installed through a real entry point.

``hash-test`` is a genuine (if simple) embedding model: words hashed into 16 buckets.
Environment variables let tests slow it down, make it fail, and count its calls.
"""

from __future__ import annotations

import hashlib
import os
import time

import vibes

DIMENSIONS = 16


def hash_vector(item: str | bytes, dimensions: int = DIMENSIONS) -> list[float]:
    words = item.split() if isinstance(item, bytes) else item.lower().split()
    vector = [0.0] * dimensions
    for word in words:
        digest = hashlib.md5(word if isinstance(word, bytes) else word.encode()).digest()
        vector[digest[0] % (dimensions - 1)] += 1.0 if digest[1] % 2 else -1.0
    vector[dimensions - 1] = 0.5  # never all zeros
    return vector


class HashModel(vibes.EmbeddingModel):
    model_id = "hash-test"
    dimensions = DIMENSIONS
    supports_binary = True

    def embed_batch(self, items):
        log = os.environ.get("VIBES_TEST_LOG")
        if log:
            with open(log, "a") as file:
                file.write(f"{len(items)}\n")
        for item in items:
            marker = b"FAIL" if isinstance(item, bytes) else "FAIL"
            if marker in item:
                raise RuntimeError("the model broke on purpose")
        delay = float(os.environ.get("VIBES_TEST_DELAY", "0"))
        if delay:
            time.sleep(delay)
        return [hash_vector(item) for item in items]


class ResizableModel(vibes.EmbeddingModel):
    """Dimensions from $VIBES_TEST_DIMS: a model whose output changes under a collection."""

    model_id = "resizable-test"

    def embed_batch(self, items):
        dimensions = int(os.environ.get("VIBES_TEST_DIMS", "8"))
        return [hash_vector(item, dimensions) for item in items]


@vibes.hookimpl
def register_embedding_models(register):
    register(HashModel(), aliases=("hash",))
    register(ResizableModel())


def _every_n_words(text, options, model):
    import re

    from vibes.chunking import Chunk

    words = list(re.finditer(r"\S+", text))
    step = options["n"]
    for first in range(0, len(words), step):
        last = words[min(first + step, len(words)) - 1]
        yield Chunk(text[words[first].start() : last.end()], words[first].start(), last.end())


@vibes.hookimpl
def register_chunkers(register):
    from vibes.chunking import Chunker, Option

    register(
        Chunker("words", "Every n words", _every_n_words, {"n": Option(int, 3, "Words per chunk")})
    )
