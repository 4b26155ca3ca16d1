"""Issue 15, point 8 (engine): the JSON search of a media id is checked field by field.

Every bad value is refused with `BadSearchError` (a `BadMediaIdError`) naming the field, never a
raw ValueError/TypeError/OverflowError/AttributeError/RecursionError from deeper down.
"""

import contextlib
import json
import math
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.plexus.plex.resolve import MediaResolver
from custom_components.plexus.plex.search_query import (
    MAX_SEARCH_CHARS,
    BadMediaIdError,
    BadSearchError,
    parse_search,
)

BAD = [
    # (what was tried, search, field named)
    ('year "abc"', '{"title": "Dune", "year": "abc"}', "year"),
    ("year 1e400 (infinite)", '{"title": "Dune", "year": 1e400}', "year"),
    ("year -1e400", '{"title": "Dune", "year": -1e400}', "year"),
    ("year 2021.5", '{"title": "Dune", "year": 2021.5}', "year"),
    ("year true", '{"title": "Dune", "year": true}', "year"),
    ("year as a list", '{"title": "Dune", "year": [2021]}', "year"),
    ("year 99999999999999999999", '{"title": "Dune", "year": 99999999999999999999}', "year"),
    ("year out of range", '{"title": "Dune", "year": 12}', "year"),
    ('season "x"', '{"title": "Show", "season": "x"}', "season"),
    ("season -1", '{"title": "Show", "season": -1}', "season"),
    ("season as an object", '{"title": "Show", "season": {"n": 1}}', "season"),
    ("episode_number 1e308", '{"title": "Show", "episode_number": 1e308}', "episode_number"),
    ("offset 1e400", '{"title": "Dune", "offset": 1e400}', "offset"),
    ("offset 1e308", '{"title": "Dune", "offset": 1e308}', "offset"),
    ("offset -5", '{"title": "Dune", "offset": -5}', "offset"),
    ('offset "soon"', '{"title": "Dune", "offset": "soon"}', "offset"),
    ('offset "nan"', '{"title": "Dune", "offset": "nan"}', "offset"),
    ("offset as a list", '{"title": "Dune", "offset": [1]}', "offset"),
    ("library_name as a list", '{"library_name": ["Movies"], "title": "Dune"}', "library_name"),
    ("library_name as a number", '{"library_name": 1.5, "title": "Dune"}', "library_name"),
    ("library_name as an object", '{"library_name": {"a": 1}, "title": "Dune"}', "library_name"),
    ("library_name empty", '{"library_name": " ", "title": "Dune"}', "library_name"),
    ("title as an object", '{"title": {"en": "Dune"}}', "title"),
    ("title true", '{"title": true}', "title"),
    ("title too long", json.dumps({"title": "x" * 501}), "title"),
    ("album_name as a list", '{"artist_name": "A", "album_name": ["B"]}', "album_name"),
    ('shuffle "yes"', '{"title": "Dune", "shuffle": "yes"}', "shuffle"),
    ("resume 2", '{"title": "Dune", "resume": 2}', "resume"),
    ("NaN", '{"title": "Dune", "year": NaN}', "search"),
    ("Infinity", '{"title": "Dune", "offset": Infinity}', "search"),
    ("not JSON", "{title: Dune}", "search"),
    ("a JSON list", '[{"title": "Dune"}]', "search"),
    ("nested 4,000 deep within the size cap", '{"a":' + "[" * 4000, "search"),
    ("nested 100,000 deep", "{" + '"a":[' * 100_000, "search"),
    ("longer than the cap", json.dumps({"title": "Dune", "pad": "x" * MAX_SEARCH_CHARS}), "search"),
]


@pytest.mark.parametrize(("tried", "text", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_search_value_is_refused_naming_the_field(tried: str, text: str, field: str) -> None:
    with pytest.raises(BadSearchError) as caught:
        parse_search(text)
    assert caught.value.field == field, tried
    assert str(caught.value).startswith(f"{field}: ")
    assert len(str(caught.value)) < 200
    assert isinstance(caught.value, BadMediaIdError)


def test_good_search_is_kept_in_checked_types() -> None:
    query = parse_search(
        '{"library_name": "TV Shows", "title": 1917, "year": "2019", "season": 1.0,'
        ' "episode": "3", "offset": "90.5", "shuffle": 1, "resume": false,'
        ' "album_name": null, "maxresults": 3}'
    ).as_query()
    assert query == {
        "library_name": "TV Shows",
        "title": "1917",
        "year": 2019,
        "season": 1,
        "episode": 3,
        "offset": 90.5,
        "shuffle": True,
        "resume": False,
    }  # null is "not given"; fields Plexus does not use are ignored


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "library_name",
        "title",
        "year",
        "season",
        "episode",
        "offset",
        "shuffle",
        "resume",
        "album_name",
        "track_name",
        "playlist_name",
        "show_name",
        "episode_number",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=5))
def test_arbitrary_json_search_is_checked_or_refused(raw: dict[str, Any]) -> None:
    """Whatever the values, the search is refused with the field named, or comes out checked."""
    field: str | None = None
    try:
        query = parse_search(json.dumps(raw)).as_query()
    except BadSearchError as err:
        field = err.field
        query = {}
    assert field is None or field in raw or field == "search"
    for name, value in query.items():
        assert value is not None
        if isinstance(value, float):
            assert math.isfinite(value), name
        if name in ("year", "season", "episode", "episode_number"):
            assert type(value) is int


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(BadSearchError):
        parse_search(text)


class _NoLibrary:
    """A library that must not be asked: bad searches are refused before any request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"library.{name} was called")


async def test_resolver_refuses_bad_search_before_asking_the_server() -> None:
    resolver = MediaResolver(_NoLibrary())  # type: ignore[arg-type]
    for prefix in ("", "plex://"):
        with pytest.raises(BadSearchError) as caught:
            await resolver.resolve(prefix + '{"title": "Dune", "year": "abc"}', [])
        assert caught.value.field == "year"
