"""Each batch is one transaction: failures and Ctrl-C keep what was committed; re-runs resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest


def write_items(path, count, fail_at=None):
    with open(path, "w") as file:
        for i in range(count):
            text = "FAIL" if i == fail_at else f"item {i} words"
            file.write(json.dumps({"id": f"i{i:03d}", "text": text}) + "\n")


def stored_ids(db_path):
    try:
        conn = sqlite3.connect(db_path)
        return [row[0] for row in conn.execute("select id from embeddings order by id")]
    except sqlite3.OperationalError:
        return []


def test_failure_in_batch_7_keeps_batches_1_to_6_and_rerun_resumes(
    run, tmp_path, db_path, test_plugin
):
    data = tmp_path / "items.jsonl"
    write_items(data, 100, fail_at=65)  # batch size 10: item 65 is in batch 7
    result = run(["embed-multi", "c", data, "-m", "hash", "--batch-size", "10", "-d", db_path])
    assert result.returncode == 1
    assert "Model hash-test failed" in result.stderr
    assert "60 items before it were saved" in result.stderr
    assert stored_ids(db_path) == [f"i{i:03d}" for i in range(60)]

    write_items(data, 100)  # the input is fixed; the re-run embeds only the rest
    log = tmp_path / "calls.log"
    rerun = run(
        ["embed-multi", "c", data, "--batch-size", "10", "-d", db_path],
        env={"VIBES_TEST_LOG": str(log)},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "Embedded 40, skipped 60 unchanged" in rerun.stderr
    assert sum(int(n) for n in log.read_text().split()) == 40
    assert len(stored_ids(db_path)) == 100


def test_bad_row_in_a_later_batch_keeps_earlier_batches(run, tmp_path, db_path, test_plugin):
    data = tmp_path / "items.jsonl"
    write_items(data, 30)
    with open(data, "a") as file:
        file.write("{broken\n")
    result = run(["embed-multi", "c", data, "-m", "hash", "--batch-size", "10", "-d", db_path])
    assert result.returncode == 1
    assert "items.jsonl line 31: invalid JSON" in result.stderr
    assert len(stored_ids(db_path)) == 30


@pytest.mark.slow
def test_ctrl_c_keeps_committed_batches_and_rerun_resumes(tmp_path, db_path, test_plugin):
    data = tmp_path / "items.jsonl"
    write_items(data, 200)
    env = {**os.environ, "VIBES_TEST_DELAY": "0.2"}
    command = [sys.executable, "-m", "vibes", "embed-multi", "c", str(data), "-m", "hash"]
    command += ["--batch-size", "10", "-d", db_path]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(stored_ids(db_path)) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted:" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    kept = stored_ids(db_path)
    assert 30 <= len(kept) < 200
    assert len(kept) % 10 == 0  # whole batches only
    assert kept == [f"i{i:03d}" for i in range(len(kept))]

    rerun = subprocess.run(command, env=os.environ, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Embedded {200 - len(kept)}, skipped {len(kept)} unchanged" in rerun.stderr
    assert len(stored_ids(db_path)) == 200
