"""Fuzzing every command's options and inputs: vibes never breaks, whatever it is given.

Each example runs one `vibes` command in this process (click's CliRunner) against a fresh
copy of a seeded database, with generated arguments (every option of every command, found
by walking the click commands) and generated input files. Properties, for every example:

- never a traceback: the command ends with an exit code, 0, 1 or 2;
- an error (exit 1) is one line on stderr, starting "Error: "; a usage error (exit 2)
  has one "Error:" line;
- JSON lines output parses as strict JSON (no NaN);
- the database passes PRAGMA integrity_check, and after a failing command it still holds
  everything it held before (for embed-multi, which keeps the batches committed before a
  failure: every item; for any other command: every row, unchanged).

Runs are deterministic (derandomize) and small by default. For long runs:

    VIBES_FUZZ_EXAMPLES=2000 VIBES_FUZZ_RANDOM=1 pytest tests/test_fuzz.py
    VIBES_FUZZ_IGNORE='regex' ...   # skip failures matching a known bug, to find the next

The bugs found so far each have a regression test of their own at the end.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import sqlite3
import traceback
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, currently_in_test_context, event, given, reject, settings
from hypothesis import strategies as st

import vibes
from vibes import models
from vibes.cli import cli

EXAMPLES = int(os.environ.get("VIBES_FUZZ_EXAMPLES", "0")) or None
FUZZ_IGNORE = os.environ.get("VIBES_FUZZ_IGNORE")


def fuzz_settings(examples: int):
    return settings(
        max_examples=EXAMPLES or examples,
        derandomize=not os.environ.get("VIBES_FUZZ_RANDOM"),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


# -- the world each example starts from --------------------------------------------------------


@dataclass
class World:
    root: Path
    template: Path
    tree: Path  # a directory of assorted files
    text_file: Path
    binary_file: Path
    empty_file: Path
    not_a_db: Path
    counter: itertools.count
    db: Path | None = None  # this example's database
    tried: int = 0


def seed_database(path: Path) -> None:
    db = vibes.Database(path)
    items = db.collection("items", model="hash")
    items.embed_multi(
        [
            ("i1", "first item about apples", {"n": 1, "tag": "a", "nested": {"x": [1, 2]}}),
            ("i2", "second item about pears", {"n": "2.50", "tag": "b"}),
            ("i3", "third item", None),
            ("ünï", "unicode ïtem ☃", {"tag": None}),
            ("with space", "spaces in the id", {"n": -3}),
            ("50%_off", "percent and underscore", {"tag": "a"}),
        ],
        store=True,
    )
    docs = db.collection("docs", model="hash")
    docs.embed_multi(
        [
            ("doc1", "one two three four five six seven", {"kind": "x"}),
            ("doc2", "alpha beta gamma delta", None),
        ],
        store=True,
        chunk="words",
    )
    db.close()


@pytest.fixture
def world(tmp_path, test_plugin, monkeypatch):
    monkeypatch.setenv("VIBES_MODEL", "hash")  # never load the real default model
    template = tmp_path / "template.db"
    seed_database(template)
    tree = tmp_path / "tree"
    for name, data in TREE_FILES.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    (tmp_path / "text.txt").write_text("some text to embed\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "notes.db").write_text("this is not a database " * 100)
    monkeypatch.chdir(tmp_path)
    found = World(
        tmp_path,
        template,
        tree,
        tmp_path / "text.txt",
        tmp_path / "binary.bin",
        tmp_path / "empty.txt",
        tmp_path / "notes.db",
        itertools.count(),
    )
    yield found
    print(f"\n{found.tried} examples run")


TREE_FILES = {
    "a.txt": b"plain text file\n",
    "b.md": b"# Title\n\nSome *markdown* here.\n",
    "sub/c.txt": b"nested file text",
    "sub/deeper/d.txt": b"deeper still",
    "\u00e9t\u00e9.txt": "caf\u00e9 accentu\u00e9".encode(),
    "space name.txt": b"space in the name",
    ".hidden": b"hidden file",
    "garbage.bin": bytes(range(256)),
    "empty.txt": b"",
    "blank.txt": b"  \n\t\n",
    "bom.txt": b"\xef\xbb\xbfwith a byte order mark",
    "latin1.txt": "latin-1 caf\u00e9".encode("latin-1"),
    "utf16.txt": "utf sixteen".encode("utf-16"),
    "fail.txt": b"this one makes the FAIL model break",
}


def fresh_example(world: World) -> Path:
    """A new directory holding a copy of the seeded database; the cwd and user dir move there."""
    directory = world.root / f"ex{next(world.counter)}"
    directory.mkdir()
    shutil.copy(world.template, directory / "test.db")
    os.environ["VIBES_HOME"] = str(directory / "home")
    os.chdir(directory)
    world.db = directory / "test.db"
    world.tried += 1
    return directory


# -- what the database holds -------------------------------------------------------------------


def snapshot(db: Path) -> dict | None:
    """Every row that matters, keyed by collection name (ids differ from copy to copy)."""
    if not db.exists():
        return None
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {
            "collections": set(
                conn.execute(
                    "SELECT c.name, c.model, v.dimensions, v.distance FROM collections c "
                    "LEFT JOIN vibes_collections v ON v.collection_id = c.id"
                )
            ),
            "items": {
                (row[0], row[1]): row[2:]
                for row in conn.execute(
                    "SELECT c.name, e.id, e.embedding, e.content, e.content_blob, "
                    "e.content_hash, e.metadata FROM embeddings e "
                    "JOIN collections c ON c.id = e.collection_id"
                )
            },
            "documents": set(
                conn.execute(
                    "SELECT c.name, d.document_id, d.content_hash, d.chunk_count, d.metadata "
                    "FROM vibes_documents d JOIN collections c ON c.id = d.collection_id"
                )
            ),
            "chunks": set(
                conn.execute(
                    "SELECT c.name, k.id, k.document_id, k.chunk_index FROM vibes_chunks k "
                    "JOIN collections c ON c.id = k.collection_id"
                )
            ),
        }
    finally:
        conn.close()


def strict_json(line: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


# -- running one command and checking what it did -----------------------------------------------

JSON_LINES_COMMANDS = {"similar", "collections", "chunk", "chunkers", "models", "plugins"}


def run_and_check(world: World, argv: list[str], stdin: bytes | None = None):
    """Run `vibes ARGV` in this process and check every property; returns click's Result."""
    db = world.db
    assert db is not None
    before = snapshot(db)
    if "models" in argv[:1]:
        models._reset_registry()  # registrations are read from this example's user dir
    result = CliRunner().invoke(cli, argv, input=stdin if stdin is not None else b"")
    fuzzing = currently_in_test_context()
    if fuzzing:  # seen with --hypothesis-show-statistics
        event(f"{' '.join(argv[:1])}: exit {result.exit_code}")
        if os.environ.get("VIBES_FUZZ_EVENTS") and result.exit_code:
            event(result.stderr.strip().split("\n")[-1][:50])
    try:
        check_result(argv, result)
        check_database(argv, result.exit_code, before, snapshot(db))
    except AssertionError as error:
        if fuzzing and FUZZ_IGNORE and re.search(FUZZ_IGNORE, str(error)):
            reject()
        raise
    finally:
        if "models" in argv[:1]:
            models._reset_registry()
    return result


def shown(argv: list[str]) -> str:
    """The command line, each argument cut to a readable length."""
    return " ".join(repr(a if len(a) < 80 else a[:40] + f"...({len(a)} chars)") for a in argv)


def describe(argv, result) -> str:
    return f"\nvibes {shown(argv)}\nexit {result.exit_code}\n" + (
        f"stdout: {result.stdout[-800:]!r}\nstderr: {result.stderr[-800:]!r}"
    )


def check_result(argv: list[str], result) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"traceback: {result.exception!r}{describe(argv, result)}\n{trace}")
    assert result.exit_code in (0, 1, 2), describe(argv, result)
    assert "Traceback" not in result.output, describe(argv, result)
    # Lines as a terminal shows them: only "\n" ends one (splitlines() would split on more).
    errors = [line for line in result.stderr.split("\n") if line.startswith("Error")]
    if result.exit_code == 1:
        lines = result.stderr.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("Error: "), (
            "not a one-line error" + describe(argv, result)
        )
    elif result.exit_code == 2:
        assert len(errors) == 1, "usage error without one Error line" + describe(argv, result)
    else:
        assert not errors, "exit 0 with an error" + describe(argv, result)
        human = {"--table", "--plain", "-p", "--help", "--version"} & set(argv)
        llm_shaped = argv[:1] == ["collections"] and "--nl" not in argv
        listing = argv and argv[0] in JSON_LINES_COMMANDS and "keys" not in argv
        if listing and not human and not llm_shaped:
            if argv[:2] != ["models", "default"]:
                for line in result.stdout.split("\n")[:-1]:
                    try:
                        strict_json(line)
                    except ValueError as error:
                        raise AssertionError(
                            f"output is not JSON lines: {error}" + describe(argv, result)
                        ) from None


def removes_on_purpose(argv: list[str]) -> bool:
    return bool(argv) and (
        argv[0] == "delete" or argv[:2] == ["collections", "delete"] or "--prune" in argv
    )


def check_database(argv: list[str], code: int, before: dict | None, after: dict | None) -> None:
    if before is None:
        return
    assert after is not None, "the database file is gone" + f"\nvibes {shown(argv)}"
    if code == 0 and removes_on_purpose(argv):
        return
    writes = bool(argv) and argv[0] in ("embed", "embed-multi")
    if code != 0 and not (argv and argv[0] == "embed-multi"):
        # A failed command changes nothing (embed is one transaction).
        for part in before:
            changed = f"a failed command changed {part}\nvibes {shown(argv)}"
            assert before[part] == after[part], changed
        return
    if not writes:
        assert before == after, f"a read-only command changed the database\nvibes {shown(argv)}"
        return
    # A write keeps every item it did not replace; a chunked document may lose old chunks.
    lost = set(before["items"]) - set(after["items"])
    if "--chunk" in argv:
        lost = {key for key in lost if "#" not in key[1]}
    assert not lost, f"items lost: {sorted(lost)[:5]}\nvibes {shown(argv)}"
    assert {c[0] for c in before["collections"]} <= {c[0] for c in after["collections"]}


# -- values ------------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    " ",
    "-",
    "--",
    "0",
    "-1",
    "-0",
    "1",
    "3",
    "1.5",
    "1e3",
    "1e309",
    "-1e309",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "99999999999999999999",
    "-99999999999999999999",
    "9223372036854775808",
    "0x10",
    " 5",
    "true",
    "null",
    "[]",
    "{}",
    "[1]",
    '"s"',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": 1e999}',
    '{"a": 99999999999999999999}',
    "{",
    '{"a": {"b": [1, null]}}',
    '{"a": 1, "a": 2}',
    "\u00e9",
    "\u65e5\u672c\u8a9e",
    "\U0001f642",
    "\u202e",
    "a\nb",
    "\t",
    "'",
    '"',
    "%",
    "_",
    "\\",
    "a=b",
    "=",
    "#",
    "?",
    "*",
    "**",
    "[",
    "~",
    "..",
    "/",
    "\udcff",  # an argument that was not valid UTF-8 (surrogateescape)
    "word " * 3000,
    "x" * 100_000,
    "FAIL",
]

plain_text = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12
)
weird_text = st.one_of(st.sampled_from(SPECIAL_STRINGS), plain_text)


def mostly(*sane: str) -> st.SearchStrategy:
    """Sane values seven times in eight, so most examples get past option checking."""
    return st.one_of(*[st.sampled_from(sane)] * 7, weird_text)


numbers = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "5", "-5", "100", "nan", "inf", "-inf", "1e400", "0.5"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    weird_text,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
json_texts = st.one_of(json_values.map(json.dumps), weird_text)
collection_names = st.one_of(st.sampled_from(["items", "docs", "nope", "new"]), weird_text)
item_ids = st.one_of(
    st.sampled_from(["i1", "i2", "ünï", "with space", "50%_off", "doc1", "doc1#1", "ghost"]),
    weird_text,
)
model_names = st.one_of(
    st.sampled_from(["hash", "hash-test", "resizable-test", "no-such-model", "llm:nope"]),
    weird_text,
)
metadata_keys = st.sampled_from(["n", "tag", "nested.x", "kind", "", " ", "a.b.c", '"', "$", "[0]"])
FILTER_VALUES = [
    "1",
    "2.5",
    "-3",
    "a",
    "true",
    "null",
    "99999999999999999999",
    "-99999999999999999999",
    "1e400",
    "NaN",
    "Infinity",
    "[1, 2]",
    '{"x": 1}',
    "a,b",
    "1,99999999999999999999",
    ",",
    "",
    " ",
]
filter_expressions = st.one_of(
    st.builds(
        lambda key, op, value: f"{key}{op}{value}",
        st.one_of(st.sampled_from(["n", "tag", "nested.x", "kind"]), metadata_keys, weird_text),
        st.one_of(
            st.sampled_from(["=", "!=", "<", "<=", ">", ">=", " in "]),
            st.sampled_from(["==", "=>", "<>", "!", "", " IN ", "in"]),
        ),
        st.one_of(st.sampled_from(FILTER_VALUES), numbers, json_texts),
    ),
    st.builds(
        lambda k, v: f"{k}={v}", st.sampled_from(["n", "tag"]), st.sampled_from(FILTER_VALUES)
    ),
    st.builds(
        lambda k, v: f"{k}<{v}", st.sampled_from(["n", "tag"]), st.sampled_from(FILTER_VALUES)
    ),
    weird_text,
)
where_clauses = st.one_of(
    st.sampled_from(
        [
            "1",
            "0",
            "1) OR (1",
            "1) --",
            "id = 'i1'",
            "content LIKE '%item%'",
            "json_extract(metadata, '$.n') > 1",
            "metadata ->> '$.tag' = 'a'",
            "no_such_column = 1",
            "1; DROP TABLE embeddings",
            "(",
            "id IN (SELECT id FROM embeddings)",
            "randomblob(8) = x'00'",
            "load_extension('nope')",
            "length(content) > 0",
            "abs(-9223372036854775808)",
            "1 = 1 UNION SELECT 1",
            "collection_id = 999",
            "updated > 0",
            "'",
            "?",
            ":name",
        ]
    ),
    weird_text,
)
sql_queries = st.one_of(
    st.sampled_from(
        [
            "select id, content from embeddings",
            "select 1",
            "select 'a' as id, 'b' as text",
            "select null, 'x'",
            "select '', 'x'",
            "select 'k', null",
            "select x'00ff' as id, x'ff' as t",
            "select 'k' as id, x'ff' as t",
            "select 'k', 1.5",
            "select 'k', 9223372036854775807",
            "select id, embedding from embeddings",
            "select id, content, metadata from embeddings",
            "select 'k' as id, 'x' as t, 'NaN' as metadata",
            "select 'k' as id, 'x' as t, '[1]' as metadata",
            "select 'k' as id, '[1, 2]' as embedding",
            "delete from embeddings",
            "delete from embeddings returning id, id as t",
            "update embeddings set content = 'x' returning id, content",
            "drop table embeddings",
            "pragma table_info(embeddings)",
            "select * from nope",
            "",
            ";",
            "select 1; select 2",
            "with recursive r(n) as (select 1 union all select n + 1 from r where n < 30) "
            "select n, 'text ' || n from r",
            "attach 'x.db' as y",
            "vacuum",
            "select a.id, a.content from other.embeddings a",
        ]
    ),
    weird_text,
)


@st.composite
def paths(draw, world: World) -> str:
    choices = [
        str(world.text_file),
        str(world.binary_file),
        str(world.empty_file),
        str(world.tree),
        str(world.not_a_db),
        str(world.root / "missing" / "file.txt"),
        str(world.root / "nope.txt"),
        "-",
        "",
        ".",
        "/dev/null",
        str(world.tree / "\u00e9t\u00e9.txt"),
    ]
    return draw(st.one_of(st.sampled_from(choices), weird_text))


@st.composite
def database_paths(draw, world: World) -> str:
    if draw(st.integers(0, 9)) < 8:
        return "test.db"
    return draw(
        st.sampled_from(
            [
                str(world.not_a_db),
                str(world.tree),
                "missing/dir/x.db",
                "new.db",
                "",
                "/dev/null",
                "file:test.db?mode=ro",
                ":memory:",
                str(world.text_file) + "/x.db",
            ]
        )
    )


# -- every option of every command, from the click commands themselves ----------------------


def all_commands() -> list[tuple[list[str], click.Command]]:
    found = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                walk(command, [*path, name])
            else:
                found.append(([*path, name], command))

    walk(cli, [])
    # `vibes pg start` starts a PostgreSQL server that outlives the example (as it must);
    # test_postgres.py runs it, and its bad data directories.
    return [(path, command) for path, command in found if path != ["pg", "start"]]


COMMANDS = all_commands()
COMMAND_NAMES = [" ".join(path) for path, _ in COMMANDS]
# Values that mean something for parameters with these names, besides the weird ones.
_CHUNKERS = ["words", "lines", "paragraphs", "sentences", "tokens", "markdown", "python", "code"]


def value_strategy(world: World, path: list[str], param: click.Parameter) -> st.SearchStrategy:
    name = param.name or ""
    kind = param.type
    if name == "database":
        return database_paths(world)
    if name in ("collection",) or (name == "name" and path[0] == "collections"):
        return collection_names
    if name in ("id", "ids"):
        return item_ids
    if name == "model":
        return model_names
    if name == "name" and path == ["chunk"]:
        return st.one_of(st.sampled_from(_CHUNKERS), weird_text)
    if name in ("metadata",):
        return json_texts
    if name == "filters":
        return filter_expressions
    if name == "where":
        return where_clauses
    if name == "sql":
        return sql_queries
    if name in ("chunk_options",):
        return st.one_of(
            st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(["n", "size", "overlap", "group", "fallback_size", "x", ""]),
                numbers,
            ),
            weird_text,
        )
    if name == "chunker":
        return st.one_of(st.sampled_from(_CHUNKERS), weird_text)
    if name == "api_url":
        return st.one_of(
            st.sampled_from(["http://127.0.0.1:9/v1", "https://", "ftp://x", "http://[::1"]),
            weird_text,
        )
    if isinstance(kind, click.Tuple):
        return st.tuples(*[type_strategy(world, t) for t in kind.types])
    if isinstance(param, click.Argument) and name in ("input_path",):
        return paths(world)
    return type_strategy(world, kind)


def type_strategy(world: World, kind: click.ParamType) -> st.SearchStrategy:
    if isinstance(kind, click.Choice):
        return st.one_of(st.sampled_from(list(kind.choices)), weird_text)
    if isinstance(kind, (click.IntRange, click.FloatRange)) or kind in (click.INT, click.FLOAT):
        return numbers
    if isinstance(kind, (click.Path, click.File)):
        return paths(world)
    return weird_text


@st.composite
def command_lines(draw, world: World) -> tuple[list[str], bytes]:
    path, command = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    positional: list[str] = []
    options: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            required = param.required
            if not required and not draw(st.booleans()):
                continue
            count = param.nargs if param.nargs > 0 else draw(st.integers(1, 3))
            positional += [str(draw(value_strategy(world, path, param))) for _ in range(count)]
            continue
        assert isinstance(param, click.Option)
        if param.name == "database":
            include = draw(st.integers(0, 9)) < 9
        else:
            include = param.required or draw(st.integers(0, 9)) < 3
        if not include or param.hidden:
            continue
        repeats = draw(st.integers(1, 3)) if param.multiple else 1
        for _ in range(repeats):
            flag = draw(st.sampled_from(list(param.opts) + list(param.secondary_opts)))
            if param.is_flag or param.count:
                options.append(flag)
                continue
            value = draw(value_strategy(world, path, param))
            options.append(flag)
            options += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    if positional and draw(st.booleans()):
        argv += positional + options
    else:
        argv += options + positional
    if draw(st.integers(0, 19)) == 0:
        argv.insert(
            draw(st.integers(0, len(argv))),
            draw(st.sampled_from(["--nope", "x", "-", "--help", "--version"])),
        )
    stdin = draw(st.one_of(st.just(b""), file_contents()))
    return argv, stdin


# -- input files --------------------------------------------------------------------------------

cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["", " ", "\u0000", "FAIL", "x" * 50_000, "\ufeffbom"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
columns = st.sampled_from(["id", "text", "title", "metadata", "embedding", "", "ID", "id ", "é"])
special_cells = {
    "metadata": st.one_of(
        st.dictionaries(st.text(max_size=4), json_values, max_size=3),
        json_texts,
        st.sampled_from(['{"a": NaN}', '{"a": Infinity}', "[1]", "null", "{}"]),
    ),
    "embedding": st.one_of(
        st.lists(st.floats(-1e3, 1e3), min_size=16, max_size=16),
        st.lists(st.floats(), max_size=17),
        st.sampled_from([[0.0] * 16, [1] * 16, [True] * 16, "[1, 2]", "nope", [], [[1]]]),
    ),
}


@st.composite
def rows(draw) -> list[dict]:
    result = []
    for _ in range(draw(st.integers(0, 6))):
        row = {}
        for column in draw(st.lists(columns, max_size=5, unique=True)):
            row[column] = draw(special_cells.get(column, cells))
        if draw(st.integers(0, 3)) > 0:
            row.setdefault("id", draw(st.one_of(item_ids, cells)))
            row.setdefault("text", draw(st.one_of(weird_text, cells)))
        result.append(row)
    if result and draw(st.booleans()):
        result.append(dict(result[0]))  # a duplicate id
    return result


def serialize(data: list[dict], fmt: str) -> bytes:
    if fmt == "nl":
        return "".join(json.dumps(row) + "\n" for row in data).encode("utf-8", "surrogatepass")
    if fmt == "json":
        return json.dumps(data).encode("utf-8", "surrogatepass")
    header = list(dict.fromkeys(key for row in data for key in row))
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t" if fmt == "tsv" else ",")
    writer.writerow(header)
    for row in data:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in header])
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def file_contents(draw) -> bytes:
    fmt = draw(st.sampled_from(["nl", "json", "csv", "tsv"]))
    data = serialize(draw(rows()), fmt)
    damage = draw(
        st.sampled_from(["none", "none", "bom", "truncate", "insert", "garbage", "crlf", "nul"])
    )
    if damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == "garbage":
        data = draw(st.binary(max_size=64))
    elif damage == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif damage == "nul":
        data = data.replace(b",", b"\x00", 1)
    return data


# -- the fuzz tests ------------------------------------------------------------------------------


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_every_command_and_option(world, data):
    fresh_example(world)
    argv, stdin = data.draw(command_lines(world))
    run_and_check(world, argv, stdin)


@st.composite
def embed_multi_file_lines(draw, world: World) -> tuple[list[str], bytes | None]:
    contents = draw(file_contents())
    suffix = draw(st.sampled_from([".csv", ".tsv", ".json", ".jsonl", ".txt", "", ".CSV", ".tab"]))
    stdin = None
    if draw(st.integers(0, 4)) == 0:
        source, stdin = "-", contents
    else:
        source = f"input{suffix}"
        Path(source).write_bytes(contents)
    argv = ["embed-multi", draw(collection_names), source, "-d", "test.db"]
    optional = [
        ("--format", st.sampled_from(["csv", "tsv", "json", "nl"])),
        ("--id-column", st.one_of(columns, weird_text)),
        ("--content-column", st.one_of(columns, weird_text)),
        ("--metadata-column", st.one_of(columns, weird_text)),
        ("--batch-size", mostly("1", "2", "100")),
        ("--prefix", mostly("p/", "x")),
        ("--prepend", mostly("passage: ")),
        ("--encoding", st.sampled_from(["utf-8", "latin-1", "utf-16", "nope", ""])),
        ("-m", st.one_of(st.sampled_from(["hash", "hash", "resizable-test"]), model_names)),
        ("--distance", st.sampled_from(["cosine", "dot", "euclidean"])),
    ]
    for flag, values in optional:
        if draw(st.integers(0, 9)) < 2:
            argv += [flag, draw(values)]
    if draw(st.integers(0, 9)) < 3:
        argv += ["--chunk", draw(st.sampled_from(["words", "lines", "sentences", "nope"]))]
        if draw(st.booleans()):
            argv += ["--chunk-option", draw(mostly("n=1", "n=2", "size=5", "n=0", "n=x", "x=1"))]
    for flag in ("--store", "-q"):
        if draw(st.booleans()):
            argv.append(flag)
    return argv, stdin


@fuzz_settings(150)
@given(data=st.data())
def test_fuzz_embed_multi_input_files(world, data):
    fresh_example(world)
    argv, stdin = data.draw(embed_multi_file_lines(world))
    run_and_check(world, argv, stdin)


GLOBS = [
    "*",
    "*.txt",
    "**/*",
    "**/*.txt",
    "**",
    "",
    "/",
    "..",
    "../*",
    "*/",
    "[",
    "[!a]*",
    "sub",
    "sub/**",
    "nope/*",
    ".",
    "***",
    "*.{txt,md}",
]


@st.composite
def files_lines(draw, world: World) -> list[str]:
    argv = ["embed-multi", draw(collection_names), "-d", "test.db"]
    for _ in range(draw(st.integers(1, 2))):
        directory = draw(
            st.sampled_from(
                [str(world.tree), str(world.tree / "sub"), "missing", str(world.text_file), "", "."]
            )
        )
        pattern = draw(
            st.one_of(
                st.sampled_from(GLOBS), st.just(str(world.tree) + "/*.txt"), plain_text, weird_text
            )
        )
        argv += ["--files", directory, pattern]
    optional = [
        ("--encoding", st.sampled_from(["utf-8", "latin-1", "utf-16", "ascii", "nope", ""])),
        ("--prefix", weird_text),
        ("--prepend", weird_text),
        ("--batch-size", st.sampled_from(["1", "3"])),
        ("--chunk", st.sampled_from(["lines", "markdown", "paragraphs", "code"])),
        ("-m", st.sampled_from(["hash", "resizable-test"])),
    ]
    flags = ("--store", "--binary", "--prune", "--dry-run", "-q")
    return argv + some_options(draw, optional, flags)


def some_options(draw, valued, flags) -> list[str]:
    """About a third of the (option, values) pairs with a drawn value, then a few flags."""
    chosen: list[str] = []
    for flag, values in valued:
        if draw(st.integers(0, 9)) < 3:
            chosen += [flag, draw(values)]
    return chosen + [flag for flag in flags if draw(st.integers(0, 9)) < 3]


@fuzz_settings(150)
@given(data=st.data())
def test_fuzz_embed_multi_files(world, data):
    fresh_example(world)
    run_and_check(world, data.draw(files_lines(world)))


@st.composite
def search_lines(draw, world: World) -> list[str]:
    argv = ["similar", draw(st.sampled_from(["items", "docs"]))]
    query = draw(st.sampled_from(["id", "id", "content", "content", "content", "file"]))
    if query == "id":
        argv.append(draw(mostly("i1", "ünï", "doc1#2", "with space", "50%_off")))
    elif query == "content":
        argv += ["-c", draw(mostly("item", "apples", "one two three"))]
    else:
        argv += ["-i", draw(paths(world))]
    argv += ["-d", "test.db"]
    for _ in range(draw(st.integers(0, 2))):
        argv += ["--filter", draw(filter_expressions)]
    optional = [
        ("--where", where_clauses),
        ("--prefix", mostly("i", "doc1", "50%", "")),
        ("-n", mostly("1", "3", "100")),
        ("--min-score", mostly("0", "0.5", "-1", "2")),
        ("--context", mostly("0", "1", "5")),
        ("--document-score", st.sampled_from(["max", "mean", "sum"])),
    ]
    return argv + some_options(draw, optional, ("--exact", "--documents", "--plain"))


@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_similar_filters_and_where(world, data):
    fresh_example(world)
    argv = data.draw(search_lines(world))
    stored = {key[1] for key in snapshot(world.db)["items"] if key[0] == argv[1]}
    result = run_and_check(world, argv)
    if result.exit_code == 0 and not {"--plain", "--documents"} & set(argv):
        # Whatever the filters, only items of the collection searched come back.
        found = [strict_json(line)["id"] for line in result.stdout.split("\n")[:-1]]
        assert set(found) <= stored, describe(argv, result)
        assert len(found) == len(set(found)), describe(argv, result)


@fuzz_settings(100)
@given(
    query=sql_queries,
    attach=st.lists(
        st.tuples(
            st.sampled_from(["other", "main", "temp", "", "x y"]),
            st.sampled_from(["test.db", "missing.db", "notes.db", "."]),
        ),
        max_size=2,
    ),
    collection=collection_names,
)
def test_fuzz_embed_multi_sql(world, query, attach, collection):
    fresh_example(world)
    shutil.copy(world.not_a_db, "notes.db")
    argv = ["embed-multi", collection, "--sql", query, "-d", "test.db"]
    for alias, path in attach:
        argv += ["--attach", alias, path]
    run_and_check(world, argv)


def test_every_command_is_fuzzed():
    """The generic fuzzer walks the click commands, so a new command or option is fuzzed
    without more code; here, that the walk finds the commands and their options."""
    names = set(COMMAND_NAMES)
    for expected in ("embed", "embed-multi", "similar", "delete", "collections export", "index"):
        assert expected in names
    options = {o for _, command in COMMANDS for p in command.params for o in p.opts}
    assert {"--where", "--filter", "--metadata", "--files", "--sql", "--batch-size"} <= options


# -- regressions, one test each (found by the fuzzers above) ---------------------------------------
#
# Each asserts the right behaviour, so it fails until the bug is fixed. run_and_check checks
# every property above (no traceback, one-line error, nothing lost) for the command.


@pytest.fixture
def example(world):
    fresh_example(world)
    return world


def test_user_text_with_a_newline_keeps_the_error_on_one_line(example):
    # Error: Unknown chunker: a
    # b (run 'vibes chunkers' to list them)
    run_and_check(example, ["chunk", "a\nb", str(example.text_file)])
    run_and_check(example, ["similar", "items", "-i", "a\nb", "-d", "test.db"])


def test_utf16_input_without_a_bom_is_one_line(example):
    # UnicodeError: UTF-16 stream does not start with BOM
    argv = ["embed-multi", "items", "-", "--format", "csv", "--encoding", "utf-16", "-d", "test.db"]
    assert run_and_check(example, argv, b"id,text\n1,x\n").exit_code == 1


def test_an_unknown_encoding_of_an_input_file_is_one_line(example):
    # LookupError: unknown encoding: nope
    argv = ["embed-multi", "items", "-", "--encoding", "nope", "-d", "test.db"]
    result = run_and_check(example, argv, b"id,text\n1,x\n")
    assert result.exit_code in (1, 2) and "nope" in result.stderr


def test_files_pattern_dot_is_one_line(example):
    # IndexError: tuple index out of range (pathlib's glob('.'))
    argv = ["embed-multi", "items", "--files", str(example.tree), ".", "-d", "test.db"]
    assert run_and_check(example, argv).exit_code in (0, 1, 2)


def test_sql_returning_a_blob_is_one_line(example):
    # TypeError: Object of type bytes is not JSON serializable
    argv = ["embed-multi", "items", "--sql", "select 'k' as id, x'ff' as t", "-d", "test.db"]
    assert run_and_check(example, argv).exit_code == 1


def test_an_argument_that_is_not_utf8_is_one_line(example):
    # `vibes similar $'\xff' -c x`: UnicodeEncodeError: ... surrogates not allowed
    run_and_check(example, ["similar", "\udcff", "-c", "x", "-d", "test.db"])
    run_and_check(example, ["embed-multi", "items", "--sql", "\udcff", "-d", "test.db"])


def test_a_huge_integer_in_a_filter_works(example):
    # OverflowError: Python int too large to convert to SQLite INTEGER
    argv = ["similar", "items", "-c", "item", "-d", "test.db", "--filter", "n<99999999999999999999"]
    result = run_and_check(example, argv)
    assert result.exit_code == 0
    found = {strict_json(line)["id"] for line in result.stdout.split("\n")[:-1]}
    assert found == {"i1", "i2", "with space"}  # n = 1, "2.50" and -3 are all smaller


def test_a_chunker_that_fails_is_one_line(example):
    # The test plugin's "words" chunker with n=0: ValueError: range() arg 3 must not be zero.
    # A model's failure is one line ("Model hash-test failed: ..."); a chunker's is not.
    argv = ["embed-multi", "items", "-", "--chunk", "words", "--chunk-option", "n=0"]
    assert run_and_check(example, [*argv, "-d", "test.db"], b'{"id": "d", "t": "a b"}\n').exit_code
    assert run_and_check(example, ["chunk", "words", "-", "-o", "n=0"], b"a b c").exit_code


def test_sentences_chunker_takes_empty_text(example):
    # IndexError: list index out of range (chunking/builtin.py), reached through an item that
    # brings its own vector and no text.
    assert vibes.chunk("", "sentences") == []
    row = {"id": "v", "embedding": [1.0] + [0.0] * 15}
    argv = ["embed-multi", "items", "-", "--chunk", "sentences", "-d", "test.db"]
    run_and_check(example, argv, json.dumps(row).encode() + b"\n")


def test_export_to_an_empty_path_is_a_usage_error(example):
    # ValueError: PosixPath('.') has an empty name
    argv = ["collections", "export", "items", "-o", "", "-d", "test.db"]
    assert run_and_check(example, argv).exit_code in (1, 2)


def test_registering_a_too_long_path_is_one_line(example):
    # OSError: [Errno 36] File name too long
    result = run_and_check(example, ["models", "register", "x" * 300, "--alias", "long"])
    assert result.exit_code == 1


def test_a_key_that_is_not_utf8_on_stdin_is_one_line(example):
    # UnicodeDecodeError under a strict UTF-8 stdin; under a C locale the key is saved with
    # a lone surrogate instead, and fails later.
    assert run_and_check(example, ["keys", "set", "k"], b"\x80\n").exit_code == 1


def test_a_vector_beyond_float32_is_one_line(example, run):
    # Warning: overflow encountered in cast
    # Error: Given vector for item 'a' contains NaN or infinity
    row = {"id": "a", "embedding": [1e300] + [0.0] * 15}
    argv = ["embed-multi", "items", "-", "-d", str(example.db)]
    result = run(argv, input=json.dumps(row) + "\n")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
