"""The in-sync binary sensor of a sync-play group: the entity set, and on/off as drift changes."""

from unittest.mock import patch

from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.const import (
    DOMAIN,
)
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator
from tests.sync_group import group_entry, setup_group

IN_SYNC = "binary_sensor.movie_night_in_sync"


async def test_all_entities(
    hass: HomeAssistant,
    group_sim: PlexSimulator,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One in-sync sensor per group, on the group's device; off while the group is idle."""
    entry = group_entry(group_sim)
    entry.add_to_hass(hass)
    with patch("custom_components.plexus.PLATFORMS", [Platform.BINARY_SENSOR]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
    assert hass.states.get(IN_SYNC).state == STATE_OFF


async def test_in_sync_follows_the_drift(hass: HomeAssistant, group_sim: PlexSimulator) -> None:
    """On while both members play in step; off when one jumps ahead; on again once corrected."""
    entry = group_entry(group_sim)
    await setup_group(hass, entry)
    assert hass.states.get(IN_SYNC).state == STATE_OFF  # idle: nothing to be in sync with

    seen: list[tuple[str, float | None]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (state := event.data["new_state"]) is not None:
            seen.append((state.state, state.attributes.get("largest_drift_ms")))

    unsub = async_track_state_change_event(hass, IN_SYNC, record)
    movie = group_sim.library.movies()[1]
    await hass.services.async_call(
        DOMAIN, "sync_play", {"group": "Movie Night", "media": str(movie.id)}, blocking=True
    )
    await wait_until(lambda: hass.states.get(IN_SYNC).state == STATE_ON, 15)
    # Drift is measured once the members have settled.
    await wait_until(
        lambda: hass.states.get(IN_SYNC).attributes.get("largest_drift_ms") is not None, 15
    )
    assert hass.states.get(IN_SYNC).attributes["largest_drift_ms"] <= 300

    # One member jumps 5 s ahead on its own remote (follow is off: no group seek).
    client = group_sim.client("Office HTPC")
    seen.clear()
    await client.local_seek(client.position_ms + 5000)
    await wait_until(lambda: any(state == STATE_OFF for state, _ in seen), 15)
    off = next(drift for state, drift in seen if state == STATE_OFF)
    assert off is not None
    assert off > 300
    # Drift control seeks it back into step.
    await wait_until(lambda: seen[-1][0] == STATE_ON, 15)
    assert seen[-1][1] is not None
    assert seen[-1][1] <= 300
    unsub()
    await hass.services.async_call(DOMAIN, "sync_stop", {"group": "Movie Night"}, blocking=True)
    await wait_until(lambda: hass.states.get(IN_SYNC).state == STATE_OFF, 10)
    assert await hass.config_entries.async_unload(entry.entry_id)
