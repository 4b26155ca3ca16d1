"""Plex clients as media players."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .browse_media import async_browse_media, async_get_browse_image, resolve_media_id
from .catalog_manager import CatalogCoordinator
from .const import DOMAIN, MANUFACTURER
from .coordinator import PlexusCoordinator
from .entity import PlexusEntity, plex_command
from .ids import client_device_identifier, player_unique_id, signal_client_live
from .plex import PlexClientInfo, PlexError, PlexSession
from .plex.control import PlayerControl
from .plex.resolve import PlayRequest
from .runtime import PlexusConfigEntry

PARALLEL_UPDATES = 0

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
        client = coordinator.state.known_clients[client_id]
        self._attr_device_info = DeviceInfo(
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
        self._volume: float | None = None
        self._muted_volume: float | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the coordinator, and this client's own live updates."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_client_live(self.coordinator.server_identifier, self.client_id),
                self.async_write_ha_state,
            )
        )

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
        """Position in seconds when it was last reported."""
        live = self.coordinator.state.live.get(self.client_id)
        return None if live is None else live.position_ms // 1000

    @property
    def media_position_updated_at(self) -> datetime | None:
        """When the position was valid (HA advances it while playing)."""
        live = self.coordinator.state.live.get(self.client_id)
        return None if live is None else live.updated_at

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
        """The last volume Plexus set (Plex does not report it)."""
        return self._volume

    @property
    def is_volume_muted(self) -> bool | None:
        """Muted through Plexus."""
        return self._muted_volume is not None if self._volume is not None else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Who watches what, and how it streams."""
        session = self.session
        if session is None:
            return {"product": self.client.product}
        progress = (
            round(
                100
                * (self.coordinator.state.live[self.client_id].position_ms)
                / session.duration_ms
            )
            if session.duration_ms and self.client_id in self.coordinator.state.live
            else None
        )
        return {
            "product": self.client.product,
            "user": session.user,
            "decision": {"copy": "direct_stream", "directplay": "direct_play"}.get(
                session.decision, session.decision
            ),
            "quality": session.video_resolution or None,
            "video_resolution": session.video_resolution or None,
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
        self._muted_volume = None
        self.async_write_ha_state()

    @plex_command
    async def async_mute_volume(self, mute: bool) -> None:
        """Plex has no mute: set the volume to 0 and back."""
        if mute:
            previous = self._volume if self._volume is not None else 1.0
            await self._control.set_volume(self.client_id, 0)
            self._muted_volume = previous
            self._volume = self._volume if self._volume is not None else 1.0
        else:
            restore = self._muted_volume if self._muted_volume is not None else 1.0
            await self._control.set_volume(self.client_id, round(restore * 100))
            self._volume = restore
            self._muted_volume = None
        self.async_write_ha_state()

    async def async_play_media(
        self, media_type: MediaType | str, media_id: str, **kwargs: Any
    ) -> None:
        """Play a rating key, a GUID, a search, or an item picked in the media browser."""
        await self._play_media(media_id)

    @plex_command
    async def _play_media(self, media_id: str) -> None:
        request: PlayRequest | None = None
        browsed = await resolve_media_id(self.hass, self.coordinator, media_id)
        if browsed is not None:
            request = PlayRequest(browsed)
        else:
            request = await self.coordinator.resolver.resolve(
                media_id, self.coordinator.data.sections
            )
        await self._control.play_media(
            self.client_id,
            request.item.rating_key,
            request.item.type,
            offset_ms=request.offset_ms,
            shuffle=request.shuffle,
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
