"""Stream control and playlist services: terminate_session, playlist_create/add/remove.

- `plexus.terminate_session` ends what a player plays (or a session by id) with a message the
  viewer sees. Plex allows this to the server owner with Plex Pass; a refusal is a translated error.
- `plexus.playlist_create` / `playlist_add` / `playlist_remove` change a server's playlists; items
  are rating keys, GUIDs or searches (what `play_media` accepts), all resolved before anything
  changes. The result (playlist id, title, items) is the response data. Plex keeps audio, video
  and photos in separate playlists and does not let a smart playlist be edited: both are refused
  here, naming the items or the playlist, before anything is sent.
"""

from __future__ import annotations

from typing import Final

from homeassistant.components.media_player import DOMAIN as MP_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.util.json import JsonValueType
import probatio as vol

from .const import DOMAIN
from .ids import client_id_from
from .plex import PlexAuthError, PlexError
from .plex.errors import PlexForbiddenError, PlexNotFoundError
from .plex.library import MediaItem
from .plex.playlists import (
    PlaylistAPI,
    PlaylistInfo,
    PlaylistNotFoundError,
    playlist_kind,
    playlist_type_for,
)
from .plex.resolve import MediaNotFoundError
from .plex.search_query import BadMediaIdError
from .plex.sessions import SessionWithoutIdError, terminate_player_session, terminate_session
from .runtime import PlexusConfigEntry
from .service_entry import ATTR_CONFIG_ENTRY_ID, ENTRY_SCHEMA, _entry
from .validation import ENTITY_IDS

ATTR_SESSION_ID = "session_id"
ATTR_MESSAGE = "message"
ATTR_NAME = "name"
ATTR_ITEMS = "items"
ATTR_PLAYLIST = "playlist"
ATTR_PLAYLIST_TYPE = "playlist_type"
DEFAULT_MESSAGE = "This stream was ended by the server owner."

TERMINATE_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_ENTITY_ID): ENTITY_IDS,
        vol.Optional(ATTR_SESSION_ID): cv.string,
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_MESSAGE, default=DEFAULT_MESSAGE): cv.string,
    }
)
# Each item is looked up on the server, and all of them travel in one request's URL: a cap.
MAX_ITEMS: Final = 500
ITEMS = vol.All(
    cv.ensure_list,
    vol.Length(min=1, max=MAX_ITEMS),
    [vol.All(cv.string, vol.Length(min=1, max=1000))],
)
CREATE_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Required(ATTR_NAME): vol.All(cv.string, vol.Length(min=1, max=200)),
        vol.Required(ATTR_ITEMS): ITEMS,
        vol.Optional(ATTR_PLAYLIST_TYPE): vol.In(["video", "audio", "photo"]),
    }
)
CHANGE_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Required(ATTR_PLAYLIST): vol.All(cv.string, vol.Length(min=1)),
        vol.Required(ATTR_ITEMS): ITEMS,
    }
)


def _player_target(hass: HomeAssistant, entity_id: str) -> tuple[PlexusConfigEntry, str]:
    """The loaded server entry and client id behind a Plexus media player."""
    entity = er.async_get(hass).async_get(entity_id)
    if entity is None or entity.platform != DOMAIN or entity.domain != MP_DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_player",
            translation_placeholders={"entity_id": entity_id},
        )
    entry: PlexusConfigEntry | None = hass.config_entries.async_get_entry(
        entity.config_entry_id or ""
    )
    if entry is None or entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"entry_id": entity.config_entry_id or "-"},
        )
    server_id = entry.runtime_data.coordinator.server_identifier
    client_id = client_id_from(server_id, entity.unique_id, player=True)
    if client_id is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_player",
            translation_placeholders={"entity_id": entity_id},
        )
    return entry, client_id


def _refused(entry: PlexusConfigEntry, target: str, err: PlexError) -> HomeAssistantError:
    if isinstance(err, PlexNotFoundError):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_session",
            translation_placeholders={"target": target},
        )
    placeholders = {"server": entry.title, "target": target, "error": str(err)}
    if isinstance(err, SessionWithoutIdError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="session_without_id",
            translation_placeholders={"server": entry.title, "target": target},
        )
    if isinstance(err, (PlexAuthError, PlexForbiddenError)):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="terminate_refused",
            translation_placeholders=placeholders,
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="terminate_failed",
        translation_placeholders=placeholders,
    )


async def _terminate_session(call: ServiceCall) -> None:
    entity_ids: list[str] = call.data.get(ATTR_ENTITY_ID, [])
    session_id: str | None = call.data.get(ATTR_SESSION_ID)
    message: str = call.data[ATTR_MESSAGE]
    if not entity_ids and not session_id:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="terminate_target_required"
        )
    targets = [_player_target(call.hass, entity_id) for entity_id in entity_ids]
    if session_id:
        entry = _entry(call.hass, call)
        try:
            await terminate_session(entry.runtime_data.coordinator.api, session_id, message)
        except PlexError as err:
            raise _refused(entry, session_id, err) from err
        await entry.runtime_data.coordinator.async_request_refresh()
    for (entry, client_id), entity_id in zip(targets, entity_ids, strict=True):
        coordinator = entry.runtime_data.coordinator
        try:
            await terminate_player_session(coordinator.api, client_id, message)
        except PlexError as err:
            raise _refused(entry, entity_id, err) from err
        await coordinator.async_request_refresh()


async def _resolve_items(entry: PlexusConfigEntry, media_ids: list[str]) -> list[MediaItem]:
    """Every item, or a ServiceValidationError naming the first that cannot be found."""
    coordinator = entry.runtime_data.coordinator
    items: list[MediaItem] = []
    for media_id in media_ids:
        try:
            request = await coordinator.resolver.resolve(media_id, coordinator.data.sections)
        except (BadMediaIdError, MediaNotFoundError) as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="bad_playlist_item",
                translation_placeholders={"item": media_id, "error": str(err)},
            ) from err
        except PlexError as err:
            raise _playlist_failed(entry, err) from err
        items.append(request.item)
    return items


def _playlist_failed(entry: PlexusConfigEntry, err: PlexError) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="playlist_failed",
        translation_placeholders={"server": entry.title, "error": str(err)},
    )


def _playlists(entry: PlexusConfigEntry) -> PlaylistAPI:
    coordinator = entry.runtime_data.coordinator
    return PlaylistAPI(coordinator.api, coordinator.server_identifier)


async def _find(entry: PlexusConfigEntry, name_or_id: str) -> PlaylistInfo:
    try:
        return await _playlists(entry).find(name_or_id)
    except PlaylistNotFoundError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_playlist",
            translation_placeholders={"playlist": name_or_id, "error": str(err)},
        ) from err
    except PlexError as err:
        raise _playlist_failed(entry, err) from err


def _check_fits(playlist_type: str, items: list[MediaItem]) -> None:
    """Refuse items of another kind than the playlist's (the server answers them with HTTP 400)."""
    misfits = [item for item in items if playlist_kind(item.type) != playlist_type]
    if misfits:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="playlist_wrong_kind",
            translation_placeholders={
                "playlist_type": playlist_type,
                "items": ", ".join(f"{i.title} ({i.type})" for i in misfits),
            },
        )


def _check_editable(playlist: PlaylistInfo) -> None:
    """Refuse to edit a smart playlist (its items come from its filter)."""
    if playlist.smart:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="smart_playlist",
            translation_placeholders={"playlist": playlist.title},
        )


def _listed(items: list[MediaItem]) -> list[JsonValueType]:
    return [{"rating_key": item.rating_key, "title": item.title} for item in items]


async def _response(
    entry: PlexusConfigEntry, playlist: PlaylistInfo, key: str, changed: list[JsonValueType]
) -> ServiceResponse:
    entries = await _playlists(entry).entries(playlist.id)
    return {
        "playlist_id": playlist.id,
        "title": playlist.title,
        "playlist_type": playlist.playlist_type,
        key: changed,
        "item_count": len(entries),
    }


async def _playlist_create(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    items = await _resolve_items(entry, call.data[ATTR_ITEMS])
    playlist_type = call.data.get(ATTR_PLAYLIST_TYPE) or playlist_type_for(i.type for i in items)
    _check_fits(playlist_type, items)
    try:
        playlist = await _playlists(entry).create(
            call.data[ATTR_NAME], [i.rating_key for i in items], playlist_type
        )
        return await _response(entry, playlist, "added", _listed(items))
    except PlexError as err:
        raise _playlist_failed(entry, err) from err


async def _playlist_add(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    playlist = await _find(entry, call.data[ATTR_PLAYLIST])
    _check_editable(playlist)
    items = await _resolve_items(entry, call.data[ATTR_ITEMS])
    _check_fits(playlist.playlist_type, items)
    try:
        await _playlists(entry).add(playlist.id, [i.rating_key for i in items])
        return await _response(entry, playlist, "added", _listed(items))
    except PlexError as err:
        raise _playlist_failed(entry, err) from err


async def _playlist_remove(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    playlist = await _find(entry, call.data[ATTR_PLAYLIST])
    _check_editable(playlist)
    items = await _resolve_items(entry, call.data[ATTR_ITEMS])
    try:
        removed = await _playlists(entry).remove(playlist.id, [i.rating_key for i in items])
        if not removed:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_in_playlist",
                translation_placeholders={
                    "playlist": playlist.title,
                    "items": ", ".join(i.title for i in items),
                },
            )
        changed: list[JsonValueType] = [
            {"rating_key": e.rating_key, "title": e.title} for e in removed
        ]
        return await _response(entry, playlist, "removed", changed)
    except PlexError as err:
        raise _playlist_failed(entry, err) from err


@callback
def async_setup_stream_services(hass: HomeAssistant) -> None:
    """Register stream control and playlist services (called from async_setup_services)."""
    hass.services.async_register(
        DOMAIN, "terminate_session", _terminate_session, schema=TERMINATE_SCHEMA
    )
    for name, handler, schema in (
        ("playlist_create", _playlist_create, CREATE_SCHEMA),
        ("playlist_add", _playlist_add, CHANGE_SCHEMA),
        ("playlist_remove", _playlist_remove, CHANGE_SCHEMA),
    ):
        hass.services.async_register(
            DOMAIN, name, handler, schema=schema, supports_response=SupportsResponse.OPTIONAL
        )
