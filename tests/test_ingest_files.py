"""`embed-multi --files`: hidden files and .gitignore rules, as git and ripgrep apply them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from checks import one_line_error

import vibes
from vibes.ingest import count_files, read_files, walk
from vibes.ingest.gitignore import parse_line


def make(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def ids(db_path, collection="c") -> list[str]:
    return sorted(item["id"] for item in vibes.Database(db_path).collection(collection).items())


def walked(root, pattern="**", **options) -> list[str]:
    return [relative for _, relative in walk(str(root), pattern, **options)]


# A project as `--files . '**/*.md'` meets it: a repository, a virtualenv, node_modules.
PROJECT = {
    "README.md": "read me",
    "docs/guide.md": "the guide",
    "docs/_build/guide.md": "built copy",
    "docs/notes.log": "a log",
    "node_modules/pkg/README.md": "a dependency",
    ".venv/lib/site/README.md": "a virtualenv",
    ".git/description.md": "git's own",
    ".github/CONTRIBUTING.md": "how to help",
    "sub/keep.md": "kept",
    "sub/local.md": "ignored below sub only",
    "sub/deeper/local.md": "not anchored here, kept",
    ".gitignore": "node_modules/\n_build/\n*.log\n",
    "sub/.gitignore": "/local.md\n",
}


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    make(root, PROJECT)
    return root


def test_files_skip_hidden_and_ignored_by_default(invoke, project, db_path, test_plugin):
    result = invoke(
        ["embed-multi", "c", "--files", project, "**/*.md", "-m", "hash", "-d", db_path]
    )
    assert result.exit_code == 0, result.output
    assert ids(db_path) == ["README.md", "docs/guide.md", "sub/deeper/local.md", "sub/keep.md"]


def test_hidden_and_no_ignore_each_turn_one_rule_off(invoke, project, db_path, test_plugin):
    args = ["embed-multi", "c", "--files", project, "**/*.md", "-m", "hash", "-d", db_path]
    assert invoke([*args, "--hidden"]).exit_code == 0
    assert ids(db_path) == [
        ".github/CONTRIBUTING.md",
        ".venv/lib/site/README.md",  # .git is entered only when the glob names it
        "README.md",
        "docs/guide.md",
        "sub/deeper/local.md",
        "sub/keep.md",
    ]
    assert invoke(["collections", "delete", "c", "-d", db_path]).exit_code == 0
    assert invoke([*args, "--no-ignore"]).exit_code == 0
    assert ids(db_path) == [
        "README.md",
        "docs/_build/guide.md",
        "docs/guide.md",
        "node_modules/pkg/README.md",
        "sub/deeper/local.md",
        "sub/keep.md",
        "sub/local.md",
    ]


def test_a_glob_that_names_a_hidden_directory_reads_it(project):
    assert walked(project, ".github/**/*.md") == [".github/CONTRIBUTING.md"]
    assert walked(project, ".git/*.md") == [".git/description.md"]
    assert walked(project, "*/.gitignore") == ["sub/.gitignore"]
    assert walked(project, ".*") == [".gitignore"]
    # A wildcard does not match a leading dot: hidden names stay out.
    assert walked(project, "*/*.md") == ["docs/guide.md", "sub/keep.md"]
    assert ".git/description.md" not in walked(project, "**/*.md", hidden=True)


def test_counting_for_the_progress_bar_applies_the_same_rules(project):
    patterns = [(str(project), "**/*.md")]
    for options in (
        {},
        {"hidden": True},
        {"gitignore": False},
        {"hidden": True, "gitignore": False},
    ):
        read = list(read_files(patterns, **options))
        assert count_files(patterns, **options) == len(read), options
    assert count_files(patterns) == 4
    assert count_files(patterns, hidden=True, gitignore=False) == 9


def test_prune_deletes_items_of_files_now_ignored(invoke, project, db_path, test_plugin):
    args = ["embed-multi", "c", "--files", project, "**/*.md", "-m", "hash", "-d", db_path]
    assert invoke(args).exit_code == 0
    (project / "docs" / ".gitignore").write_text("guide.md\n")
    # Without --prune nothing is deleted; --dry-run names what --prune would delete.
    assert invoke(args).exit_code == 0
    assert "docs/guide.md" in ids(db_path)
    dry = invoke([*args, "--prune", "--dry-run"])
    assert dry.stdout.split() == ["docs/guide.md"]
    result = invoke([*args, "--prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 item of deleted files" in result.stderr
    assert ids(db_path) == ["README.md", "sub/deeper/local.md", "sub/keep.md"]
    # --no-ignore reads it again.
    assert invoke([*args, "--no-ignore", "--prune"]).exit_code == 0
    assert "docs/guide.md" in ids(db_path)


def test_rules_above_the_directory_apply_inside_a_repository(tmp_path):
    repo = tmp_path / "repo"
    make(repo, {".gitignore": "*.tmp\ndocs/private/\n", "docs/a.md": "a", "docs/b.tmp": "b"})
    make(repo, {"docs/private/c.md": "c", "docs/public/d.md": "d"})
    (repo / ".git" / "info").mkdir(parents=True)
    (repo / ".git" / "info" / "exclude").write_text("public/\n")
    assert walked(repo / "docs") == ["a.md"]
    # Outside a repository, nothing above the directory is read.
    shutil.rmtree(repo / ".git")
    assert walked(repo / "docs") == ["a.md", "b.tmp", "private/c.md", "public/d.md"]


# Rules of every kind, checked against git itself on the same tree.
GIT_TREE_IGNORES = {
    ".gitignore": "\n".join(
        [
            "# a comment",
            "*.log",
            "!important.log",
            "build/",
            "/top-only.txt",
            "docs/**/draft-*.md",
            "**/cache",
            "a/**/b.txt",
            "tmp*/",
            "\\#hash.txt",
            "\\!bang.txt",
            "trailing.txt   ",
            "[Xx]files/",
            "*.tmp",
            "!keep/*.tmp",
            "data/[[:digit:]]*.csv",
            "name?.txt",
            "deep/**",
            "",
        ]
    ),
    "sub/.gitignore": "!*.log\n/local.txt\nnested/\n",
    "sub/inner/.gitignore": "*.md\n!README.md\n",
    "wl/.gitignore": "/*\n!/keep-me/\n!notes.txt\n",
}
GIT_TREE_FILES = [
    "app.log",
    "important.log",
    "sub/app.log",
    "sub/x/app.log",
    "build/out.txt",
    "src/build/out.txt",
    "lib/build",
    "top-only.txt",
    "sub/top-only.txt",
    "docs/draft-1.md",
    "docs/a/b/draft-2.md",
    "docs/final.md",
    "x/cache/f.txt",
    "cache",
    "a/b.txt",
    "a/x/y/b.txt",
    "a/c.txt",
    "tmpdir/f.txt",
    "tmpfile",
    "#hash.txt",
    "!bang.txt",
    "trailing.txt",
    "Xfiles/f.txt",
    "xfiles/f.txt",
    "zfiles/f.txt",
    "q.tmp",
    "keep/q.tmp",
    "keep/deeper/q.tmp",
    "data/1.csv",
    "data/a.csv",
    "data/sub/1.csv",
    "name1.txt",
    "name12.txt",
    "deep/x/y.txt",
    "sub/local.txt",
    "sub/y/local.txt",
    "sub/nested/f.txt",
    "sub/inner/a.md",
    "sub/inner/README.md",
    "sub/inner/z/c.md",
    "secret.txt",
    "sub/secret.txt",
    "wl/keep-me/a.txt",
    "wl/other/a.txt",
    "wl/notes.txt",
    "wl/x.md",
    "plain.txt",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_ignore_rules_agree_with_git(tmp_path):
    repo = tmp_path / "repo"
    make(repo, GIT_TREE_IGNORES)
    make(repo, {name: "x" for name in GIT_TREE_FILES})
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / ".git" / "info" / "exclude").write_text("secret.txt\n")
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
    ).stdout.decode()
    by_git = sorted(name for name in listed.split("\0") if name)
    assert "sub/app.log" in by_git and "app.log" not in by_git  # the tree tests something
    assert walked(repo, hidden=True) == by_git
    # From a directory inside the repository, the rules above it still apply.
    for below in ("sub", "docs", "a", "wl"):
        expected = [name[len(below) + 1 :] for name in by_git if name.startswith(below + "/")]
        assert walked(repo / below, hidden=True) == expected, below


@pytest.mark.parametrize(
    "line, path, is_dir, ignored",
    [
        ("*.md", "a/b/c.md", False, True),
        ("/c.md", "a/c.md", False, False),
        ("a/*.md", "a/b/c.md", False, False),
        ("a/**/c.md", "a/c.md", False, True),
        ("out/", "out", False, False),
        ("out/", "out", True, True),
        ("[!a]*.txt", "b.txt", False, True),
        ("[^a]*.txt", "a.txt", False, False),
        ("[[:upper:]]*", "Readme", False, True),
        ("f\\*", "f*", False, True),
        ("f\\*", "fx", False, False),
        ("a[", "a[", False, True),  # an unclosed bracket is literal
    ],
)
def test_single_rules(line, path, is_dir, ignored):
    rule = parse_line(line)
    assert rule is not None
    assert rule.matches(path, path.rsplit("/", 1)[-1], is_dir) is ignored


def test_blank_comment_and_bare_negation_lines_are_no_rules():
    assert [parse_line(x) for x in ("", "# note", "!", "/", "   ")] == [None] * 5


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("../*.md", "must stay inside the directory"),
        ("docs/../../*", "must stay inside the directory"),
        ("*/", "names directories, not files"),
        ("./", "needs a glob pattern"),
    ],
)
def test_patterns_outside_or_of_directories_are_one_line_errors(
    invoke, project, db_path, pattern, message
):
    result = invoke(["embed-multi", "c", "--files", project, pattern, "-d", db_path])
    one_line_error(result, message)
    assert not os.path.exists(db_path)


def test_dot_segments_and_double_slashes_are_harmless(project):
    assert walked(project, "./docs//*.md") == ["docs/guide.md"]


def test_hidden_and_no_ignore_need_files(invoke, db_path):
    for flag in ("--hidden", "--no-ignore"):
        result = invoke(["embed-multi", "c", "-", flag, "-d", db_path], input="id,t\n1,x\n")
        assert result.exit_code == 2
        assert "apply to --files only" in result.output


def test_a_link_back_up_the_tree_is_not_followed_forever(tmp_path):
    root = tmp_path / "tree"
    make(root, {"a/x.md": "x"})
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    (root / "b").symlink_to(root / "a", target_is_directory=True)
    assert walked(root, "**/*.md") == ["a/x.md", "b/x.md"]


def test_an_unreadable_directory_is_skipped_and_counted(
    invoke, tmp_path, db_path, test_plugin, monkeypatch
):
    root = tmp_path / "tree"
    make(root, {"ok/a.md": "a", "locked/b.md": "b"})
    real_scandir = os.scandir

    def scandir(path):  # as chmod 000 does for anyone but root
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = invoke(["embed-multi", "c", "--files", root, "**/*.md", "-m", "hash", "-d", db_path])
    assert result.exit_code == 0, result.output
    assert f"skipped 1 unreadable directory (the first: {root / 'locked'})" in result.stderr
    assert ids(db_path) == ["ok/a.md"]


def test_the_walk_streams(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    make(root, {f"d{n:02d}/f.md": "x" for n in range(30)})
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path):
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    files = walk(str(root), "**/*.md")
    assert next(files)[1] == "d00/f.md"
    assert len(listed) == 2  # the top directory and the first below it, nothing more
    assert len(list(files)) == 29
