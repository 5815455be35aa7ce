"""Model throughput: the OpenAI-compatible API client against a local server, and images/second
through a tiny CLIP, each against its baseline measured in the same run.

API: the same texts sent to the same local server (which answers like /v1/embeddings)
by vibes' client, and by a bare urllib loop that only posts the JSON and decodes the
answer: the difference is the client's own overhead. CLIP: vibes' model against
transformers' CLIPModel called directly on the same decoded images.

    python bench/bench_models.py [--texts 20000] [--images 256]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def start_server(dimensions: int = 256) -> tuple[ThreadingHTTPServer, str]:
    vector = [0.1] * dimensions

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = [{"index": i, "embedding": vector} for i in range(len(body["input"]))]
            payload = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def bench_api(count: int, batch: int) -> None:
    from vibes.models.openai import OpenAICompatibleModel

    server, url = start_server()
    texts = [f"text number {i} with a few more words in it" for i in range(count)]
    batches = [texts[i : i + batch] for i in range(0, count, batch)]

    start = time.perf_counter()
    for part in batches:
        body = json.dumps({"model": "m", "input": part}).encode()
        request = urllib.request.Request(
            url + "/embeddings", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request) as response:
            rows = json.loads(response.read())["data"]
        assert len(rows) == len(part)
    bare = time.perf_counter() - start

    model = OpenAICompatibleModel("m", "m", url=url, key_name=None, key_env=None, needs_key=False)
    start = time.perf_counter()
    for part in batches:
        assert len(model.embed_batch(part)) == len(part)
    client = time.perf_counter() - start

    import os

    import vibes

    # Measure writing, not the index build that a 20,000-item collection would trigger.
    os.environ["VIBES_INDEX_MIN_ITEMS"] = str(count + 1)
    with tempfile.TemporaryDirectory() as directory:
        collection = vibes.Database(Path(directory) / "api.db").collection("api", model=model)
        start = time.perf_counter()
        collection.embed_multi(((str(i), t) for i, t in enumerate(texts)), batch_size=batch)
        stored = time.perf_counter() - start
    server.shutdown()
    print(f"API client, {count:,} texts in requests of {batch}, 256-dimension answers:")
    print(f"  bare urllib post + JSON decode : {count / bare:10,.0f} texts/s")
    print(
        f"  vibes OpenAI-compatible client : {count / client:10,.0f} texts/s ({bare / client:.2f}x)"
    )
    print(
        f"  vibes embed_multi into SQLite  : {count / stored:10,.0f} texts/s ({bare / stored:.2f}x)"
    )


def bench_clip(count: int) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from tiny_models import make_clip

    from vibes.models.clip import CLIPModel, read_image

    with tempfile.TemporaryDirectory() as directory:
        path = make_clip(Path(directory))
        images = []
        rng = np.random.default_rng(0)
        for _ in range(count):
            buffer = io.BytesIO()
            pixels = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buffer, format="PNG")
            images.append(buffer.getvalue())
        model = CLIPModel("clip", path)
        clip, processor = model.load()
        model.embed_batch(images[:8])  # warm up

        start = time.perf_counter()
        for i in range(0, count, 64):
            pictures = [read_image(data) for data in images[i : i + 64]]
            with torch.no_grad():
                clip.get_image_features(**processor(images=pictures, return_tensors="pt"))
        direct = time.perf_counter() - start

        start = time.perf_counter()
        for i in range(0, count, 64):
            model.embed_batch(images[i : i + 64])
        through = time.perf_counter() - start
    print(f"tiny CLIP (16 dimensions, 32x32 input), {count} PNG images of 64x64:")
    print(f"  transformers CLIPModel directly : {count / direct:8.1f} images/s")
    print(
        f"  vibes CLIP model                : {count / through:8.1f} images/s "
        f"({direct / through:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    bench_api(args.texts, args.batch)
    bench_clip(args.images)


if __name__ == "__main__":
    main()
