"""Plex clients as media players, driven through HA's services against the simulator.

Every control test checks the effect in the simulated client's own record (the instant the command
took effect on the "device"), not just that a request was sent.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.components.media_player import (
    ATTR_MEDIA_CONTENT_ID,
    ATTR_MEDIA_CONTENT_TYPE,
    ATTR_MEDIA_SEEK_POSITION,
    ATTR_MEDIA_VOLUME_LEVEL,
    ATTR_MEDIA_VOLUME_MUTED,
    DOMAIN as MP_DOMAIN,
    SERVICE_PLAY_MEDIA,
    MediaPlayerEntityFeature,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_MEDIA_NEXT_TRACK,
    SERVICE_MEDIA_PAUSE,
    SERVICE_MEDIA_PLAY,
    SERVICE_MEDIA_PREVIOUS_TRACK,
    SERVICE_MEDIA_SEEK,
    SERVICE_MEDIA_STOP,
    SERVICE_VOLUME_MUTE,
    SERVICE_VOLUME_SET,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceNotSupported,
    ServiceValidationError,
)
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.const import CONF_STALE_MINUTES, DOMAIN
from custom_components.plexus.ids import signal_notification
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import LibraryConfig, PlexSimulator, PlexTvSimulator, SimulatedClient


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    """A simulator whose clients react quickly (20-60 ms) so control tests stay fast."""
    simulator = PlexSimulator(
        token="sim-token",
        clients=3,
        seed=11,
        latency_ms=(20, 60),
        library=LibraryConfig(
            movies=40, shows=4, seasons_per_show=2, episodes_per_season=4, artists=2
        ),
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def entry(hass: HomeAssistant, sim: PlexSimulator) -> MockConfigEntry:
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim),
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: config_entry.runtime_data.coordinator.listener.connected)
    return config_entry


def player_entity(hass: HomeAssistant, sim: PlexSimulator, client: SimulatedClient) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        MP_DOMAIN, DOMAIN, f"{sim.machine_identifier}-player-{client.machine_identifier}"
    )
    assert entity_id is not None
    return entity_id


def first_client(sim: PlexSimulator) -> SimulatedClient:
    return next(iter(sim.clients.values()))


async def call(hass: HomeAssistant, service: str, entity_id: str, **data: Any) -> None:
    await hass.services.async_call(
        MP_DOMAIN, service, {ATTR_ENTITY_ID: entity_id, **data}, blocking=True
    )


async def test_players_and_devices(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """One player per client, on its own device linked to the server's; idle clients are idle."""
    devices = dr.async_get(hass)
    server = devices.async_get_device_by_identifier(
        (DOMAIN, sim.machine_identifier), entry.entry_id
    )
    assert server is not None
    for client in sim.clients.values():
        entity_id = player_entity(hass, sim, client)
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == "idle"
        assert state.name == client.name
        device = devices.async_get_device_by_identifier(
            (DOMAIN, f"{sim.machine_identifier}-{client.machine_identifier}"), entry.entry_id
        )
        assert device is not None
        assert device.via_device_id == server.id
        features = state.attributes["supported_features"]
        assert features & MediaPlayerEntityFeature.PLAY_MEDIA
        assert features & MediaPlayerEntityFeature.SEARCH_MEDIA


async def test_new_client_appears(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A client that shows up later gets its player without a reload."""
    client = sim.add_client("Bedroom TV")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(player_entity(hass, sim, client)).state == "idle"


async def test_control_paths_take_effect(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """play_media, pause, play, seek, next, previous, volume, mute and stop reach the client."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    movie = sim.library.movies()[3]

    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: str(movie.id), ATTR_MEDIA_CONTENT_TYPE: "movie"},
    )
    change = await client.wait_for_state("playing", rating_key=movie.id)
    assert change.rating_key == str(movie.id)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    state = hass.states.get(entity_id)
    assert state.attributes["media_title"] == movie.title
    assert state.attributes["media_content_id"] == str(movie.id)

    await call(hass, SERVICE_MEDIA_PAUSE, entity_id)
    await client.wait_for_state("paused")
    await wait_until(lambda: hass.states.get(entity_id).state == "paused")

    await call(hass, SERVICE_MEDIA_SEEK, entity_id, **{ATTR_MEDIA_SEEK_POSITION: 600})
    await wait_until(lambda: client.position_ms == 600_000)
    await wait_until(lambda: hass.states.get(entity_id).attributes.get("media_position") == 600)

    await call(hass, SERVICE_MEDIA_PLAY, entity_id)
    await client.wait_for_state("playing")
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")

    await call(hass, SERVICE_VOLUME_SET, entity_id, **{ATTR_MEDIA_VOLUME_LEVEL: 0.4})
    await wait_until(lambda: client.volume == 40)
    assert hass.states.get(entity_id).attributes["volume_level"] == 0.4
    await call(hass, SERVICE_VOLUME_MUTE, entity_id, **{ATTR_MEDIA_VOLUME_MUTED: True})
    await wait_until(lambda: client.volume == 0)
    assert hass.states.get(entity_id).attributes["is_volume_muted"] is True
    await call(hass, SERVICE_VOLUME_MUTE, entity_id, **{ATTR_MEDIA_VOLUME_MUTED: False})
    await wait_until(lambda: client.volume == 40)

    await call(hass, SERVICE_MEDIA_NEXT_TRACK, entity_id)
    await call(hass, SERVICE_MEDIA_PREVIOUS_TRACK, entity_id)
    commands = [name for name, _params in client.commands]
    await wait_until(lambda: "skipPrevious" in [n for n, _ in client.commands])
    assert "skipNext" in [n for n, _ in client.commands] or "skipNext" in commands

    await call(hass, SERVICE_MEDIA_STOP, entity_id)
    await client.wait_for_state("stopped")
    await wait_until(lambda: hass.states.get(entity_id).state == "idle")


async def test_commands_name_the_kind_of_media_playing(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A player that acts only on commands naming the kind of media it plays (Plex for Roku)
    pauses and stops a track started on the device itself and a movie started from Home
    Assistant. Commands were sent without `type`, so such a player ignored them all."""
    client = first_client(sim)
    client.needs_type = True
    entity_id = player_entity(hass, sim, client)
    coordinator = entry.runtime_data.coordinator

    track = sim.library.tracks()[0]
    await client.local_start(track.rating_key)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    await coordinator.async_refresh()  # the session, and so the kind of media, is known
    await call(hass, SERVICE_MEDIA_PAUSE, entity_id)
    await client.wait_for_state("paused")
    await call(hass, SERVICE_MEDIA_STOP, entity_id)
    await client.wait_for_state("stopped")

    movie = sim.library.movies()[2]
    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: str(movie.id), ATTR_MEDIA_CONTENT_TYPE: "movie"},
    )
    await client.wait_for_state("playing", rating_key=movie.id)
    await call(hass, SERVICE_MEDIA_PAUSE, entity_id)
    await client.wait_for_state("paused")
    assert {params.get("type") for _, params in client.commands} == {"music", "video"}


async def test_position_is_live(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """While playing, position updates arrive with the time they were valid; a seek on the
    device itself (its own remote) shows up without waiting for a poll."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    movie = sim.library.movies()[0]
    await client.local_start(movie.id, offset_ms=120_000)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    first = hass.states.get(entity_id).attributes
    assert first["media_position"] >= 120
    assert first["media_duration"] == movie.duration // 1000
    await client.local_seek(3_000_000)
    await wait_until(lambda: hass.states.get(entity_id).attributes["media_position"] >= 3000)
    attrs = hass.states.get(entity_id).attributes
    assert attrs["media_position_updated_at"] > first["media_position_updated_at"]
    assert attrs["user"]
    assert attrs["decision"] == "direct_play"
    assert 0 <= attrs["progress"] <= 100


async def test_client_without_remote_control(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A client that advertises no playback control offers no controls and says why."""
    client = sim.add_client("Smart TV", capabilities="timeline")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    entity_id = player_entity(hass, sim, client)
    assert hass.states.get(entity_id).attributes["supported_features"] == 0
    with pytest.raises(ServiceNotSupported):
        await call(hass, SERVICE_MEDIA_PAUSE, entity_id)
    assert not any(name == "pause" for name, _ in client.commands)


async def test_refused_command_names_client_and_cause(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A client the server cannot reach makes the command fail with a translated error."""
    client = sim.add_client("Old Roku", accepts_control=False)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    entity_id = player_entity(hass, sim, client)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_MEDIA_PAUSE, entity_id)
    assert err.value.translation_key == "command_failed"
    assert err.value.translation_placeholders["client"] == "Old Roku"


async def test_play_media_forms(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """JSON searches (movie with year/offset, episode by season/episode), GUIDs and bad ids."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    movie = sim.library.movies()[5]
    search = {"library_name": "Movies", "title": movie.title, "year": movie.year, "offset": 60}
    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: "plex://" + json.dumps(search), ATTR_MEDIA_CONTENT_TYPE: "movie"},
    )
    change = await client.wait_for_state("playing", rating_key=movie.id)
    assert change.position_ms >= 60_000

    episode = sim.library.episodes()[5]
    season = episode.parent
    assert season is not None
    assert season.parent is not None
    show = season.parent
    search = {
        "library_name": "TV Shows",
        "show_name": show.title,
        "season_number": season.index,
        "episode_number": episode.index,
    }
    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: json.dumps(search), ATTR_MEDIA_CONTENT_TYPE: "episode"},
    )
    await client.wait_for_state("playing", rating_key=episode.id)

    other = sim.library.movies()[7]
    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: other.guid, ATTR_MEDIA_CONTENT_TYPE: "movie"},
    )
    await client.wait_for_state("playing", rating_key=other.id)

    for bad in ("999999", "not an id", "{broken json", '{"library_name": "Nope", "title": "x"}'):
        with pytest.raises(ServiceValidationError):
            await call(
                hass,
                SERVICE_PLAY_MEDIA,
                entity_id,
                **{ATTR_MEDIA_CONTENT_ID: bad, ATTR_MEDIA_CONTENT_TYPE: "movie"},
            )


async def test_search_media_ranking(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """Exact title first; typos, missing articles and years; media class filters."""
    sim.library.add_movie("The Matrix", year=1999)
    sim.library.add_movie("The Matrix Reloaded", year=2003)
    sim.library.add_movie("Dune", year=1984)
    sim.library.add_movie("Dune", year=2021)
    entity_id = next(player_entity(hass, sim, c) for c in sim.clients.values())

    async def search(query: str, classes: list[str] | None = None) -> list[str]:
        data: dict[str, Any] = {ATTR_ENTITY_ID: entity_id, "search_query": query}
        if classes:
            data["media_filter_classes"] = classes
        response = await hass.services.async_call(
            MP_DOMAIN, "search_media", data, blocking=True, return_response=True
        )
        return [item.title for item in response[entity_id].result]

    assert (await search("The Matrix"))[0] == "The Matrix (1999)"
    assert (await search("matrix"))[0] == "The Matrix (1999)"
    assert (await search("the matirx"))[0] == "The Matrix (1999)"
    assert (await search("matrix reloaded"))[0] == "The Matrix Reloaded (2003)"
    assert (await search("Dune 2021"))[0] == "Dune (2021)"
    assert (await search("dune (1984)"))[0] == "Dune (1984)"
    show = sim.library.shows()[0]
    assert (await search(show.title, ["tv_show"]))[0].startswith(show.title)
    assert all("(" in title for title in await search("dune", ["movie"]))


async def test_assist_play_on_client(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """ "play <title> on <client>" through the conversation agent starts it on that client."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    await hass.async_block_till_done()
    matrix = sim.library.add_movie("The Mattress Affair", year=2011)
    client = list(sim.clients.values())[1]
    entity_id = player_entity(hass, sim, client)
    async_expose_entity(hass, "conversation", entity_id, True)
    result = await hass.services.async_call(
        "conversation",
        "process",
        {"text": f"play the mattress affair on the {client.name.lower()}"},
        blocking=True,
        return_response=True,
    )
    assert result["response"]["response_type"] == "action_done", result
    change = await client.wait_for_state("playing")
    assert change.rating_key == str(matrix.id)


async def test_outage_makes_players_unavailable_and_back(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """Players follow the server: unavailable while it is down, idle again after."""
    entity_id = player_entity(hass, sim, first_client(sim))
    await sim.go_offline()
    await wait_until(lambda: hass.states.get(entity_id).state == STATE_UNAVAILABLE)
    await sim.go_online()
    await entry.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: hass.states.get(entity_id).state == "idle")


async def test_stale_client_removed(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A client gone longer than the configured time loses its player and device."""
    hass.config_entries.async_update_entry(entry, options={CONF_STALE_MINUTES: 30})
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    coordinator = entry.runtime_data.coordinator
    sim.remove_client(client.machine_identifier)
    await coordinator.async_refresh()
    assert hass.states.get(entity_id).state == "off"  # gone, but not for long yet
    freezer.tick(timedelta(minutes=31))
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{sim.machine_identifier}-{client.machine_identifier}"), entry.entry_id
    )
    assert device is None
    assert er.async_get(hass).async_get(entity_id) is None
    # Moving the clock 31 min also fired the catalog's schedules; unloading stops those imports.
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_user_deletes_client_device(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A client the server no longer lists can be deleted; a listed one and the server can't."""
    assert await async_setup_component(hass, "config", {})
    devices = dr.async_get(hass)
    listed, gone = list(sim.clients.values())[:2]
    sim.remove_client(gone.machine_identifier)
    await entry.runtime_data.coordinator.async_refresh()
    ws = await hass_ws_client(hass)

    async def remove(identifier: str) -> bool:
        device = devices.async_get_device_by_identifier((DOMAIN, identifier), entry.entry_id)
        assert device is not None
        await ws.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry.entry_id,
                "device_id": device.id,
            }
        )
        return bool((await ws.receive_json())["success"])

    assert not await remove(sim.machine_identifier)
    assert not await remove(f"{sim.machine_identifier}-{listed.machine_identifier}")
    assert await remove(f"{sim.machine_identifier}-{gone.machine_identifier}")
    assert gone.machine_identifier not in entry.runtime_data.coordinator.state.known_clients


async def test_plex_tv_players_appear_without_controls(
    hass: HomeAssistant, sim: PlexSimulator, plex_tv: PlexTvSimulator
) -> None:
    """Signed in with plex.tv: the account's online players appear even when the server does not
    list them; plex.tv does not say what they accept, so they offer no controls and are off."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sim.machine_identifier,
        data=entry_data(sim, plex_tv_token="plex-tv-token"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entity_id = er.async_get(hass).async_get_entity_id(
        MP_DOMAIN, DOMAIN, f"{sim.machine_identifier}-player-client_id"
    )
    assert entity_id is not None  # "Plex HTPC", the recorded resource with presence="1"
    state = hass.states.get(entity_id)
    assert state.state == "off"
    assert state.attributes["supported_features"] == 0
    assert state.name == "Plex HTPC"
    # Players plex.tv reports offline (presence="0") are not added.
    assert (
        er.async_get(hass).async_get_entity_id(
            MP_DOMAIN, DOMAIN, f"{sim.machine_identifier}-player-1234567890-com-plexapp-android"
        )
        is None
    )
    (request,) = plex_tv.requests
    assert request.headers["X-Plex-Token"] == "plex-tv-token"


# --- the entity set (snapshot) -----------------------------------------------------------------


async def test_all_entities(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One player per client, registry entries and idle states."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim),
    )
    config_entry.add_to_hass(hass)
    with patch("custom_components.plexus.PLATFORMS", [Platform.MEDIA_PLAYER]):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def play(hass: HomeAssistant, entity_id: str, media_id: str, media_type: str = "") -> None:
    await call(
        hass,
        SERVICE_PLAY_MEDIA,
        entity_id,
        **{ATTR_MEDIA_CONTENT_ID: media_id, ATTR_MEDIA_CONTENT_TYPE: media_type or "video"},
    )


async def test_playlist_plays_from_browser_by_name_and_by_key(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A playlist is queued from the playlist itself (`playlistID=`) and its first item plays:
    picked in the media browser, by name (the README's example) and by rating key."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    road_trip = next(p for p in sim.library.playlists.values() if p.title == "Road Trip")
    movie_night = next(p for p in sim.library.playlists.values() if p.title == "Movie Night")
    sid = sim.machine_identifier
    for media_id, playlist in (
        (f"plexus://{sid}/playlist/{movie_night.rating_key}", movie_night),
        ('{"playlist_name": "Road trip"}', road_trip),
        (movie_night.rating_key, movie_night),
    ):
        await play(hass, entity_id, media_id, "playlist")
        await client.wait_for_state("playing", rating_key=playlist.items[0])
        assert client.play_queue is not None
        assert [key for _, key in client.play_queue.items] == [str(i) for i in playlist.items]
        assert client.commands[-1][1]["type"] == (
            "music" if playlist.playlist_type == "audio" else "video"
        )
    queue_posts = [r for r in sim.requests if r[1] == "/playQueues"]
    assert all("playlistID" in query and "uri" not in query for _m, _p, query in queue_posts)


async def test_simulator_answers_playlist_uri_with_400_like_a_real_server(
    sim: PlexSimulator, session: Any
) -> None:
    """`uri=` naming a playlist's metadata is HTTP 400 on a real server; `playlistID=` works."""
    playlist = next(iter(sim.library.playlists.values()))
    uri = (
        f"server://{sim.machine_identifier}/com.plexapp.plugins.library"
        f"/library/metadata/{playlist.rating_key}"
    )
    headers = {"X-Plex-Token": sim.token}
    async with session.post(
        sim.url + "/playQueues", params={"uri": uri, "type": "video"}, headers=headers
    ) as resp:
        assert resp.status == 400
    async with session.post(
        sim.url + "/playQueues",
        params={"playlistID": playlist.rating_key, "type": "video"},
        headers=headers,
    ) as resp:
        assert resp.status == 200


async def test_containers_play_their_leaves(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """A show resumes at its On Deck episode, a season at its first unwatched one, an artist
    at its first track, an album shuffled when asked: always a queue of the leaves."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    lib = sim.library
    show = lib.shows()[1]
    episodes = show.leaves()
    lib.mark_watched(episodes[0].rating_key)
    lib.set_progress(episodes[2].rating_key, 300_000)
    await play(hass, entity_id, show.rating_key, "tvshow")
    change = await client.wait_for_state("playing", rating_key=episodes[2].rating_key)
    assert change.position_ms >= 300_000
    assert client.play_queue is not None
    assert [key for _, key in client.play_queue.items] == [e.rating_key for e in episodes]

    season = lib.shows()[2].children[1]
    lib.mark_watched(season.children[0].rating_key)
    await play(hass, entity_id, f"plexus://{sim.machine_identifier}/item/{season.rating_key}")
    await client.wait_for_state("playing", rating_key=season.children[1].rating_key)

    artist = lib.artists()[0]
    await play(hass, entity_id, artist.rating_key, "artist")
    await client.wait_for_state("playing", rating_key=artist.leaves()[0].rating_key)
    assert client.commands[-1][1]["type"] == "music"

    album = lib.artists()[1].children[0]
    search = {
        "library_name": "Music",
        "artist_name": album.parent.title if album.parent else "",
        "album_name": album.title,
        "shuffle": True,
    }
    await play(hass, entity_id, json.dumps(search), "album")
    tracks = {t.rating_key for t in album.leaves()}
    await client.wait_for(lambda: client.state == "playing" and client.rating_key in tracks)
    assert client.play_queue is not None
    assert client.play_queue.shuffled
    assert {key for _, key in client.play_queue.items} == tracks
    # The session names the leaf that plays, never the container.
    await wait_until(
        lambda: hass.states.get(entity_id).attributes.get("media_content_id") in tracks
    )


async def test_command_without_effect_is_an_error(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that accepts playMedia but starts nothing (Plex in the background) makes
    play_media fail, and Assist does not answer "Playing media"."""
    monkeypatch.setattr("custom_components.plexus.media_player.PLAY_START_TIMEOUT", 1.0)
    client = first_client(sim)
    client.foreground = False
    entity_id = player_entity(hass, sim, client)
    movie = sim.library.add_movie("The Mattress Affair", year=2011)
    with pytest.raises(HomeAssistantError) as err:
        await play(hass, entity_id, movie.rating_key, "movie")
    assert err.value.translation_key == "play_not_started"
    assert err.value.translation_placeholders["client"] == client.name
    assert client.state == "stopped"

    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    await hass.async_block_till_done()
    async_expose_entity(hass, "conversation", entity_id, True)
    result = await hass.services.async_call(
        "conversation",
        "process",
        {"text": f"play the mattress affair on the {client.name.lower()}"},
        blocking=True,
        return_response=True,
    )
    assert result["response"]["response_type"] == "error", result


async def test_external_ids_resolve_through_the_catalog(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """imdb:// / tmdb:// ids are found through the catalog (a real server's `guid=` matches
    only an item's own GUID); before the catalog knows them, nothing is guessed."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    movie = next(
        m
        for m in sim.library.movies()
        if m.guid.startswith("plex://") and any(g.startswith("imdb://") for g in m.ext_guids)
    )
    imdb = next(g for g in movie.ext_guids if g.startswith("imdb://"))
    with pytest.raises(ServiceValidationError):
        await play(hass, entity_id, imdb, "movie")
    await entry.runtime_data.catalog.async_import("full")
    await play(hass, entity_id, imdb, "movie")
    await client.wait_for_state("playing", rating_key=movie.rating_key)
    # plex:// GUIDs still work (the catalog first, the server's own-GUID filter after).
    other = next(m for m in sim.library.movies()[10:] if m.guid.startswith("plex://"))
    await play(hass, entity_id, other.guid, "movie")
    await client.wait_for_state("playing", rating_key=other.rating_key)


async def test_search_service_names_music_fields_as_music(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """`plexus.search` answers a track with artist/album/track and an episode with
    show/season/episode (not music under TV field names)."""
    await entry.runtime_data.catalog.async_import("full")
    track = sim.library.tracks()[3]
    album = track.parent
    assert album is not None
    assert album.parent is not None
    episode = sim.library.episodes()[2]

    async def search(query: str, kind: str) -> dict[str, Any]:
        response = await hass.services.async_call(
            DOMAIN,
            "search",
            {"query": query, "type": [kind]},
            blocking=True,
            return_response=True,
        )
        results = response["results"]
        assert isinstance(results, list)
        return next(r for r in results if r["rating_key"] in (track.rating_key, episode.rating_key))

    found = await search(track.title, "track")
    assert found["artist"] == album.parent.title
    assert found["album"] == album.title
    assert found["track"] == track.index
    assert not {"show", "season", "episode"} & set(found)
    found = await search(episode.title, "episode")
    assert episode.grandparent is not None
    assert found["show"] == episode.grandparent.title
    assert found["episode"] == episode.index
    assert "artist" not in found


async def test_volume_is_unknown_until_set(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """Plex reports no volume: no volume level (not 0, not a made-up 100 %) until Plexus sets
    one; muting an unknown volume says muted without inventing a level."""
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    attrs = hass.states.get(entity_id).attributes
    assert "volume_level" not in attrs
    assert "is_volume_muted" not in attrs
    await call(hass, SERVICE_VOLUME_MUTE, entity_id, **{ATTR_MEDIA_VOLUME_MUTED: True})
    await wait_until(lambda: client.volume == 0)
    attrs = hass.states.get(entity_id).attributes
    assert attrs["is_volume_muted"] is True
    assert "volume_level" not in attrs
    await call(hass, SERVICE_VOLUME_SET, entity_id, **{ATTR_MEDIA_VOLUME_LEVEL: 0.3})
    attrs = hass.states.get(entity_id).attributes
    assert attrs["volume_level"] == 0.3
    assert attrs["is_volume_muted"] is False


async def test_steady_play_writes_no_state_but_a_seek_does(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry
) -> None:
    """While a player plays steadily (a `playing` notification every 0.2 s), its state is not
    rewritten (the frontend extrapolates from media_position_updated_at); a seek on the device
    shows up at once; the extrapolated position stays right."""
    sim.timeline_interval_s = 0.2
    client = first_client(sim)
    entity_id = player_entity(hass, sim, client)
    await client.local_start(sim.library.movies()[0].id, offset_ms=60_000)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    await wait_until(lambda: entity_id in {s.entity_id for s in hass.states.async_all()})
    writes: list[Any] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: writes.append(event) if event.data["entity_id"] == entity_id else None,
    )
    notifications_before = entry.runtime_data.coordinator.notifications
    await asyncio.sleep(3)
    assert entry.runtime_data.coordinator.notifications - notifications_before >= 10
    assert len(writes) <= 1  # at most the session arriving after the start
    attrs = hass.states.get(entity_id).attributes
    extrapolated = (
        attrs["media_position"]
        + (dt_util.utcnow() - attrs["media_position_updated_at"]).total_seconds()
    )
    assert abs(extrapolated - client.position_ms / 1000) < 1.5

    writes.clear()
    await client.local_seek(1_800_000)
    await wait_until(lambda: hass.states.get(entity_id).attributes["media_position"] >= 1800, 2)
    assert len(writes) == 1


async def test_steady_play_does_not_refresh_the_coordinator(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Steady play of a transcoded stream (`playing` and `transcodeSession.update` every 0.2 s)
    reads nothing from the server ("Finished fetching" stays silent); an item added to a
    library (a `timeline` entry "created") does."""
    sim.timeline_interval_s = 0.2
    client = first_client(sim)
    client.stream_decision = "transcode"
    entity_id = player_entity(hass, sim, client)
    await client.local_start(sim.library.movies()[0].id)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    await asyncio.sleep(0.5)  # the refresh for the new session
    caplog.set_level(logging.DEBUG, logger="custom_components.plexus")
    caplog.clear()
    kinds: list[str] = []
    coordinator = entry.runtime_data.coordinator
    async_dispatcher_connect(
        hass,
        signal_notification(coordinator.server_identifier),
        lambda kind, _container: kinds.append(kind),
    )

    def fetches() -> int:
        return sum("Finished fetching" in r.getMessage() for r in caplog.records)

    await asyncio.sleep(3)
    assert kinds.count("transcodeSession.update") >= 10
    assert kinds.count("playing") >= 10
    assert fetches() == 0

    sim.library.add_movie("Brand New", year=2026)
    await wait_until(lambda: fetches() >= 1)
