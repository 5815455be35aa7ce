"""Chunk-and-embed throughput on real documents, and the share of time spent outside the model.

The documents are the text files under /usr/share/doc (compressed ones decompressed):
READMEs, changelogs, copyright notices and manuals nobody here wrote. vibes chunks them,
embeds every chunk with all-MiniLM-L6-v2 and stores them; the baseline is
sentence-transformers' own ``encode`` over the very same chunk texts in one call, measured
in the same run.

    python bench/bench_chunking.py [--limit 300] [--chunker tokens] [--option size=128]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

from model_timer import ModelTimer


def documents(limit: int, max_chars: int) -> list[tuple[str, str]]:
    found = []
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        if len(found) >= limit:
            break
        if not path.is_file() or path.suffix in (".html", ".png", ".jpg", ".svg", ".pdf"):
            continue
        try:
            data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError):
            continue
        if b"\0" in data[:4096]:
            continue  # binary
        text = data.decode("utf-8", errors="replace")[:max_chars]
        if text.strip():
            found.append((str(path.relative_to("/usr/share/doc")), text))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="how many documents")
    parser.add_argument("--max-chars", type=int, default=20_000, help="cut longer documents")
    parser.add_argument("--chunker", default="tokens")
    parser.add_argument("--option", action="append", default=[], help="chunker key=value")
    args = parser.parse_args()
    options = dict(o.split("=", 1) for o in args.option) or {"size": "128", "overlap": "16"}

    import vibes

    docs = documents(args.limit, args.max_chars)
    model = vibes.get_model("minilm")
    st_model = model.load()
    st_model.encode(["warm up"] * 32)

    timer = ModelTimer(model)
    start = time.perf_counter()
    chunk_count = sum(
        len(vibes.chunk(text, args.chunker, model=model, **options)) for _, text in docs
    )
    chunk_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as directory:
        collection = vibes.Database(Path(directory) / "docs.db").collection("docs")
        start = time.perf_counter()
        stats = collection.embed_multi(docs, store=True, chunk=args.chunker, chunk_options=options)
        total = time.perf_counter() - start
        texts = [item["content"] for item in collection.items()]
    timer.restore()
    start = time.perf_counter()
    st_model.encode(texts, batch_size=32, show_progress_bar=False)
    baseline = time.perf_counter() - start

    characters = sum(len(text) for _, text in docs)
    model_seconds = timer.seconds
    print(
        f"{len(docs)} documents from /usr/share/doc, {characters / 1e6:.1f} M characters, "
        f"chunker {args.chunker} {options}: {chunk_count} chunks "
        f"({stats.embedded} embedded, {stats.reused} identical ones reused)"
    )
    rate = len(docs) / chunk_seconds
    print(f"  chunking alone           : {chunk_seconds:7.2f} s ({rate:,.0f} docs/s)")
    print(
        f"  vibes chunk+embed+store  : {total:7.2f} s  {len(texts) / total:7.1f} chunks/s  "
        f"{len(docs) / total:6.1f} docs/s"
    )
    print(f"  of which in the model    : {model_seconds:7.2f} s")
    outside = total - model_seconds
    print(f"  outside the model        : {outside:7.2f} s ({outside / total:.1%})")
    print(
        f"  sentence-transformers encode of the same {len(texts)} chunk texts: {baseline:.2f} s "
        f"-> vibes end to end is {baseline / total:.2f}x its speed"
    )


if __name__ == "__main__":
    main()
