"""Base entity of Plexus."""

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PlexusCoordinator


def player_unique_id(server_id: str, client_id: str) -> str:
    """Unique id of a client's media player."""
    return f"{server_id}-player-{client_id}"


def client_device_identifier(server_id: str, client_id: str) -> tuple[str, str]:
    """Device identifier of a client (scoped by server: one client may use several servers)."""
    return (DOMAIN, f"{server_id}-{client_id}")


def client_id_from(server_id: str, scoped_id: str, *, player: bool) -> str | None:
    """The client id inside a player unique id (player=True) or client device identifier."""
    prefix = f"{server_id}-player-" if player else f"{server_id}-"
    return scoped_id.removeprefix(prefix) if scoped_id.startswith(prefix) else None


class PlexusServerEntity(CoordinatorEntity[PlexusCoordinator]):
    """An entity on the server's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: PlexusCoordinator, key: str) -> None:
        """Attach the entity to the server device."""
        super().__init__(coordinator)
        server_id = coordinator.server_identifier
        self._attr_unique_id = f"{server_id}-{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, server_id)})
