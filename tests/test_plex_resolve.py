"""What `play_media` ids resolve to, against the simulator's library (engine, no HA)."""

from __future__ import annotations

import json

from aiohttp import ClientSession
import pytest

from custom_components.plexus.plex.api import PlexServerAPI
from custom_components.plexus.plex.library import PlexLibrary
from custom_components.plexus.plex.models import LibrarySection
from custom_components.plexus.plex.resolve import MediaNotFoundError, MediaResolver
from tests.plex_simulator import PlexSimulator


@pytest.fixture
async def resolver_and_sections(
    simulator: PlexSimulator, session: ClientSession
) -> tuple[MediaResolver, list[LibrarySection]]:
    api = PlexServerAPI(session, simulator.url, simulator.token)
    return MediaResolver(PlexLibrary(api)), await api.sections()


def search(**fields: object) -> str:
    return json.dumps(fields)


def _seasons_episodes(sim: PlexSimulator, show_title: str) -> list:  # type: ignore[type-arg]
    return sorted(
        (e for e in sim.library.episodes() if e.grandparent.title == show_title),
        key=lambda e: (e.parent.index, e.index),
    )


async def test_music_track_and_resume_point(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    resolver, sections = resolver_and_sections
    track = simulator.library.tracks()[0]
    album, artist = track.parent, track.grandparent
    request = await resolver.resolve(
        search(
            library_name=next(s.title for s in sections if s.type == "artist"),
            artist_name=artist.title,
            album_name=album.title,
            track_name=track.title,
        ),
        sections,
    )
    assert request.item.rating_key == track.rating_key
    assert request.item.type == "track"

    # "resume": start where the user stopped; without it, from the start.
    movie = simulator.library.movies()[3]
    simulator.library.set_progress(movie.rating_key, 754_000)
    query = {"title": movie.title, "year": movie.year}
    resumed = await resolver.resolve(search(**query, resume=True), sections)
    assert resumed.item.rating_key == movie.rating_key
    assert resumed.offset_ms == 754_000
    assert (await resolver.resolve(search(**query), sections)).offset_ms == 0
    explicit = await resolver.resolve(search(**query, resume=True, offset=12.5), sections)
    assert explicit.offset_ms == 12_500


async def test_photo_libraries_are_skipped(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    """A title search over every library passes over photo libraries (nothing to play there)."""
    resolver, sections = resolver_and_sections
    photos = LibrarySection(key="99", type="photo", title="Photos")
    movie = simulator.library.movies()[0]
    request = await resolver.resolve(
        search(title=movie.title, year=movie.year), [photos, *sections]
    )
    assert request.item.rating_key == movie.rating_key
    assert not any("/library/sections/99" in path for _, path, _ in simulator.requests)


async def test_nothing_found_says_what_is_missing(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    resolver, sections = resolver_and_sections
    with pytest.raises(MediaNotFoundError, match="no playlist named Nope"):
        await resolver.resolve(search(playlist_name="Nope"), sections)
    with pytest.raises(MediaNotFoundError, match="nothing called Zzyzx Road in any library"):
        await resolver.resolve(search(title="Zzyzx Road"), sections)
    show = simulator.library.shows()[0]
    with pytest.raises(MediaNotFoundError, match=f"{show.title} has no such season"):
        await resolver.resolve(search(show_name=show.title, season=99), sections)
    first = _seasons_episodes(simulator, show.title)[0]
    with pytest.raises(MediaNotFoundError, match="has no such episode"):
        await resolver.resolve(
            search(show_name=show.title, season=first.parent.index, episode=999), sections
        )
    # A playlist found by name.
    name = next(iter(simulator.library.playlists.values())).title
    found = await resolver.resolve(search(playlist_name=name), sections)
    assert found.item.title == name


async def test_show_start_after_the_last_watched_or_at_the_first_unwatched(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    resolver, sections = resolver_and_sections
    lib = simulator.library
    show = lib.add_show("Resume Me", year=2020)
    episodes = [lib.add_episode(show, 1, n, title=f"Ep {n}") for n in (1, 2, 3)]
    request = await resolver.resolve(show.rating_key, sections)

    # Nothing watched: the first episode.
    start = await resolver.starting_point(request)
    assert start.start_key == episodes[0].rating_key

    # Episode 2 watched last: episode 3 is next.
    lib.clock = lambda: 1_800_000_000
    lib.mark_watched(episodes[1].rating_key)
    assert (await resolver.starting_point(request)).start_key == episodes[2].rating_key

    # The finale watched last, the pilot never: back to the pilot.
    lib.clock = lambda: 1_800_000_100
    lib.mark_watched(episodes[2].rating_key)
    assert (await resolver.starting_point(request)).start_key == episodes[0].rating_key

    # Everything watched: from the start.
    lib.mark_watched(episodes[0].rating_key)
    assert (await resolver.starting_point(request)).start_key == episodes[0].rating_key

    # A show the server lists without any episode cannot be played.
    empty = lib.add_show("Announced Only", year=2027)
    request = await resolver.resolve(empty.rating_key, sections)
    with pytest.raises(MediaNotFoundError, match="Announced Only has nothing to play"):
        await resolver.starting_point(request)


async def test_unknown_guid_and_library(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    """A server GUID no section holds, and a library that does not exist: clear errors."""
    resolver, sections = resolver_and_sections
    before = len(simulator.requests)
    with pytest.raises(MediaNotFoundError, match="no item with GUID plex://movie/000000"):
        await resolver.resolve("plex://movie/000000", sections)
    # Every video and music section was asked.
    asked = [p for _, p, q in list(simulator.requests)[before:] if "/all" in p]
    assert len(asked) == len(sections)
    with pytest.raises(MediaNotFoundError, match="no library named Cartoons"):
        await resolver.resolve(search(library_name="Cartoons", title="Dune"), sections)


async def test_next_after_an_episode_crosses_into_the_next_season(
    simulator: PlexSimulator, resolver_and_sections: tuple[MediaResolver, list[LibrarySection]]
) -> None:
    """{"next_after": key}: the next episode of the same season, the next season's first after a
    finale; tried: the show's last episode, a movie, and a key that is not digits."""
    from custom_components.plexus.plex.search_query import BadSearchError

    resolver, sections = resolver_and_sections
    show = next(
        s
        for s in simulator.library.shows()
        if len({e.parent.index for e in simulator.library.episodes() if e.grandparent is s}) > 1
    )
    episodes = _seasons_episodes(simulator, show.title)
    finale = max((e for e in episodes if e.parent.index == 1), key=lambda e: e.index)
    after_first = await resolver.resolve(search(next_after=episodes[0].rating_key), sections)
    assert after_first.item.rating_key == episodes[1].rating_key
    after_finale = await resolver.resolve(search(next_after=int(finale.rating_key)), sections)
    assert after_finale.item.rating_key == episodes[episodes.index(finale) + 1].rating_key
    assert after_finale.item.parent_rating_key != finale.parent.rating_key
    with pytest.raises(MediaNotFoundError, match="last episode"):
        await resolver.resolve(search(next_after=episodes[-1].rating_key), sections)
    movie = simulator.library.movies()[0]
    with pytest.raises(MediaNotFoundError, match="not an episode"):
        await resolver.resolve(search(next_after=movie.rating_key), sections)
    with pytest.raises(BadSearchError, match="next_after"):
        await resolver.resolve(search(next_after="../library/sections"), sections)
