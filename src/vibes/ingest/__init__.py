"""Readers that turn inputs (CSV/TSV/JSON/NL rows, files, SQL queries) into items to embed."""

from .files import count_files, read_files
from .rows import FORMATS, ColumnSpec, detect_format, read_rows, rows_to_items
from .sql import read_sql

__all__ = [
    "FORMATS",
    "ColumnSpec",
    "count_files",
    "detect_format",
    "read_files",
    "read_rows",
    "read_sql",
    "rows_to_items",
]
