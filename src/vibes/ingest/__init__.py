"""Readers that turn inputs (CSV/TSV/JSON/NL rows, files, SQL queries, URLs) into items."""

from .files import check_pattern, count_files, files_source, read_files, walk
from .rows import FORMATS, ColumnSpec, detect_format, read_rows, rows_to_items
from .sql import read_sql
from .url import UrlRows, is_url, parse_header, read_url

__all__ = [
    "FORMATS",
    "ColumnSpec",
    "UrlRows",
    "check_pattern",
    "count_files",
    "detect_format",
    "files_source",
    "is_url",
    "parse_header",
    "read_files",
    "read_rows",
    "read_sql",
    "read_url",
    "rows_to_items",
    "walk",
]
