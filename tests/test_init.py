"""Setting up a server entry: device, sensors, push updates, outage and recovery, unload."""

from datetime import timedelta
import logging

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.plexus.const import DOMAIN
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import PlexSimulator

ACTIVE = "sensor.plexus_simulator_active_streams"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_setup_creates_server_device_and_unloads(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """The entry loads, the server device carries the server's facts, unloading stops push."""
    await _setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, simulator.machine_identifier), config_entry.entry_id
    )
    assert device is not None
    assert device.name == "Plexus Simulator"
    assert device.manufacturer == "Plex"
    assert device.sw_version == "1.41.3.9314-a0bfb8370"
    assert device.configuration_url == f"{simulator.url}/web"
    coordinator = config_entry.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected)
    assert hass.states.get(ACTIVE).state == "0"

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.NOT_LOADED
    assert not coordinator.listener.connected


async def test_setup_retries_when_server_down(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """An unreachable server at start-up is a transient problem (setup retry), not an error."""
    await simulator.go_offline()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_push_update_from_websocket(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """A client starting playback reaches HA through the websocket, not the slow poll."""
    await _setup(hass, config_entry)
    coordinator = config_entry.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected)
    client = next(iter(simulator.clients.values()))
    movie_key = next(iter(simulator.library.movies())).rating_key
    await client.local_start(movie_key)
    await wait_until(lambda: hass.states.get(ACTIVE).state == "1")
    assert coordinator.notifications > 0
    await client.local_stop()
    await wait_until(lambda: hass.states.get(ACTIVE).state == "0")


async def test_outage_and_recovery_log_once_each(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Server gone: entities unavailable, one error line; back: available within 30 s, one line."""
    await _setup(hass, config_entry)
    coordinator = config_entry.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected)
    caplog.clear()
    caplog.set_level(logging.INFO)

    await simulator.go_offline()
    # The websocket dropping makes the coordinator look at once.
    await wait_until(lambda: hass.states.get(ACTIVE).state == STATE_UNAVAILABLE)
    now = dt_util.utcnow()
    for step in range(1, 4):  # three more failed polls, 10 s apart
        async_fire_time_changed(hass, now + timedelta(seconds=11 * step))
        await hass.async_block_till_done()
    assert hass.states.get(ACTIVE).state == STATE_UNAVAILABLE
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert simulator.token not in caplog.text

    await simulator.go_online()
    # Within 30 s of the server's return: the 10 s poll (or the websocket reconnecting) brings
    # the entities back.
    async_fire_time_changed(hass, now + timedelta(seconds=11 * 4 + 10))
    await hass.async_block_till_done()
    await wait_until(lambda: hass.states.get(ACTIVE).state == "0")
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    await wait_until(lambda: coordinator.listener.connected, timeout=10)


async def test_token_revoked_while_running_starts_reauth(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """A 401 on a later poll starts the reauth flow."""
    await _setup(hass, config_entry)
    await wait_until(lambda: config_entry.runtime_data.coordinator.listener.connected)
    simulator.change_token("rotated")
    # The websocket is dropped with the old token, so the coordinator checks at once.
    await wait_until(lambda: bool(hass.config_entries.flow.async_progress()))
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_token_rejected_on_websocket_connect_starts_reauth(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """The token rotating before the websocket connects is noticed through its 401."""
    await _setup(hass, config_entry)
    coordinator = config_entry.runtime_data.coordinator
    await coordinator.listener.stop()
    await hass.async_block_till_done(wait_background_tasks=True)  # the refresh stop() caused
    assert coordinator.last_update_success
    assert not hass.config_entries.flow.async_progress()
    simulator.change_token("rotated")
    coordinator.listener.start()
    await wait_until(lambda: bool(hass.config_entries.flow.async_progress()))
    assert not coordinator.last_update_success


async def test_entry_of_a_newer_minor_version_is_used_as_is(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """A newer Plexus (same major version) wrote the entry: it loads and is not rewritten."""
    data = entry_data(simulator, webhook_id="hook-from-the-future")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=data,
        version=1,
        minor_version=9,
    )
    await _setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == 9
    assert entry.data == data
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_deleting_a_client_device_another_integration_shares(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A gone client's device also described by another integration (merged identifiers):
    Plexus finds its own identifier among them and forgets the client."""
    assert await async_setup_component(hass, "config", {})
    await _setup(hass, config_entry)
    coordinator = config_entry.runtime_data.coordinator
    gone = next(iter(simulator.clients.values()))
    simulator.remove_client(gone.machine_identifier)
    await coordinator.async_refresh()
    devices = dr.async_get(hass)
    device = devices.async_get_device_by_identifier(
        (DOMAIN, f"{simulator.machine_identifier}-{gone.machine_identifier}"),
        config_entry.entry_id,
    )
    assert device is not None
    # Identifiers are a set: Plexus must pass over the foreign one whatever the order.
    devices.async_update_device(
        device.id, new_identifiers=device.identifiers | {("aaa_cast", "living-room")}
    )
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": config_entry.entry_id,
            "device_id": device.id,
        }
    )
    assert (await ws.receive_json())["success"]
    assert gone.machine_identifier not in coordinator.state.known_clients
    assert await hass.config_entries.async_unload(config_entry.entry_id)
