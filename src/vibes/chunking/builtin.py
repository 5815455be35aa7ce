"""The built-in chunkers: lines, paragraphs, sentences, tokens, markdown, python and code."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from ..errors import VibesError
from .base import Chunk, Chunker, Option, line_offsets, trimmed

_BLANK_LINES = re.compile(r"\n[ \t]*(?:\r?\n[ \t]*)+")


def _lines(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    for match in re.finditer(r"[^\n]+", text):
        yield trimmed(text, match.start(), match.end())


def _spans_between(text: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in separator.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _merge(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Join neighbouring spans while the joined span stays within ``size`` characters."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and end - merged[-1][0] <= size:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _paragraphs(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    for start, end in _merge(_spans_between(text, _BLANK_LINES), options["size"]):
        yield trimmed(text, start, end)


# Words that end with a full stop without ending a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st vs etc cf fig figs no nos vol vols inc ltd co corp dept est
    approx al jan feb mar apr jun jul aug sep sept oct nov dec mt ave blvd gen col lt sgt
    rev hon pp ed eds op cit ibid viz""".split()
)
_SENTENCE_END = re.compile(r"([.!?\u2026]+)([\"'\u201d\u2019)\]]*)(\s+)")
_NEXT_STARTS_SENTENCE = re.compile(r"[\"'\u201c\u2018(\[]*[A-Z0-9\u00C0-\u024F]")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence. Handles abbreviations (Dr., e.g.), initials (J. R. R.),
    decimals (3.14), ellipses, and closing quotes or brackets after the full stop; a blank
    line always ends a sentence. Needs no data files."""
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _spans_between(text, _BLANK_LINES):
        start = block_start
        block = text[block_start:block_end]
        for match in _SENTENCE_END.finditer(block):
            after = block[match.end() :]
            if not after or not _NEXT_STARTS_SENTENCE.match(after):
                continue
            if match.group(1) == ".":
                before = block[: match.start(1)]
                word = re.search(r"(\S+)$", before)
                token = word.group(1).lstrip("\"'(\u201c[").lower() if word else ""
                if token in _ABBREVIATIONS or "." in token:  # Dr. / e.g. / U.S.
                    continue
                if len(token) == 1 and token.isalpha():  # an initial: J. Smith
                    continue
            end = block_start + match.end(2)
            spans.append((start, end))
            start = block_start + match.end()
        spans.append((start, block_end))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _windows(count: int, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    if overlap >= size:
        raise VibesError(f"The overlap ({overlap}) must be smaller than the size ({size})")
    if count == 0:
        return  # nothing to cut (an empty or blank text)
    step = size - overlap
    for first in range(0, max(count - overlap, 1), step):
        yield first, min(first + size, count)


def _sentences(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    spans = sentence_spans(text)
    for first, last in _windows(len(spans), options["group"], options["overlap"]):
        yield trimmed(text, spans[first][0], spans[last - 1][1])


def _disjoint(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token spans made ordered and disjoint, one per token (so counting spans still counts
    tokens): a span starts after any whitespace it covers (SentencePiece's "▁dog" may cover
    the space before "dog"), and ends where the next one starts (T5's word-start token "▁"
    shares its span with the letter after it; it becomes an empty span there)."""
    trimmed_spans: list[tuple[int, int]] = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        trimmed_spans.append((start, end))
    for i in range(len(trimmed_spans) - 2, -1, -1):
        start, end = trimmed_spans[i]
        end = min(end, trimmed_spans[i + 1][0])
        trimmed_spans[i] = (min(start, end), end)
    return trimmed_spans


def _token_spans(text: str, model: Any) -> tuple[list[tuple[int, int]], int | None]:
    """Character spans of the model's tokens and how many it reads; words as a fallback."""
    spans = getattr(model, "token_spans", None)
    if spans is not None:
        return _disjoint(text, list(spans(text))), getattr(model, "max_tokens", None)
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)], None


def _token_windows(
    spans: list[tuple[int, int]], size: int, overlap: int
) -> Iterator[tuple[int, int]]:
    """(first, last) token of windows of at most ``size`` tokens, neighbours sharing about
    ``overlap``, cut where a word starts (a gap before its token) whenever the window holds
    one: half a word tokenizes into more tokens (T5 gives it a word-start "▁" of its own),
    and a chunk must never hold more tokens than it was counted with. A single word longer
    than the window is cut inside, and the window holding its rest counts one token more,
    for that word start."""
    if overlap >= size:
        raise VibesError(f"The overlap ({overlap}) must be smaller than the size ({size})")
    count = len(spans)

    def word_start(i: int) -> bool:
        return i in (0, count) or spans[i][0] > spans[i - 1][1]

    def end(first: int) -> int:
        last = min(first + size - (not word_start(first) and size > 1), count)
        return next((i for i in range(last, first, -1) if word_start(i)), last)

    first = 0
    while first < count:
        cut = end(first)
        yield first, cut
        if cut == count:
            return
        # The next window starts ``overlap`` tokens back, at the word start at or before
        # that point, else the first one after it (the cut itself is one): no token is
        # ever left out. A window that would end where this one does (the words after the
        # overlap do not fit) starts at the cut instead, sharing nothing.
        back = max(cut - overlap, first + 1)
        first = next(
            (i for i in range(back, first, -1) if word_start(i)),
            next((i for i in range(back, cut + 1) if word_start(i)), back),
        )
        if end(first) <= cut:
            first = cut


def _tokens(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    spans, limit = _token_spans(text, model)
    size = options["size"] or limit or 256
    if limit is not None and size > limit:
        name = getattr(model, "model_id", "the model")
        raise VibesError(f"Chunks of {size} tokens exceed the {limit} tokens {name} reads")
    for first, last in _token_windows(spans, size, options["overlap"]):
        yield trimmed(text, spans[first][0], spans[last - 1][1])


_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _markdown(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    starts = line_offsets(text)
    sections: list[tuple[int, str | None]] = [(0, None)]
    path: list[tuple[int, str]] = []
    fence = None
    for number, offset in enumerate(starts):
        line = text[offset : starts[number + 1] if number + 1 < len(starts) else len(text)]
        line = line.rstrip("\r\n")
        opened = _FENCE.match(line)
        if opened:
            fence = None if fence == opened.group(1) else (fence or opened.group(1))
            continue
        heading = _HEADING.match(line) if fence is None else None
        if heading:
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading.group(2)))
            sections.append((offset, " > ".join(title for _, title in path)))
    bounds = [offset for offset, _ in sections[1:]] + [len(text)]
    for (start, context), end in zip(sections, bounds):
        if not text[start:end].strip():
            continue
        if end - start <= options["size"]:
            yield trimmed(text, start, end, context=context)
            continue
        section = text[start:end]
        for a, b in _merge(_spans_between(section, _BLANK_LINES), options["size"]):
            yield trimmed(text, start + a, start + b, context=context)


def _code(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    # Cut at blank lines followed by an unindented line: top-level blocks stay whole.
    separator = re.compile(r"\n[ \t]*(?:\r?\n[ \t]*)+(?=\S)")
    for start, end in _merge(_spans_between(text, separator), options["size"]):
        yield trimmed(text, start, end)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"({ast.unparse(node.args)}){returns}"


def _python(text: str, options: dict[str, Any], model: Any) -> Iterator[Chunk]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        yield from _code(text, {"size": options["fallback_size"]}, model)
        return
    starts = line_offsets(text)

    def span(first_line: int, last_line: int) -> tuple[int, int]:
        end = starts[last_line] if last_line < len(starts) else len(text)
        return starts[first_line - 1], end

    # Module-level code between definitions (the docstring, imports, constants, a script's
    # statements): each unbroken run is a chunk, so no code is left out.
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    found: list[Chunk] = []
    run: list[ast.stmt] = []
    for node in [*tree.body, None]:
        if node is not None and not isinstance(node, definitions):
            run.append(node)
            continue
        if run:
            first, last = run[0].lineno, run[-1].end_lineno or run[-1].lineno
            found.append(trimmed(text, *span(first, last), context="module"))
            run = []

    def visit(body: list[ast.stmt], prefix: str) -> Iterator[Chunk]:
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            name = prefix + node.name
            doc = ast.get_docstring(node)
            summary = f"\n{doc.strip().splitlines()[0]}" if doc else ""
            if isinstance(node, ast.ClassDef):
                # The class itself: its header, docstring and attributes, up to its first
                # method; methods are chunks of their own.
                inner = [
                    n
                    for n in node.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                ]
                if inner:
                    last = min(
                        min([d.lineno for d in n.decorator_list] + [n.lineno]) for n in inner
                    )
                    last -= 1
                else:
                    last = node.end_lineno or node.lineno
                bases = ", ".join(ast.unparse(b) for b in node.bases)
                context = f"class {name}({bases})" if bases else f"class {name}"
                yield trimmed(text, *span(first, last), context=context + summary)
                yield from visit(node.body, name + ".")
            else:
                kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
                context = f"{kind} {name}{_signature(node)}{summary}"
                yield trimmed(text, *span(first, node.end_lineno or node.lineno), context=context)
                yield from visit(node.body, name + ".")

    found.extend(visit(tree.body, ""))
    yield from sorted(found, key=lambda chunk: chunk.start)  # in source order


BUILTIN_CHUNKERS = [
    Chunker("lines", "Each non-empty line", _lines),
    Chunker(
        "paragraphs",
        "Blank-line separated paragraphs, short ones merged up to a size",
        _paragraphs,
        {"size": Option(int, 1000, "Most characters in a merged chunk", minimum=1)},
    ),
    Chunker(
        "sentences",
        "Sentences (abbreviations, decimals and quotes handled; no data downloads)",
        _sentences,
        {
            "group": Option(int, 1, "Sentences per chunk", minimum=1),
            "overlap": Option(int, 0, "Sentences shared by neighbouring chunks", minimum=0),
        },
    ),
    Chunker(
        "tokens",
        "Windows of the model's tokens, never longer than the model reads",
        _tokens,
        {
            "size": Option(int, 0, "Tokens per chunk (0: as many as the model reads)", minimum=0),
            "overlap": Option(int, 32, "Tokens shared by neighbouring chunks", minimum=0),
        },
    ),
    Chunker(
        "markdown",
        "Sections under headings, each with its heading path as context",
        _markdown,
        {"size": Option(int, 2000, "Longer sections are cut at paragraphs", minimum=1)},
    ),
    Chunker(
        "python",
        "One chunk per function, class and method, with its qualified name, signature and "
        "docstring; code that does not parse is cut like 'code'",
        _python,
        {"fallback_size": Option(int, 1500, "Chunk size when the code does not parse", minimum=1)},
    ),
    Chunker(
        "code",
        "Any code: top-level blocks separated by blank lines, merged up to a size",
        _code,
        {"size": Option(int, 1500, "Most characters in a merged chunk", minimum=1)},
    ),
]
