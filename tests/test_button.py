"""Server buttons: the entity set, scan clients (success, translated failure), import now."""

from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.catalog_manager import RETRY_FIRST_S
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator
from tests.test_transfer_ha import (  # dirs: the transfer tests' folders fixture
    dirs,  # noqa: F401
    setup_entry as transfer_setup,
)

SCAN = "button.plexus_simulator_scan_clients"
IMPORT = "button.plexus_simulator_import_now"


async def press(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call("button", "press", {ATTR_ENTITY_ID: entity_id}, blocking=True)


async def test_all_entities(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The server's buttons, registry entries and states."""
    config_entry.add_to_hass(hass)
    with patch("custom_components.plexus.PLATFORMS", [Platform.BUTTON]):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def test_scan_clients_finds_a_new_client(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A client that appeared on the server is known (and has a player) right after a press."""
    client = simulator.add_client("Kitchen Display")
    coordinator = loaded.runtime_data.coordinator
    assert client.machine_identifier not in coordinator.data.clients
    await press(hass, SCAN)
    await hass.async_block_till_done()
    assert client.machine_identifier in coordinator.data.clients
    assert hass.states.get("media_player.kitchen_display").state == "idle"


async def test_scan_clients_failure_is_a_translated_error(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A server that answers 500 makes the press fail naming the server; the next press works."""
    simulator.set_error(500)
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, SCAN)
    assert err.value.translation_domain == "plexus"
    assert err.value.translation_key == "scan_failed"
    assert err.value.translation_placeholders["server"] == "Plexus Simulator"
    assert err.value.translation_placeholders["error"] not in ("", "-")
    assert str(err.value).startswith(
        "Could not read the clients of the Plex server Plexus Simulator"
    )

    # Like every entity of the server, the button is unavailable until the server answers again.
    assert hass.states.get(SCAN).state == STATE_UNAVAILABLE
    simulator.set_error(None)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=11))  # the next poll
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(SCAN).state != STATE_UNAVAILABLE  # (its state: the last press)
    client = simulator.add_client("Garage TV")
    await press(hass, SCAN)
    assert client.machine_identifier in loaded.runtime_data.coordinator.data.clients


async def test_import_now_unavailable_while_the_catalog_is_not_open(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    catalog_in_tmp: Path,
) -> None:
    """A database that cannot be opened: only Import now is unavailable, until it opens."""
    # A directory where the SQLite file belongs.
    await hass.async_add_executor_job(catalog_in_tmp.mkdir)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.runtime_data.catalog.available is False
    assert hass.states.get(IMPORT).state == STATE_UNAVAILABLE
    assert hass.states.get(SCAN).state == STATE_UNKNOWN  # the server itself is fine
    # Let the server's first fallback poll pass: once the websocket is up, the next one is a
    # minute away, so only the catalog can change the button below.
    await wait_until(lambda: config_entry.runtime_data.coordinator.listener.connected)
    now = dt_util.utcnow()
    async_fire_time_changed(hass, now + timedelta(seconds=11))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(IMPORT).state == STATE_UNAVAILABLE

    await hass.async_add_executor_job(catalog_in_tmp.rmdir)
    async_fire_time_changed(hass, now + timedelta(seconds=RETRY_FIRST_S + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.runtime_data.catalog.available is True
    assert hass.states.get(IMPORT).state == STATE_UNKNOWN
    await press(hass, IMPORT)
    assert hass.states.get("sensor.plexus_simulator_catalog_movies").state == str(
        len(simulator.library.movies())
    )


async def test_scan_sources_button_scans_the_profiles_folders(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],  # noqa: F811 - the imported fixture
) -> None:
    """Pressing a transfer profile's Scan sources finds the files put in its source folders."""
    entry = await transfer_setup(hass, simulator, dirs)
    movie = dirs["movies"] / "Arrival (2016)" / "Arrival (2016).mkv"
    movie.parent.mkdir(parents=True)
    movie.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 2048)
    await press(hass, "button.laptop_scan_sources")
    await hass.async_block_till_done()
    progress = hass.states.get("sensor.laptop_scan_progress")
    assert progress is not None
    assert progress.state == "1"
    assert progress.attributes["scanning"] is False
    assert await hass.config_entries.async_unload(entry.entry_id)
