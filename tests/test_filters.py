"""Filters as data: the parser's neutral form, and the SQLite compiler on its own."""

from __future__ import annotations

import json
import sqlite3

import pytest

from vibes.errors import FilterError
from vibes.filters import Compare, Filter, IdPrefix, OneOf, RawSQL, build_filter, parse_expression
from vibes.store.sqlite_filters import compile_filter, json_path

ROWS = {
    "a": {"year": 2021, "lang": "en", "draft": False, "tags": ["x", "y"], "meta": {"level": 2}},
    "b": {"year": "2019", "lang": "fr", "draft": True, "meta": {"level": 5}},
    "c": {"year": 2020.5, "lang": "en", "note": None},
    "d": {"lang": "de", "year": "unknown"},
    "e": None,
    "x_1": {"year": 2022},
    "x%2": {"year": 2023},
}


def test_expressions_parse_to_neutral_conditions():
    assert parse_expression("year>=2020") == Compare(("year",), ">=", 2020)
    assert parse_expression("lang=en") == Compare(("lang",), "=", "en")
    assert parse_expression("lang != en") == Compare(("lang",), "!=", "en")
    assert parse_expression("draft=true") == Compare(("draft",), "=", True)
    assert parse_expression("note=null") == Compare(("note",), "=", None)
    assert parse_expression("meta.level<3") == Compare(("meta", "level"), "<", 3)
    assert parse_expression('tags=["x","y"]') == Compare(("tags",), "=", ["x", "y"])
    assert parse_expression("lang in en, fr") == OneOf(("lang",), ("en", "fr"))
    assert parse_expression("year IN 2019,2021") == OneOf(("year",), (2019, 2021))


@pytest.mark.parametrize(
    "expression, message",
    [
        ("year", "has no operator"),
        ("=2020", "needs a metadata key"),
        ("lang in ,", "needs at least one value"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(FilterError, match=message):
        parse_expression(expression)


def test_build_filter_combines_every_source():
    combined = build_filter(["year>=2020"], prefix="doc", where="length(id) > ?", where_params=[2])
    assert combined.conditions == (
        Compare(("year",), ">=", 2020),
        IdPrefix("doc"),
        RawSQL("length(id) > ?", (2,)),  # in the SQL of whichever database runs it
    )
    assert build_filter({"lang": "en"}) == Filter((Compare(("lang",), "=", "en"),))
    assert build_filter("lang=en") == Filter((Compare(("lang",), "=", "en"),))
    assert build_filter(combined) == combined
    assert not build_filter(None) and not build_filter([])


@pytest.fixture(scope="module")
def table():
    conn = sqlite3.connect(":memory:")
    conn.execute("create table embeddings (id text, metadata text)")
    conn.executemany(
        "insert into embeddings values (?, ?)",
        [(key, json.dumps(value) if value is not None else None) for key, value in ROWS.items()],
    )
    return conn


def matching(table, *expressions, **options) -> set[str]:
    sql, params = compile_filter(build_filter(list(expressions), **options))
    return {row[0] for row in table.execute(f"select id from embeddings where {sql}", params)}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("lang=en", {"a", "c"}),
        ("lang!=en", {"b", "d", "e", "x_1", "x%2"}),  # items without the key match !=
        ("year=2019", {"b"}),  # a number matches the same number stored as text
        ("year>=2020", {"a", "c", "x_1", "x%2"}),
        ("year<2020", {"b"}),  # "unknown" is no number: never compared as one
        ("year>2020.4", {"a", "c", "x_1", "x%2"}),
        ("lang>f", {"b"}),  # text compares with text
        ("draft=true", {"b"}),
        ("draft=false", {"a"}),
        ("note=null", {"c"}),  # an explicit null only, not a missing key
        ("meta.level<3", {"a"}),
        ('tags=["x","y"]', {"a"}),
        ("lang in en,de", {"a", "c", "d"}),
        ("year in 2019,2022", {"b", "x_1"}),
    ],
)
def test_sqlite_compiler_gives_each_operator_its_documented_meaning(table, expression, expected):
    assert matching(table, expression) == expected


def test_a_filter_needs_metadata_exactly_when_items_without_any_cannot_match(table):
    # "e" has no metadata: a filter said to need it must never let "e" through (the
    # SQLite store then reads only the items that have some).
    for expression in ("lang=en", "year<2020", "note=null", "lang in en,de", "meta.level<3"):
        assert build_filter(expression).needs_metadata
        assert "e" not in matching(table, expression)
    assert not build_filter("lang!=en").needs_metadata and "e" in matching(table, "lang!=en")
    assert build_filter(["lang!=en", "year>=2020"]).needs_metadata  # one such condition will do
    assert not build_filter(prefix="x_", where="1").needs_metadata
    assert not Filter().needs_metadata


def test_conditions_are_anded_and_prefixes_are_literal(table):
    assert matching(table, "lang=en", "year>=2021") == {"a"}
    assert matching(table, prefix="x_") == {"x_1"}  # '_' is no wildcard
    assert matching(table, prefix="x%") == {"x%2"}  # nor is '%'
    assert matching(table, where="id in ('a', 'b')") == {"a", "b"}
    assert matching(table, "lang=en", where="id != 'a'") == {"c"}
    assert compile_filter(Filter()) == ("1", [])


def test_keys_are_quoted_into_json_paths():
    assert json_path(("a", "b")) == '$."a"."b"'
    assert json_path(('we"ird',)) == '$."we\\"ird"'


def test_a_condition_in_another_dialect_is_refused():
    with pytest.raises(FilterError, match="postgresql"):
        compile_filter(Filter((RawSQL("metadata->>'a' = 'b'", (), "postgresql"),)))
