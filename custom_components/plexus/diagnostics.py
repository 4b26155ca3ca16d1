"""Diagnostics for a Plexus server entry; tokens and credentials never appear."""

from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from .const import CONF_CLIENT_IDENTIFIER, CONF_DB_URL, CONF_PATH_MAPPINGS, CONF_PLEX_TV_TOKEN
from .runtime import PlexusConfigEntry

TO_REDACT = {
    CONF_TOKEN,
    CONF_PLEX_TV_TOKEN,
    CONF_CLIENT_IDENTIFIER,
    CONF_WEBHOOK_ID,
    "my_plex_username",
    "access_token",
    "user_id",
}


def redact_url(url: str) -> str:
    """Drop user info and the query (where a token can hide) from a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PlexusConfigEntry
) -> dict[str, Any]:
    """Return what helps to understand a problem with a server entry."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    entry_data = dict(entry.data)
    if CONF_URL in entry_data:
        entry_data[CONF_URL] = redact_url(entry_data[CONF_URL])
    catalog = entry.runtime_data.catalog
    catalog_stats = await catalog.async_stats()
    # File sync: which copier runs, each profile's queue counts.
    transfers = entry.runtime_data.transfers
    transfer_info = await transfers.async_diagnostics() if transfers is not None else None
    return {
        "transfers": transfer_info,
        "catalog": catalog_stats,
        # Watch tracking: the webhook path without its id (a webhook's only secret).
        "tracking": entry.runtime_data.tracking.diagnostics(),
        # Sync-play: each group's transport, members and drop/failure counters.
        "sync_groups": _sync_groups(entry),
        "entry": {
            "data": async_redact_data(entry_data, TO_REDACT),
            "options": async_redact_data(dict(entry.options), {CONF_DB_URL, CONF_PATH_MAPPINGS}),
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "update_interval_s": (
                coordinator.update_interval.total_seconds() if coordinator.update_interval else None
            ),
            "websocket_connected": coordinator.listener.connected,
            "websocket_messages": coordinator.listener.messages,
            "websocket_bad_messages": coordinator.listener.bad_messages,
        },
        "server": async_redact_data(asdict(data.info), TO_REDACT) if data else None,
        "clients": [
            asdict(c) | {"protocol_capabilities": sorted(c.protocol_capabilities)}
            for c in data.clients.values()
        ]
        if data
        else [],
        "sessions": [async_redact_data(asdict(s), TO_REDACT) for s in data.sessions]
        if data
        else [],
        "libraries": [
            {"key": s.key, "type": s.type, "title": s.title, "locations": list(s.locations)}
            for s in data.sections
        ]
        if data
        else [],
    }


def _sync_groups(entry: PlexusConfigEntry) -> list[dict[str, Any]]:
    """Each sync-play group: transport, members, and the engine's drop and failure counters."""
    return [
        {
            "name": group.name,
            "uses_mqtt": group.uses_mqtt,
            "members": sorted(group.members),
            "drop_stats": group.engine.drop_stats(),
        }
        for group in entry.runtime_data.sync_groups.values()
    ]
