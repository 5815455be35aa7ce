#!/usr/bin/env bash
# The main job end to end: embed the standard library's docstrings, then search them.
# Run through `make demo`, which sets up .venv first.
#
# It embeds each docstring's first paragraph, the sentence or two that says what a module,
# class or function does, with the real default model: about 47,000 tokens for ~2,500
# docstrings, about 40 seconds in all on two cores (the whole docstrings are 3.5 times as
# many tokens and took over a minute and a half). The summaries are what the searches
# below ask about. On a terminal, embed-multi shows a progress bar with the time left.
set -euo pipefail
cd "$(dirname "$0")/.."
VIBES=.venv/bin/vibes
DB=demo/stdlib.db
mkdir -p demo

.venv/bin/python examples/stdlib_docstrings.py > demo/stdlib.jsonl
echo "Embedding $(wc -l < demo/stdlib.jsonl) docstring summaries into $DB (a second run embeds nothing)"
time $VIBES embed-multi stdlib demo/stdlib.jsonl -d "$DB" --store \
    --content-column summary --metadata-column kind
$VIBES collections -d "$DB" --table

# The searches run in one process, so the model loads once (a `vibes similar` process
# spends about 5 of its 6 seconds loading it); each finds what `vibes similar` would.
echo
echo "Searching, as: $VIBES similar stdlib -c QUERY -n 3 -d $DB"
.venv/bin/python - "$DB" <<'PYTHON'
import sys

import vibes

queries = [
    "read and write compressed archives",
    "run a function in parallel on several processes",
    "parse command line options",
    "find the difference between two texts",
]
collection = vibes.Database(sys.argv[1]).collection("stdlib")
for query, hits in zip(queries, collection.search_many(queries, n=3)):
    print(f"\n== {query}")
    for hit in hits:
        print(f"  {hit.score:.3f}  {hit.id:<40} {hit.content[:70]}")
PYTHON
