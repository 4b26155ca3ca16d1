"""Server-level services: refresh a library, scan for clients."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio as vol

from .const import DOMAIN
from .coordinator import PlexusConfigEntry
from .plex import PlexError

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_LIBRARY_NAME = "library_name"
SERVICE_REFRESH_LIBRARY = "refresh_library"
SERVICE_SCAN_CLIENTS = "scan_clients"

ENTRY_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
REFRESH_SCHEMA = ENTRY_SCHEMA.extend({vol.Optional(ATTR_LIBRARY_NAME): cv.string})


def _entry(hass: HomeAssistant, call: ServiceCall) -> PlexusConfigEntry:
    """The loaded entry the call targets (the only one when none is named)."""
    entries: list[PlexusConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
        entries = [e for e in entries if e.entry_id == entry_id]
        if not entries:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_server")
    if not entries:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_server")
    if len(entries) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="server_required")
    return entries[0]


async def _refresh_library(call: ServiceCall) -> None:
    entry = _entry(call.hass, call)
    coordinator = entry.runtime_data.coordinator
    sections = coordinator.data.sections
    if name := call.data.get(ATTR_LIBRARY_NAME):
        sections = [s for s in sections if s.title.casefold() == name.casefold()]
        if not sections:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_library",
                translation_placeholders={
                    "server": entry.title,
                    "library": name,
                    "libraries": ", ".join(s.title for s in coordinator.data.sections),
                },
            )
    try:
        for section in sections:
            await coordinator.api.refresh_section(section.key)
    except PlexError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="refresh_failed",
            translation_placeholders={"server": entry.title, "error": str(err)},
        ) from err


async def _scan_clients(call: ServiceCall) -> None:
    await _entry(call.hass, call).runtime_data.coordinator.async_refresh()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN, SERVICE_REFRESH_LIBRARY, _refresh_library, schema=REFRESH_SCHEMA
    )
    hass.services.async_register(DOMAIN, SERVICE_SCAN_CLIENTS, _scan_clients, schema=ENTRY_SCHEMA)
