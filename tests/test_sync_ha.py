"""Sync-play groups in Home Assistant: a local group (no MQTT) through the services, entities,
events and the Repairs issue; an MQTT group through HA's MQTT integration (mqtt_mock)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.syncplay import MediaRef
from tests.conftest import wait_until
from tests.plex_simulator import LibraryConfig, PlexSimulator
from tests.sync_group import MEMBERS, group_entry, setup_group


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    simulator = PlexSimulator(
        token="sim-token", clients=3, seed=7, latency_ms=(40, 120), library=LibraryConfig(movies=30)
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_local_group_plays_pauses_stops_together(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    """Without MQTT the group works in this home: both players start together; Repairs says so."""
    entry = group_entry(sim, follow=True)
    events: list[Event[dict[str, Any]]] = []
    hass.bus.async_listen("plexus_sync_started", events.append)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    assert set(group.members) == set(MEMBERS)
    assert group.engine.config.drift_threshold_ms == 300
    assert group.engine.config.follow is True
    assert group.engine.config.wait_for_buffering is True
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, f"mqtt_missing_{group.subentry_id}") is not None
    assert (state := hass.states.get("sensor.movie_night_state")) is not None
    assert state.state == "idle"
    assert (members := hass.states.get("sensor.movie_night_members")) is not None
    assert members.state == "2"

    movie = sim.library.movies()[2]
    await hass.services.async_call(
        DOMAIN, "sync_play", {"group": "movie night", "media": str(movie.id)}, blocking=True
    )
    clients = [c for c in sim.clients.values() if c.name in ("Living Room TV", "Office HTPC")]

    def synced_start(client: Any) -> Any:
        # Phase 1 loads, pauses and seeks; phase 2 is the "play" at the group's instant.
        starts = [r for r in client.record if r.command == "play" and r.state == "playing"]
        return starts[-1] if starts else None

    await wait_until(lambda: all(synced_start(c) for c in clients), 15)
    starts = [synced_start(c) for c in clients]
    assert all(start.rating_key == str(movie.id) for start in starts)
    skew_ms = abs(starts[0].wall_time - starts[1].wall_time) * 1000
    assert skew_ms < 150, skew_ms  # generous: this asserts alignment, the benchmark measures it
    await wait_until(
        lambda: getattr(hass.states.get("sensor.movie_night_state"), "state", None) == "playing",
        10,
    )

    await hass.services.async_call(DOMAIN, "sync_pause", {"entity_id": [MEMBERS[0]]}, blocking=True)
    for client in clients:
        await client.wait_for_state("paused", timeout=10)
    await hass.services.async_call(DOMAIN, "sync_stop", {"group": "Movie Night"}, blocking=True)
    for client in clients:
        await client.wait_for_state("stopped", timeout=10)
    assert hass.states.get("binary_sensor.movie_night_in_sync") is not None
    await asyncio.sleep(0)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_deleted_group_is_left_at_once(hass: HomeAssistant, sim: PlexSimulator) -> None:
    """Deleting a group (its subentry) stops its engine and clears its Repairs notice right
    away; before, the engine kept controlling the members until HA restarted."""
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    issue_id = f"mqtt_missing_{group.subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    stopped: list[bool] = []
    real_shutdown = group.engine.shutdown

    async def shutdown() -> None:
        stopped.append(True)
        await real_shutdown()

    group.engine.shutdown = shutdown  # type: ignore[method-assign]
    assert hass.config_entries.async_remove_subentry(entry, group.subentry_id)
    await hass.async_block_till_done()
    assert stopped == [True]
    assert entry.runtime_data.sync_groups == {}
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get("sensor.movie_night_state") is None
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "sync_play", {"group": "Movie Night", "media": "1"}, blocking=True
        )
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_service_errors(hass: HomeAssistant, sim: PlexSimulator) -> None:
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "sync_pause", {"group": "Nope"}, blocking=True)
    assert err.value.translation_key == "unknown_group"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "sync_pause",
            {"group": "Movie Night", "entity_id": ["media_player.bedroom_roku"]},
            blocking=True,
        )
    assert err.value.translation_key == "not_a_member"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "sync_stop", {}, blocking=True)
    assert err.value.translation_key == "group_required"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "sync_play", {"group": "Movie Night"}, blocking=True)
    assert err.value.translation_key == "nothing_playing"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_play", {"group": "Movie Night", "media": "999999"}, blocking=True
        )
    assert err.value.translation_key == "nothing_to_play"
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("expected_lingering_timers", [True])  # MQTT's own periodic timer
async def test_mqtt_group_uses_ha_mqtt(
    hass: HomeAssistant, sim: PlexSimulator, mqtt_mock: Any
) -> None:
    """With MQTT set up the group talks over it (signed messages on its topic); no Repairs issue."""
    entry = group_entry(sim, topic="home/sync/mn", follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    assert group.uses_mqtt
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"mqtt_missing_{group.subentry_id}") is None
    await wait_until(lambda: mqtt_mock.async_publish.call_count > 0)
    topics = {call.args[0] for call in mqtt_mock.async_publish.call_args_list}
    assert any(t.startswith("home/sync/mn/") for t in topics)
    payload = mqtt_mock.async_publish.call_args_list[0].args[1]
    assert b"sig" in payload or "sig" in str(payload)
    assert "s" * 32 not in str(payload)  # the secret itself never travels
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_members_find_the_item_in_the_catalog(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    """Another home's item is found by GUID: in the catalog once imported, else on the server."""
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    assert group.resolve_media is not None
    movie = next(
        m
        for m in sim.library.movies()
        if m.guid.startswith("plex://") and any(g.startswith("imdb://") for g in m.ext_guids)
    )
    imdb = next(g for g in movie.ext_guids if g.startswith("imdb://"))

    def guid_searches() -> int:
        return sum(1 for _m, _path, query in sim.requests if "guid" in query)

    # The other home's rating key means nothing here; its own plex:// id is unknown here.
    remote = MediaRef(
        "999999", guid="plex://movie/0123456789abcdef", server="another-server", guids=(imdb,)
    )
    assert MediaRef.from_dict(remote.as_dict()) == remote  # what travels between homes
    # A real server's guid= filter matches only an item's own GUID: before the catalog knows the
    # item, its imdb:// id finds nothing on the server.
    before = guid_searches()
    # Before the import only the server can answer, and a real server matches `guid=` only against
    # an item's own (plex://) GUID: asked, it finds nothing; the IMDb id waits for the catalog.
    assert await group.resolve_media(remote) is None
    assert guid_searches() > before
    # The item's own plex:// GUID is found on the server.
    assert await group.resolve_media(
        MediaRef("999999", guid=movie.guid, server="another-server")
    ) == (movie.rating_key)
    await hass.services.async_call(
        DOMAIN, "import_library", {"mode": "full"}, blocking=True, return_response=True
    )
    before = guid_searches()
    assert await group.resolve_media(remote) == movie.rating_key  # from the catalog
    assert guid_searches() == before
    # By title and year when no GUID matches; nothing when nothing matches.
    by_title = MediaRef("999999", server="another-server", title=movie.title, year=movie.year)
    assert await group.resolve_media(by_title) == movie.rating_key
    assert await group.resolve_media(MediaRef("999999", server="another-server")) is None
    # This server's own rating key is used as it is.
    assert await group.resolve_media(MediaRef("42", server=sim.machine_identifier)) == "42"

    # sync_play without media: what a member plays now, described by its GUIDs.
    client = sim.client("Living Room TV")
    await client.local_start(movie.rating_key, offset_ms=90_000)
    await wait_until(lambda: group.members[MEMBERS[0]].snapshot.state == "playing", 10)
    events: list[Event[dict[str, Any]]] = []
    hass.bus.async_listen("plexus_sync_preparing", events.append)
    await hass.services.async_call(DOMAIN, "sync_play", {"group": "Movie Night"}, blocking=True)
    assert events
    assert events[0].data["guid"] == movie.guid
    assert events[0].data["title"] == movie.title
    assert imdb in events[0].data["guids"]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_while_the_catalog_is_down_members_find_the_item_on_the_server(
    hass: HomeAssistant, sim: PlexSimulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog database cannot be opened: another home's item is still found by its title
    and year through this server's search, and an unknown title finds nothing."""
    # A folder where the SQLite file should be: the catalog cannot open it.
    monkeypatch.setattr("custom_components.plexus.catalog_manager.CATALOG_FILE", str(tmp_path))
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    assert entry.runtime_data.catalog.catalog is None
    group = next(iter(entry.runtime_data.sync_groups.values()))
    assert group.resolve_media is not None
    movie = sim.library.movies()[3]
    by_title = MediaRef("999999", server="another-server", title=movie.title, year=movie.year)
    assert await group.resolve_media(by_title) == movie.rating_key
    unknown = MediaRef("999999", server="another-server", title="No Such Film Anywhere", year=1901)
    assert await group.resolve_media(unknown) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_member_already_playing_shows_so_when_the_group_starts(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    """A TV playing before Home Assistant (re)loads the group: the group knows at once what it
    plays, so `sync_play` without media takes that item and position right away."""
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    movie = sim.library.movies()[4]
    client = sim.client("Living Room TV")
    await client.local_start(movie.rating_key, offset_ms=120_000)
    coordinator = entry.runtime_data.coordinator
    await wait_until(
        lambda: any(
            live.rating_key == movie.rating_key for live in coordinator.state.live.values()
        ),
        10,
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    group = next(iter(entry.runtime_data.sync_groups.values()))
    snapshot = group.members[MEMBERS[0]].snapshot
    assert snapshot.state == "playing"
    assert snapshot.media_key == movie.rating_key
    assert snapshot.position_ms >= 120_000
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_sync_play_of_an_item_the_server_cannot_describe_uses_its_key(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    """`sync_play` without media while the server answers the item's metadata with a page that
    is no Plex answer (a proxy's): the group still prepares that item, known by its key alone."""
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    movie = sim.library.movies()[5]
    client = sim.client("Living Room TV")
    await client.local_start(movie.rating_key, offset_ms=30_000)
    await wait_until(lambda: group.members[MEMBERS[0]].snapshot.state == "playing", 10)
    sim.set_answer(f"/library/metadata/{movie.rating_key}", b"<html/>")
    events: list[Event[dict[str, Any]]] = []
    hass.bus.async_listen("plexus_sync_preparing", events.append)
    await hass.services.async_call(DOMAIN, "sync_play", {"group": "Movie Night"}, blocking=True)
    await wait_until(lambda: bool(events), 10)
    assert events[0].data["rating_key"] == movie.rating_key
    assert events[0].data["server"] == sim.machine_identifier
    assert not events[0].data.get("title")
    assert not events[0].data.get("guid")
    sim.set_answer(f"/library/metadata/{movie.rating_key}", None)
    assert await hass.config_entries.async_unload(entry.entry_id)
