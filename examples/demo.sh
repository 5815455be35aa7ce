#!/usr/bin/env bash
# The main job end to end: embed the standard library's docstrings, then search them.
# Run through `make demo`, which sets up .venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
VIBES=.venv/bin/vibes
DB=demo/stdlib.db
mkdir -p demo

.venv/bin/python examples/stdlib_docstrings.py > demo/stdlib.jsonl
echo "Embedding $(wc -l < demo/stdlib.jsonl) docstrings into $DB (a second run embeds nothing)"
time $VIBES embed-multi stdlib demo/stdlib.jsonl -d "$DB" --store \
    --content-column docstring --metadata-column kind
$VIBES collections -d "$DB" --table

for query in \
    "read and write compressed archives" \
    "run a function in parallel on several processes" \
    "parse command line options" \
    "find the difference between two texts"; do
    echo
    echo "== $query"
    $VIBES similar stdlib -c "$query" -n 3 -d "$DB" |
        .venv/bin/python -c 'import json, sys
for line in sys.stdin:
    hit = json.loads(line)
    first = hit["content"].strip().splitlines()[0]
    score, name = hit["score"], hit["id"]
    print(f"  {score:.3f}  {name:<40} {first[:70]}")'
done
