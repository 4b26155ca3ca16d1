"""Which server entry a `plexus.*` service call targets (shared by every services module)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
import probatio as vol

from .const import DOMAIN
from .runtime import PlexusConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ENTRY_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})


def _entry(hass: HomeAssistant, call: ServiceCall) -> PlexusConfigEntry:
    """The loaded entry the call targets (the only one when none is named).

    HA's own lookup finds it; its refusals are said in Plexus's words: no server set up, an id
    that is not a Plexus server entry, a server that is not loaded, several servers and none named.
    """
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    try:
        entry: PlexusConfigEntry = service.async_get_config_entry(hass, DOMAIN, entry_id)
    except ServiceValidationError as err:
        shown = entry_id or "-"
        match err.translation_key:
            case "service_config_entry_not_found" | "service_config_entry_wrong_domain":
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="not_a_server_entry",
                    translation_placeholders={"entry_id": shown},
                ) from err
            case "service_config_entry_not_loaded":
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="entry_not_loaded",
                    translation_placeholders={"entry_id": shown},
                ) from err
            case "service_found_multiple_config_entry_for_domain":
                raise ServiceValidationError(
                    translation_domain=DOMAIN, translation_key="server_required"
                ) from err
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_server"
        ) from err
    return entry
