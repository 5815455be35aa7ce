"""The real corpus several benchmarks share: the one-line descriptions of the ~63,000
Debian packages this machine's apt knows (``apt-cache dumpavail``), and their
all-MiniLM-L6-v2 vectors, embedded once and cached in ``bench/.cache``.

    from debian import descriptions, vectors, database
    pairs = descriptions()               # [(package, description)], sorted by package
    matrix = vectors(pairs)              # (n, 384) float32, as the default model makes them
    path = database(directory, pairs)    # a vibes database holding them, text stored
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

# These benchmarks measure a database whose index is ready when its write returns: the
# write builds it, rather than a background process (vibes.index.background).
os.environ.setdefault("VIBES_INDEX_BUILD", "inline")

CACHE = Path(__file__).parent / ".cache"


def descriptions() -> list[tuple[str, str]]:
    """Every package's name and one-line description (first seen wins), by name."""
    output = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True).stdout
    seen: dict[str, str] = {}
    package = None
    for line in output.splitlines():
        if line.startswith("Package: "):
            package = line[9:].strip()
        elif line.startswith("Description: ") and package and package not in seen:
            seen[package] = line[13:].strip()
    return sorted(seen.items())


def vectors(pairs: list[tuple[str, str]]) -> np.ndarray:
    """The descriptions' vectors from vibes' default model (unnormalised, as stored),
    embedded on first use and cached by corpus size."""
    CACHE.mkdir(exist_ok=True)
    cached = CACHE / f"debian-minilm-{len(pairs)}.npy"
    if cached.exists():
        return np.load(cached)
    import vibes

    print(f"(embedding {len(pairs):,} Debian descriptions once; cached in {cached})")
    model = vibes.get_model("minilm")
    matrix = np.asarray(model.embed_batch([d for _, d in pairs]), dtype=np.float32)
    np.save(cached, matrix)
    return matrix


def database(
    directory: Path,
    pairs: list[tuple[str, str]],
    name: str = "debian",
    matrix: np.ndarray | None = None,
) -> Path:
    """A vibes database at ``directory/debian.db`` with collection ``name`` holding every
    description (text stored) with its vector (``matrix``'s rows, else the cached ones);
    built once per directory."""
    import vibes

    path = directory / "debian.db"
    if path.exists():
        return path
    if matrix is None:
        matrix = vectors(pairs)
    collection = vibes.Database(path).collection(name, model="minilm")
    collection.embed_multi(
        (
            {"id": package, "content": text, "vector": row}
            for (package, text), row in zip(pairs, matrix)
        ),
        store=True,
        batch_size=5_000,
    )
    collection.database.close()
    return path


if __name__ == "__main__":
    found = descriptions()
    print(f"{len(found):,} descriptions; vectors {vectors(found).shape}")
