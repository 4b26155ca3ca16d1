"""Server sensors: the entity set (snapshot), session counts, bandwidth and library counts."""

from types import SimpleNamespace
from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.sensor import SYNC_SENSORS
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator


async def test_entity_set(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity of a server with three idle clients, library sensors enabled."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    for entity in er.async_entries_for_config_entry(entity_registry, config_entry.entry_id):
        if entity.disabled_by is not None:
            entity_registry.async_update_entity(entity.entity_id, disabled_by=None)
    await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    entities = sorted(
        er.async_entries_for_config_entry(entity_registry, config_entry.entry_id),
        key=lambda e: e.entity_id,
    )
    described = {}
    for entity in entities:
        state = hass.states.get(entity.entity_id)
        assert state is not None, entity.entity_id
        described[entity.entity_id] = {
            "unique_id": entity.unique_id,
            "translation_key": entity.translation_key,
            "original_name": entity.original_name,
            "device_class": entity.original_device_class,
            "entity_category": entity.entity_category,
            "unit": entity.unit_of_measurement,
            "state": state.state,
            "attributes": dict(state.attributes),
        }
    assert described == snapshot
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_library_sensors_disabled_by_default(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    library = [
        e
        for e in er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
        if e.translation_key == "library"
    ]
    assert len(library) == 3
    assert all(e.disabled_by is er.RegistryEntryDisabler.INTEGRATION for e in library)


async def test_stream_mix_and_bandwidth(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """Transcoding, direct play and direct stream sessions are counted; bandwidth split LAN/WAN."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    movies = simulator.library.movies()
    remote = simulator.add_client("Phone", stream_decision="transcode", location="wan")
    copy = simulator.add_client("Stick", stream_decision="copy")
    local = next(iter(simulator.clients.values()))
    for i, client in enumerate((remote, copy, local)):
        await client.local_start(movies[i].id)
    coordinator = config_entry.runtime_data.coordinator
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    sessions = coordinator.data.sessions
    assert len(sessions) == 3

    def value(key: str) -> str:
        return hass.states.get(f"sensor.plexus_simulator_{key}").state

    assert value("active_streams") == "3"
    assert value("transcoding_streams") == "1"
    assert value("direct_stream_streams") == "1"
    assert value("direct_play_streams") == "1"
    total = sum(s.bandwidth_kbps for s in sessions)
    wan = sum(s.bandwidth_kbps for s in sessions if s.location == "wan")
    assert total > 0
    assert wan > 0
    assert value("bandwidth") == str(total)
    assert value("wan_bandwidth") == str(wan)
    assert value("lan_bandwidth") == str(total - wan)
    phone = hass.states.get("media_player.phone")
    assert phone.attributes["decision"] == "transcode"
    assert phone.attributes["location"] == "wan"


async def test_library_counts_follow_a_scan(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A library sensor counts its items and names the newest; a finished scan updates it."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    entity_id = next(
        e.entity_id
        for e in er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
        if e.translation_key == "library" and e.original_name == "Movies library"
    )
    entity_registry.async_update_entity(entity_id, disabled_by=None)
    await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(entity_id)
    assert state.state == str(len(simulator.library.movies()))
    await wait_until(lambda: config_entry.runtime_data.coordinator.listener.connected)
    simulator.library.add_movie("Brand New Film", year=2026)
    simulator.library.finish_scan(1)
    await wait_until(
        lambda: hass.states.get(entity_id).attributes.get("last_added") == "Brand New Film"
    )
    assert hass.states.get(entity_id).state == str(len(simulator.library.movies()))


# --- the sensor platform alone (snapshot) ------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_all_entities(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every server and catalog sensor (library sensors enabled), registry entries and states."""
    config_entry.add_to_hass(hass)
    with patch("custom_components.plexus.PLATFORMS", [Platform.SENSOR]):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


def test_clock_offset_never_shows_minus_zero() -> None:
    """A tiny negative clock offset rounds to 0.0, not -0.0."""
    offset = next(d for d in SYNC_SENSORS if d.key == "sync_clock_offset")
    for raw, shown in ((-0.04, "0.0"), (-0.0, "0.0"), (-1.26, "-1.3"), (2.0, "2.0")):
        value = offset.value_fn(SimpleNamespace(clock_offset_ms=raw))  # type: ignore[arg-type]
        assert str(value) == shown, raw


async def test_libraries_sensor_has_a_unit(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """ "Libraries" counts with a unit, like "Clients"."""
    state = hass.states.get("sensor.plexus_simulator_libraries")
    assert state is not None
    assert state.attributes["unit_of_measurement"] == "libraries"
    assert state.attributes["state_class"] == "measurement"
