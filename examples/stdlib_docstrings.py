"""Print the docstrings of the Python standard library as newline-delimited JSON.

Each line is {"id": "json.dumps", "kind": "function", "summary": "...", "docstring": "..."}:
the module docstrings, plus those of public top-level functions and classes. ``summary`` is
the docstring's first paragraph on one line (what the thing does; the demo embeds it),
``docstring`` the whole of it. The source is parsed, never imported, so no module runs.
Every Python carries this corpus: nobody here wrote it.

    python examples/stdlib_docstrings.py > stdlib.jsonl
"""

from __future__ import annotations

import ast
import json
import re
import sys
import sysconfig
from pathlib import Path

SKIP_PARTS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def summary(doc: str) -> str:
    """The first paragraph of a docstring, its lines joined with single spaces."""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(first.split())


def row(name: str, kind: str, doc: str) -> dict[str, str]:
    return {"id": name, "kind": kind, "summary": summary(doc), "docstring": doc}


def docstrings(root: Path):
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).parts
        if SKIP_PARTS.intersection(relative) or any(p.startswith("_") for p in relative[:-1]):
            continue
        name = module_name(root, path)
        if not name or any(part.startswith("_") for part in name.split(".")):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        doc = ast.get_docstring(tree)
        if doc:
            yield row(name, "module", doc)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and not node.name.startswith("_") and len(doc) > 40:
                    kind = "class" if isinstance(node, ast.ClassDef) else "function"
                    yield row(f"{name}.{node.name}", kind, doc)


def main() -> None:
    root = Path(sysconfig.get_paths()["stdlib"])
    for row in docstrings(root):
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
