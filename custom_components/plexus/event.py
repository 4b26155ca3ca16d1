"""Event entities of a Plex server.

Watch tracking: one `event` entity per server fires for every accepted webhook of that server.
Its event types are the events Plex documents plus ``other``. An event Plex adds later is not
dropped: it is fired as itself (added to the entity's event types, so automations can trigger on
it) when its name looks like Plex's (``word.word[.word]``, lower case) and fewer than
``MAX_EXTRA_EVENT_TYPES`` new names were seen since the start; otherwise as ``other``. The raw name
is always in the ``plex_event`` attribute, and on the bus (``plexus_webhook``) as itself.
"""

from __future__ import annotations

import re
from typing import Any

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .ids import signal_webhook
from .runtime import PlexusConfigEntry
from .tracking import EVENT_TYPES, WebhookEvent

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the server's webhook event entity."""
    async_add_entities([PlexWebhookEventEntity(entry.runtime_data.tracking.server_id)])


# --- watch tracking: webhook events ----------------------------------------------------------

OTHER_EVENT = "other"
MAX_EXTRA_EVENT_TYPES = 20  # the webhook URL is a secret, but a leaked one must not bloat this
_PLEX_EVENT_NAME = re.compile(r"[a-z]+(?:\.[a-z]+){1,3}")


class PlexWebhookEventEntity(EventEntity):
    """Fires for every accepted webhook of the server."""

    _attr_has_entity_name = True
    _attr_translation_key = "webhook"

    def __init__(self, server_id: str) -> None:
        """Attach to the server device."""
        self._server_id = server_id
        self._attr_event_types = [*EVENT_TYPES, OTHER_EVENT]
        self._attr_unique_id = f"{server_id}-webhook"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, server_id)})

    async def async_added_to_hass(self) -> None:
        """Listen to the server's webhooks."""
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_webhook(self._server_id), self._on_webhook)
        )

    @callback
    def _on_webhook(self, event: WebhookEvent) -> None:
        item = event.item
        attributes: dict[str, Any] = {
            "plex_event": event.event,
            "user": event.account.title if event.account else None,
            "player": event.player.title if event.player else None,
            "title": item.title if item else None,
            "show_title": item.grandparent_title if item else None,
            "rating_key": item.rating_key if item else None,
            "media_type": item.type if item else None,
            "guids": list(item.guids) if item else [],
        }
        if event.rating is not None:
            attributes["rating"] = event.rating
        self._trigger_event(self._event_type(event.event), attributes)
        self.async_write_ha_state()

    def _event_type(self, name: str) -> str:
        """The event type to fire: the name itself where it can be, else ``other``."""
        if name in self._attr_event_types:
            return name
        extra = len(self._attr_event_types) - len(EVENT_TYPES) - 1
        if _PLEX_EVENT_NAME.fullmatch(name) is None or extra >= MAX_EXTRA_EVENT_TYPES:
            return OTHER_EVENT
        self._attr_event_types = [*self._attr_event_types, name]
        return name
