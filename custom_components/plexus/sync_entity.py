"""Base of the entities of a sync-play group (one device per group subentry)."""

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity

from .const import DOMAIN, MANUFACTURER
from .ids import signal_sync_group
from .sync import SyncGroup
from .syncplay import GroupState


class SyncGroupEntity(Entity):
    """Reads the group's engine; updated when the engine reports a change."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, group: SyncGroup, key: str) -> None:
        """Attach to the group's device."""
        self.sync_group = group
        self._attr_unique_id = f"{group.subentry_id}-{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, group.subentry_id)},
            name=group.name,
            manufacturer=MANUFACTURER,
            model="Sync-play group",
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def group_state(self) -> GroupState:
        """The group's current state."""
        return self.sync_group.engine.state

    async def async_added_to_hass(self) -> None:
        """Follow the engine."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_sync_group(self.sync_group.subentry_id), self.async_write_ha_state
            )
        )
