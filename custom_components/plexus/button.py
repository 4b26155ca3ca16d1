"""Buttons of a Plex server."""

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .catalog_manager import CatalogCoordinator
from .coordinator import PlexusCoordinator, async_scan_clients
from .entity import PlexusServerEntity
from .runtime import PlexusConfigEntry
from .transfer_entity import TransferProfileEntity
from .transfers import TransferManager, TransferProfile

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the scan-clients button."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([ScanClientsButton(coordinator, "scan_clients")])
    async_add_entities([ImportNowButton(coordinator, "import_now", entry.runtime_data.catalog)])
    if (transfers := entry.runtime_data.transfers) is not None:
        for profile in transfers.profiles.values():
            async_add_entities(
                [
                    TransferButton(transfers, profile, key)
                    for key in ("pause_transfers", "resume_transfers", "scan_sources")
                    if key != "scan_sources" or profile.config.source_roots
                ],
                config_subentry_id=profile.subentry_id,
            )


class ScanClientsButton(PlexusServerEntity, ButtonEntity):
    """Look for Plex clients now."""

    _attr_translation_key = "scan_clients"
    _attr_entity_category = EntityCategory.CONFIG

    async def async_press(self) -> None:
        """Read clients and sessions again (a failure is raised to the UI)."""
        await async_scan_clients(self.coordinator)


class ImportNowButton(PlexusServerEntity, ButtonEntity):
    """Import the server's libraries into the catalog now (incremental)."""

    _attr_translation_key = "import_now"

    def __init__(
        self, coordinator: PlexusCoordinator, key: str, catalog: CatalogCoordinator
    ) -> None:
        """Create the button."""
        super().__init__(coordinator, key)
        self.catalog = catalog

    @property
    def available(self) -> bool:
        """Available while the server and the catalog database are."""
        return super().available and self.catalog.available

    async def async_added_to_hass(self) -> None:
        """Follow the catalog too: it opens (or fails) on its own schedule."""
        await super().async_added_to_hass()
        self.async_on_remove(self.catalog.async_add_listener(self._handle_coordinator_update))

    async def async_press(self) -> None:
        """Run an incremental import (errors are raised to the UI)."""
        await self.catalog.async_import("incremental")


# --- File sync: pause, resume, scan sources of a transfer profile -------------------------------


class TransferButton(TransferProfileEntity, ButtonEntity):
    """Pause or resume a profile's queue, or scan its source folders."""

    def __init__(self, manager: TransferManager, profile: TransferProfile, key: str) -> None:
        """Create the button (key: pause_transfers, resume_transfers or scan_sources)."""
        super().__init__(manager, profile, key)
        self.key = key
        self._attr_translation_key = key

    async def async_press(self) -> None:
        """Run the command (errors are raised to the UI)."""
        sid = self.profile.subentry_id
        if self.key == "pause_transfers":
            await self.manager.async_pause(sid)
        elif self.key == "resume_transfers":
            await self.manager.async_resume(sid)
        else:
            await self.manager.async_scan(sid)
