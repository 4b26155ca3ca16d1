"""Per player: the audio track and the subtitles of what it plays now.

The choices are the streams of the playing item (read once per item from the server); the current
choice is what the session plays. Choosing one tells the client to switch (`setStreams`, relayed
by the server). Unavailable while nothing plays or when the client takes no remote control.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LOGGER
from .coordinator import PlexusCoordinator
from .entity import PlexusEntity, client_device_info, plex_command
from .plex import PlexError
from .plex.sessions import (
    SUBTITLES_OFF,
    ItemStreams,
    MediaStream,
    item_streams,
    live_session,
    set_audio_stream,
    set_subtitle_stream,
)
from .runtime import PlexusConfigEntry

PARALLEL_UPDATES = 1
OPTION_OFF = "off"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stream selects of every client, now and whenever a new one appears."""
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def add_new_clients() -> None:
        known = coordinator.state.known_clients
        added.intersection_update(known)
        new = [cid for cid in known if cid not in added]
        added.update(new)
        async_add_entities(
            PlexusStreamSelect(coordinator, cid, kind) for cid in new for kind in STREAM_KINDS
        )

    add_new_clients()
    entry.async_on_unload(coordinator.async_add_listener(add_new_clients))


# ---------------------------------------------------------------------------------- stream control


@dataclass(frozen=True, slots=True)
class StreamKind:
    """Audio or subtitles."""

    key: str
    subtitles: bool


STREAM_KINDS = (StreamKind("audio_track", subtitles=False), StreamKind("subtitles", subtitles=True))


def _labels(streams: tuple[MediaStream, ...]) -> dict[str, int]:
    """Option label -> stream id (a repeated title gets its stream id appended)."""
    labels: dict[str, int] = {}
    for stream in streams:
        label = stream.title if stream.title not in labels else f"{stream.title} #{stream.id}"
        labels[label] = stream.id
    return labels


class PlexusStreamSelect(PlexusEntity[PlexusCoordinator], SelectEntity):
    """The audio track or subtitles of what a client plays."""

    def __init__(self, coordinator: PlexusCoordinator, client_id: str, kind: StreamKind) -> None:
        """Create the select of one kind for a client."""
        super().__init__(coordinator)
        server_id = coordinator.server_identifier
        self.client_id = client_id
        self._kind = kind
        self._attr_translation_key = kind.key
        self._attr_unique_id = f"{server_id}-{client_id}-{kind.key}"
        self._attr_device_info = client_device_info(coordinator, client_id)
        self._streams: ItemStreams | None = None
        self._current: int | None = None
        self._loading: str | None = None

    @property
    def command_target(self) -> str:
        """The client's name, for error messages."""
        client = self.coordinator.state.known_clients.get(self.client_id)
        return client.name if client is not None else self.client_id

    @property
    def _rating_key(self) -> str | None:
        session = self.coordinator.data.session_for(self.client_id)
        return session.rating_key if session is not None else None

    @property
    def _choices(self) -> dict[str, int]:
        if self._streams is None:
            return {}
        if self._kind.subtitles:
            return {OPTION_OFF: SUBTITLES_OFF, **_labels(self._streams.subtitles)}
        return _labels(self._streams.audio)

    @property
    def available(self) -> bool:
        """Available while the client plays an item whose streams are known and takes control."""
        client = self.coordinator.state.known_clients.get(self.client_id)
        return (
            super().available
            and client is not None
            and "playback" in client.protocol_capabilities
            and self._streams is not None
            and self._streams.rating_key == self._rating_key
            and bool(self._choices)
        )

    @property
    def options(self) -> list[str]:
        """The streams of what plays."""
        return list(self._choices)

    @property
    def current_option(self) -> str | None:
        """The stream the session plays."""
        return next((label for label, sid in self._choices.items() if sid == self._current), None)

    async def async_added_to_hass(self) -> None:
        """Read the streams of what plays now."""
        await super().async_added_to_hass()
        self._follow_session()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._follow_session()
        super()._handle_coordinator_update()

    @callback
    def _follow_session(self) -> None:
        """Read the streams again when the client plays something else (or the choice moved)."""
        rating_key = self._rating_key
        if rating_key is None:
            self._streams = None
            self._current = None
            return
        if self._loading == rating_key or (
            self._streams is not None and self._streams.rating_key == rating_key
        ):
            return
        self._loading = rating_key
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self._async_load(rating_key), f"plexus streams {self.entity_id}"
        )

    async def _async_load(self, rating_key: str) -> None:
        """Read the item's streams and the session's choice; a failure leaves it unavailable."""
        api = self.coordinator.api
        try:
            streams = await item_streams(api, rating_key)
            session = await live_session(api, self.client_id)
        except PlexError as err:
            LOGGER.debug("Cannot read the streams of %s on %s: %s", rating_key, self.client_id, err)
            streams, session = None, None
        finally:
            self._loading = None
        if streams is None or self._rating_key != rating_key:
            self._streams = None
            self.async_write_ha_state()
            return
        self._streams = streams
        chosen = (
            (session.subtitle_stream_id if self._kind.subtitles else session.audio_stream_id)
            if session is not None and session.rating_key == rating_key
            else None
        )
        if chosen is None:
            listed = streams.subtitles if self._kind.subtitles else streams.audio
            chosen = next((s.id for s in listed if s.selected), None)
            if chosen is None:
                chosen = SUBTITLES_OFF if self._kind.subtitles else None
        self._current = chosen
        self.async_write_ha_state()

    async def async_select_option(self, option: str) -> None:
        """Tell the client to switch to the chosen stream."""
        # Home Assistant has checked that the option is one of `options` (our choices).
        stream_id = self._choices[option]
        await self._switch(stream_id)
        self._current = stream_id
        self.async_write_ha_state()

    @plex_command
    async def _switch(self, stream_id: int) -> None:
        control = self.coordinator.control
        if self._kind.subtitles:
            await set_subtitle_stream(control, self.client_id, stream_id)
        else:
            await set_audio_stream(control, self.client_id, stream_id)
