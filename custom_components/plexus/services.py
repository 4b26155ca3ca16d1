"""Server-level services: refresh a library, scan for clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonValueType
import probatio as vol

from .catalog import GuidRef, SearchHit
from .catalog_manager import CatalogCoordinator
from .const import DOMAIN
from .coordinator import async_scan_clients
from .plex import PlexError
from .plex.resolve import MediaNotFoundError
from .plex.search_query import BadMediaIdError
from .runtime import PlexusConfigEntry
from .service_entry import ENTRY_SCHEMA, _entry
from .services_stream import async_setup_stream_services
from .services_tracking import async_setup_tracking_services
from .services_transfer import async_setup_transfer_services
from .sync import SyncGroup, media_ref
from .syncplay import (
    CommandResult,
    InvalidPositionError,
    MediaRef,
    NothingPlayingError,
    SyncError,
)
from .validation import ENTITY_IDS, POSITION, whole

ATTR_LIBRARY_NAME = "library_name"
SERVICE_REFRESH_LIBRARY = "refresh_library"
SERVICE_SCAN_CLIENTS = "scan_clients"
SERVICE_IMPORT_LIBRARY = "import_library"
SERVICE_SEARCH = "search"
ATTR_MODE = "mode"
ATTR_LIBRARIES = "libraries"
ATTR_QUERY = "query"
ATTR_TYPE = "type"
ATTR_YEAR = "year"
ATTR_LIMIT = "limit"
ITEM_TYPES = ["movie", "show", "season", "episode", "artist", "album", "track"]

REFRESH_SCHEMA = ENTRY_SCHEMA.extend({vol.Optional(ATTR_LIBRARY_NAME): cv.string})
IMPORT_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Optional(ATTR_MODE, default="incremental"): vol.In(["incremental", "full"]),
        vol.Optional(ATTR_LIBRARIES): vol.All(cv.ensure_list, [cv.string]),
    }
)
SEARCH_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Required(ATTR_QUERY): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_TYPE): vol.All(cv.ensure_list, [vol.In(ITEM_TYPES)]),
        vol.Optional(ATTR_YEAR): vol.All(whole, vol.Range(min=1800, max=2200)),
        vol.Optional(ATTR_LIMIT, default=10): vol.All(whole, vol.Range(min=1, max=100)),
    }
)


async def _refresh_library(call: ServiceCall) -> None:
    entry = _entry(call.hass, call)
    coordinator = entry.runtime_data.coordinator
    sections = coordinator.data.sections
    if name := call.data.get(ATTR_LIBRARY_NAME):
        sections = [s for s in sections if s.title.casefold() == name.casefold()]
        if not sections:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_library",
                translation_placeholders={
                    "server": entry.title,
                    "library": name,
                    "libraries": ", ".join(s.title for s in coordinator.data.sections),
                },
            )
    try:
        for section in sections:
            await coordinator.api.refresh_section(section.key)
    except PlexError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="refresh_failed",
            translation_placeholders={"server": entry.title, "error": str(err)},
        ) from err


def _catalog(entry: PlexusConfigEntry) -> CatalogCoordinator:
    return entry.runtime_data.catalog


async def _import_library(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    catalog = _catalog(entry)
    libraries: list[str] | None = call.data.get(ATTR_LIBRARIES)
    if libraries:
        known = {s.title.casefold() for s in entry.runtime_data.coordinator.data.sections} | {
            s.key for s in entry.runtime_data.coordinator.data.sections
        }
        unknown = [name for name in libraries if name.casefold() not in known and name not in known]
        if unknown:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_library",
                translation_placeholders={
                    "server": entry.title,
                    "library": ", ".join(unknown),
                    "libraries": ", ".join(
                        s.title for s in entry.runtime_data.coordinator.data.sections
                    ),
                },
            )
    result = await catalog.async_import(call.data[ATTR_MODE], libraries)
    return {
        "mode": result.mode,
        "duration_s": round(result.duration, 3),
        "libraries": list(result.libraries),
        "counts": dict[str, JsonValueType](result.counts.as_dict()),
    }


async def _search(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    hits = await _catalog(entry).async_search(
        call.data[ATTR_QUERY],
        types=call.data.get(ATTR_TYPE),
        year=call.data.get(ATTR_YEAR),
        limit=call.data[ATTR_LIMIT],
    )
    return {"results": [_search_result(hit) for hit in hits]}


MUSIC_TYPES = frozenset({"artist", "album", "track"})


def _search_result(hit: SearchHit) -> dict[str, JsonValueType]:
    """One search hit; music carries artist/album/track, video show/season/episode."""
    item = hit.item
    result: dict[str, JsonValueType] = {
        "rating_key": item.rating_key,
        "title": item.title,
        "year": item.year,
        "type": item.type,
    }
    if item.type in MUSIC_TYPES:
        result |= {
            "artist": item.parent_title if item.type == "album" else item.grandparent_title,
            "album": item.parent_title if item.type == "track" else None,
            "track": item.episode_number,
        }
    else:
        result |= {
            "show": item.grandparent_title,
            "season": item.season_number,
            "episode": item.episode_number,
        }
    result |= {
        "guids": [format_guid_ref(ref) for ref in item.guids],
        "local_path": item.local_path,
        "score": hit.score,
    }
    return result


def format_guid_ref(ref: GuidRef) -> str:
    """provider://id (with season/episode numbers for legacy TV forms)."""
    text = f"{ref.provider}://{ref.id}"
    if ref.season is not None:
        text += f"/{ref.season}"
        if ref.episode is not None:
            text += f"/{ref.episode}"
    return text


ATTR_GROUP = "group"
ATTR_MEDIA = "media"
ATTR_POSITION = "position"
SYNC_TARGET_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_GROUP): cv.string,
        vol.Optional(ATTR_ENTITY_ID): ENTITY_IDS,
    }
)
SYNC_PLAY_SCHEMA = SYNC_TARGET_SCHEMA.extend(
    {
        vol.Optional(ATTR_MEDIA): cv.string,
        vol.Optional(ATTR_POSITION): POSITION,
    }
)
SYNC_SEEK_SCHEMA = SYNC_TARGET_SCHEMA.extend({vol.Required(ATTR_POSITION): POSITION})
type SyncCommand = Callable[[SyncGroup], Awaitable[CommandResult]]
SYNC_COMMANDS: dict[str, SyncCommand] = {
    "sync_pause": lambda group: group.engine.pause(),
    "sync_resume": lambda group: group.engine.resume(),
    "sync_stop": lambda group: group.engine.stop(),
}


def _sync_group(hass: HomeAssistant, call: ServiceCall) -> tuple[PlexusConfigEntry, SyncGroup]:
    """The group a sync service targets: by name, or the group of the given member players."""
    name: str | None = call.data.get(ATTR_GROUP)
    entity_ids: list[str] = call.data.get(ATTR_ENTITY_ID, [])
    if not name and not entity_ids:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="group_required")
    entries: list[PlexusConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
        for group in entry.runtime_data.sync_groups.values():
            if name and group.name.casefold() != name.casefold():
                continue
            missing = [e for e in entity_ids if e not in group.members]
            if missing and name:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="not_a_member",
                    translation_placeholders={"player": missing[0], "group": group.name},
                )
            if not missing:
                return entry, group
    if name:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_group",
            translation_placeholders={"group": name},
        )
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="not_a_member",
        translation_placeholders={"player": entity_ids[0], "group": "-"},
    )


async def _run_sync(group: SyncGroup, run: SyncCommand) -> None:
    """Run a command; members whose client refused are reported, the others went on."""
    try:
        result = await run(group)
    except NothingPlayingError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="nothing_playing",
            translation_placeholders={"group": group.name},
        ) from err
    except InvalidPositionError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_position",
            translation_placeholders={"group": group.name, "error": str(err)},
        ) from err
    except SyncError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="sync_failed",
            translation_placeholders={"group": group.name, "error": str(err)},
        ) from err
    if result.failed:
        # The engine names members group-wide ("<instance>/<client id>"): this home's players
        # are shown by their entity id; another home's keep the group-wide name.
        ours = {
            f"{group.engine.instance_id}/{player.player_id}": entity_id
            for entity_id, player in group.members.items()
        }
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="members_failed",
            translation_placeholders={
                "group": group.name,
                "members": ", ".join(
                    f"{ours.get(member, member)} ({why})" for member, why in result.failed.items()
                ),
            },
        )


def _make_sync_handler(run: SyncCommand) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
    async def handle(call: ServiceCall) -> None:
        _entry, group = _sync_group(call.hass, call)
        await _run_sync(group, run)

    return handle


async def _sync_play(call: ServiceCall) -> None:
    entry, group = _sync_group(call.hass, call)
    position: float | None = call.data.get(ATTR_POSITION)
    media: MediaRef | None = None  # default: what a member plays now (the engine describes it)
    if media_id := call.data.get(ATTR_MEDIA):
        coordinator = entry.runtime_data.coordinator
        try:
            request = await coordinator.resolver.resolve(
                media_id,
                coordinator.data.sections,
                find_by_guids=entry.runtime_data.catalog.async_find_by_guids,
            )
        except (BadMediaIdError, MediaNotFoundError) as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="nothing_to_play",
                translation_placeholders={"client": group.name, "error": str(err)},
            ) from err
        except PlexError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="sync_failed",
                translation_placeholders={"group": group.name, "error": str(err)},
            ) from err
        media = media_ref(request.item, coordinator.server_identifier)
        _check_within(group, position, request.item.duration_ms / 1000)
    else:
        _check_within(group, position, _playing_duration_s(entry, group))
    position_ms = position * 1000 if position is not None else None
    await _run_sync(group, lambda g: g.engine.play(media, position_ms))


async def _sync_seek(call: ServiceCall) -> None:
    entry, group = _sync_group(call.hass, call)
    position: float = call.data[ATTR_POSITION]
    _check_within(group, position, _playing_duration_s(entry, group))
    await _run_sync(group, lambda g: g.engine.seek(position * 1000))


def _playing_duration_s(entry: PlexusConfigEntry, group: SyncGroup) -> float | None:
    """The length of what this home's members play now (None when unknown)."""
    data = entry.runtime_data.coordinator.data
    durations = [
        session.duration_ms
        for member in group.members.values()
        if (session := data.session_for(member.player_id)) is not None and session.duration_ms > 0
    ]
    return max(durations) / 1000 if durations else None


def _check_within(group: SyncGroup, position: float | None, duration_s: float | None) -> None:
    """Refuse a position past the end of the item, where its length is known."""
    if position is not None and duration_s and position > duration_s:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="position_past_end",
            translation_placeholders={
                "group": group.name,
                "position": f"{position:.0f}",
                "duration": f"{duration_s:.0f}",
            },
        )


async def _scan_clients(call: ServiceCall) -> None:
    await async_scan_clients(_entry(call.hass, call).runtime_data.coordinator)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""
    async_setup_stream_services(hass)
    async_setup_tracking_services(hass)
    hass.services.async_register(
        DOMAIN, SERVICE_REFRESH_LIBRARY, _refresh_library, schema=REFRESH_SCHEMA
    )
    hass.services.async_register(DOMAIN, SERVICE_SCAN_CLIENTS, _scan_clients, schema=ENTRY_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_IMPORT_LIBRARY,
        _import_library,
        schema=IMPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEARCH,
        _search,
        schema=SEARCH_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(DOMAIN, "sync_play", _sync_play, schema=SYNC_PLAY_SCHEMA)
    hass.services.async_register(DOMAIN, "sync_seek", _sync_seek, schema=SYNC_SEEK_SCHEMA)
    for name, command in SYNC_COMMANDS.items():
        hass.services.async_register(
            DOMAIN, name, _make_sync_handler(command), schema=SYNC_TARGET_SCHEMA
        )
    async_setup_transfer_services(hass)
