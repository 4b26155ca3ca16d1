"""Binary sensors: is a sync-play group in sync."""

from typing import Any

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .runtime import PlexusConfigEntry
from .sync_entity import SyncGroupEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an "in sync" sensor per group."""
    for group in entry.runtime_data.sync_groups.values():
        async_add_entities(
            [InSyncBinarySensor(group, "in_sync")],
            config_subentry_id=group.subentry_id,
        )


class InSyncBinarySensor(SyncGroupEntity, BinarySensorEntity):
    """On while every member is within the drift threshold."""

    _attr_translation_key = "in_sync"

    @property
    def is_on(self) -> bool:
        """Return True when the group is in sync."""
        return self.group_state.in_sync

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The largest drift right now."""
        return {"largest_drift_ms": self.group_state.largest_drift_ms}
