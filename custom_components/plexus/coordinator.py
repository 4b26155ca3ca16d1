"""One coordinator per Plex server: push from the websocket, slow polling as a fallback."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_IGNORED_CLIENTS,
    CONF_MONITORED_USERS,
    DOMAIN,
    LOGGER,
    POLL_INTERVAL_CONNECTED,
    POLL_INTERVAL_DISCONNECTED,
    REFRESH_COOLDOWN,
)
from .plex import (
    LibrarySection,
    NotificationListener,
    PlexAuthError,
    PlexClientInfo,
    PlexError,
    PlexServerAPI,
    PlexSession,
    ServerInfo,
)

type PlexusConfigEntry = ConfigEntry[PlexusData]

# Notification types that mean sessions, clients or libraries changed.
REFRESH_NOTIFICATIONS = frozenset(
    {"playing", "timeline", "activity", "status", "transcodeSession.update"}
)


@dataclass(frozen=True, slots=True)
class PlexusServerData:
    """A snapshot of one server, as the entities read it."""

    info: ServerInfo
    clients: dict[str, PlexClientInfo]
    sessions: list[PlexSession]
    sections: list[LibrarySection]


@dataclass(slots=True)
class PlexusData:
    """Runtime data of a server entry."""

    coordinator: PlexusCoordinator
    api: PlexServerAPI
    extra: dict[str, Any] = field(default_factory=dict)


class PlexusCoordinator(DataUpdateCoordinator[PlexusServerData]):
    """Keep one server's state current."""

    config_entry: PlexusConfigEntry

    def __init__(self, hass: HomeAssistant, entry: PlexusConfigEntry, api: PlexServerAPI) -> None:
        """Create the coordinator; the websocket starts with `async_start_push`."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"Plex server {entry.title}",
            update_interval=POLL_INTERVAL_DISCONNECTED,
            request_refresh_debouncer=Debouncer(
                hass, LOGGER, cooldown=REFRESH_COOLDOWN, immediate=True
            ),
        )
        self.api = api
        self.server_identifier: str = entry.unique_id or ""
        self.listener = NotificationListener(
            async_get_clientsession(hass, verify_ssl=api.verify_ssl),
            api.url,
            api.token,
            self._on_notification,
            self._on_websocket_state,
            verify_ssl=api.verify_ssl,
            client_identifier=api.client_identifier,
        )
        self.notifications = 0

    @classmethod
    def from_entry(cls, hass: HomeAssistant, entry: PlexusConfigEntry) -> PlexusCoordinator:
        """Build the API client and the coordinator for a config entry."""
        verify_ssl: bool = entry.data.get(CONF_VERIFY_SSL, True)
        api = PlexServerAPI(
            async_get_clientsession(hass, verify_ssl=verify_ssl),
            entry.data[CONF_URL],
            entry.data[CONF_TOKEN],
            verify_ssl=verify_ssl,
            client_identifier=entry.data.get(CONF_CLIENT_IDENTIFIER, "plexus"),
        )
        return cls(hass, entry, api)

    @property
    def ignored_clients(self) -> set[str]:
        """Clients the user asked Plexus to ignore."""
        return set(self.config_entry.options.get(CONF_IGNORED_CLIENTS, []))

    @property
    def monitored_users(self) -> set[str]:
        """Users whose sessions are shown (empty: everybody)."""
        return set(self.config_entry.options.get(CONF_MONITORED_USERS, []))

    @callback
    def async_start_push(self) -> None:
        """Open the notification websocket; it stops with the entry."""
        self.listener.start()
        self.config_entry.async_on_unload(self.listener.stop)

    @override
    async def _async_update_data(self) -> PlexusServerData:
        try:
            info, clients, sessions, sections = await asyncio.gather(
                self.api.server_info(),
                self.api.clients(),
                self.api.sessions(),
                self.api.sections(),
            )
        except PlexAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_auth",
                translation_placeholders={"server": self.config_entry.title},
            ) from err
        except PlexError as err:
            self.update_interval = POLL_INTERVAL_DISCONNECTED
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="server_unreachable",
                translation_placeholders={"server": self.config_entry.title, "error": str(err)},
            ) from err
        self.update_interval = (
            POLL_INTERVAL_CONNECTED if self.listener.connected else POLL_INTERVAL_DISCONNECTED
        )
        ignored = self.ignored_clients
        users = self.monitored_users
        return PlexusServerData(
            info=info,
            clients={
                c.machine_identifier: c for c in clients if c.machine_identifier not in ignored
            },
            sessions=[
                s
                for s in sessions
                if s.player_identifier not in ignored and (not users or s.user in users)
            ],
            sections=sections,
        )

    @callback
    def _on_notification(self, kind: str, container: dict[str, Any]) -> None:
        self.notifications += 1
        if kind in REFRESH_NOTIFICATIONS:
            self.config_entry.async_create_background_task(
                self.hass, self.async_request_refresh(), "plexus refresh on notification"
            )

    @callback
    def _on_websocket_state(self, connected: bool, error: Exception | None) -> None:
        LOGGER.debug(
            "Websocket of %s %s%s",
            self.config_entry.title,
            "connected" if connected else "disconnected",
            f" ({type(error).__name__})" if error else "",
        )
        if connected:
            self.update_interval = POLL_INTERVAL_CONNECTED
            if not self.last_update_success:
                # The server is back: refresh now instead of waiting for the next poll.
                self.config_entry.async_create_background_task(
                    self.hass, self.async_request_refresh(), "plexus refresh on reconnect"
                )
        else:
            # Check at once whether the server is gone (the poll then runs every 10 s) or only
            # the websocket dropped.
            self.update_interval = POLL_INTERVAL_DISCONNECTED
            if self.last_update_success and not self.hass.is_stopping:
                self.config_entry.async_create_background_task(
                    self.hass, self.async_request_refresh(), "plexus refresh on disconnect"
                )
