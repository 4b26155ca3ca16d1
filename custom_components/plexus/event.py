"""Event entities of a Plex server.

Watch tracking: one `event` entity per server fires for every accepted webhook of that server.
Its event types are the events Plex documents plus ``other``: an event Plex adds later is not
dropped but fired as ``other`` with the raw name in the ``plex_event`` attribute (and on the bus as
itself, `plexus_webhook`).
"""

from __future__ import annotations

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
        self._trigger_event(event.event if event.known_event else OTHER_EVENT, attributes)
        self.async_write_ha_state()
