"""Each member's expected precision, a sensor on its sync-play group's device.

The entity set of a group (snapshot) and, through HA states, a player whose positions come in
whole seconds told apart from one that reports milliseconds.
"""

from collections.abc import AsyncIterator
import random

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.const import (
    CONF_GROUP_NAME,
    CONF_MEMBERS,
    CONF_SECRET,
    CONF_TOPIC,
    DOMAIN,
    SUBENTRY_SYNC_GROUP,
)
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import LibraryConfig, PlexSimulator, behaviour

MEMBERS = ["media_player.living_room_tv", "media_player.office_htpc"]
SUBENTRY_ID = "01JSYNCGROUPMOVIENIGHT0000"
FINE = "sensor.movie_night_living_room_tv_expected_precision"
COARSE = "sensor.movie_night_office_htpc_expected_precision"


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    simulator = PlexSimulator(
        token="sim-token", clients=3, seed=7, latency_ms=(20, 60), library=LibraryConfig(movies=10)
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


def group_entry(sim: PlexSimulator) -> MockConfigEntry:
    """A server entry with one local sync-play group of two players (fixed subentry id)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim),
        subentries_data=[
            ConfigSubentryDataWithId(
                data={
                    CONF_GROUP_NAME: "Movie Night",
                    CONF_TOPIC: "plexus/sync/movie_night",
                    CONF_SECRET: "s" * 32,
                    CONF_MEMBERS: MEMBERS,
                    "drift_threshold_ms": 300,
                    "follow": False,
                },
                subentry_id=SUBENTRY_ID,
                subentry_type=SUBENTRY_SYNC_GROUP,
                title="Movie Night",
                unique_id="plexus/sync/movie_night",
            )
        ],
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # First setup registers the players; the group maps its members from the registry.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


async def test_group_sensors(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The group's sensors: its own and one expected precision per member of this home."""
    entry = group_entry(sim)
    await setup(hass, entry)
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


async def test_coarse_player_is_told_its_precision(hass: HomeAssistant, sim: PlexSimulator) -> None:
    """A player reporting whole seconds shows a coarser expected precision than an exact one.

    The Office HTPC behaves like a TV that reports whole-second positions (the simulator's
    `coarse_tv`, timelines every 0.5 s and short loads to keep the test short); the Living Room
    TV reports milliseconds. Both are unknown until measured; once the group has seen both play,
    the fine one's sensor is about two deviations of its start error (tens of ms at most) and
    the coarse one's adds the report lag its positions cannot date (100 ms more).
    """
    office = next(c for c in sim.clients.values() if c.name == "Office HTPC")
    office.behaviour = behaviour(
        "coarse_tv",
        random.Random(3),
        timeline_interval_s=0.5,
        load_ms=(300.0, 600.0),
        lost_reports=0.0,
    )
    imprecise: list[Event] = []
    hass.bus.async_listen("plexus_sync_member_imprecise", imprecise.append)
    entry = group_entry(sim)
    await setup(hass, entry)
    for entity_id in (FINE, COARSE):
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "ms"
        assert state.attributes["device_class"] == "duration"
        assert state.state == "unknown"  # nothing measured yet

    movie = sim.library.movies()[1]
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
