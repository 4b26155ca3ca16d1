"""Plex clients as media players."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.media_player import (
    BrowseMedia,
    MediaClass,
    MediaPlayerEntity,
    MediaPlayerEntityFeature,
    MediaPlayerState,
    MediaType,
)
from homeassistant.components.media_player.browse_media import (
    SearchMedia,
    SearchMediaQuery,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .browse_media import async_browse_media, async_get_browse_image, resolve_media_id
from .catalog_manager import CatalogCoordinator
from .const import DOMAIN
from .coordinator import PlexusCoordinator
from .entity import PlexusEntity, client_device_info, plex_command
from .ids import player_unique_id, signal_client_live
from .plex import PlexClientInfo, PlexError, PlexSession
from .plex.control import PlayerControl
from .plex.resolve import PlayRequest
from .runtime import PlexusConfigEntry

PARALLEL_UPDATES = 0
# Plex's decision words, as the attributes show them.
_DECISION_NAMES = {"copy": "direct_stream", "directplay": "direct_play", "transcode": "transcode"}
# How long a client may take to report the item it was told to play (buffering counts).
PLAY_START_TIMEOUT: Final = 15.0
# Once it plays, how long to wait for the session that describes it.
SESSION_WAIT: Final = 3.0
# A reported position this far (s) from the one extrapolated since the last write is a real
# change (a seek on the device); closer, the frontend's own extrapolation is right (as Sonos).
POSITION_TOLERANCE: Final = 1.5

PLAYBACK_FEATURES = (
    MediaPlayerEntityFeature.PAUSE
    | MediaPlayerEntityFeature.PLAY
    | MediaPlayerEntityFeature.STOP
    | MediaPlayerEntityFeature.SEEK
    | MediaPlayerEntityFeature.NEXT_TRACK
    | MediaPlayerEntityFeature.PREVIOUS_TRACK
    | MediaPlayerEntityFeature.PLAY_MEDIA
    | MediaPlayerEntityFeature.BROWSE_MEDIA
    | MediaPlayerEntityFeature.SEARCH_MEDIA
)
VOLUME_FEATURES = (
    MediaPlayerEntityFeature.VOLUME_SET
    | MediaPlayerEntityFeature.VOLUME_STEP
    | MediaPlayerEntityFeature.VOLUME_MUTE
)
STATES = {
    "playing": MediaPlayerState.PLAYING,
    "paused": MediaPlayerState.PAUSED,
    "buffering": MediaPlayerState.BUFFERING,
}
CONTENT_TYPES = {
    "movie": MediaType.MOVIE,
    "episode": MediaType.EPISODE,
    "track": MediaType.MUSIC,
    "clip": MediaType.VIDEO,
    "photo": MediaType.IMAGE,
}
SEARCH_CLASSES = {
    MediaClass.MOVIE: ("movie",),
    MediaClass.TV_SHOW: ("show",),
    MediaClass.EPISODE: ("episode",),
    MediaClass.ARTIST: ("artist",),
    MediaClass.ALBUM: ("album",),
    MediaClass.TRACK: ("track",),
    MediaClass.MUSIC: ("artist", "album", "track"),
    MediaClass.VIDEO: ("movie", "episode"),
}
ITEM_CLASSES = {
    "movie": (MediaClass.MOVIE, MediaType.MOVIE),
    "show": (MediaClass.TV_SHOW, MediaType.TVSHOW),
    "season": (MediaClass.SEASON, MediaType.SEASON),
    "episode": (MediaClass.EPISODE, MediaType.EPISODE),
    "artist": (MediaClass.ARTIST, MediaType.ARTIST),
    "album": (MediaClass.ALBUM, MediaType.ALBUM),
    "track": (MediaClass.TRACK, MediaType.TRACK),
}


def client_features(client: PlexClientInfo) -> MediaPlayerEntityFeature:
    """Return what a client can do, from the capabilities it advertises."""
    if "playback" not in client.protocol_capabilities:
        return MediaPlayerEntityFeature(0)
    return PLAYBACK_FEATURES | VOLUME_FEATURES


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a player for every client, now and whenever a new one appears.

    The coordinator removes the devices (and so the players) of clients gone for too long; a
    client that comes back later gets a new player.
    """
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def add_new_clients() -> None:
        known = coordinator.state.known_clients
        added.intersection_update(known)
        new = [cid for cid in known if cid not in added]
        added.update(new)
        if new:
            async_add_entities(PlexusMediaPlayer(coordinator, cid) for cid in new)

    add_new_clients()
    entry.async_on_unload(coordinator.async_add_listener(add_new_clients))


class PlexusMediaPlayer(PlexusEntity[PlexusCoordinator], MediaPlayerEntity):
    """One Plex client."""

    _attr_name = None
    _attr_translation_key = "player"
    _attr_media_image_remotely_accessible = False

    def __init__(self, coordinator: PlexusCoordinator, client_id: str) -> None:
        """Create the player for a client."""
        super().__init__(coordinator)
        self.client_id = client_id
        self._attr_unique_id = player_unique_id(coordinator.server_identifier, client_id)
        self._attr_device_info = client_device_info(coordinator, client_id)
        # What Plexus set (Plex reports no volume): None until then.
        self._volume: float | None = None
        self._muted = False
        self._volume_before_mute: float | None = None
        # Set whenever new live or polled state arrived (play_media waits on it).
        self._state_arrived = asyncio.Event()
        # The position as last written, the instant it was valid, and what it belonged to
        # (state, item, session): written again only on a real change.
        self._position: int | None = None
        self._position_at: datetime | None = None
        self._position_basis: tuple[str, str, str] | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the coordinator, and this client's own live updates."""
        self._update_position()
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_client_live(self.coordinator.server_identifier, self.client_id),
                self._handle_live_update,
            )
        )

    @callback
    def _handle_live_update(self) -> None:
        """A notification changed this client's play state or position.

        Steady play (the position moving with the clock) writes nothing: HA's frontend advances
        `media_position` from `media_position_updated_at` itself.
        """
        self._state_arrived.set()
        if self._update_position():
            self.async_write_ha_state()

    @callback
    def _handle_coordinator_update(self) -> None:
        """A poll or a refresh read the server's clients and sessions."""
        self._state_arrived.set()
        self._update_position()
        super()._handle_coordinator_update()

    @callback
    def _update_position(self) -> bool:
        """Take the live position if it is a real change; True when something changed."""
        live = self.coordinator.state.live.get(self.client_id)
        if live is None:
            changed = self._position_basis is not None
            self._position = self._position_at = self._position_basis = None
            return changed
        basis = (live.state, live.rating_key, live.session_key)
        if (
            basis == self._position_basis
            and self._position is not None
            and self._position_at is not None
        ):
            elapsed = (
                (live.updated_at - self._position_at).total_seconds()
                if live.state == "playing"
                else 0.0
            )
            if abs(live.position_ms / 1000 - (self._position + elapsed)) <= POSITION_TOLERANCE:
                return False
        self._position_basis = basis
        self._position = live.position_ms // 1000
        # The instant the whole second was valid, so extrapolating from it stays exact.
        self._position_at = live.updated_at - timedelta(milliseconds=live.position_ms % 1000)
        return True

    # ------------------------------------------------------------------ state

    @property
    def client(self) -> PlexClientInfo:
        """The client as last seen."""
        return self.coordinator.state.known_clients.get(
            self.client_id, PlexClientInfo(machine_identifier=self.client_id, name=self.client_id)
        )

    @property
    def command_target(self) -> str:
        """The client's name, for error messages."""
        return self.client.name

    @property
    def session(self) -> PlexSession | None:
        """The client's session, if it plays something."""
        return self.coordinator.data.session_for(self.client_id)

    @property
    def available(self) -> bool:
        """Available while the server is reachable and the client is known."""
        return super().available and self.client_id in self.coordinator.state.known_clients

    @property
    def supported_features(self) -> MediaPlayerEntityFeature:
        """What this client accepts."""
        return client_features(self.client)

    @property
    def state(self) -> MediaPlayerState:
        """Playing/paused/buffering from the live state; idle while listed; else off."""
        live = self.coordinator.state.live.get(self.client_id)
        if live is not None:
            return STATES.get(live.state, MediaPlayerState.PLAYING)
        if self.client_id in self.coordinator.data.clients:
            return MediaPlayerState.IDLE
        return MediaPlayerState.OFF

    @property
    def media_position(self) -> int | None:
        """Position in seconds at `media_position_updated_at` (changed only on a real change)."""
        return self._position

    @property
    def media_position_updated_at(self) -> datetime | None:
        """When the position was valid (HA advances it while playing)."""
        return self._position_at

    @property
    def media_duration(self) -> int | None:
        """Duration in seconds."""
        session = self.session
        return session.duration_ms // 1000 if session and session.duration_ms else None

    @property
    def media_content_id(self) -> str | None:
        """Rating key of what plays."""
        live = self.coordinator.state.live.get(self.client_id)
        if live is not None and live.rating_key:
            return live.rating_key
        return self.session.rating_key if self.session else None

    @property
    def media_content_type(self) -> MediaType | str | None:
        """Type of what plays."""
        session = self.session
        return CONTENT_TYPES.get(session.media_type, MediaType.VIDEO) if session else None

    @property
    def media_title(self) -> str | None:
        """Title of what plays."""
        return self.session.title if self.session else None

    @property
    def media_series_title(self) -> str | None:
        """The show, for an episode."""
        session = self.session
        return session.grandparent_title if session and session.media_type == "episode" else None

    @property
    def media_season(self) -> str | None:
        """Season number, for an episode."""
        session = self.session
        return str(session.season) if session and session.season is not None else None

    @property
    def media_episode(self) -> str | None:
        """Episode number, for an episode."""
        session = self.session
        return str(session.episode) if session and session.episode is not None else None

    @property
    def media_artist(self) -> str | None:
        """The artist, for a track."""
        session = self.session
        return session.grandparent_title if session and session.media_type == "track" else None

    @property
    def media_album_name(self) -> str | None:
        """The album, for a track."""
        session = self.session
        return session.parent_title if session and session.media_type == "track" else None

    @property
    def media_image_url(self) -> str | None:
        """Artwork URL without the token (HA's proxy fetches it through async_get_media_image)."""
        session = self.session
        if session is None or not session.thumb:
            return None
        return f"{self.coordinator.api.url}{session.thumb}"

    @property
    def volume_level(self) -> float | None:
        """The last volume Plexus set; None (unknown) until then: Plex does not report it."""
        return self._volume

    @property
    def is_volume_muted(self) -> bool | None:
        """Muted through Plexus; None while nothing is known about the volume."""
        if self._muted:
            return True
        return False if self._volume is not None else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Who watches what, and how it streams."""
        session = self.session
        if session is None:
            return {"product": self.client.product}
        progress = (
            round(100_000 * self._position / session.duration_ms)
            if session.duration_ms and self._position is not None
            else None
        )
        return {
            "product": self.client.product,
            "user": session.user,
            "decision": _DECISION_NAMES.get(session.decision, session.decision),
            "video_decision": _DECISION_NAMES.get(session.video_decision or ""),
            "audio_decision": _DECISION_NAMES.get(session.audio_decision or ""),
            "quality": session.video_resolution or None,
            "video_resolution": session.video_resolution or None,
            # (the file's: a 4K film transcoded to 720p reports 720 above)
            "source_video_resolution": self.coordinator.source_resolution(session) or None,
            "transcode_reasons": list(session.transcode_reasons),
            "progress": progress,
            "bandwidth_kbps": session.bandwidth_kbps,
            "location": session.location,
        }

    async def async_get_media_image(self) -> tuple[bytes | None, str | None]:
        """Fetch the artwork through the server (token in a header, never in a URL)."""
        session = self.session
        if session is None or not session.thumb:
            return None, None
        try:
            body = await self.coordinator.api.request(session.thumb)
        except PlexError:
            return None, None
        return body, "image/jpeg"

    # ------------------------------------------------------------------ control

    @property
    def _control(self) -> PlayerControl:
        return self.coordinator.control

    @property
    def _catalog(self) -> CatalogCoordinator:
        entry: PlexusConfigEntry = self.coordinator.config_entry
        return entry.runtime_data.catalog

    @plex_command
    async def async_media_play(self) -> None:
        """Resume."""
        await self._control.play(self.client_id)

    @plex_command
    async def async_media_pause(self) -> None:
        """Pause."""
        await self._control.pause(self.client_id)

    @plex_command
    async def async_media_stop(self) -> None:
        """Stop."""
        await self._control.stop(self.client_id)

    @plex_command
    async def async_media_seek(self, position: float) -> None:
        """Seek to a position in seconds."""
        await self._control.seek(self.client_id, int(position * 1000))

    @plex_command
    async def async_media_next_track(self) -> None:
        """Next item."""
        await self._control.skip_next(self.client_id)

    @plex_command
    async def async_media_previous_track(self) -> None:
        """Previous item."""
        await self._control.skip_previous(self.client_id)

    @plex_command
    async def async_set_volume_level(self, volume: float) -> None:
        """Set the volume (0..1)."""
        await self._control.set_volume(self.client_id, round(volume * 100))
        self._volume = volume
        self._muted = False
        self.async_write_ha_state()

    @plex_command
    async def async_mute_volume(self, mute: bool) -> None:
        """Plex has no mute: set the volume to 0, and back to what it was (full if unknown)."""
        if mute:
            await self._control.set_volume(self.client_id, 0)
            if not self._muted:
                self._volume_before_mute = self._volume
            self._muted = True
        else:
            restore = self._volume_before_mute if self._volume_before_mute is not None else 1.0
            await self._control.set_volume(self.client_id, round(restore * 100))
            self._volume = restore
            self._muted = False
        self.async_write_ha_state()

    async def async_play_media(
        self, media_type: MediaType | str, media_id: str, **kwargs: Any
    ) -> None:
        """Play a rating key, a GUID, a search, or an item picked in the media browser."""
        await self._play_media(media_id)

    @plex_command
    async def _play_media(self, media_id: str) -> None:
        request: PlayRequest | None = None
        resolver = self.coordinator.resolver
        browsed = await resolve_media_id(self.hass, self.coordinator, media_id)
        if browsed is not None:
            request = PlayRequest(browsed)
        else:
            request = await resolver.resolve(
                media_id,
                self.coordinator.data.sections,
                find_by_guids=self._catalog.async_find_by_guids,
            )
        request = await resolver.starting_point(request)
        queue = await self._control.play_media(
            self.client_id,
            request.item.rating_key,
            request.item.type,
            offset_ms=request.offset_ms,
            shuffle=request.shuffle,
            start_key=request.start_key,
            playlist_type=request.item.playlist_type,
        )
        await self._confirm_playing(queue.selected_key, request.item.title)

    def _plays(self, rating_key: str) -> bool:
        live = self.coordinator.state.live.get(self.client_id)
        return live is not None and live.rating_key == rating_key

    def _described(self, rating_key: str) -> bool:
        session = self.session
        return self._plays(rating_key) and session is not None and session.rating_key == rating_key

    async def _confirm_playing(self, rating_key: str, title: str) -> None:
        """Wait until the client reports the item; a command without effect is an error.

        Clients answer playMedia at once and act later (or never: an app in the background, an
        item it cannot play). Live notifications usually confirm within a second; a refresh of
        the sessions is the last check. Once it plays, the session (title, artwork) is awaited
        briefly so the state written next describes it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PLAY_START_TIMEOUT
        while not self._described(rating_key) and (remaining := deadline - loop.time()) > 0:
            if self._plays(rating_key):
                remaining = min(remaining, SESSION_WAIT)
                deadline = loop.time() + remaining
            self._state_arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._state_arrived.wait()
            except TimeoutError:
                break
        if not self._plays(rating_key):
            await self.coordinator.async_refresh()
        if not self._plays(rating_key):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="play_not_started",
                translation_placeholders={
                    "client": self.client.name,
                    "title": title,
                    "seconds": str(round(PLAY_START_TIMEOUT)),
                },
            )

    # ------------------------------------------------------------------ browse & search

    async def async_browse_media(
        self,
        media_content_type: MediaType | str | None = None,
        media_content_id: str | None = None,
    ) -> BrowseMedia:
        """Browse the server's libraries."""
        return await async_browse_media(
            self.hass,
            self.coordinator,
            media_content_type,
            media_content_id,
            self.get_browse_image_url,
        )

    async def async_get_browse_image(
        self,
        media_content_type: MediaType | str,
        media_content_id: str,
        media_image_id: str | None = None,
    ) -> tuple[bytes | None, str | None]:
        """Serve a browser thumbnail through HA's proxy."""
        return await async_get_browse_image(
            self.hass, self.coordinator, media_content_id, media_image_id
        )

    async def async_search_media(self, query: SearchMediaQuery) -> SearchMedia:
        """Find items like a person names them (for Assist's "play X on Y")."""
        types: set[str] = set()
        for media_class in query.media_filter_classes or ():
            types.update(SEARCH_CLASSES.get(MediaClass(media_class), ()))
        items = await self._catalog.async_search_media(query.search_query, types or None, limit=10)
        return SearchMedia(
            result=[
                BrowseMedia(
                    title=f"{item.title} ({item.year})" if item.year else item.title,
                    media_class=ITEM_CLASSES.get(item.type, (MediaClass.VIDEO, ""))[0],
                    media_content_type=ITEM_CLASSES.get(item.type, ("", MediaType.VIDEO))[1],
                    media_content_id=item.rating_key,
                    can_play=True,
                    can_expand=False,
                )
                for item in items
            ]
        )
