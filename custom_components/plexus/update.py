"""The Plex server's own updates, as an `update` entity (release notes; install where it can)."""

from datetime import timedelta
from typing import Any

from homeassistant.components.update import UpdateEntity, UpdateEntityFeature
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, LOGGER
from .entity import PlexusServerEntity
from .plex import PlexError
from .plex.updater import UpdateStatus, apply_update, update_status
from .runtime import PlexusConfigEntry

PARALLEL_UPDATES = 1
# The server itself checks plex.tv now and then; asking it a few times a day is plenty.
SCAN_INTERVAL = timedelta(hours=6)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the server's update entity."""
    async_add_entities([PlexServerUpdate(entry.runtime_data.coordinator, "server_update")], True)


class PlexServerUpdate(PlexusServerEntity, UpdateEntity):
    """A newer Plex Media Server release, as the server reports it."""

    _attr_translation_key = "server_update"
    _attr_entity_category = EntityCategory.CONFIG
    _status: UpdateStatus | None = None
    _unreadable_logged = False

    @property
    def should_poll(self) -> bool:
        """Poll the update status (the server pushes no notification for it)."""
        return True

    @property
    def installed_version(self) -> str | None:
        """The version the server runs."""
        return self.coordinator.data.info.version or None

    @property
    def latest_version(self) -> str | None:
        """The newest release (the installed one when there is none newer)."""
        if self._status is None or self._status.latest_version is None:
            return self.installed_version
        return self._status.latest_version

    @property
    def supported_features(self) -> UpdateEntityFeature:
        """Release notes always; install only where the server can install itself."""
        features = UpdateEntityFeature.RELEASE_NOTES
        if self._status is not None and self._status.can_install:
            features |= UpdateEntityFeature.INSTALL
        return features

    async def async_update(self) -> None:
        """Ask the server for its update status (an unreadable answer is logged once)."""
        try:
            self._status = await update_status(self.coordinator.api)
        except PlexError as err:
            if not self._unreadable_logged:
                LOGGER.info("Update status of %s not available: %s", self.coordinator.name, err)
                self._unreadable_logged = True
            return
        self._unreadable_logged = False

    async def async_release_notes(self) -> str | None:
        """What the newest release fixes and adds."""
        return self._status.release_notes if self._status else None

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        """Ask the server to install the newest release."""
        try:
            await apply_update(self.coordinator.api)
        except PlexError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={
                    "server": self.coordinator.config_entry.title,
                    "error": str(err),
                },
            ) from err
        await self.coordinator.async_request_refresh()
        await self.async_update()
