"""`vibes` in the place of `llm`: the same embedding command lines, the same output.

Each command line below is a real `llm` 0.36 command line. It runs once through llm's own
click command (the real llm package, with its plugins loaded from entry points) and once
through vibes', each tool in a fresh process with its own user directory and its own copy
of the input files, in the same order; then the stdout and exit code of each are compared.
Both use `llm-hash`, a model of an llm plugin (tests/plugin_src/llm_test_plugin.py) that
vibes runs through llm, so nothing needs the network.

What is normalised, and why it must differ:

- scores: llm computes them in Python floats, vibes in float32 with BLAS (equal to 1e-6);
- llm's progress bar writes its label "Embedding" to stdout when stdout is not a terminal
  (vibes keeps progress on stderr, and only on a terminal);
- each tool's own user directory and working directory in printed paths.

Where vibes prints more than llm (a default model where llm has none, its own models
after llm's), the step says so, and llm's output must be where it starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # four processes that import llm: a few seconds

LLM = str(Path(sys.executable).parent / "llm")

# Runs a list of command lines through one tool's click command in this process, in order:
# a JSON list of {"argv", "input", "env"} on stdin, a JSON list of results on stdout.
DRIVER = r"""
import json, sys, traceback
from click.testing import CliRunner

if sys.argv[1] == "llm":
    from llm.cli import cli
else:
    from vibes.cli import cli
try:
    runner = CliRunner(mix_stderr=False)  # click 8.1
except TypeError:
    runner = CliRunner()  # click 8.2 and later keep stderr apart anyway
results = []
for step in json.load(sys.stdin):
    result = runner.invoke(cli, step["argv"], input=step["input"], env=step["env"])
    error = result.exception
    crashed = error is not None and not isinstance(error, SystemExit)
    results.append(
        {
            "stdout": result.stdout_bytes.hex(),
            "stderr": result.stderr_bytes.decode("utf-8", "replace"),
            "exit_code": result.exit_code,
            "traceback": "".join(traceback.format_exception(*result.exc_info)) if crashed else None,
        }
    )
json.dump(results, sys.stdout)
"""


@dataclass
class Step:
    """One llm command line; ``adds``: vibes prints llm's output and then more."""

    line: str
    input: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    adds: bool = False

    def argv(self, db: str) -> list[str]:
        return [part.replace("{db}", db) for part in shlex.split(self.line)]


OTHER_MODEL = "3-small"  # one of llm's models, never the collections' own

STEPS = [
    # embed-models [list|default]
    Step("embed-models list", adds=True),
    Step("embed-models", adds=True),
    Step("embed-models list -q 3-small", adds=True),
    Step("embed-models -q hash -q llm", adds=True),
    Step("embed-models default", adds=True),  # llm has no default yet; vibes has one
    Step("embed-models default llm-hash"),
    Step("embed-models default"),
    Step("embed-models default no-such-model"),
    # embed, with every output format (blob: see ON_A_FRESH_COLLECTION)
    Step("embed -c 'hello world' -m llm-hash"),
    Step("embed -c 'hello world'"),  # the default model just set
    Step("embed -c 'hello world' -f json"),
    Step("embed -c 'hello world' -f hex"),
    Step("embed -c 'hello world' -f base64"),
    Step("embed -i query.txt"),
    Step("embed -i -", input="from standard input"),
    Step("embed notes n1 -c 'remember the milk' --store -d {db}"),
    Step("embed notes n2 -c 'call the plumber' --metadata '{\"urgent\": true}' -d {db}"),
    Step("embed notes n3 -c 'milk and bread' --store --metadata '{\"list\": [1, 2]}' -d {db}"),
    Step("embed notes n1 -c 'remember the milk' --store -d {db}"),  # unchanged
    # embed-multi with all its options
    Step("embed-multi docs d.csv -m llm-hash --store -d {db}"),
    Step("embed-multi docs d.csv -d {db}"),  # again: the collection's own model
    Step("embed-multi tsv d.tsv --format tsv --prefix t/ --store -d {db}"),
    Step("embed-multi arr d.json --prepend 'doc: ' --batch-size 2 --store -d {db}"),
    Step("embed-multi lines d.jsonl --format nl -d {db}"),
    Step("embed-multi piped - --store -d {db}", input="id,text\np1,piped one\np2,piped two\n"),
    Step("embed-multi files --files files '*.txt' --store -d {db}"),
    Step(
        "embed-multi deep --files files '**/*.txt' --encoding utf-8 --encoding latin-1 "
        "--store -d {db}"
    ),
    Step("embed-multi posts --sql 'select id, title, body from posts' -d blog.db"),
    Step(
        "embed-multi blog --attach blog blog.db --sql 'select id, title from blog.posts' "
        "--store -d {db}"
    ),
    # collections [list] [--json], path, delete
    Step("collections list -d {db}"),
    Step("collections -d {db}"),
    Step("collections list --json -d {db}"),
    Step("collections --json -d {db}"),
    Step("collections path"),
    Step("collections delete lines -d {db}"),
    Step("collections delete lines -d {db}"),  # no longer there
    Step("collections delte lines -d {db}"),  # a typo: a usage error in both
    Step("collections list -d {db}"),
    # similar, -p/--plain
    Step("similar docs a -d {db}"),
    Step("similar docs -c 'hello world' -n 2 -d {db}"),
    Step("similar docs -c 'world' -p -d {db}"),
    Step("similar docs b --plain -n 3 -d {db}"),
    Step("similar notes n1 -p -d {db}"),  # metadata, printed by --plain
    Step("similar tsv -c 'world' --prefix t/b -d {db}"),
    Step("similar docs -i query.txt -d {db}"),
    Step("similar docs -i - -d {db}", input="good night everyone"),
    Step("similar docs -i - -d {db}", input=""),
    Step("similar docs -d {db}", input=""),  # (with text on stdin, vibes reads it; llm does not)
    Step("similar docs no-such-id -d {db}"),
    Step("similar no-such-collection -c hi -d {db}"),
    Step("simlar docs -c hi -d {db}"),
    # $LLM_EMBEDDINGS_DB and $LLM_EMBEDDING_MODEL, with no default model saved
    Step("embed-models default --remove-default"),
    Step("embed-models default", adds=True),
    Step("embed -c 'hello world'", env={"LLM_EMBEDDING_MODEL": "llm-hash"}),
    Step(
        "embed-multi envdocs d.csv --store",
        env={"LLM_EMBEDDINGS_DB": "{db}", "LLM_EMBEDDING_MODEL": "llm-hash"},
    ),
    Step("collections list", env={"LLM_EMBEDDINGS_DB": "{db}"}),
    Step("collections --json", env={"LLM_EMBEDDINGS_DB": "{db}"}),
    Step(
        "similar envdocs a",
        env={"LLM_EMBEDDINGS_DB": "{db}", "LLM_EMBEDDING_MODEL": OTHER_MODEL},
    ),
    Step("collections list -d {db}"),
]

#: Command lines run each on its own, after a collection was made with llm-hash.
ON_A_FRESH_COLLECTION = {
    "blob": Step("embed -c 'hello world' -m llm-hash -f blob"),  # llm ends it with "\n"
    # A model from the environment is a default for new collections, not a request.
    "env model, embed": Step(
        "embed notes n4 -c 'water the plants' -d {db}", env={"LLM_EMBEDDING_MODEL": OTHER_MODEL}
    ),
    "env model, embed-multi": Step(
        "embed-multi notes d.csv -d {db}", env={"LLM_EMBEDDING_MODEL": OTHER_MODEL}
    ),
}

# Reading the other tool's database: llm reads the file vibes wrote, vibes the one llm wrote.
READS = [
    Step("collections list -d {db}"),
    Step("collections --json -d {db}"),
    Step("similar docs c -d {db}"),
    Step("similar blog -c 'world' -p -d {db}"),
    Step("similar notes -c 'milk' -d {db}"),
]


def write_inputs(directory: Path) -> None:
    rows = [
        ("a", "hello world", "greetings to everyone"),
        ("b", "goodbye world", "farewell and good night"),
        ("c", "cats and dogs", "pets that live with people"),
        ("d", "sqlite backups", "copy the database file safely"),
    ]
    (directory / "d.csv").write_text(
        "id,title,body\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    )
    (directory / "d.tsv").write_text("id\ttitle\n" + "".join(f"{a}\t{b}\n" for a, b, _ in rows))
    objects = [{"id": f"j{n}", "text": text} for n, (_, text, _) in enumerate(rows)]
    (directory / "d.json").write_text(json.dumps(objects))
    (directory / "d.jsonl").write_text("".join(json.dumps(o) + "\n" for o in objects))
    (directory / "query.txt").write_text("world of cats\n")
    files = directory / "files"
    (files / "sub").mkdir(parents=True)
    (files / "one.txt").write_text("alpha file here\n")
    (files / "two.txt").write_text("beta file there\n")
    (files / "sub" / "three.txt").write_text("gamma nested file\n")
    (files / "sub" / "latin.txt").write_bytes("caf\u00e9 cr\u00e8me file".encode("latin-1"))
    blog = sqlite3.connect(directory / "blog.db")
    blog.execute("create table posts (id text primary key, title text, body text)")
    blog.executemany(
        "insert into posts values (?, ?, ?)",
        [("p1", "hello blog", "a first post"), ("p2", "world news", "a second post")],
    )
    blog.commit()
    blog.close()


@dataclass
class Run:
    stdout: bytes
    stderr: str
    exit_code: int
    traceback: str | None


def start(tool: str, steps: list[Step], directory: Path, db: str) -> subprocess.Popen:
    """Start one tool's process running ``steps`` in ``directory``."""
    commands = [
        {
            "argv": step.argv(db),
            "input": step.input,
            "env": {key: value.replace("{db}", db) for key, value in step.env.items()},
        }
        for step in steps
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, tool],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "LLM_USER_PATH": str(directory / "llm-home"),
            "VIBES_HOME": str(directory / "vibes-home"),
        },
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(commands))
    process.stdin.close()
    return process


def finish(process: subprocess.Popen) -> list[Run]:
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=600) == 0, err
    return [
        Run(bytes.fromhex(r["stdout"]), r["stderr"], r["exit_code"], r["traceback"])
        for r in json.loads(out)
    ]


def run_both(
    steps: list[Step], llm_dir: Path, vibes_dir: Path, llm_db: str, vibes_db: str
) -> list[tuple[Run, Run]]:
    llm_process = start("llm", steps, llm_dir, llm_db)
    vibes_process = start("vibes", steps, vibes_dir, vibes_db)
    return list(zip(finish(llm_process), finish(vibes_process)))


SCORE_JSON = re.compile(r'("score": )(-?[0-9.]+(?:e-?[0-9]+)?)')
SCORE_PLAIN = re.compile(r"^(.* \()(-?[0-9.]+(?:e-?[0-9]+)?)(\))$", re.MULTILINE)


def normalised(run: Run, step: Step, tool: str, directory: Path) -> tuple[str, list[float]]:
    """The output with the scores taken out (returned apart) and what must differ replaced."""
    text = run.stdout.decode("utf-8")
    if tool == "llm" and step.line.startswith("embed-multi"):
        # llm's progress bar prints its label on stdout when stdout is not a terminal.
        text = text.removeprefix("Embedding\n")
    text = text.replace(str(directory / "llm-home"), "HOME").replace(
        str(directory / "vibes-home"), "HOME"
    )
    scores: list[float] = []
    if step.line.startswith("similar"):

        def take(match: re.Match) -> str:
            scores.append(float(match.group(2)))
            return match.group(1) + "SCORE" + (match.group(3) if match.re is SCORE_PLAIN else "")

        text = SCORE_PLAIN.sub(take, SCORE_JSON.sub(take, text))
    return text, scores


def compare(step: Step, llm_run: Run, vibes_run: Run, llm_dir: Path, vibes_dir: Path) -> None:
    shown = (
        f"\n{step.line} {step.env or ''}\n--- llm (exit {llm_run.exit_code}):\n"
        f"{llm_run.stdout.decode(errors='replace')}{llm_run.stderr}"
        f"--- vibes (exit {vibes_run.exit_code}):\n"
        f"{vibes_run.stdout.decode(errors='replace')}{vibes_run.stderr}"
    )
    assert vibes_run.traceback is None, shown + vibes_run.traceback
    assert vibes_run.exit_code == llm_run.exit_code, shown
    if step.line.endswith("-f blob"):
        assert vibes_run.stdout == llm_run.stdout, shown
        return
    llm_text, llm_scores = normalised(llm_run, step, "llm", llm_dir)
    vibes_text, vibes_scores = normalised(vibes_run, step, "vibes", vibes_dir)
    if step.adds:
        assert vibes_text.startswith(llm_text), shown
    else:
        assert vibes_text == llm_text, shown
    assert vibes_scores == pytest.approx(llm_scores, abs=1e-6), shown


def stored(path: Path) -> list[tuple]:
    """Every item as llm's tables hold it (less the time it was written), in order."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "select c.name, c.model, e.id, e.embedding, e.content, e.content_blob, "
            "e.content_hash, e.metadata from embeddings e "
            "join collections c on c.id = e.collection_id order by c.name, e.id"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture
def workdirs(tmp_path, test_plugin, monkeypatch):
    """A working directory each for llm and vibes, holding the same input files."""
    for name in ("LLM_EMBEDDINGS_DB", "LLM_EMBEDDING_MODEL", "VIBES_DB", "VIBES_MODEL"):
        monkeypatch.delenv(name, raising=False)
    llm_dir, vibes_dir = tmp_path / "llm", tmp_path / "vibes"
    llm_dir.mkdir()
    write_inputs(llm_dir)
    shutil.copytree(llm_dir, vibes_dir)
    return llm_dir, vibes_dir


def test_llm_command_lines_print_the_same_with_vibes(workdirs):
    llm_dir, vibes_dir = workdirs
    llm_db, vibes_db = str(llm_dir / "llm.db"), str(vibes_dir / "vibes.db")
    results = run_both(STEPS, llm_dir, vibes_dir, llm_db, vibes_db)
    assert len(results) == len(STEPS)
    for step, (llm_run, vibes_run) in zip(STEPS, results):
        compare(step, llm_run, vibes_run, llm_dir, vibes_dir)

    # What the commands wrote is the same, byte for byte, but for the time of writing.
    written = stored(Path(llm_db))
    assert {row[0] for row in written} >= {"docs", "notes", "tsv", "arr", "files", "blog"}
    assert stored(Path(vibes_db)) == written

    # And each tool reads the database the other wrote, printing the same.
    swapped = run_both(READS, llm_dir, vibes_dir, vibes_db, llm_db)
    for step, (llm_run, vibes_run) in zip(READS, swapped):
        compare(step, llm_run, vibes_run, llm_dir, vibes_dir)


@pytest.mark.parametrize("name", sorted(ON_A_FRESH_COLLECTION))
def test_llm_command_lines_on_a_fresh_collection(workdirs, name):
    llm_dir, vibes_dir = workdirs
    llm_db, vibes_db = str(llm_dir / "llm.db"), str(vibes_dir / "vibes.db")
    # Each runs after the collection it writes to was made with llm-hash.
    setup = Step("embed notes n1 -c 'remember the milk' -m llm-hash -d {db}")
    steps = [setup, ON_A_FRESH_COLLECTION[name]]
    (_, (llm_run, vibes_run)) = run_both(steps, llm_dir, vibes_dir, llm_db, vibes_db)
    compare(ON_A_FRESH_COLLECTION[name], llm_run, vibes_run, llm_dir, vibes_dir)


def test_the_console_scripts_agree(tmp_path, test_plugin, monkeypatch):
    """The same through the installed `llm` and `vibes` entry points, on one database."""
    monkeypatch.delenv("LLM_EMBEDDINGS_DB", raising=False)
    db = str(tmp_path / "shared.db")
    vibes_script = [sys.executable, "-m", "vibes"]
    made = subprocess.run(
        [*vibes_script, "embed-multi", "docs", "-", "-m", "llm-hash", "--store", "-d", db],
        input="id,text\na,hello world\nb,goodbye world\nc,cats and dogs\n",
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    for args in (["collections", "-d", db], ["similar", "docs", "a", "-p", "-d", db]):
        processes = [
            subprocess.Popen([*tool, *args], stdout=subprocess.PIPE, text=True)
            for tool in ([LLM], vibes_script)
        ]
        (llm_out, _), (vibes_out, _) = (p.communicate(timeout=120) for p in processes)
        assert [p.returncode for p in processes] == [0, 0]
        scores = [
            [float(s) for s in re.findall(r"\((\S+)\)$", o, re.M)] for o in (llm_out, vibes_out)
        ]
        assert scores[1] == pytest.approx(scores[0], abs=1e-6)
        plain = [re.sub(r"\((\S+)\)$", "(SCORE)", o, flags=re.M) for o in (llm_out, vibes_out)]
        assert plain[1] == plain[0] and plain[0].strip()
