"""Run one `vibes` command in a real process, with hooks for the reliability tests.

    python tests/reliability_worker.py [--ready F --go G] [--kill-at-step N] \
        [--steps-file F] -- ARGS...

--ready F --go G   import everything first, create file F, then wait until file G exists,
                   so that several processes start their command at the same instant.
--kill-at-step N   SIGKILL this process from inside SQLite at its N-th step: a step is
                   every STEP_OPS virtual-machine instructions of any statement, or the
                   start of any statement (BEGIN and COMMIT included), on any connection.
--steps-file F     write how many steps the command took to F when it ends normally, so
                   a test can choose kill points across the whole run.

The command itself runs exactly as `vibes ARGS...` does (vibes.cli.main).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time

STEP_OPS = 200


def main(argv: list[str]) -> None:
    separator = argv.index("--")
    options, command = argv[:separator], argv[separator + 1 :]
    kill_at = None
    ready = go = steps_file = None
    for flag, value in zip(options[::2], options[1::2]):
        if flag == "--ready":
            ready = value
        elif flag == "--go":
            go = value
        elif flag == "--kill-at-step":
            kill_at = int(value)
        elif flag == "--steps-file":
            steps_file = value
        else:
            raise SystemExit(f"unknown option {flag}")

    steps = 0

    def step(*_args: object) -> int:
        nonlocal steps
        steps += 1
        if kill_at is not None and steps >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0

    real_connect = sqlite3.connect

    def connect(*args, **kwargs):  # type: ignore[no-untyped-def]
        conn = real_connect(*args, **kwargs)
        conn.set_progress_handler(step, STEP_OPS)
        conn.set_trace_callback(step)
        return conn

    if kill_at is not None or steps_file:
        sqlite3.connect = connect  # type: ignore[assignment]

    from vibes.chunking import registered_chunkers
    from vibes.cli import main as vibes_main
    from vibes.models import registered_models

    registered_models()  # load the plugins before the start line, not after it
    registered_chunkers()
    if ready and go:
        with open(ready, "w"):
            pass
        while not os.path.exists(go):
            time.sleep(0.001)

    sys.argv = ["vibes", *command]
    try:
        vibes_main()
    finally:
        if steps_file:
            with open(steps_file, "w") as file:
                file.write(str(steps))


if __name__ == "__main__":
    main(sys.argv[1:])
