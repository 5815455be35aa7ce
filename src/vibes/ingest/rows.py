"""Rows from CSV, TSV, a JSON array or newline-delimited JSON, and their conversion to items.

A row is a ``(location, values)`` pair: ``location`` ("data.csv line 7") names it in errors.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from .. import jsontext
from ..collection import Item
from ..errors import InputError
from ..filters import is_number

FORMATS = ("csv", "tsv", "json", "nl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}

# Columns with these names carry an item's metadata and vector rather than its content, so
# that `vibes collections export` output reads back as it was written.
METADATA_COLUMN = "metadata"
VECTOR_COLUMN = "embedding"

Row = tuple[str, dict[str, Any]]


def detect_format(head: bytes, filename: str | None = None) -> str:
    """Guess the format from the file's extension, else from its first bytes."""
    if filename:
        for extension, name in _EXTENSIONS.items():
            if filename.lower().endswith(extension):
                return name
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "nl"
    first_line = text.split(b"\n", 1)[0]
    return "tsv" if first_line.count(b"\t") > first_line.count(b",") else "csv"


def read_rows(
    stream: IO[bytes], name: str, format: str | None = None, encoding: str = "utf-8-sig"
) -> Iterator[Row]:
    """Rows from a binary stream, in ``format`` or the detected one."""
    # A stream without peek() (io.BytesIO, a raw file) has readinto(), which BufferedReader
    # needs and which IO[bytes] does not declare.
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(cast(io.RawIOBase, stream))
    if format is None:
        format = detect_format(buffered.peek(65536)[:65536], name)
    if format not in FORMATS:
        raise InputError(f"Unknown format {format!r}: use one of {', '.join(FORMATS)}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"Unknown encoding: {encoding!r}") from None
    text = io.TextIOWrapper(buffered, encoding=encoding, newline="")
    readers = {"csv": _read_csv, "tsv": _read_csv, "json": _read_json, "nl": _read_nl}
    reader = readers[format](text, name, "\t" if format == "tsv" else ",")
    try:
        yield from reader
    except UnicodeError as error:  # UnicodeDecodeError, and UTF-16's missing byte order mark
        reason = error.reason if isinstance(error, UnicodeDecodeError) else error
        raise InputError(f"{name}: not valid {encoding} text ({reason})") from None
    finally:
        # Let go of the stream without closing it: it is the caller's (stdin, say).
        try:
            text.detach()
        except ValueError:
            pass  # the caller closed it already


def _read_csv(text: IO[str], name: str, delimiter: str) -> Iterator[Row]:
    csv.field_size_limit(2**31 - 1)  # whole documents can sit in one field
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header):
            raise InputError(f"{name} line 1: the header repeats a column name")
        for row in reader:
            if not row:
                continue  # blank line
            location = f"{name} line {reader.line_num}"
            if len(row) != len(header):
                raise InputError(f"{location}: {len(row)} fields, but the header has {len(header)}")
            yield location, dict(zip(header, row))
    except csv.Error as error:
        raise InputError(f"{name} line {reader.line_num}: malformed CSV: {error}") from None


def parse_json_document(text: str, name: str) -> Any:
    """A whole JSON document (strict: no NaN), or a one-line error naming where it breaks."""
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{name} line {error.lineno} column {error.colno}: invalid JSON: {error.msg}"
        ) from None
    except ValueError as error:
        raise InputError(f"{name}: invalid JSON: {error}") from None


def _read_json(text: IO[str], name: str, _delimiter: str) -> Iterator[Row]:
    data = parse_json_document(text.read(), name)
    if not isinstance(data, list):
        raise InputError(f"{name}: expected a JSON array of objects")
    for number, value in enumerate(data, 1):
        location = f"{name} item {number}"
        if not isinstance(value, dict):
            raise InputError(f"{location}: expected a JSON object")
        yield location, value


def _read_nl(text: IO[str], name: str, _delimiter: str) -> Iterator[Row]:
    yield from read_nl_lines(enumerate(text, 1), name)


def read_nl_lines(lines: Iterable[tuple[int, str]], name: str) -> Iterator[Row]:
    """Rows from numbered lines of newline-delimited JSON (blank lines skipped)."""
    for number, line in lines:
        if not line.strip():
            continue
        location = f"{name} line {number}"
        try:
            value = jsontext.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{location}: invalid JSON: {error.msg}") from None
        except ValueError as error:
            raise InputError(f"{location}: invalid JSON: {error}") from None
        if not isinstance(value, dict):
            raise InputError(f"{location}: expected a JSON object")
        yield location, value


def open_input(path: str) -> tuple[IO[bytes], str]:
    """A binary stream and a display name for a path, ``-`` meaning standard input."""
    if path == "-":
        return sys.stdin.buffer, "stdin"
    try:
        return open(path, "rb"), path
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns make an item: the id, the content and the metadata.

    With no ``content_columns``, every column but the id and metadata ones is content,
    joined with spaces in column order (as ``llm embed-multi`` does).
    """

    id_column: str | None = None
    content_columns: tuple[str, ...] = ()
    metadata_columns: tuple[str, ...] = ()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        # A BLOB from --sql: text stored as bytes is read as text; anything else is not.
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                "A column holds binary data, not text: leave it out with --content-column"
            ) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _parse_json_cell(value: Any, location: str, column: str, kind: type) -> Any:
    if isinstance(value, str):
        try:
            value = jsontext.loads(value)
        except ValueError:
            raise InputError(f"{location}: column {column!r} is not valid JSON") from None
    if not isinstance(value, kind):
        raise InputError(f"{location}: column {column!r} must hold a JSON {kind.__name__}")
    return value


def rows_to_items(
    rows: Iterable[Row],
    spec: ColumnSpec = ColumnSpec(),
    *,
    prefix: str = "",
    prepend: str | None = None,
    on_empty: Callable[[str, str], None] | None = None,
) -> Iterator[Item]:
    """Items from rows: validated, with ``prefix`` on ids and ``prepend`` on content.

    A row whose content is empty (and that carries no vector) is an error, unless
    ``on_empty`` is given: then it is passed the row's location and id, and skipped.
    """
    id_column: str | None = None
    for location, values in rows:
        if not values:
            raise InputError(f"{location}: empty row")
        keys = list(values)
        if id_column is None:
            named = [spec.id_column] if spec.id_column else []
            for column in (*named, *spec.content_columns, *spec.metadata_columns):
                if column not in values:
                    raise InputError(
                        f"{location}: no column named {column!r} (columns: {', '.join(keys)})"
                    )
            # Chosen once, from the first row: a later row (a JSON object) that lacks the
            # key is an error, never a reason to take its content as the id.
            id_column = spec.id_column or ("id" if "id" in values else keys[0])
        if id_column not in values:
            raise InputError(f"{location}: no {id_column!r} key, which the first row had")
        raw_id = values[id_column]
        if raw_id is None or _as_text(raw_id).strip() == "":
            raise InputError(f"{location}: row has no id")
        item_id = prefix + _as_text(raw_id)

        metadata: dict[str, Any] = {}
        special = set()
        if METADATA_COLUMN in values and METADATA_COLUMN not in spec.content_columns:
            special.add(METADATA_COLUMN)
            if values[METADATA_COLUMN] not in (None, ""):
                metadata.update(
                    _parse_json_cell(values[METADATA_COLUMN], location, METADATA_COLUMN, dict)
                )
        vector = None
        if VECTOR_COLUMN in values and VECTOR_COLUMN not in spec.content_columns:
            special.add(VECTOR_COLUMN)
            if values[VECTOR_COLUMN] not in (None, ""):
                vector = _parse_json_cell(values[VECTOR_COLUMN], location, VECTOR_COLUMN, list)
                if not all(is_number(x) for x in vector):
                    raise InputError(f"{location}: column 'embedding' must hold numbers")
        for column in spec.metadata_columns:
            if column in values:
                metadata[column] = values[column]

        excluded = {id_column, *spec.metadata_columns, *special}
        columns = spec.content_columns or [key for key in keys if key not in excluded]
        content = " ".join(_as_text(values.get(column)) for column in columns)
        if not content.strip():
            if vector is None:
                if on_empty is not None:
                    on_empty(location, item_id)
                    continue
                raise InputError(
                    f"{location}: item {item_id!r} has empty content (--skip-empty skips such rows)"
                )
            content = ""
        elif prepend:
            content = prepend + content
        yield Item(item_id, content, metadata or None, vector)
