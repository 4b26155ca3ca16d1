"""Buttons of a Plex server."""

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PlexusConfigEntry
from .entity import PlexusServerEntity

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the scan-clients button."""
    async_add_entities([ScanClientsButton(entry.runtime_data.coordinator, "scan_clients")])


class ScanClientsButton(PlexusServerEntity, ButtonEntity):
    """Look for Plex clients now."""

    _attr_translation_key = "scan_clients"
    _attr_entity_category = EntityCategory.CONFIG

    async def async_press(self) -> None:
        """Read clients and sessions again."""
        await self.coordinator.async_refresh()
