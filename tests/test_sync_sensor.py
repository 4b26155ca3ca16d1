"""Each member's expected precision, a sensor on its sync-play group's device.

The entity set of a group (snapshot) and, through HA states, a player whose positions come in
whole seconds told apart from one that reports milliseconds.
"""

import random

from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.const import (
    DOMAIN,
)
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator, behaviour
from tests.sync_group import SUBENTRY_ID, group_entry, setup_group

FINE = "sensor.movie_night_living_room_tv_expected_precision"
COARSE = "sensor.movie_night_office_htpc_expected_precision"


async def test_group_sensors(
    hass: HomeAssistant,
    group_sim: PlexSimulator,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The group's sensors: its own and one expected precision per member of this home."""
    entry = group_entry(group_sim)
    await setup_group(hass, entry)
    device = device_registry.async_get_device_by_identifier((DOMAIN, SUBENTRY_ID), entry.entry_id)
    assert device is not None
    entities = sorted(
        (
            e
            for e in er.async_entries_for_device(entity_registry, device.id)
            if e.domain == "sensor"
        ),
        key=lambda e: e.entity_id,
    )
    assert [e.entity_id for e in entities if "precision" in e.entity_id] == [FINE, COARSE]
    for entity in entities:
        assert entity == snapshot(name=f"{entity.entity_id}-entry")
        state = hass.states.get(entity.entity_id)
        assert state == snapshot(name=f"{entity.entity_id}-state")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_coarse_player_is_told_its_precision(
    hass: HomeAssistant, group_sim: PlexSimulator
) -> None:
    """A player reporting whole seconds shows a coarser expected precision than an exact one.

    The Office HTPC behaves like a TV that reports whole-second positions (the simulator's
    `coarse_tv`, timelines every 0.5 s and short loads to keep the test short); the Living Room
    TV reports milliseconds. Both are unknown until measured; once the group has seen both play,
    the fine one's sensor is about two deviations of its start error (tens of ms at most) and
    the coarse one's adds the report lag its positions cannot date (100 ms more).
    """
    office = next(c for c in group_sim.clients.values() if c.name == "Office HTPC")
    office.behaviour = behaviour(
        "coarse_tv",
        random.Random(3),
        timeline_interval_s=0.5,
        load_ms=(300.0, 600.0),
        lost_reports=0.0,
    )
    imprecise: list[Event] = []
    hass.bus.async_listen("plexus_sync_member_imprecise", imprecise.append)
    entry = group_entry(group_sim)
    await setup_group(hass, entry)
    for entity_id in (FINE, COARSE):
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "ms"
        assert state.attributes["device_class"] == "duration"
        assert state.state == "unknown"  # nothing measured yet

    movie = group_sim.library.movies()[1]
    await hass.services.async_call(
        DOMAIN, "sync_play", {"group": "Movie Night", "media": str(movie.id)}, blocking=True
    )

    def value(entity_id: str) -> float | None:
        state = hass.states.get(entity_id)
        try:
            return float(state.state) if state is not None else None
        except ValueError:
            return None

    # The engine proves the whole seconds from three playing positions, then tells the user.
    await wait_until(lambda: bool(imprecise), 20)
    assert imprecise[0].data["name"] == "Office HTPC"
    await wait_until(lambda: (value(FINE) or 1e9) < 100.0, 10)
    coarse, fine = value(COARSE), value(FINE)
    assert coarse is not None
    assert fine is not None
    assert coarse >= 100.0
    assert imprecise[0].data["expected_precision_ms"] >= 100.0
    assert fine < coarse - 50.0
    await hass.services.async_call(DOMAIN, "sync_stop", {"group": "Movie Night"}, blocking=True)
    assert await hass.config_entries.async_unload(entry.entry_id)
