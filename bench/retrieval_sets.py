"""Labelled retrieval sets built from text already on this machine, and the metrics that
score a ranking against them.

Nobody on this project wrote the text: it is the machine's own manual pages and the
docstrings of Python's standard library and of a few installed packages. Each set is

    documents: list of (doc_id, text)
    queries:   list of (query_id, text)
    relevant:  {query_id: {doc_id, ...}}

and is built deterministically: sources are read in sorted order and the queries are a
seeded sample. Documents that are too short (under 25 words) or repeat an earlier one's
text are dropped; every other eligible page or docstring stays in the set, as a
distractor when no query points at it. Documents that share a query text are all relevant
to that one query. A sentence of a document that holds its query word for word is taken
out, so no query is found verbatim in its document.

- ``man_pages``: pages of every section (the Google Cloud CLI's left out). The query is the
  one-line summary of the NAME section without the command names ("ls - list directory
  contents" asks "list directory contents"); the document is the DESCRIPTION section
  followed by the other sections but NAME, SYNOPSIS, SEE ALSO, AUTHOR(S), COPYRIGHT,
  REPORTING BUGS and COLOPHON, cut at 8,000 characters. The query is the page author's own
  summary: it shares some words with the description, not all.
- ``gcloud_pages``: the same over the Google Cloud CLI's generated pages (stable commands
  only; the alpha and beta copies repeat them). Templated text, thousands of near
  neighbours, descriptions that restate the summary: a more lexical set.
- ``python_docs``: each public documented function, class or method of the standard
  library (tests left out) and of numpy, scipy, networkx and scikit-learn where installed,
  read with ``ast``, never imported. The query is the docstring's first sentence (when it
  reads as words, not as a signature); the document is the qualified name, the signature
  and the rest of the docstring.

``questions=True`` rewrites every query as a question a person would type ("how do I
list directory contents", "what is the GNU C compiler?"): a fixed template picked by the
query's first word ("Return X" becomes "how do I get X"), so it adds words the documents
do not hold. The documents and the sampled queries are the same as without it.

Man pages are rendered by ``man`` (man-db and groff) once and cached in ``bench/.cache``.

    python bench/retrieval_sets.py        # build every set, print sizes and examples
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import math
import os
import random
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

Document = tuple[str, str]
Query = tuple[str, str]
Relevant = dict[str, set[str]]
RetrievalSet = tuple[list[Document], list[Query], Relevant]

CACHE = Path(__file__).resolve().parent / ".cache"
MAN_ROOT = Path("/usr/share/man")
#: Longest document kept, in characters (cut at a paragraph or word boundary). The model
#: reads about the first thousand; the full-text index reads all of this.
MAX_DOCUMENT_CHARS = 8000
#: Shortest document kept, in words.
MIN_DOCUMENT_WORDS = 25
#: A query keeps between these many words.
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 3, 30

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased (letters, digits and ``_`` of any script)."""
    return [w.lower() for w in _WORD.findall(text)]


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _cut(text: str, limit: int = MAX_DOCUMENT_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, at the last paragraph break (else
    word break) before it."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    at = head.rfind("\n\n")
    if at < limit // 2:
        at = head.rfind(" ")
    return head[: at if at > 0 else limit].rstrip()


def without_summary(text: str, summary: str) -> str:
    """``text`` without the sentences that repeat ``summary`` word for word (generated
    pages open their description with their NAME line), so that no query is found in its
    document verbatim."""
    wanted = " ".join(words(summary))
    if len(wanted.split()) < MIN_QUERY_WORDS or wanted not in " ".join(words(text)):
        return text
    paragraphs = []
    for paragraph in text.split("\n\n"):
        sentences = _SENTENCE_END.split(paragraph)
        kept = [s for s in sentences if wanted not in " ".join(words(s))]
        if kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(paragraphs)


def _sample(ids: Sequence[str], count: int, seed: int) -> list[str]:
    """``count`` of ``ids`` (all if fewer), a seeded sample, in sorted order."""
    ordered = sorted(ids)
    if count >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, count))


def _assemble(
    candidates: Iterable[tuple[str, str, str]], n_queries: int, seed: int, questions: bool
) -> RetrievalSet:
    """Documents, queries and relevance from (doc_id, query_text, document_text) rows in a
    stable order. A document whose text repeats an earlier one's is dropped; documents that
    share a query text are all relevant to it (one query, not several identical ones)."""
    documents: list[Document] = []
    seen: set[str] = set()
    by_query: dict[str, list[str]] = {}
    first_text: dict[str, str] = {}
    for doc_id, query, text in candidates:
        text = without_summary(text, query)
        key = hashlib.md5(" ".join(words(text)).encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        documents.append((doc_id, text))
        query_key = " ".join(words(query))
        if MIN_QUERY_WORDS <= len(query_key.split()) <= MAX_QUERY_WORDS:
            by_query.setdefault(query_key, []).append(doc_id)
            first_text.setdefault(query_key, query)
    chosen = _sample(list(by_query), n_queries, seed)
    queries: list[Query] = []
    relevant: Relevant = {}
    for number, key in enumerate(chosen):
        text = first_text[key]
        if questions:
            text = question(text)
        query_id = f"q{number:04d}"
        queries.append((query_id, text))
        relevant[query_id] = set(by_query[key])
    return documents, queries, relevant


# --- man pages ---------------------------------------------------------------------------

_BOILERPLATE = {"SEE ALSO", "AUTHOR", "AUTHORS", "COPYRIGHT", "REPORTING BUGS", "COLOPHON"}
#: NAME holds the query; SYNOPSIS repeats the command names; DESCRIPTION goes first.
_LEFT_OUT = {"NAME", "SYNOPSIS", "DESCRIPTION"}


def _render(path: Path) -> str:
    """The text of one man page as ``man`` lays it out (paragraphs on one line each)."""
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", MANWIDTH="1000")
    env.pop("MAN_KEEP_FORMATTING", None)
    result = subprocess.run(
        ["man", "-l", "-P", "cat", str(path)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    text = result.stdout.decode("utf-8", "replace")
    return re.sub(r".\x08", "", text)  # overstrike bold / underline, should any remain


def _is_page(path: Path) -> bool:
    """A real page: not a link, not a ``.so`` redirect to another page."""
    if path.is_symlink() or not path.is_file():
        return False
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(400)
    except OSError:
        return False
    lines = [ln for ln in head.split(b"\n") if ln.strip() and not ln.startswith(b'.\\"')]
    return not (lines and lines[0].startswith(b".so "))


def rendered_man_pages(paths: Sequence[Path]) -> dict[str, str]:
    """{path relative to MAN_ROOT: rendered text} for ``paths``, from the cache where it has
    them (keyed by path, size and modification time), rendering the rest in parallel."""
    if not paths:
        return {}
    CACHE.mkdir(parents=True, exist_ok=True)
    store = CACHE / "man-rendered.json.gz"
    cached: dict[str, list] = {}
    if store.exists():
        with gzip.open(store, "rt", encoding="utf-8") as handle:
            cached = json.load(handle)

    def stamp(path: Path) -> str:
        info = path.stat()
        return f"{info.st_size}:{int(info.st_mtime)}"

    wanted = {str(p.relative_to(MAN_ROOT)): p for p in paths}
    missing = [k for k, p in wanted.items() if k not in cached or cached[k][0] != stamp(p)]
    if missing:
        print(f"rendering {len(missing)} man pages (cached afterwards)...", file=sys.stderr)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for key, text in zip(missing, pool.map(lambda k: _render(wanted[k]), missing)):
                cached[key] = [stamp(wanted[key]), text]
        with gzip.open(store, "wt", encoding="utf-8") as handle:
            json.dump(cached, handle)
    return {k: cached[k][1] for k in wanted}


def man_sections(rendered: str) -> dict[str, str]:
    """{SECTION NAME: text} of a rendered page; each paragraph becomes one line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    lines = rendered.split("\n")
    for line in lines[1:]:  # the first line is the page's title
        if line and not line[0].isspace():
            current = sections.setdefault(_normal(line), [])
        elif current is not None:
            current.append(line)
    result = {}
    for name, body in sections.items():
        paragraphs = re.split(r"\n\s*\n", "\n".join(body))
        result[name] = "\n\n".join(p for p in (_normal(p) for p in paragraphs) if p)
    return result


def _split_name(name_section: str) -> tuple[str, str] | None:
    """("ls", "list directory contents") from "ls - list directory contents"."""
    first = name_section.split("\n\n")[0]
    for dash in (" - ", " — ", " -- ", " – "):
        if dash in first:
            names, summary = first.split(dash, 1)
            return names.strip(), summary.strip().rstrip(".")
    return None


def _man_candidates(paths: Sequence[Path]) -> list[tuple[str, str, str]]:
    rendered = rendered_man_pages(paths)
    rows = []
    for key in sorted(rendered):
        sections = man_sections(rendered[key])
        name = _split_name(sections.get("NAME", ""))
        if name is None or "DESCRIPTION" not in sections:
            continue
        # DESCRIPTION first (the model reads only the start), then the other sections.
        order = ["DESCRIPTION"] + [
            s for s in sections if s not in _BOILERPLATE and s not in _LEFT_OUT
        ]
        text = _cut("\n\n".join(sections[s] for s in order if sections[s]))
        if len(words(text)) < MIN_DOCUMENT_WORDS:
            continue
        doc_id = key.rsplit("/", 1)[-1].removesuffix(".gz")
        rows.append((doc_id, name[1], text))
    return rows


def _man_files(include_gcloud: bool | None) -> list[Path]:
    """Pages of every section; ``include_gcloud``: None drops the Google Cloud CLI's pages,
    True keeps only them (stable commands, not the alpha and beta copies)."""
    paths = []
    for section in sorted(MAN_ROOT.glob("man[1-9]")):
        for path in sorted(section.iterdir()):
            gcloud = path.name.startswith("gcloud")
            if include_gcloud is None and gcloud:
                continue
            if include_gcloud and not (
                gcloud and not path.name.startswith(("gcloud_alpha", "gcloud_beta"))
            ):
                continue
            if _is_page(path):
                paths.append(path)
    return paths


def man_pages(n_queries: int = 800, seed: int = 0, questions: bool = False) -> RetrievalSet:
    """Manual pages of every section (the Google Cloud CLI's pages left out, see
    :func:`gcloud_pages`): query = NAME summary, document = DESCRIPTION."""
    return _assemble(_man_candidates(_man_files(None)), n_queries, seed, questions)


def gcloud_pages(n_queries: int = 800, seed: int = 0, questions: bool = False) -> RetrievalSet:
    """The Google Cloud CLI's pages of stable commands, as :func:`man_pages`."""
    return _assemble(_man_candidates(_man_files(True)), n_queries, seed, questions)


# --- Python docstrings ---------------------------------------------------------------------

_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])")


def _python_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(directory) / name


def _signature(node: ast.AST) -> str:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return f"({ast.unparse(node.args)})"
    return ""


def _docstring_rows(path: Path, module: str) -> Iterator[tuple[str, str, str]]:
    """(qualified name, summary sentence, rest) of each documented definition."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return
    stack: list[tuple[ast.AST, str]] = [(tree, module)]
    while stack:
        parent, prefix = stack.pop()
        for node in ast.iter_child_nodes(parent):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            name = f"{prefix}.{node.name}"
            if node.name.startswith("_"):
                continue  # private, and dunder methods document their arguments, not a task
            stack.append((node, name))
            doc = ast.get_docstring(node, clean=True)
            if not doc:
                continue
            paragraphs = doc.split("\n\n")
            first = _normal(paragraphs[0])
            sentences = _SENTENCE_END.split(first, maxsplit=1)
            summary = sentences[0].rstrip(".")
            rest = "\n\n".join(([sentences[1]] if len(sentences) > 1 else []) + paragraphs[1:])
            kind = "class " if isinstance(node, ast.ClassDef) else ""
            yield name, summary, f"{kind}{name}{_signature(node)}\n\n{rest.strip()}"


def docstring_documents(root: Path, package: str = "") -> list[tuple[str, str, str]]:
    """(qualified name, summary, document) for every public documented definition under
    ``root`` (the modules of ``package`` when given, else top-level modules) whose rest is
    long enough, in a stable order."""
    rows = []
    for path in _python_files(root):
        relative = path.relative_to(root).with_suffix("")
        parts = ([package] if package else []) + [p for p in relative.parts if p != "__init__"]
        for name, summary, text in _docstring_rows(path, ".".join(parts)):
            if len(words(text)) - len(words(name)) >= MIN_DOCUMENT_WORDS:
                rows.append((name, summary, _cut(text)))
    rows.sort(key=lambda row: row[0])
    return rows


def _plain_summary(summary: str) -> bool:
    """A summary a person could have typed: it opens with a letter and is mostly words
    (not a signature such as ``f(x : int) -> str``)."""
    tokens = summary.split()
    plain = sum(bool(re.fullmatch(r"[A-Za-z][a-z]*[,;]?", t)) for t in tokens)
    return bool(re.match(r"[A-Za-z]", summary)) and plain >= 0.6 * len(tokens)


#: Third-party packages whose docstrings join the standard library's, where installed.
PACKAGES = ("numpy", "scipy", "networkx", "sklearn")


def python_docs(
    n_queries: int = 800,
    seed: int = 0,
    questions: bool = False,
    packages: Sequence[str] = PACKAGES,
) -> RetrievalSet:
    """Docstrings of the standard library this Python runs and of ``packages`` (tests
    and private modules left out): query = the first sentence, document = qualified name,
    signature and the rest of the docstring."""
    rows = docstring_documents(Path(sysconfig.get_paths()["stdlib"]))
    for package in packages:
        root = Path(sysconfig.get_paths()["purelib"]) / package
        if root.is_dir():
            rows.extend(docstring_documents(root, package))
    rows = [(doc_id, q if _plain_summary(q) else "", text) for doc_id, q, text in rows]
    return _assemble(rows, n_queries, seed, questions)


# --- queries as questions ----------------------------------------------------------------

#: Verbs that open summaries as commands ("list directory contents", "Return the
#: path"): such a summary becomes "how do I ...". Their third-person forms count too.
_VERBS = set(
    """
    accept access add adjust allocate alter apply assign attach build calculate call cancel
    change check clean clear close collect combine compare compile compress compute configure
    connect construct control convert copy count create decode decompress define delete
    describe detach determine disable display dump edit enable encode enter evaluate execute
    exit expand export extract fetch fill filter find finish flush force format generate get
    handle hide import initialize insert install invoke iterate join keep kill launch list load
    locate lock look make manage map mark match merge modify monitor move open output parse pass
    perform print process produce prune push put query raise read receive record reduce
    register reload remove rename render repair replace report request reset resolve restore
    retrieve return run save scan search select send set show shut sort split start stop store
    strip submit switch sync synchronize take terminate test transfer translate truncate try
    turn undo unlock unpack unregister update upgrade upload use validate verify view wait
    walk wrap write
    """.split()
)


def _verb(word: str) -> str | None:
    word = word.lower()
    for form in (word, word[:-1] if word.endswith("s") else "", word[:-2]):
        if form in _VERBS:
            return form
    if word.endswith("ies") and word[:-3] + "y" in _VERBS:
        return word[:-3] + "y"
    return None


def question(summary: str) -> str:
    """A summary as a question: "how do I ..." for one that opens with a verb ("Returns the
    path" gives "how do I get the path"; "Return True if x" gives "how do I check if x"),
    "what is ...?" for the rest."""
    text = summary.strip().rstrip(".")
    head, _, tail = text.partition(" ")
    verb = _verb(head)
    if verb is None:
        return f"what is {text[:1].lower()}{text[1:]}?"
    if verb == "return":
        if re.match(r"(?i)(true|false|whether)\b", tail):
            tail = re.sub(r"(?i)^(true|false)\s+(if|when|iff)\b", "if", tail)
            tail = re.sub(r"(?i)^whether\b", "whether", tail)
            return f"how do I check {tail}"
        verb = "get"
    return f"how do I {verb} {tail}".strip()


# --- text for timing only ------------------------------------------------------------------


def filler_documents(count: int) -> list[Document]:
    """``count`` real documents for timing (no relevance): the man pages of both man sets,
    then docstrings of the standard library and of every installed package, in a stable
    order. Where those hold fewer distinct documents (about 41,000 here), they are repeated
    with their paragraphs reordered (ids ``...#copy2``, ...) to make up the count."""
    documents: list[Document] = []
    seen: set[str] = set()

    def add(rows: Iterable[tuple[str, str, str]], prefix: str) -> bool:
        for doc_id, summary, text in rows:
            full = f"{summary}\n\n{text}"
            key = hashlib.md5(full.encode()).hexdigest()
            if key in seen:
                continue
            seen.add(key)
            documents.append((f"{prefix}{doc_id}", full))
            if len(documents) >= count:
                return True
        return False

    purelib = Path(sysconfig.get_paths()["purelib"])
    sources = [
        (lambda: _man_candidates(_man_files(None)), "man:"),
        (lambda: _man_candidates(_man_files(True)), "man:"),
        (lambda: docstring_documents(Path(sysconfig.get_paths()["stdlib"])), "py:"),
    ]
    for package in sorted(p.name for p in purelib.iterdir() if (p / "__init__.py").exists()):
        sources.append((lambda p=package: docstring_documents(purelib / p, p), "py:"))
    for rows, prefix in sources:
        if add(rows(), prefix):
            return documents
    # Fewer distinct documents than asked for: repeat them, paragraphs in a seeded new
    # order, so that posting lists grow as a bigger collection of such text would make them.
    distinct = list(documents)
    rng = random.Random(0)
    copy = 1
    while len(documents) < count and distinct:
        copy += 1
        for doc_id, text in distinct:
            paragraphs = text.split("\n\n")
            rng.shuffle(paragraphs)
            documents.append((f"{doc_id}#copy{copy}", "\n\n".join(paragraphs)))
            if len(documents) >= count:
                break
    return documents


# --- metrics --------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first ``k`` of ``ranked`` (binary
    relevance): 1.0 when the relevant documents fill the top ranks."""
    gain = sum(1.0 / math.log2(rank + 2) for rank, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """The share of the relevant documents found in the first ``k`` of ``ranked``."""
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    """1 / the rank of the first relevant document (0 when none is ranked)."""
    for rank, doc_id in enumerate(ranked, 1):
        if doc_id in relevant:
            return 1.0 / rank
    return 0.0


def evaluate(runs: dict[str, Sequence[str]], relevant: Relevant) -> dict[str, float]:
    """Mean nDCG@10, recall@10, recall@100 and MRR of ``runs`` ({query_id: doc ids, best
    first}) over every query of ``relevant`` (a query with no run scores 0)."""
    totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr": 0.0}
    for query_id, wanted in relevant.items():
        ranked = runs.get(query_id, [])
        totals["ndcg@10"] += ndcg_at_k(ranked, wanted, 10)
        totals["recall@10"] += recall_at_k(ranked, wanted, 10)
        totals["recall@100"] += recall_at_k(ranked, wanted, 100)
        totals["mrr"] += reciprocal_rank(ranked, wanted)
    count = max(len(relevant), 1)
    return {name: total / count for name, total in totals.items()}


SETS = {"man": man_pages, "gcloud": gcloud_pages, "python": python_docs}


def main() -> None:
    for name, build in SETS.items():
        for questions in (False, True):
            documents, queries, relevant = build(questions=questions)
            label = f"{name}{' (questions)' if questions else ''}"
            multi = sum(len(r) > 1 for r in relevant.values())
            print(
                f"{label}: {len(documents)} documents, {len(queries)} queries "
                f"({multi} with several relevant documents)"
            )
            texts = dict(documents)
            for query_id, text in queries[:3]:
                doc_id = sorted(relevant[query_id])[0]
                print(f"  {text!r} -> {doc_id}: {texts[doc_id][:100]!r}")


if __name__ == "__main__":
    main()
