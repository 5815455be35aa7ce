"""Assertions shared by the test modules."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def serving(db_path: str, *arguments: str) -> Iterator[str]:
    """`vibes serve DB --port 0` as a real process; yields the start page's URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vibes", "serve", db_path, "--port", "0", *arguments],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        line = process.stderr.readline()
        found = re.search(r"at (http://\S+) \(Ctrl-C to stop\)", line)
        assert found, f"vibes serve said: {line}"
        # Drained meanwhile, so that a chatty server never blocks on a full pipe.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()
