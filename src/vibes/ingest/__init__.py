"""Readers that turn inputs (CSV/TSV/JSON/NL rows, files, SQL queries) into items to embed."""

from .files import check_pattern, count_files, files_source, read_files
from .rows import FORMATS, ColumnSpec, detect_format, read_rows, rows_to_items
from .sql import read_sql

__all__ = [
    "FORMATS",
    "ColumnSpec",
    "check_pattern",
    "count_files",
    "detect_format",
    "files_source",
    "read_files",
    "read_rows",
    "read_sql",
    "rows_to_items",
]
