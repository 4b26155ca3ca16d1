"""Binary sensors: is a sync-play group in sync."""

from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .runtime import PlexusConfigEntry
from .sync_entity import SyncGroupEntity
from .transfer_entity import TransferProfileEntity

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
    if (transfers := entry.runtime_data.transfers) is not None:
        for profile in transfers.profiles.values():
            async_add_entities(
                [TransferringBinarySensor(transfers, profile, "transferring")],
                config_subentry_id=profile.subentry_id,
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


# --- File sync: is a transfer profile copying ---------------------------------------------------


class TransferringBinarySensor(TransferProfileEntity, BinarySensorEntity):
    """On while the profile copies a file."""

    _attr_translation_key = "transferring"
    _attr_device_class = BinarySensorDeviceClass.RUNNING

    @property
    def is_on(self) -> bool:
        """Return True while a transfer runs."""
        return self.profile.current is not None
