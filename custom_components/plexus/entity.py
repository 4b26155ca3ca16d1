"""Base entity of Plexus."""

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PlexusCoordinator


class PlexusServerEntity(CoordinatorEntity[PlexusCoordinator]):
    """An entity on the server's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: PlexusCoordinator, key: str) -> None:
        """Attach the entity to the server device."""
        super().__init__(coordinator)
        server_id = coordinator.server_identifier
        self._attr_unique_id = f"{server_id}-{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, server_id)})
