"""Base entities of Plexus, and the decorator that turns failed Plex commands into HA errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Protocol

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import DOMAIN, MANUFACTURER
from .coordinator import PlexusCoordinator
from .ids import client_device_identifier
from .plex import PlexError
from .plex.resolve import MediaNotFoundError
from .plex.search_query import BadMediaIdError


class PlexusEntity[C: DataUpdateCoordinator[Any]](CoordinatorEntity[C]):
    """An entity of a Plexus server entry."""

    _attr_has_entity_name = True


class PlexusServerEntity(PlexusEntity[PlexusCoordinator]):
    """An entity on the server's device."""

    def __init__(self, coordinator: PlexusCoordinator, key: str) -> None:
        """Attach the entity to the server device."""
        super().__init__(coordinator)
        server_id = coordinator.server_identifier
        self._attr_unique_id = f"{server_id}-{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, server_id)})


def client_device_info(coordinator: PlexusCoordinator, client_id: str) -> DeviceInfo:
    """The device of a Plex client, complete, whichever platform registers it first.

    (An entity that names only the identifiers could create the device first, without a name,
    and get an entity id without the client's name.)
    """
    client = coordinator.state.known_clients[client_id]
    return DeviceInfo(
        identifiers={client_device_identifier(coordinator.server_identifier, client_id)},
        manufacturer=MANUFACTURER,
        model=client.product or None,
        name=client.name,
        sw_version=client.version or None,
        via_device_id=dr.async_get_device_id_by_identifier(
            coordinator.hass,
            (DOMAIN, coordinator.server_identifier),
            config_entry_id=coordinator.config_entry.entry_id,
        ),
    )


class _NamedTarget(Protocol):
    @property
    def command_target(self) -> str:
        """Who the command was for (a client's name), for error messages."""
        ...


def plex_command[E: _NamedTarget, **P](
    func: Callable[Concatenate[E, P], Coroutine[Any, Any, Any]],
) -> Callable[Concatenate[E, P], Coroutine[Any, Any, None]]:
    """Turn a failed Plex command into a translated error naming the target and cause.

    Bad media ids and items that do not exist are the caller's input (`ServiceValidationError`);
    anything the server or client refused is a `HomeAssistantError`.
    """

    async def wrapper(self: E, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await func(self, *args, **kwargs)
        except (BadMediaIdError, MediaNotFoundError) as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="nothing_to_play",
                translation_placeholders={"client": self.command_target, "error": str(err)},
            ) from err
        except PlexError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={"client": self.command_target, "error": str(err)},
            ) from err

    return wrapper
