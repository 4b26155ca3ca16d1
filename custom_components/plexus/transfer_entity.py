"""Base of the entities of a file-sync profile (one device per profile subentry)."""

import time

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN, MANUFACTURER
from .ids import signal_transfer_profile
from .transfers import TransferManager, TransferProfile


class TransferProfileEntity(Entity):
    """Reads a profile's figures; written when the manager pushes, at most once a second."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    # Seconds between two writes of the state (the current-transfer sensor: 1 s).
    min_interval = 0.0

    def __init__(self, manager: TransferManager, profile: TransferProfile, key: str) -> None:
        """Attach to the profile's device."""
        self.manager = manager
        self.profile = profile
        self._attr_unique_id = f"{profile.subentry_id}-{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, profile.subentry_id)},
            name=profile.name,
            manufacturer=MANUFACTURER,
            model="File sync profile",
            entry_type=DeviceEntryType.SERVICE,
        )
        self._last_write = 0.0
        self._pending: CALLBACK_TYPE | None = None

    @property
    def available(self) -> bool:
        """Available while the profile's queue runs (the catalog database is open)."""
        return self.profile.available

    async def async_added_to_hass(self) -> None:
        """Follow the profile."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_transfer_profile(self.profile.subentry_id), self._pushed
            )
        )
        self.async_on_remove(self._cancel_pending)

    @callback
    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending()
            self._pending = None

    @callback
    def _pushed(self) -> None:
        wait = self._last_write + self.min_interval - time.monotonic()
        if wait <= 0:
            self._write()
        elif self._pending is None:
            self._pending = async_call_later(self.hass, wait, self._delayed)

    @callback
    def _delayed(self, _now: object) -> None:
        self._pending = None
        self._write()

    @callback
    def _write(self) -> None:
        self._last_write = time.monotonic()
        self.async_write_ha_state()
