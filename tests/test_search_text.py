"""Words for full-text search: query terms split as FTS5 splits them, MATCH expressions
that never fail in a real FTS5 table, and snippets (windows, marks, inflection, accents,
long texts)."""

from __future__ import annotations

import random
import re
import sqlite3
import time
import unicodedata

import pytest

from vibes.search import text as search_text
from vibes.search.text import (
    ELLIPSIS,
    MAX_TERMS,
    STOP_WORDS,
    fts5_expression,
    normalise,
    query_terms,
    snippet,
    stem,
)


def fts5_table(tokenize: str = "porter unicode61") -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE docs USING fts5(body, tokenize={tokenize!r})")
    except sqlite3.OperationalError as error:  # pragma: no cover - SQLite without FTS5
        pytest.skip(f"SQLite without FTS5: {error}")
    return db


def marked(fragment: str, marks: tuple[str, str] = ("**", "**")) -> list[str]:
    return re.findall(re.escape(marks[0]) + "(.*?)" + re.escape(marks[1]), fragment)


# --- query_terms --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        (
            "How do I fix ERR_CONNECTION_RESET in Python 3.11?",
            ["fix", "err", "connection", "reset", "python", "3", "11"],
        ),
        ("error E0425 when compiling", ["error", "e0425", "compiling"]),
        (
            'foo AND bar OR NOT "baz qux" NEAR(a b, 3) col:val ^start pre* -neg (paren)',
            ["foo", "bar", "baz", "qux", "near", "b", "3", "col", "val", "start", "pre", "neg"]
            + ["paren"],
        ),
        (
            "https://example.com/path?q=1&lang=en#top",
            ["https", "example", "com", "path", "q", "1", "lang", "en", "top"],
        ),
        ("Déjà vu: Straße, ΟΔΟΣ, İstanbul", ["déjà", "vu", "straße", "οδοσ", "İstanbul"]),
        ("東京タワー 🚀 launch 😀 café", ["東京タワー", "launch", "café"]),
        ("fix fix FIX Fix", ["fix"]),
        ("what is the", ["what", "is", "the"]),  # only stop words: all of them
        ("how do I", ["how", "do", "i"]),
        ("?!* () \" ' :^- 🚀", []),
        ("", []),
    ],
)
def test_query_terms(query, terms):
    assert query_terms(query) == terms


def test_query_terms_keeps_stop_words_when_asked():
    assert query_terms("How do I fix it") == ["fix"]
    assert query_terms("How do I fix it", keep_stop_words=True) == ["how", "do", "i", "fix", "it"]


def test_stop_words_are_a_modest_list_of_function_words():
    assert 120 <= len(STOP_WORDS) <= 200
    assert {"the", "a", "of", "how", "do", "i", "what", "is"} <= STOP_WORDS
    assert not {"python", "error", "reset", "near", "connection"} & STOP_WORDS


def test_query_terms_are_bounded():
    many = " ".join(f"w{i}" for i in range(1000))
    assert query_terms(many) == [f"w{i}" for i in range(MAX_TERMS)]
    # A huge query: the first terms, quickly, whatever repeats.
    assert query_terms("alpha " * 200_000 + "omega") == ["alpha"]
    assert query_terms("the " * 200_000) == ["the"]
    assert len(query_terms("x" * 1_000_000)) == 1


SAMPLES = [
    "How do I fix ERR_CONNECTION_RESET in Python 3.11?",
    'foo AND bar OR NOT "baz qux" NEAR(a b, 3) col:val ^start pre* -neg (paren) {x y}:z',
    "https://example.com/path/to?q=1&r=two#frag user@example.org C:\\Users\\me",
    "E0425 cannot find value `x` in this scope; error[E0308]: mismatched types",
    "snake_case camelCase kebab-case dotted.name v1.2.3-rc1 1,000.50 $5 50% #tag",
    "Déjà vu — naïve café façade Straße ẞ İstanbul ΟΔΟΣ Ⅲ x² ½ ＡＢＣ１２３",
    "e\u0301cole cafe\u0301 \u0301leading \u0302alone re\u0301sume\u0301",
    "東京タワー 日本語のテキスト 中文，标点。한국어 문장",
    "Привет, мир! Ёлка й Ещё",
    "emoji 😀 face 🚀 rocket ❤️ heart ✨sparkle",
    "हैलो वर्ल्ड مرحبا بالعالم ภาษาไทย שלום",
    "private \ue000use tab\tnew\nline non\u00a0breaking zero\u200bwidth",
    "",
    "!!! ??? ...",
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_query_terms_split_as_fts5_unicode61(sample):
    """Compared with the tokens FTS5 itself makes of the same text (diacritics kept, so
    that only splitting and case folding are compared)."""
    db = fts5_table("unicode61 remove_diacritics 0")
    db.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(docs, 'instance')")
    db.execute("INSERT INTO docs(body) VALUES (?)", (sample,))
    tokens = [row[0] for row in db.execute("SELECT term FROM vocab ORDER BY doc, offset")]
    assert query_terms(sample, keep_stop_words=True) == list(dict.fromkeys(tokens))


# --- fts5_expression ----------------------------------------------------------------

NASTY = [
    '"',
    '""',
    '"unterminated',
    "'",
    "a'b",
    "AND",
    "OR",
    "NOT",
    "a AND",
    "AND OR NOT",
    "a OR",
    "*",
    "foo*",
    "* foo",
    ":",
    "col:",
    "body:foo",
    "{a b}:c",
    "(",
    ")",
    "(()",
    "NEAR(",
    "NEAR(a b",
    'NEAR("a" "b", 5)',
    "NEAR/2",
    "-x",
    "-",
    "--",
    "^",
    "^foo",
    "+",
    "#",
    "%",
    "\\",
    "🚀",
    "😀😀",
    "",
    "   ",
    "the of and",
    "\x00",
    "a\x00b",
    "\ud800 lone surrogate \udfff",
    "x" * 10_000,
    "ERR_CONNECTION_RESET",
    "3.11",
    "東京",
]


@pytest.mark.parametrize("query", NASTY)
def test_fts5_expression_never_fails_in_a_real_table(query):
    db = fts5_table()
    db.executemany(
        "INSERT INTO docs(body) VALUES (?)",
        [("the quick brown fox",), ("connection reset error 3.11",), ("東京 tower",)],
    )
    for expression in (fts5_expression(query_terms(query)), fts5_expression([query])):
        db.execute("SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rank", (expression,))


def test_fts5_expression_quotes_and_joins():
    assert fts5_expression(["fix", 'say "hi"', "AND"]) == '"fix" OR "say ""hi""" OR "AND"'
    assert fts5_expression(["a\x00b", "a\x00b", " "]) == '"a b"'
    assert fts5_expression([]) == '""'


def test_empty_expression_matches_nothing():
    db = fts5_table()
    db.execute("INSERT INTO docs(body) VALUES ('anything at all')")
    expression = fts5_expression(query_terms('"?!'))
    assert db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (expression,)).fetchone() == (
        0,
    )


def test_a_question_finds_documents_with_only_some_of_its_words():
    db = fts5_table()
    db.executemany(
        "INSERT INTO docs(rowid, body) VALUES (?, ?)",
        [
            (1, "Reset your password from the account settings page."),
            (2, "Bananas are a good source of potassium."),
            (3, "To fix a connection reset in Chrome, clear the proxy settings."),
            (4, "Python 3.11 is faster than 3.10."),
        ],
    )
    expression = fts5_expression(query_terms("How do I fix ERR_CONNECTION_RESET errors?"))
    rows = [
        r[0]
        for r in db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rank", (expression,)
        )
    ]
    assert rows[0] == 3  # fix, connection and reset: more terms rank first
    assert 1 in rows  # reset alone still counts
    assert 2 not in rows and 4 not in rows


def test_porter_table_matches_inflections_of_query_terms():
    db = fts5_table()
    db.execute("INSERT INTO docs(rowid, body) VALUES (1, 'She runs the libraries')")
    expression = fts5_expression(query_terms("running library"))
    assert db.execute("SELECT rowid FROM docs WHERE docs MATCH ?", (expression,)).fetchall() == [
        (1,)
    ]


# --- normalise and stem -------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Résumé", "resume"),
        ("re\u0301sume\u0301", "resume"),
        ("CAFÉ", "cafe"),
        ("Straße", "strasse"),
        ("ﬁle", "file"),
        ("ΟΔΟΣ", "οδοσ"),
        ("Ｗｉｄｅ", "wide"),
        ("Ёлка", "елка"),
        ("plain", "plain"),
    ],
)
def test_normalise(word, expected):
    assert normalise(word) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("ties", "ti"),
        ("caress", "caress"),
        ("cats", "cat"),
        ("feed", "feed"),
        ("agreed", "agree"),
        ("plastered", "plaster"),
        ("bled", "bled"),
        ("motoring", "motor"),
        ("sing", "sing"),
        ("conflated", "conflate"),
        ("troubled", "trouble"),
        ("sized", "size"),
        ("hopping", "hop"),
        ("tanned", "tan"),
        ("falling", "fall"),
        ("hissing", "hiss"),
        ("fizzed", "fizz"),
        ("failing", "fail"),
        ("filing", "file"),
        ("happy", "happi"),
        ("sky", "sky"),
        ("running", "run"),
        ("runs", "run"),
        ("libraries", "librari"),
        ("library", "librari"),
        ("is", "is"),
        ("x" * 70 + "ing", "x" * 70 + "ing"),  # too long to stem, like FTS5's porter
    ],
)
def test_stem(word, expected):
    assert stem(word) == expected


@pytest.mark.parametrize(
    ("query", "text_word"),
    [
        ("running", "runs"),
        ("running", "run"),
        ("libraries", "library"),
        ("agreed", "agree"),
        ("hopping", "hop"),
        ("ponies", "pony"),
        ("filing", "files"),
        ("conflated", "conflates"),
    ],
)
def test_snippet_matches_what_fts5_porter_matches(query, text_word):
    db = fts5_table()
    db.execute("INSERT INTO docs(body) VALUES (?)", (f"before {text_word} after",))
    expression = fts5_expression(query_terms(query))
    assert db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (expression,)).fetchone() == (
        1,
    )
    assert marked(snippet(f"before {text_word} after", [query]) or "") == [text_word]


# --- snippet ------------------------------------------------------------------------


def test_snippet_marks_occurrences_in_a_short_text():
    assert (
        snippet("The quick brown fox jumps over the lazy dog.", ["jumping", "dogs"])
        == "The quick brown fox **jumps** over the lazy **dog**."
    )


def test_snippet_marks_inflections_case_and_accents():
    text = "Running RUNS run; libraries: Library. Mon Résumé, re\u0301sume\u0301, CAFÉ cafe"
    fragment = snippet(text, ["running", "library", "resume", "café"])
    assert marked(fragment or "") == [
        "Running",
        "RUNS",
        "run",
        "libraries",
        "Library",
        "Résumé",
        "re\u0301sume\u0301",
        "CAFÉ",
        "cafe",
    ]
    assert marked(snippet("Die Straße, ΟΔΟΣ and ﬁles", ["strasse", "οδος", "file"]) or "") == [
        "Straße",
        "ΟΔΟΣ",
        "ﬁles",
    ]


def test_snippet_does_not_mark_other_words_sharing_a_prefix():
    assert marked(snippet("runway runner run prune", ["run"]) or "") == ["run"]


def test_snippet_marks_words_inside_identifiers():
    assert (
        snippet("got ERR_CONNECTION_RESET again", ["connection"])
        == "got ERR_**CONNECTION**_RESET again"
    )


def test_snippet_window_is_centred_with_ellipses():
    words = [f"w{i}" for i in range(200)]
    words[100] = "needle"
    fragment = snippet(" ".join(words), ["needle"], words=9)
    assert fragment == "…w96 w97 w98 w99 **needle** w101 w102 w103 w104…"
    assert fragment.startswith(ELLIPSIS) and fragment.endswith(ELLIPSIS)


def test_snippet_at_the_edges_of_the_text_fills_the_other_side():
    words = " ".join(f"w{i}" for i in range(100))
    assert snippet("needle " + words, ["needle"], words=5) == "**needle** w0 w1 w2 w3…"
    assert snippet(words + " needle.", ["needle"], words=5) == "…w96 w97 w98 w99 **needle**."


def test_snippet_prefers_the_window_with_most_distinct_terms():
    filler = " ".join(f"f{i}" for i in range(60))
    text = f"alpha alpha alpha {filler} beta gamma alpha {filler} alpha beta"
    fragment = snippet(text, ["alpha", "beta", "gamma"], words=10)
    assert sorted(set(marked(fragment or ""))) == ["alpha", "beta", "gamma"]


def test_snippet_ties_go_to_more_occurrences_then_to_the_earliest():
    filler = " ".join(f"f{i}" for i in range(60))
    text = f"alpha beta {filler} alpha beta alpha beta {filler} beta alpha alpha beta"
    fragment = snippet(text, ["alpha", "beta"], words=8) or ""
    assert marked(fragment) == ["alpha", "beta", "alpha", "beta"]
    assert "f59" in fragment  # the earlier of the two windows with four occurrences
    early = snippet(f"alpha {filler} alpha {filler} alpha", ["alpha"], words=5) or ""
    assert early.startswith("**alpha**")


def test_snippet_without_occurrences_is_the_start_of_the_text():
    words = " ".join(f"w{i}" for i in range(100))
    assert snippet(words, ["absent"], words=4) == "w0 w1 w2 w3…"
    assert snippet("  short  text ", ["absent"]) == "short text"
    assert snippet("short text", []) == "short text"
    assert snippet("short text", ["?!"]) == "short text"
    assert snippet("!!! ???", ["x"]) == "!!! ???"


def test_snippet_is_none_only_without_text():
    assert snippet(None, ["x"]) is None
    assert snippet("", ["x"]) is None
    assert snippet(" \n\t ", ["x"]) is None
    assert snippet("x", ["x"]) == "**x**"


def test_snippet_collapses_whitespace_and_takes_any_marks():
    assert snippet("a\n\n  needle\t\tb  c", ["needle"]) == "a **needle** b c"
    assert (
        snippet("find  the needle here", ["needle"], marks=('<mark class="hit">', "</mark>"))
        == 'find the <mark class="hit">needle</mark> here'
    )


def test_snippet_of_unspaced_text_is_bounded():
    fragment = snippet("x" * 100_000 + " needle " + "y" * 100_000, ["needle"], words=8) or ""
    assert "**needle**" in fragment and len(fragment) < 300
    assert fragment.startswith(ELLIPSIS) and fragment.endswith(ELLIPSIS)
    fragment = snippet("ab_" * 50_000, ["zzz"], words=8) or ""
    assert len(fragment) < 150 and fragment.endswith(ELLIPSIS)
    fragment = snippet("日本語のテキスト" * 10_000, ["東京"], words=8) or ""
    assert len(fragment) < 150 and fragment.endswith(ELLIPSIS)


def test_snippet_windows_agree_with_brute_force():
    """On random texts: the snippet holds as many distinct terms as the best window of
    ``words`` consecutive words does, and has ``words`` words."""
    rng = random.Random(7)
    vocabulary = ["alpha", "beta", "gamma", "delta", "runs", "running", "libraries"]
    vocabulary += [f"w{i}" for i in range(40)]
    query = ["alpha", "gamma", "run", "library", "delta"]
    wanted = {stem(normalise(word)) for word in query}
    for _ in range(200):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 120))]
        width = rng.randint(1, 15)
        best = max(
            len({stem(w) for w in words[i : i + width]} & wanted)
            for i in range(max(1, len(words) - width + 1))
        )
        fragment = snippet(" ".join(words), query, words=width) or ""
        assert len({stem(normalise(w)) for w in marked(fragment)}) == best
        assert len(fragment.split()) == min(width, len(words))


def test_folding_tables_hold():
    """The speed-ups' promises: characters searched as they are need no folding, and the
    letters folded one for one are what normalise() makes of them."""
    as_is = re.compile(f"[{search_text._AS_IS_RANGES}]")
    word_char = re.compile(f"[{search_text._WORD_CHARS}]")
    for code in range(0x80, 0x10000):
        char = chr(code)
        if as_is.match(char) and word_char.match(char) and char.lower() == char:
            assert unicodedata.normalize("NFC", normalise(char)) == char, hex(code)
    letters, _, _ = search_text._folding()
    assert letters["é"] == "e" and letters["й"] == "и" and letters["ς"] == "σ"
    assert "ß" not in letters  # two letters: looked at word by word instead
    assert all(len(base) == 1 and normalise(char) == base for char, base in letters.items())


@pytest.mark.parametrize("kind", ["sparse", "dense", "accented"])
def test_snippet_of_a_megabyte(kind):
    rng = random.Random(3)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    body = " ".join(rng.choice(vocabulary) for _ in range(180_000))[:1_000_000]
    if kind == "sparse":
        text, terms = body + " the needle and the haystacks.", ["needle", "haystack"]
    elif kind == "dense":
        text = "The quick brown fox jumps over the lazy dog. " * 23_000
        terms = ["fox", "dogs"]
    else:
        text = body.replace(" ", " café ", 20_000) + " “naïve” Needles"
        terms = ["needle", "naive"]
    started = time.perf_counter()
    fragment = snippet(text, terms) or ""
    elapsed = time.perf_counter() - started
    print(f"snippet of {len(text):,} characters ({kind}): {elapsed * 1000:.1f} ms")
    if kind == "sparse":
        assert marked(fragment) == ["needle", "haystacks"] and fragment.endswith("haystacks**.")
    elif kind == "dense":
        # Windows from a "dog" hold eight occurrences, from a "fox" seven.
        assert fragment.startswith("…**dog**. The quick brown **fox**")
        assert marked(fragment) == ["dog", "fox"] * 4
    else:
        assert marked(fragment) == ["naïve", "Needles"]
    assert len(fragment.split()) <= 32
