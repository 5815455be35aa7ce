"""A real corpus of up to a million short passages, built from the text on this machine,
and their all-MiniLM-L6-v2 vectors: what the 1M-vector benchmarks measure besides the
Debian vectors grown with noisy copies (bench_index_build.grown), whose noise makes a
graph's job harder than real text does, or easier, depending on how much is added.

The passages, each distinct, in a fixed order:
- the Debian packages' one-line descriptions (``debian.py``),
- the sentences and paragraphs of every man page (rendered once by ``retrieval_sets``),
- the sentences and paragraphs of the docstrings and comments of this environment's
  Python modules (the standard library and site-packages).

    python bench/real_corpus.py [--size 1000000]   # embeds once, cached in bench/.cache

Embedding a million passages takes a while on two cores; the work is saved every 25,000
passages, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import re
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from debian import CACHE, descriptions  # noqa: E402
from retrieval_sets import _man_files, _python_files, rendered_man_pages  # noqa: E402

#: Passages shorter or longer than this (characters) are left out.
SHORTEST, LONGEST = 30, 600
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])")
#: Passages embedded between two saves of the work.
PART = 25_000


def _pieces(text: str) -> Iterator[str]:
    """The paragraphs of a text and, for those of several sentences, each sentence."""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        sentences = _SENTENCES.split(paragraph)
        if len(sentences) > 1:
            yield from sentences
        yield paragraph


def _python_text(root: Path) -> Iterator[str]:
    """Docstrings, and comments (a run of comment lines is one paragraph)."""
    for path in _python_files(root):
        try:
            source = path.read_bytes()
            tree = ast.parse(source)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    yield from _pieces(doc)
        run: list[str] = []
        for line in source.decode("utf-8", "replace").splitlines() + [""]:
            stripped = line.strip()
            if stripped.startswith("# "):
                run.append(stripped[2:])
            elif run:
                yield from _pieces(" ".join(run))
                run = []


def passages(size: int) -> list[str]:
    """Up to ``size`` distinct passages (see the module's docstring), the same on every
    run on the same machine: every candidate is kept in a random order fixed by its hash,
    so a smaller corpus is a sample of every source, not the first source alone."""
    found: set[str] = set()

    def add(pieces: Iterator[str]) -> None:
        found.update(p for p in pieces if SHORTEST <= len(p) <= LONGEST)

    add(d for _, d in descriptions())
    rendered = rendered_man_pages(_man_files(False))
    for key in sorted(rendered):
        add(_pieces("\n".join(rendered[key].split("\n")[1:])))  # the title line left out
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])}
    for root in sorted(roots):
        add(_python_text(root))
    ranked = sorted(found, key=lambda p: hashlib.blake2b(p.encode(), digest_size=8).digest())
    return ranked[:size]


def cached_passages(size: int) -> list[str]:
    """:func:`passages`, kept in bench/.cache after the first call (delete
    ``real-passages-SIZE.json.gz`` to collect them again)."""
    CACHE.mkdir(exist_ok=True)
    stored = CACHE / f"real-passages-{size}.json.gz"
    if stored.exists():
        with gzip.open(stored, "rt", encoding="utf-8") as handle:
            found: list[str] = json.load(handle)
        return found
    texts = passages(size)
    with gzip.open(stored, "wt", encoding="utf-8") as handle:
        json.dump(texts, handle)
    return texts


def _cached_vectors(texts: list[str]) -> Path:
    digest = hashlib.blake2b("\n".join(texts).encode(), digest_size=8).hexdigest()
    CACHE.mkdir(exist_ok=True)
    return CACHE / f"real-minilm-{len(texts)}-{digest}.npy"


def embedded_so_far(size: int = 1_000_000) -> np.ndarray:
    """The vectors of the passages embedded so far, in order (all of them once
    :func:`vectors` has finished): the passages are in a random order, so any prefix is
    a sample of every source. For measurements while the embedding goes on."""
    cached = _cached_vectors(cached_passages(size))
    if cached.exists():
        return np.load(cached)
    parts = []
    while (part := CACHE / f"{cached.stem}.part{len(parts)}.npy").exists():
        parts.append(np.load(part))
    if not parts:
        raise SystemExit("no passages embedded yet: run python bench/real_corpus.py")
    return np.vstack(parts)


def vectors(size: int = 1_000_000) -> tuple[list[str], np.ndarray]:
    """The passages and their vectors from vibes' default model (unnormalised, as
    stored), embedded on first use and cached by the corpus's contents."""
    texts = cached_passages(size)
    cached = _cached_vectors(texts)
    if cached.exists():
        return texts, np.load(cached)
    import vibes

    model = vibes.get_model("minilm")
    parts = []
    started = time.perf_counter()
    for number, start in enumerate(range(0, len(texts), PART)):
        part = CACHE / f"{cached.stem}.part{number}.npy"
        if not part.exists():
            embedded = np.asarray(model.embed_batch(texts[start : start + PART]), np.float32)
            np.save(part, embedded)
            done = start + len(embedded)
            rate = done / (time.perf_counter() - started)
            print(f"  embedded {done:,} of {len(texts):,} ({rate:,.0f}/s)", file=sys.stderr)
        parts.append(part)
    matrix = np.vstack([np.load(p) for p in parts])
    np.save(cached, matrix)
    for part in parts:
        part.unlink()
    return texts, matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--count", action="store_true", help="count the passages, no vectors")
    args = parser.parse_args()
    if args.count:
        texts = cached_passages(args.size)
        print(f"{len(texts):,} passages, {sum(map(len, texts)) / len(texts):.0f} characters each")
        return
    texts, matrix = vectors(args.size)
    print(f"{len(texts):,} passages, vectors {matrix.shape}")


if __name__ == "__main__":
    main()
