"""Assertions shared by the test modules."""

from __future__ import annotations

import subprocess
from typing import Any


def one_line_error(result: Any, *fragments: str, code: int | None = 1) -> str:
    """Assert that a command failed with one line on stderr, no traceback, and exit status
    ``code`` (any non-zero status for None); returns the line. ``result`` is a finished
    process (the ``run`` fixture) or click's Result (the ``invoke`` fixture)."""
    if isinstance(result, subprocess.CompletedProcess):
        status, stderr, everything = result.returncode, result.stderr, result.stdout + result.stderr
    else:
        status, stderr, everything = result.exit_code, result.stderr, result.output
    if code is None:
        assert status != 0, everything
    else:
        assert status == code, everything
    assert "Traceback" not in everything
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
