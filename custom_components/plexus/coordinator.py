"""One coordinator per Plex server: push from the websocket, slow polling as a fallback.

The coordinator feeds `plex.state.ServerState` (clients seen, live play states) and publishes a
snapshot (`PlexusServerData`) as its data. Live position updates from `playing` notifications do
not go through a refresh: they reach the one player concerned through a dispatcher signal.
Clients gone for longer than the stale time lose their device here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.dispatcher import async_dispatcher_send
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
from .ids import (
    client_device_identifier,
    signal_client_live,
    signal_library_changed,
    signal_notification,
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
from .plex.plextv import PlexTv
from .plex.resolve import MediaResolver
from .plex.state import ServerState, finished_activity

# Notification types that mean sessions, clients or libraries changed. Not among them:
# `transcodeSession.update` (progress of a running transcode, every second or so while one
# runs), `timeline` entries other than an item created or deleted (see `_library_changed`) and
# `activity` other than a library activity that ended (see `finished_activity`: a real server
# reports progress of thumbnail generation, butler and DVR tasks for hours).
REFRESH_NOTIFICATIONS = frozenset({"status", "transcodeSession.start", "transcodeSession.end"})
# `timeline` entry states: 9 = deleted; metadataState "created" = a new item.
TIMELINE_DELETED = 9
# The file resolutions of transcoded items: read at most this many per poll, remembered for
# this many items.
SOURCE_LOOKUPS_PER_POLL = 4
MAX_SOURCE_RESOLUTIONS = 500


def _library_changed(container: Any) -> bool:
    """True when a `timeline` notification reports an item created or deleted."""
    entries = container.get("TimelineEntry") if isinstance(container, dict) else None
    if not isinstance(entries, list):
        return False
    return any(
        isinstance(e, dict)
        and (e.get("state") == TIMELINE_DELETED or e.get("metadataState") == "created")
        for e in entries
    )


@dataclass(frozen=True, slots=True)
class LibraryStats:
    """Item count and newest item of a library section."""

    count: int
    last_added: MediaItem | None


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


async def async_scan_clients(coordinator: PlexusCoordinator) -> None:
    """Read clients and sessions now; a server that does not answer is a translated error."""
    await coordinator.async_refresh()
    if not coordinator.last_update_success:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="scan_failed",
            translation_placeholders={
                "server": coordinator.config_entry.title,
                "error": str(coordinator.last_exception or "-"),
            },
        )


class PlexusCoordinator(DataUpdateCoordinator[PlexusServerData]):
    """Keep one server's state current."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, api: PlexServerAPI) -> None:
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
        self.control = PlayerControl(api, self.server_identifier, self._playing_type)
        self.resolver = MediaResolver(self.library)
        self.state = ServerState()
        self._library_stats: dict[str, LibraryStats] = {}
        self._library_stats_stale = True
        self._plex_tv_players: list[PlexClientInfo] = []
        self._plex_tv_checked: datetime | None = None
        # rating key -> the video resolution of its file (for transcoding sessions).
        self._source_resolutions: dict[str, str] = {}

    def source_resolution(self, session: PlexSession) -> str:
        """The video resolution of the file a session plays ("" while unknown).

        A transcoding session reports what the viewer receives; the file's own is read once
        per item from its metadata.
        """
        if session.video_decision != "transcode":
            return session.video_resolution
        return self._source_resolutions.get(session.rating_key, "")

    async def _read_source_resolutions(self, sessions: list[PlexSession]) -> None:
        """Read the file resolution of items newly transcoded (a failure: tried next poll)."""
        wanted = {
            s.rating_key
            for s in sessions
            if s.video_decision == "transcode"
            and s.rating_key.isdigit()
            and s.rating_key not in self._source_resolutions
        }
        for rating_key in sorted(wanted)[:SOURCE_LOOKUPS_PER_POLL]:
            try:
                item = await self.library.metadata(rating_key)
            except PlexError as err:
                LOGGER.debug("Cannot read the resolution of item %s: %s", rating_key, err)
                continue
            if item is None:
                continue  # (gone from the library: nothing to read)
            if len(self._source_resolutions) >= MAX_SOURCE_RESOLUTIONS:
                del self._source_resolutions[next(iter(self._source_resolutions))]
            self._source_resolutions[rating_key] = item.video_resolution

    @classmethod
    def from_entry(cls, hass: HomeAssistant, entry: ConfigEntry) -> PlexusCoordinator:
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
        await self._read_source_resolutions(shown)
        now = dt_util.utcnow()
        self.state.ignored = frozenset(ignored)
        self.state.track_clients(listed, playing, self._plex_tv_players, now)
        self.state.merge_sessions(shown, now)
        self._remove_stale_clients(now)
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
        """Count each section's items (size-only requests) and find its newest item.

        What was read is kept: a failed newest-item read leaves the count; a failed count keeps
        the previous figures of that library.
        """
        stats: dict[str, LibraryStats] = {}
        for section in sections:
            item_type = {"show": "episode", "artist": "track"}.get(section.type, section.type)
            try:
                _, count = await self.library.section_items(
                    section.key, start=0, size=0, type_id=PLEX_TYPE_IDS.get(item_type)
                )
            except PlexError as err:
                LOGGER.debug("Could not count library %s: %s", section.title, err)
                if (previous := self._library_stats.get(section.key)) is not None:
                    stats[section.key] = previous
                continue
            newest: MediaItem | None = None
            try:
                found = await self.library.recently_added(1, section_key=section.key)
            except PlexError as err:
                LOGGER.debug("Could not read the newest item of %s: %s", section.title, err)
                if (previous := self._library_stats.get(section.key)) is not None:
                    newest = previous.last_added
            else:
                newest = found[0] if found else None
            stats[section.key] = LibraryStats(count, newest)
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
            self._plex_tv_players = await account_players(
                PlexTv(async_get_clientsession(self.hass), self.api.client_identifier), token
            )
        except PlexError as err:
            LOGGER.debug("plex.tv players not available: %s", err)

    @callback
    def _remove_stale_clients(self, now: datetime) -> None:
        """Remove the devices of clients gone for longer than the configured time."""
        device_registry = dr.async_get(self.hass)
        for client_id in self.state.stale(now, self.stale_after):
            self.state.forget(client_id)
            device = device_registry.async_get_device_by_identifier(
                client_device_identifier(self.server_identifier, client_id),
                self.config_entry.entry_id,
            )
            if device is not None:
                device_registry.async_update_device(
                    device.id, remove_config_entry_id=self.config_entry.entry_id
                )

    def _playing_type(self, client_id: str) -> str | None:
        """The Plex type of what a client plays (its session), for the commands sent to it."""
        session = self.data.session_for(client_id) if self.data is not None else None
        return session.media_type if session is not None else None

    @callback
    def async_forget_client(self, client_id: str) -> None:
        """Drop a client the user deleted."""
        self.state.forget(client_id)

    @callback
    def _on_notification(self, kind: str, container: dict[str, Any]) -> None:
        self.notifications += 1
        async_dispatcher_send(
            self.hass, signal_notification(self.server_identifier), kind, container
        )
        if kind == "playing" and self.data is not None:
            update = self.state.apply_playing(
                container.get("PlaySessionStateNotification"), dt_util.utcnow()
            )
            if update.complete:
                # Only positions or play/pause of known sessions: tell those players alone.
                for client_id in update.changed:
                    async_dispatcher_send(
                        self.hass, signal_client_live(self.server_identifier, client_id)
                    )
                return
            # A new or ended session: the refresh below updates every player together.
        elif kind == "timeline":
            if not _library_changed(container):
                return
            self._library_stats_stale = True
        elif kind == "activity":
            if not finished_activity(container):
                return
            # A library scan or change: counts and the catalog are read again.
            self._library_stats_stale = True
            async_dispatcher_send(self.hass, signal_library_changed(self.server_identifier))
        elif kind not in REFRESH_NOTIFICATIONS:
            return
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
