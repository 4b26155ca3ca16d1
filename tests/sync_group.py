"""One sync-play group ("Movie Night") of two simulator players, as the HA-side tests set it up."""

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import (
    CONF_GROUP_NAME,
    CONF_MEMBERS,
    CONF_SECRET,
    CONF_TOPIC,
    DOMAIN,
    SUBENTRY_SYNC_GROUP,
)
from tests.conftest import entry_data
from tests.plex_simulator import PlexSimulator

MEMBERS = ["media_player.living_room_tv", "media_player.office_htpc"]
# A fixed id keeps the entity snapshots' device and subentry ids stable.
SUBENTRY_ID = "01JSYNCGROUPMOVIENIGHT0000"


def group_entry(
    sim: PlexSimulator,
    *,
    topic: str = "plexus/sync/movie_night",
    follow: bool = False,
) -> MockConfigEntry:
    """A server entry with one local sync-play group of the two MEMBERS."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim),
        subentries_data=[
            ConfigSubentryDataWithId(
                data={
                    CONF_GROUP_NAME: "Movie Night",
                    CONF_TOPIC: topic,
                    CONF_SECRET: "s" * 32,
                    CONF_MEMBERS: MEMBERS,
                    "drift_threshold_ms": 300,
                    "follow": follow,
                },
                subentry_id=SUBENTRY_ID,
                subentry_type=SUBENTRY_SYNC_GROUP,
                title="Movie Night",
                unique_id=topic,
            )
        ],
    )


async def setup_group(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the entry up twice: the first setup registers the players, the second maps the
    group's members from the entity registry."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
