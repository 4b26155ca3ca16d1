"""Base of the entities of a tracked Plex user (one device per user and server)."""

from datetime import datetime
import logging
from typing import Final

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later
from sqlalchemy.exc import SQLAlchemyError

from .catalog.errors import short_cause
from .const import MANUFACTURER
from .coordinator import PlexusCoordinator
from .entity import PlexusEntity
from .ids import signal_watches_changed, user_device_identifier
from .tracking_manager import TrackingManager

_LOGGER = logging.getLogger(__name__)
REREAD_RETRY_S: Final = 30  # a read that failed (the database away) is tried again after this


class TrackedUserEntity(PlexusEntity[PlexusCoordinator]):
    """An entity of a tracked user: reads the history again whenever it changes.

    Follows the server coordinator too (what the user is playing now comes from its sessions).
    """

    def __init__(self, manager: TrackingManager, user: str, key: str) -> None:
        """Attach to the user's device."""
        super().__init__(manager.coordinator)
        self.manager = manager
        self.user = user
        self._retry: CALLBACK_TYPE | None = None
        self._removed = False
        server_id = manager.server_id
        self._attr_unique_id = f"{server_id}-user-{user}-{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={user_device_identifier(server_id, user)},
            name=user,
            manufacturer=MANUFACTURER,
            model="Plex user",
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def user_id(self) -> str:
        """The user's id in the watch history."""
        return self.manager.user_id(self.user)

    async def async_added_to_hass(self) -> None:
        """Read the history now and after every change."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_watches_changed(self.manager.server_id), self._history_changed
            )
        )
        self.async_on_remove(self._on_removed)
        await self._async_reread()

    @callback
    def _on_removed(self) -> None:
        self._removed = True
        if self._retry is not None:
            self._retry()
            self._retry = None

    @callback
    def _retry_read(self, _now: datetime) -> None:
        self._retry = None
        self._history_changed()

    @callback
    def _history_changed(self, users: frozenset[str] | None = None) -> None:
        """Re-read the history (only when `users`, if given, holds this entity's user)."""
        if users is not None and self.user_id not in users and self.user not in users:
            return
        # (tied to the entry: an unload waits for it, not left running on its own)
        self.manager.entry.async_create_task(
            self.hass, self._async_reread(), f"plexus watch history of {self.user}"
        )

    async def _async_reread(self) -> None:
        if self.manager.tracker is None:
            return
        try:
            await self.async_read_history()
        except SQLAlchemyError as err:
            # Keep what is shown; read again later (not stuck until the user's next watch).
            _LOGGER.debug("Watch history of %s not read: %s", self.user, short_cause(err))
            if self._retry is None and self.hass is not None and not self._removed:
                self._retry = async_call_later(self.hass, REREAD_RETRY_S, self._retry_read)
            return
        if self.hass is not None and self.enabled:
            self.async_write_ha_state()

    async def async_read_history(self) -> None:
        """Read what the entity shows from the history (subclasses)."""
