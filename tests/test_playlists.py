"""Playlists: the engine against the simulator's endpoints, and the three services through HA."""

import json

from aiohttp import ClientSession
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.plex import PlexServerAPI
from custom_components.plexus.plex.errors import PlexConnectionError
from custom_components.plexus.plex.playlists import (
    PlaylistAPI,
    PlaylistNotFoundError,
    items_uri,
    playlist_type_for,
)
from tests.plex_simulator import PlexSimulator


def keys_of(sim: PlexSimulator, playlist_id: str) -> list[str]:
    return [str(k) for k in sim.library.playlists[playlist_id].items]


# ---------------------------------------------------------------------------------- engine


async def test_create_add_remove_against_the_server(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    """The real endpoints: POST /playlists, PUT …/items, DELETE …/items/<playlistItemID>."""
    api = PlaylistAPI(
        PlexServerAPI(session, simulator.url, simulator.token), simulator.machine_identifier
    )
    a, b, c = (m.rating_key for m in simulator.library.movies()[:3])
    created = await api.create("Weekend", [a, b], "video")
    assert created.title == "Weekend"
    assert created.playlist_type == "video"
    assert created.leaf_count == 2
    assert keys_of(simulator, created.id) == [a, b]

    await api.add(created.id, [c, a])
    entries = await api.entries(created.id)
    assert [e.rating_key for e in entries] == [a, b, c, a]
    assert len({e.playlist_item_id for e in entries}) == 4  # every entry has its own id

    removed = await api.remove(created.id, [a])
    assert [e.rating_key for e in removed] == [a, a]
    assert keys_of(simulator, created.id) == [b, c]
    # The ids of the entries that stayed did not change.
    assert [e.playlist_item_id for e in await api.entries(created.id)] == [
        entries[1].playlist_item_id,
        entries[2].playlist_item_id,
    ]
    assert (await api.find("weekend")).id == created.id
    assert (await api.find(created.id)).title == "Weekend"

    methods = [(m, p) for m, p, _q in simulator.requests if p.startswith("/playlists")]
    assert ("POST", "/playlists") in methods
    assert ("PUT", f"/playlists/{created.id}/items") in methods
    assert ("DELETE", f"/playlists/{created.id}/items/{entries[0].playlist_item_id}") in methods


async def test_unknown_playlist_names_the_existing_ones(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    api = PlaylistAPI(
        PlexServerAPI(session, simulator.url, simulator.token), simulator.machine_identifier
    )
    with pytest.raises(PlaylistNotFoundError) as err:
        await api.find("No such list")
    for playlist in simulator.library.playlists.values():
        assert playlist.title in str(err.value)


async def test_server_refuses_a_create_without_items(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    """A uri that names nothing is refused by the server (HTTP 400), and nothing is created."""
    api = PlaylistAPI(
        PlexServerAPI(session, simulator.url, simulator.token), simulator.machine_identifier
    )
    before = set(simulator.library.playlists)
    with pytest.raises(PlexConnectionError, match="HTTP 400 Bad Request"):
        await api.create("Empty", ["999999999"], "video")
    assert set(simulator.library.playlists) == before


async def test_server_refuses_mixed_kinds_and_smart_edits(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    """As a real server: a track in a video playlist, a movie in an audio one, and any edit of a
    smart playlist are HTTP 400, and nothing changes."""
    api = PlaylistAPI(
        PlexServerAPI(session, simulator.url, simulator.token), simulator.machine_identifier
    )
    movie = simulator.library.movies()[0].rating_key
    track = simulator.library.tracks()[0].rating_key
    before = set(simulator.library.playlists)
    for keys, kind in (([movie, track], "video"), ([track, movie], "audio"), ([movie], "audio")):
        with pytest.raises(PlexConnectionError, match="400"):
            await api.create("Mixed", keys, kind)
    assert set(simulator.library.playlists) == before

    videos = await api.create("Videos", [movie], "video")
    with pytest.raises(PlexConnectionError, match="400"):
        await api.add(videos.id, [track])
    assert keys_of(simulator, videos.id) == [movie]

    smart = simulator.library.add_playlist("Unwatched", [movie], smart=True)
    assert (await api.find("Unwatched")).smart
    with pytest.raises(PlexConnectionError, match="400"):
        await api.add(smart.rating_key, [movie])
    with pytest.raises(PlexConnectionError, match="400"):
        await api.remove(smart.rating_key, [movie])
    assert keys_of(simulator, smart.rating_key) == [movie]


def test_items_uri_and_type() -> None:
    assert items_uri("abc", ["1", "2"]) == (
        "server://abc/com.plexapp.plugins.library/library/metadata/1,2"
    )
    assert playlist_type_for(["track", "album"]) == "audio"
    assert playlist_type_for(["movie", "episode"]) == "video"
    assert playlist_type_for(["track", "movie"]) == "audio"  # mixed: the first item decides
    assert playlist_type_for([]) == "video"


# ---------------------------------------------------------------------------------- services


async def call(hass: HomeAssistant, service: str, **data: object) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def test_create_from_keys_guids_and_searches(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    movies = simulator.library.movies()
    by_guid = movies[1]
    search = json.dumps({"library_name": "Movies", "title": movies[2].title})
    response = await call(
        hass,
        "playlist_create",
        name="Movie night",
        items=[movies[0].rating_key, by_guid.guid, search],
    )
    playlist_id = str(response["playlist_id"])
    assert response["title"] == "Movie night"
    assert response["playlist_type"] == "video"
    assert response["item_count"] == 3
    assert [i["rating_key"] for i in response["added"]] == [m.rating_key for m in movies[:3]]
    assert keys_of(simulator, playlist_id) == [m.rating_key for m in movies[:3]]


async def test_add_and_remove_by_name(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    tracks = simulator.library.tracks()
    created = await call(
        hass, "playlist_create", name="Plexus test mix", items=[tracks[0].rating_key]
    )
    playlist_id = str(created["playlist_id"])
    assert created["playlist_type"] == "audio"

    added = await call(
        hass,
        "playlist_add",
        playlist="plexus TEST mix",
        items=[tracks[1].rating_key, tracks[2].rating_key],
    )
    assert added["item_count"] == 3
    assert keys_of(simulator, playlist_id) == [t.rating_key for t in tracks[:3]]

    removed = await call(
        hass, "playlist_remove", playlist=playlist_id, items=[tracks[1].rating_key]
    )
    assert removed["removed"] == [{"rating_key": tracks[1].rating_key, "title": tracks[1].title}]
    assert removed["item_count"] == 2
    assert keys_of(simulator, playlist_id) == [tracks[0].rating_key, tracks[2].rating_key]


async def test_bad_item_changes_nothing(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """One item that cannot be found: a clear error naming it, and the playlist is as it was."""
    movie = simulator.library.movies()[0]
    created = await call(hass, "playlist_create", name="Keep", items=[movie.rating_key])
    playlist_id = str(created["playlist_id"])
    for bad in ("999999999", "imdb://tt0000000", "not an id"):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "playlist_add", playlist="Keep", items=[movie.rating_key, bad])
        assert err.value.translation_key == "bad_playlist_item", bad
        assert err.value.translation_placeholders["item"] == bad
        assert keys_of(simulator, playlist_id) == [movie.rating_key]
    before = set(simulator.library.playlists)
    with pytest.raises(ServiceValidationError):
        await call(hass, "playlist_create", name="Never", items=["999999999"])
    assert set(simulator.library.playlists) == before


async def test_unknown_playlist_and_item_not_in_it(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    movies = simulator.library.movies()
    await call(hass, "playlist_create", name="Short", items=[movies[0].rating_key])
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "playlist_add", playlist="Shrot", items=[movies[1].rating_key])
    assert err.value.translation_key == "unknown_playlist"
    assert "Short" in err.value.translation_placeholders["error"]
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "playlist_remove", playlist="Short", items=[movies[1].rating_key])
    assert err.value.translation_key == "not_in_playlist"
    assert movies[1].title in err.value.translation_placeholders["items"]


async def test_empty_input_is_refused_by_the_schema(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    for data in (
        {"name": "x", "items": []},
        {"name": "", "items": ["1"]},
        {"items": ["1"]},
        {"name": "x", "items": [str(k) for k in range(1, 502)]},  # more than 500 items
        {"name": "x", "items": ["1" * 1001]},  # an item too long to be an id or a search
    ):
        with pytest.raises(vol.Invalid):
            await call(hass, "playlist_create", **data)


async def test_server_down_is_a_playlist_error(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    simulator.set_error(503)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "playlist_add", playlist="anything", items=["1"])
    assert err.value.translation_key == "playlist_failed"
    assert simulator.token not in str(err.value.translation_placeholders)


async def test_unreadable_answers_at_each_step_are_playlist_errors(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A proxy's login page instead of the server's answer, while an item is looked up, the
    playlist is created, items are added or removed: a translated error naming the server."""
    movies = simulator.library.movies()
    login = b"<html><body>Sign in</body></html>"

    async def refused(service: str, path: str, **data: object) -> None:
        simulator.set_answer(path, login)
        try:
            with pytest.raises(HomeAssistantError) as err:
                await call(hass, service, **data)
        finally:
            simulator.set_answer(path, None)
        assert not isinstance(err.value, ServiceValidationError)
        assert err.value.translation_key == "playlist_failed", path
        assert err.value.translation_placeholders["server"] == loaded.title
        assert simulator.token not in str(err.value.translation_placeholders)

    before = set(simulator.library.playlists)
    await refused(
        "playlist_create",
        f"/library/metadata/{movies[0].rating_key}",
        name="Never",
        items=[movies[0].rating_key],
    )
    await refused("playlist_create", "/playlists", name="Never", items=[movies[0].rating_key])
    assert set(simulator.library.playlists) == before

    created = await call(hass, "playlist_create", name="Ours", items=[movies[0].rating_key])
    playlist_id = str(created["playlist_id"])
    await refused(
        "playlist_add",
        f"/playlists/{playlist_id}/items",
        playlist=playlist_id,
        items=[movies[1].rating_key],
    )
    assert keys_of(simulator, playlist_id) == [movies[0].rating_key]
    await refused(
        "playlist_remove",
        f"/playlists/{playlist_id}/items",
        playlist=playlist_id,
        items=[movies[0].rating_key],
    )
    assert keys_of(simulator, playlist_id) == [movies[0].rating_key]


def playlist_requests(sim: PlexSimulator, since: int) -> list[str]:
    """Methods of the requests that would change a playlist, sent since `since`."""
    return [m for m, p, _q in sim.requests[since:] if p.startswith("/playlists") and m != "GET"]


async def test_items_of_another_kind_are_refused_by_name(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A movie and a track in one new playlist, a movie in an explicit audio playlist, a track
    added to a video playlist: refused naming the misfits, before anything is sent."""
    movie = simulator.library.movies()[0]
    track = simulator.library.tracks()[0]
    created = await call(hass, "playlist_create", name="Films", items=[movie.rating_key])
    playlist_id = str(created["playlist_id"])
    before, start = set(simulator.library.playlists), len(simulator.requests)
    attempts = (
        ("playlist_create", {"name": "Mix", "items": [movie.rating_key, track.rating_key]}),
        (
            "playlist_create",
            {"name": "Tunes", "items": [movie.rating_key], "playlist_type": "audio"},
        ),
        ("playlist_add", {"playlist": "Films", "items": [track.rating_key]}),
    )
    for service, data in attempts:
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, service, **data)
        assert err.value.translation_key == "playlist_wrong_kind", data
    assert err.value.translation_placeholders == {
        "playlist_type": "video",
        "items": f"{track.title} (track)",
    }
    assert set(simulator.library.playlists) == before
    assert keys_of(simulator, playlist_id) == [movie.rating_key]
    assert playlist_requests(simulator, start) == []


async def test_a_smart_playlist_is_not_edited(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Adding to and removing from a smart playlist: refused by name, nothing sent."""
    movies = simulator.library.movies()
    smart = simulator.library.add_playlist("Recently added", [movies[0].rating_key], smart=True)
    start = len(simulator.requests)
    for service in ("playlist_add", "playlist_remove"):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, service, playlist="Recently added", items=[movies[0].rating_key])
        assert err.value.translation_key == "smart_playlist"
        assert err.value.translation_placeholders == {"playlist": "Recently added"}
    assert keys_of(simulator, smart.rating_key) == [movies[0].rating_key]
    assert playlist_requests(simulator, start) == []
