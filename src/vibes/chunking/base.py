"""What a chunker is: a named way to cut a document into located pieces, with typed options."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import VibesError


@dataclass
class Chunk:
    """A piece of a document: its text, where it lies, and the context it belongs to.

    ``start``/``end`` are character offsets into the document; ``start_line``/``end_line``
    are 1-based and inclusive. ``number`` is the chunk's place in its document counted
    from 1, the ``N`` of its id ``DOCUMENT#N`` (``README.md#3`` is the third chunk);
    ``index`` is the same place counted from 0, as a Python list counts (``chunks[c.index]
    is c``). ``context`` (a heading path, a qualified name) is embedded with the text so
    the chunk keeps its meaning out of its document.
    """

    text: str
    start: int
    end: int
    start_line: int = 0
    end_line: int = 0
    index: int = 0
    context: str | None = None

    @property
    def number(self) -> int:
        """The chunk's place in its document counted from 1: the ``N`` of ``DOCUMENT#N``."""
        return self.index + 1

    @property
    def embed_text(self) -> str:
        """The text that is embedded and stored: the context, then the chunk."""
        return f"{self.context}\n\n{self.text}" if self.context else self.text

    def to_dict(self) -> dict[str, Any]:
        """The chunk as JSON shows it: its ``number`` (from 1, as in its id) first, then
        its text, offsets, lines and context (no 0-based index: one count, the ids')."""
        fields = asdict(self)
        del fields["index"]
        return {"number": self.number, **fields}


def line_offsets(text: str) -> list[int]:
    """The offset at which each line of ``text`` starts."""
    return [0] + [match.end() for match in re.finditer("\n", text)]


def trimmed(text: str, start: int, end: int, **fields: Any) -> Chunk:
    """A chunk of ``text[start:end]`` without its surrounding whitespace."""
    piece = text[start:end]
    start += len(piece) - len(piece.lstrip())
    end -= len(piece) - len(piece.rstrip())
    return Chunk(text[start:end], start, max(start, end), **fields)


@dataclass(frozen=True)
class Option:
    """One setting of a chunker."""

    type: type
    default: Any
    help: str
    minimum: int | None = None

    def parse(self, chunker: str, name: str, value: Any) -> Any:
        if isinstance(value, str) and self.type is not str:
            text = value.strip()
            try:
                if self.type is bool:
                    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(text)
                    value = text.lower() in ("true", "1", "yes")
                else:
                    value = self.type(text)
            except ValueError:
                raise VibesError(
                    f"Option {name!r} of chunker {chunker!r} must be "
                    f"{'an integer' if self.type is int else 'a ' + self.type.__name__}, "
                    f"not {value!r}"
                ) from None
        # A flag rather than a condition, so that ``value`` keeps its type (``Any``) for the
        # minimum check below instead of being narrowed to ``object``.
        valid = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if not valid:
            raise VibesError(
                f"Option {name!r} of chunker {chunker!r} must be a {self.type.__name__}, "
                f"not {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise VibesError(
                f"Option {name!r} of chunker {chunker!r} must be at least {self.minimum}"
            )
        return value


@dataclass
class Chunker:
    """A named chunker. ``split(text, options, model)`` yields chunks with offsets set;
    :meth:`chunk` validates the options and fills in lines and indexes."""

    name: str
    description: str
    split: Callable[[str, dict[str, Any], Any], Iterator[Chunk]]
    options: dict[str, Option] = field(default_factory=dict)

    def settings(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The full, validated settings: defaults overridden by ``options``."""
        given = dict(options or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise VibesError(
                f"Unknown option {unknown[0]!r} for chunker {self.name!r} (options: {known})"
            )
        return {
            name: option.parse(self.name, name, given[name]) if name in given else option.default
            for name, option in self.options.items()
        }

    def chunk(
        self, text: str, options: dict[str, Any] | None = None, model: Any = None
    ) -> list[Chunk]:
        """The chunks of ``text`` with their line numbers and places (``index`` from 0,
        ``number`` from 1, as in the ids ``DOCUMENT#N``)."""
        if not isinstance(text, str):
            raise VibesError(f"Chunker {self.name!r} cuts text, not binary content")
        settings = self.settings(options)
        line_starts = line_offsets(text)
        chunks: list[Chunk] = []
        try:
            for chunk in self.split(text, settings, model):
                if not chunk.text.strip():
                    continue
                chunk.index = len(chunks)
                chunk.start_line = bisect.bisect_right(line_starts, chunk.start)
                chunk.end_line = bisect.bisect_right(line_starts, max(chunk.start, chunk.end - 1))
                chunks.append(chunk)
        except VibesError:
            raise
        except Exception as error:
            # A chunker (a plugin's, say) that breaks on some text or option is reported
            # in one line, as a failing model is, not as a traceback.
            detail = " ".join(str(error).split())
            raise VibesError(
                f"Chunker {self.name!r} failed: {type(error).__name__}: {detail}"
            ) from None
        return chunks

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "options": {
                name: {"type": o.type.__name__, "default": o.default, "help": o.help}
                for name, o in self.options.items()
            },
        }
