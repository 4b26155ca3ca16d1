"""One coordinator per Plex server: push from the websocket, slow polling as a fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_IGNORED_CLIENTS,
    CONF_MONITORED_USERS,
    CONF_PLEX_TV_TOKEN,
    CONF_STALE_MINUTES,
    DEFAULT_STALE_MINUTES,
    DOMAIN,
    LOGGER,
    PLEX_TV_PLAYERS_INTERVAL,
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
from .plex.account import account_players
from .plex.control import PlayerControl
from .plex.library import PLEX_TYPE_IDS, MediaItem, PlexLibrary
from .plex.resolve import MediaResolver
from .plex.search import LibrarySearch

if TYPE_CHECKING:
    from .catalog_manager import CatalogManager
    from .sync import SyncGroup

type PlexusConfigEntry = ConfigEntry[PlexusData]

# Notification types that mean sessions, clients or libraries changed.
REFRESH_NOTIFICATIONS = frozenset({"timeline", "activity", "status", "transcodeSession.update"})
PLAYER_STATES = frozenset({"playing", "paused", "buffering"})


@dataclass(frozen=True, slots=True)
class LibraryStats:
    """Item count and newest item of a library section."""

    count: int
    last_added: MediaItem | None


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a client is doing right now, from the newest notification or session."""

    state: str
    rating_key: str
    session_key: str
    position_ms: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PlexusServerData:
    """A snapshot of one server, as the entities read it."""

    info: ServerInfo
    clients: dict[str, PlexClientInfo]
    sessions: list[PlexSession]
    sections: list[LibrarySection]
    library_stats: dict[str, LibraryStats] = field(default_factory=dict)

    def session_for(self, client_id: str) -> PlexSession | None:
        """Return the session playing on a client, if any."""
        return next((s for s in self.sessions if s.player_identifier == client_id), None)


@dataclass(slots=True)
class PlexusData:
    """Runtime data of a server entry."""

    coordinator: PlexusCoordinator
    api: PlexServerAPI
    catalog: CatalogManager | None = None
    sync_groups: dict[str, SyncGroup] = field(default_factory=dict)


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
        self.library = PlexLibrary(api)
        self.control = PlayerControl(api, self.server_identifier)
        self.resolver = MediaResolver(self.library)
        self._search: LibrarySearch | None = None
        self._library_stats: dict[str, LibraryStats] = {}
        self._library_stats_stale = True
        self._plex_tv_players: list[PlexClientInfo] = []
        self._plex_tv_checked: datetime | None = None
        self._search_lock = asyncio.Lock()
        self.live: dict[str, LiveState] = {}
        # Per-client listeners: a position or play/pause update touches one entity, not all.
        self._client_listeners: dict[str, list[Callable[[], None]]] = {}
        self._scan_listeners: list[Callable[[], None]] = []
        self._notification_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        # Every client seen (listed or playing), with the last time it was seen.
        self.known_clients: dict[str, PlexClientInfo] = {}
        self.last_seen: dict[str, datetime] = {}

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

    @property
    def stale_after(self) -> timedelta:
        """How long a client may be gone before its player is removed."""
        return timedelta(
            minutes=self.config_entry.options.get(CONF_STALE_MINUTES, DEFAULT_STALE_MINUTES)
        )

    async def async_search_index(self) -> LibrarySearch:
        """Return the library search index (read on first use and after a library scan)."""
        async with self._search_lock:
            if self._search is None:
                search = LibrarySearch()
                await search.load(self.library, self.data.sections if self.data else [])
                self._search = search
            return self._search

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
        listed = {c.machine_identifier: c for c in clients if c.machine_identifier not in ignored}
        playing = [s for s in sessions if s.player_identifier not in ignored]
        shown = [s for s in playing if not users or s.user in users]
        await self._read_plex_tv_players()
        self._track_clients(listed, playing)
        self._merge_live(shown)
        if self._library_stats_stale:
            self._library_stats = await self._read_library_stats(sections)
            self._library_stats_stale = False
        return PlexusServerData(
            info=info,
            clients=listed,
            sessions=shown,
            sections=sections,
            library_stats=self._library_stats,
        )

    async def _read_library_stats(self, sections: list[LibrarySection]) -> dict[str, LibraryStats]:
        """Count each section's items (size-only requests) and find its newest item."""
        stats: dict[str, LibraryStats] = {}
        for section in sections:
            item_type = {"show": "episode", "artist": "track"}.get(section.type, section.type)
            try:
                _, count = await self.library.section_items(
                    section.key, start=0, size=0, type_id=PLEX_TYPE_IDS.get(item_type)
                )
                newest = await self.library.recently_added(1, section_key=section.key)
            except PlexError as err:
                LOGGER.debug("Could not count library %s: %s", section.title, err)
                continue
            stats[section.key] = LibraryStats(count, newest[0] if newest else None)
        return stats

    async def _read_plex_tv_players(self) -> None:
        """Every 10 minutes, ask plex.tv which of the account's players are online."""
        token = self.config_entry.data.get(CONF_PLEX_TV_TOKEN)
        now = dt_util.utcnow()
        if not token or (
            self._plex_tv_checked is not None
            and now - self._plex_tv_checked < PLEX_TV_PLAYERS_INTERVAL
        ):
            return
        self._plex_tv_checked = now
        try:
            self._plex_tv_players = await self.hass.async_add_executor_job(
                account_players, token, self.api.client_identifier
            )
        except PlexError as err:
            LOGGER.debug("plex.tv players not available: %s", err)

    def _track_clients(
        self, listed: dict[str, PlexClientInfo], sessions: list[PlexSession]
    ) -> None:
        """Remember every client seen; players that only appear in sessions count too."""
        now = dt_util.utcnow()
        for player in self._plex_tv_players:
            if player.machine_identifier not in listed:
                self.known_clients.setdefault(player.machine_identifier, player)
                self.last_seen[player.machine_identifier] = now
        for client_id, client in listed.items():
            self.known_clients[client_id] = client
            self.last_seen[client_id] = now
        for session in sessions:
            client_id = session.player_identifier
            if client_id not in listed:
                self.known_clients.setdefault(
                    client_id,
                    PlexClientInfo(
                        machine_identifier=client_id,
                        name=session.player_title or client_id,
                        product=session.player_product,
                        platform=session.player_platform,
                        address=session.player_address,
                    ),
                )
            self.last_seen[client_id] = now
        for client_id in self.ignored_clients & set(self.known_clients):
            self.forget_client(client_id)

    @callback
    def forget_client(self, client_id: str) -> None:
        """Drop a client (stale, ignored or deleted by the user)."""
        self.known_clients.pop(client_id, None)
        self.last_seen.pop(client_id, None)
        self.live.pop(client_id, None)

    def _merge_live(self, sessions: list[PlexSession]) -> None:
        """Take positions from sessions unless a notification told us something newer."""
        now = dt_util.utcnow()
        fresh: dict[str, LiveState] = {}
        for session in sessions:
            current = self.live.get(session.player_identifier)
            if (
                current is not None
                and current.session_key == session.session_key
                and now - current.updated_at < POLL_INTERVAL_DISCONNECTED
            ):
                fresh[session.player_identifier] = replace(
                    current, rating_key=session.rating_key or current.rating_key
                )
                continue
            fresh[session.player_identifier] = LiveState(
                state=session.state if session.state in PLAYER_STATES else "playing",
                rating_key=session.rating_key,
                session_key=session.session_key,
                position_ms=session.view_offset_ms,
                updated_at=now,
            )
        self.live = fresh

    @callback
    def _on_notification(self, kind: str, container: dict[str, Any]) -> None:
        self.notifications += 1
        for notify in list(self._notification_listeners):
            notify(kind, container)
        if kind == "playing":
            changed: set[str] = set()
            if self._apply_playing(container.get("PlaySessionStateNotification"), changed):
                for client_id in changed:
                    for listener in self._client_listeners.get(client_id, ()):
                        listener()
                return
        elif kind not in REFRESH_NOTIFICATIONS:
            return
        elif kind == "activity":
            # A library scan or change: read the library again at the next search.
            with contextlib.suppress(KeyError, TypeError):
                entries = container.get("ActivityNotification") or []
                if any(e.get("event") == "ended" for e in entries):
                    self._search = None
                    self._library_stats_stale = True
                    for listener in list(self._scan_listeners):
                        listener()
        self.config_entry.async_create_background_task(
            self.hass, self.async_request_refresh(), "plexus refresh on notification"
        )

    @callback
    def async_add_notification_listener(
        self, listener: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Hand every websocket notification to `listener` (sync-play members use this)."""
        self._notification_listeners.append(listener)
        return lambda: self._notification_listeners.remove(listener)

    @callback
    def async_add_scan_listener(self, update: Callable[[], None]) -> Callable[[], None]:
        """Call `update` when the server reports a finished library scan or change."""
        self._scan_listeners.append(update)
        return lambda: self._scan_listeners.remove(update)

    @callback
    def async_add_client_listener(
        self, client_id: str, update: Callable[[], None]
    ) -> Callable[[], None]:
        """Call `update` when a notification changes this client's live state."""
        self._client_listeners.setdefault(client_id, []).append(update)

        def remove() -> None:
            self._client_listeners[client_id].remove(update)

        return remove

    def _apply_playing(self, entries: Any, changed: set[str]) -> bool:
        """Update live states from `playing` notifications.

        Returns True when that was all that changed (position or play/pause of a known session),
        False when the sessions must be read again (a new or ended session, or bad data).
        """
        if not isinstance(entries, list) or self.data is None:
            return False
        now = dt_util.utcnow()
        complete = True
        for entry in entries:
            if not isinstance(entry, dict):
                complete = False
                continue
            client_id = entry.get("clientIdentifier")
            state = entry.get("state")
            if not isinstance(client_id, str) or client_id in self.ignored_clients:
                continue
            current = self.live.get(client_id)
            session_key = str(entry.get("sessionKey", ""))
            if state not in PLAYER_STATES:
                self.live.pop(client_id, None)
                complete = False
                continue
            if current is None or current.session_key != session_key:
                complete = False
            try:
                position = int(entry.get("viewOffset", 0))
            except TypeError, ValueError:
                position = current.position_ms if current else 0
            changed.add(client_id)
            self.live[client_id] = LiveState(
                state=str(state),
                rating_key=str(entry.get("ratingKey", "")),
                session_key=session_key,
                position_ms=position,
                updated_at=now,
            )
        return complete

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
