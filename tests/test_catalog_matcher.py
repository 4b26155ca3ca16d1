"""MediaMatcher: rating key, each GUID kind, the server, title variants, decoys — never a guess."""

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.catalog.db import Catalog
from custom_components.plexus.catalog.guids import parse_item_guids
from custom_components.plexus.catalog.matcher import (
    Candidate,
    MediaMatcher,
    MediaQuery,
    decide,
)
from custom_components.plexus.catalog.models import ItemRecord, LibraryRecord
from custom_components.plexus.plex.errors import PlexError

SERVER = "srv-home"
OTHER = "srv-friend"

SECTIONS = [
    LibraryRecord(key="1", type="movie", title="Movies", locations=["/m"]),
    LibraryRecord(key="2", type="show", title="TV Shows", locations=["/tv"]),
    LibraryRecord(key="3", type="movie", title="Kids Movies", locations=["/k"]),
]


def record(
    key: str,
    item_type: str,
    title: str,
    year: int | None = None,
    guids: tuple[str, ...] = (),
    **extra: object,
) -> ItemRecord:
    parsed, unknown = parse_item_guids(guids[0] if guids else None, guids[1:])
    return ItemRecord(
        rating_key=key,
        type=item_type,
        title=title,
        year=year,
        guid=guids[0] if guids else None,
        guids=parsed,
        unknown_guids=unknown,
        updated_at=1,
        **extra,  # type: ignore[arg-type]
    )


def episode(key: str, show_key: str, show: str, season: int, number: int) -> ItemRecord:
    return record(
        key,
        "episode",
        f"{show} {season}x{number}",
        grandparent_rating_key=show_key,
        grandparent_title=show,
        parent_rating_key=f"{show_key}-s{season}",
        season_number=season,
        episode_number=number,
    )


MOVIES = [
    record("10", "movie", "Amélie", 2001, ("plex://movie/5d7768", "imdb://tt0211915")),
    record("11", "movie", "Alien", 1979, ("com.plexapp.agents.imdb://tt0078748?lang=en",)),
    record("12", "movie", "Aliens", 1986, ("com.plexapp.agents.themoviedb://679?lang=en",)),
    record("13", "movie", "Dune", 2021, ("plex://movie/dune2021", "tmdb://438631")),
    record("14", "movie", "Dune", 1984, ("plex://movie/dune1984", "tmdb://841")),
    record("15", "movie", "Rocky II", 1979),
    record("16", "movie", "Batman Returns", 1992),
]
KIDS = [record("30", "movie", "Amélie", 2001)]
SHOWS = [
    record("20", "show", "The Office", 2005, ("plex://show/office-us", "tvdb://73244")),
    record("21", "show", "The Office", 2001, ("plex://show/office-uk", "tvdb://78107")),
    record("22", "show", "Law & Order", 1990, ("com.plexapp.agents.thetvdb://72368?lang=en",)),
    record("23", "show", "Bob's Burgers", 2011),
    episode("201", "20", "The Office", 1, 1),
    episode("202", "20", "The Office", 1, 2),
    episode("221", "22", "Law & Order", 1, 14),
    episode("231", "23", "Bob's Burgers", 9, 15),
]


def build(catalog: Catalog, server: str = SERVER) -> None:
    writer = catalog.begin_import(server, "full")
    writer.sync_libraries(SECTIONS)
    for section, items in (("1", MOVIES), ("2", SHOWS), ("3", KIDS)):
        writer.start_library(section)
        writer.write_batch(items)
        writer.finish_library()
    writer.commit()


@pytest.fixture
def matcher(catalog: Catalog) -> MediaMatcher:
    build(catalog)
    return MediaMatcher(SERVER, catalog, asyncio.to_thread)


async def test_same_server_rating_key_is_exact(matcher: MediaMatcher) -> None:
    result = await matcher.match(MediaQuery("movie", rating_key="999", server=SERVER))
    assert (result.status, result.rating_key, result.confidence, result.method) == (
        "matched",
        "999",
        1.0,
        "rating_key",
    )
    # Verified: the catalog must hold it; an unknown key falls through to the other steps.
    verified = await matcher.match(
        MediaQuery("movie", rating_key="13", server=SERVER), verify_key=True
    )
    assert (verified.rating_key, verified.method) == ("13", "rating_key")
    assert verified.item is not None
    assert verified.item.title == "Dune"
    stale = await matcher.match(
        MediaQuery("movie", rating_key="999", server=SERVER, title="Dune", year=2021),
        verify_key=True,
    )
    assert (stale.rating_key, stale.method) == ("13", "title")


async def test_other_servers_rating_key_names_nothing_here(matcher: MediaMatcher) -> None:
    assert (await matcher.match(MediaQuery("movie", rating_key="13", server=OTHER))).status == (
        "not_found"
    )
    # An unknown server's key is passed through as this server's (sync-play's old behaviour).
    passthrough = await matcher.match(MediaQuery("movie", rating_key="13"))
    assert (passthrough.rating_key, passthrough.method, passthrough.confidence) == (
        "13",
        "passthrough",
        0.0,
    )


@pytest.mark.parametrize(
    ("guid", "item_type", "expected"),
    [
        ("plex://movie/5d7768", "movie", "10"),
        ("imdb://tt0211915", "movie", "10"),
        ("tmdb://438631", "movie", "13"),
        ("tmdb://841", "movie", "14"),
        ("tvdb://73244", "show", "20"),
        ("tvdb://78107", "show", "21"),
        ("com.plexapp.agents.imdb://tt0078748?lang=en", "movie", "11"),
        ("imdb://tt0078748", "movie", "11"),
        ("com.plexapp.agents.themoviedb://679?lang=de", "movie", "12"),
        ("com.plexapp.agents.thetvdb://72368?lang=en", "show", "22"),
    ],
)
async def test_each_guid_kind_is_exact(
    matcher: MediaMatcher, guid: str, item_type: str, expected: str
) -> None:
    result = await matcher.match(
        MediaQuery(item_type, rating_key="77", server=OTHER, guids=("local://5", guid))
    )
    assert (result.rating_key, result.method, result.confidence) == (expected, "guid", 1.0)


async def test_guid_of_another_type_is_not_used(matcher: MediaMatcher) -> None:
    result = await matcher.match(MediaQuery("movie", guids=("tvdb://73244",)), by_title=False)
    assert result.status == "not_found"


async def test_server_asked_only_for_guids_it_can_answer() -> None:
    asked: list[str] = []

    async def find(guid: str) -> str | None:
        asked.append(guid)
        if guid.startswith("com.plexapp"):
            raise PlexError("boom")
        return "501" if guid.startswith("plex://") else None

    matcher = MediaMatcher(SERVER, None, asyncio.to_thread, server_find_guid=find)
    result = await matcher.match(
        MediaQuery(
            "movie",
            server=OTHER,
            rating_key="1",
            guids=(
                "imdb://tt0211915",
                "com.plexapp.agents.imdb://tt0211915?lang=en",
                "tmdb://194",
                "plex://movie/abc",
            ),
        )
    )
    assert (result.rating_key, result.method) == ("501", "server")
    # imdb:// and tmdb:// from a Guid list are never matched by a server's guid= filter.
    assert asked == ["com.plexapp.agents.imdb://tt0211915?lang=en", "plex://movie/abc"]


@pytest.mark.parametrize(
    ("title", "year", "item_type", "expected"),
    [
        ("Amelie", 2001, "movie", None),  # two libraries hold it: a question, not a guess
        ("Alien", 1979, "movie", "11"),
        ("alien (1979)", None, "movie", "11"),
        ("Aliens", 1986, "movie", "12"),
        ("Dune", 2021, "movie", "13"),
        ("Dune (1984)", None, "movie", "14"),
        ("Dune", 2020, "movie", "13"),  # off by one year: still sure (the other is 1984)
        ("Rocky 2", 1979, "movie", "15"),
        ("Office, The (US)", 2005, "show", "20"),
        ("the office", 2001, "show", "21"),
        ("Law and Order", 1990, "show", "22"),
        ("Bobs Burgers", None, "show", "23"),
    ],
)
async def test_title_variants(
    matcher: MediaMatcher, title: str, year: int | None, item_type: str, expected: str | None
) -> None:
    result = await matcher.match(MediaQuery(item_type, server=OTHER, title=title, year=year))
    if expected is None:
        assert result.status == "conflict"
        assert {(c.rating_key, c.library) for c in result.candidates[:2]} == {
            ("10", "Movies"),
            ("30", "Kids Movies"),
        }
    else:
        assert (result.status, result.rating_key, result.method) == ("matched", expected, "title")
        assert result.confidence >= matcher.threshold


@pytest.mark.parametrize(
    ("title", "year", "item_type"),
    [
        ("Dune", None, "movie"),  # 2021 or 1984?
        ("The Office", None, "show"),  # US or UK?
        ("Batman", 1989, "movie"),  # only Batman Returns (1992): a decoy
        ("Rocky", 1976, "movie"),
        ("Alienz", 1979, "movie"),
    ],
)
async def test_decoys_are_never_auto_mapped(
    matcher: MediaMatcher, title: str, year: int | None, item_type: str
) -> None:
    result = await matcher.match(MediaQuery(item_type, server=OTHER, title=title, year=year))
    assert result.status != "matched"
    assert result.rating_key is None
    for candidate in result.candidates:
        assert candidate.title
        assert candidate.type == item_type


async def test_decoy_conflict_lists_ranked_candidates(matcher: MediaMatcher) -> None:
    result = await matcher.match(MediaQuery("show", title="The Office"))
    assert result.status == "conflict"
    ranked = [(c.rating_key, c.year, c.library, c.confidence) for c in result.candidates]
    assert ranked[:2] == [("20", 2005, "TV Shows", 0.97), ("21", 2001, "TV Shows", 0.97)]
    assert result.candidates[0].as_dict()["library"] == "TV Shows"


async def test_episode_by_show_title_and_numbers(matcher: MediaMatcher) -> None:
    found = await matcher.match(
        MediaQuery(
            "episode",
            server=OTHER,
            rating_key="146734",
            title="The Fresh Princ-ipal",
            show_title="Bob\u2019s Burgers",
            season=9,
            episode=15,
        )
    )
    assert (found.rating_key, found.show_rating_key, found.method) == ("231", "23", "title")
    # Legacy TV GUIDs carry the show id with season/episode; the show's GUID finds the show.
    by_show_guid = await matcher.match(
        MediaQuery(
            "episode",
            show_guids=("com.plexapp.agents.thetvdb://72368?lang=en",),
            season=1,
            episode=14,
        )
    )
    assert (by_show_guid.rating_key, by_show_guid.method) == ("221", "guid")
    missing = await matcher.match(
        MediaQuery("episode", show_title="Bob's Burgers", show_year=2011, season=1, episode=1)
    )
    assert (missing.status, missing.rating_key, missing.show_rating_key) == (
        "not_found",
        None,
        "23",
    )
    ambiguous = await matcher.match(
        MediaQuery("episode", show_title="The Office", season=1, episode=1)
    )
    assert ambiguous.status == "conflict"
    assert await matcher.find_episode("20", 1, 2) == "202"


async def test_server_search_used_without_catalog_and_scored() -> None:
    async def search(title: str, year: int | None, item_type: str) -> Sequence[Candidate]:
        return [
            Candidate("7", "The Matrix", 1999, "movie", "Movies", 0.99),
            Candidate("8", "The Matrix Reloaded", 2003, "movie", "Movies", 0.99),
        ]

    matcher = MediaMatcher(SERVER, None, asyncio.to_thread, server_search=search)
    assert await matcher.resolve_key(MediaQuery("movie", title="Matrix", year=1999)) == "7"
    # The server's own score is ignored: a wrong year is not a match.
    result = await matcher.match(MediaQuery("movie", server=OTHER, title="Matrix", year=2010))
    assert result.status == "conflict"


async def test_failing_catalog_means_not_found(catalog: Catalog) -> None:
    build(catalog)

    async def broken[T](func: Callable[..., T], /, *args: Any) -> T:
        raise RuntimeError("database is locked")

    matcher = MediaMatcher(SERVER, lambda: catalog, broken)
    result = await matcher.match(
        MediaQuery("movie", server=OTHER, guids=("imdb://tt0211915",), title="Amélie", year=2001)
    )
    assert result.status == "not_found"
    unavailable = MediaMatcher(SERVER, lambda: None, asyncio.to_thread)
    assert (await unavailable.match(MediaQuery("movie", title="Dune"))).status == "not_found"
    # Unverifiable: the server's own key is still its item.
    same = await unavailable.match(
        MediaQuery("movie", rating_key="5", server=SERVER), verify_key=True
    )
    assert same.rating_key == "5"


def test_threshold_must_be_sane() -> None:
    with pytest.raises(ValueError, match="threshold"):
        MediaMatcher(SERVER, None, asyncio.to_thread, threshold=0)


scores = st.floats(0.0, 1.0, allow_nan=False)


@given(st.lists(scores, max_size=8), st.floats(0.5, 1.0), st.floats(0.0, 0.2))
def test_decide_never_maps_below_threshold_or_when_close(
    values: list[float], threshold: float, margin: float
) -> None:
    candidates = [Candidate(str(i), f"T{i}", 2000, "movie", None, v) for i, v in enumerate(values)]
    result = decide(candidates, threshold=threshold, margin=margin)
    if result.matched:
        assert result.confidence >= threshold
        others = sorted(values, reverse=True)[1:]
        assert not others or result.confidence - others[0] > margin
    else:
        assert result.rating_key is None
    assert all(c.confidence >= 0.5 for c in result.candidates)
