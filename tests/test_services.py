"""plexus.refresh_library and plexus.scan_clients (and the Scan clients button)."""

import asyncio

from aiohttp import ClientTimeout
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.catalog import GuidRef
from custom_components.plexus.const import DOMAIN
from custom_components.plexus.services import format_guid_ref
from tests.conftest import entry_data
from tests.plex_simulator import PlexSimulator
from tests.sync_group import group_entry, setup_group


def refreshes(sim: PlexSimulator) -> list[str]:
    return [path for _method, path, _q in sim.requests if path.endswith("/refresh")]


async def test_refresh_one_library_and_all(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    await hass.services.async_call(
        DOMAIN, "refresh_library", {"library_name": "movies"}, blocking=True
    )
    assert refreshes(simulator) == ["/library/sections/1/refresh"]
    await hass.services.async_call(
        DOMAIN, "refresh_library", {"config_entry_id": loaded.entry_id}, blocking=True
    )
    assert len(refreshes(simulator)) == 1 + len(loaded.runtime_data.coordinator.data.sections)


async def test_refresh_unknown_library_lists_the_real_ones(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "refresh_library", {"library_name": "Cartoons"}, blocking=True
        )
    assert err.value.translation_key == "unknown_library"
    assert "Movies" in err.value.translation_placeholders["libraries"]
    assert refreshes(simulator) == []


async def test_refresh_while_server_down(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    simulator.set_error(503)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "refresh_library", {}, blocking=True)
    assert err.value.translation_key == "refresh_failed"
    assert simulator.token not in str(err.value.translation_placeholders)


async def test_entry_selection_errors(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """No server, an unknown entry id, and two servers without a choice are clear errors."""
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "scan_clients", {}, blocking=True)
    assert err.value.translation_key == "no_server"
    first = MockConfigEntry(
        domain=DOMAIN, unique_id=simulator.machine_identifier, data=entry_data(simulator)
    )
    first.add_to_hass(hass)
    assert await hass.config_entries.async_setup(first.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "scan_clients", {"config_entry_id": "nope"}, blocking=True
        )
    # An id that names no Plexus entry says so (not "no server is set up").
    assert err.value.translation_key == "not_a_server_entry"
    other = PlexSimulator(token="sim-token", clients=1, seed=42)
    await other.start()
    try:
        second = MockConfigEntry(
            domain=DOMAIN, unique_id=other.machine_identifier, data=entry_data(other)
        )
        second.add_to_hass(hass)
        assert await hass.config_entries.async_setup(second.entry_id)
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(DOMAIN, "scan_clients", {}, blocking=True)
        assert err.value.translation_key == "server_required"
        await hass.services.async_call(
            DOMAIN, "scan_clients", {"config_entry_id": second.entry_id}, blocking=True
        )
        await hass.config_entries.async_unload(second.entry_id)
        # The unloaded server named by id: "not loaded", not "no such server".
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN, "scan_clients", {"config_entry_id": second.entry_id}, blocking=True
            )
        assert err.value.translation_key == "entry_not_loaded"
        assert err.value.translation_placeholders == {"entry_id": second.entry_id}
    finally:
        await other.stop()


async def test_scan_clients_service_and_button(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A new client shows up at once after a scan, by service or by button."""
    first = simulator.add_client("Kitchen Display")
    await hass.services.async_call(DOMAIN, "scan_clients", {}, blocking=True)
    await hass.async_block_till_done()
    assert hass.states.get("media_player.kitchen_display").state == "idle"
    simulator.add_client("Garage TV")
    await hass.services.async_call(
        "button", "press", {ATTR_ENTITY_ID: "button.plexus_simulator_scan_clients"}, blocking=True
    )
    await hass.async_block_till_done()
    assert hass.states.get("media_player.garage_tv").state == "idle"
    assert first.machine_identifier in loaded.runtime_data.coordinator.state.known_clients


@pytest.mark.parametrize("failure", ["slow", "error"])
async def test_scan_clients_raises_when_the_refresh_failed(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """A server slower than the request timeout (or answering 503) is a translated error naming
    the server, not a silent success; the scan works again once the server answers."""
    coordinator = loaded.runtime_data.coordinator
    if failure == "slow":
        monkeypatch.setattr(coordinator.api, "_timeout", ClientTimeout(total=0.3))
        simulator.set_slow(0.6)
    else:
        simulator.set_error(503)
    simulator.add_client("Kitchen Display")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "scan_clients", {}, blocking=True)
    assert err.value.translation_key == "scan_failed"
    assert not isinstance(err.value, ServiceValidationError)
    placeholders = err.value.translation_placeholders or {}
    assert placeholders["server"] == loaded.title
    assert simulator.token not in str(err.value)
    assert hass.states.get("media_player.kitchen_display") is None

    simulator.set_slow(0)
    simulator.set_error(None)
    await asyncio.sleep(0.7)  # the simulator's slow answers end
    await hass.services.async_call(DOMAIN, "scan_clients", {}, blocking=True)
    await hass.async_block_till_done()
    assert hass.states.get("media_player.kitchen_display") is not None


# ------------------------------------------------------------------ sync-play services


def test_legacy_tv_guids_keep_their_season_and_episode() -> None:
    """Search results show legacy TV GUIDs as the old agents wrote them (thetvdb://id/s/e)."""
    assert format_guid_ref(GuidRef("tvdb", "81189", 2, 5)) == "tvdb://81189/2/5"
    assert format_guid_ref(GuidRef("tvdb", "81189", 2)) == "tvdb://81189/2"
    assert format_guid_ref(GuidRef("imdb", "tt0903747")) == "imdb://tt0903747"


async def _sync_setup(hass: HomeAssistant, sim: PlexSimulator) -> MockConfigEntry:
    entry = group_entry(sim, follow=True)
    await setup_group(hass, entry)
    return entry


async def test_sync_service_for_a_player_in_no_group(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """Only players given, none of them in a group: the error names the player."""
    entry = await _sync_setup(hass, simulator)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_pause", {"entity_id": ["media_player.bedroom_roku"]}, blocking=True
        )
    assert err.value.translation_key == "not_a_member"
    assert err.value.translation_placeholders == {
        "player": "media_player.bedroom_roku",
        "group": "-",
    }
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_sync_play_while_the_server_fails(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """The server answers 500 while the media is looked up: a translated error, nothing starts."""
    entry = await _sync_setup(hass, simulator)
    movie = simulator.library.movies()[0]
    simulator.set_error(500)
    try:
        with pytest.raises(HomeAssistantError) as err:
            await hass.services.async_call(
                DOMAIN,
                "sync_play",
                {"group": "Movie Night", "media": movie.rating_key},
                blocking=True,
            )
    finally:
        simulator.set_error(None)
    assert err.value.translation_key == "sync_failed"
    assert err.value.translation_placeholders["group"] == "Movie Night"
    assert simulator.token not in str(err.value)
    assert all(not c.commands for c in simulator.clients.values())
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_sync_play_reports_the_member_whose_player_vanished(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """One member's player went offline: the other starts, the error names the one that failed."""
    entry = await _sync_setup(hass, simulator)
    tv = simulator.client("Living Room TV")
    office = simulator.client("Office HTPC")
    movie = simulator.library.movies()[1]
    tv.online = False
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_play", {"group": "Movie Night", "media": movie.rating_key}, blocking=True
        )
    assert err.value.translation_key == "members_failed"
    members = err.value.translation_placeholders["members"]
    assert "media_player.living_room_tv" in members
    assert "media_player.office_htpc" not in members
    await office.wait_for_state("playing", timeout=10, rating_key=movie.rating_key)
    assert tv.state == "stopped"
    assert await hass.config_entries.async_unload(entry.entry_id)
