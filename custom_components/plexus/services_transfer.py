"""File-sync services: queue copies to a transfer profile, and control its queue.

`plexus.sync_media` takes a profile (its name or subentry id) and one of: a rating key, a
media-browser id, a movie title (+ year), or a show (+ season, + episodes "1,3,5-8" | "new" |
"all"); it answers with the queued transfer ids. `cancel_transfer`, `pause_transfers`,
`resume_transfers`, `scan_sources` and `remove_local_copy` act on one profile's queue.
Bad input is a `ServiceValidationError` naming the field.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.media_player.errors import BrowseError
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio as vol

from .browse_media import resolve_media_id
from .catalog import CatalogItem
from .catalog_manager import DATABASE_ERRORS
from .const import DOMAIN
from .plex import PlexError
from .runtime import PlexusConfigEntry
from .transfer import (
    InvalidSelectionError,
    MediaFile,
    PathEscapeError,
    PathNotAllowedError,
    SourceMissingError,
    TransferError,
    TransferNotFoundError,
    parse_episodes,
    select_episodes,
)
from .transfers import (
    Candidate,
    NoDestinationError,
    SourceNotAllowedError,
    TransferManager,
    TransferProfile,
)

ATTR_PROFILE = "profile"
ATTR_RATING_KEY = "rating_key"
ATTR_MEDIA_ID = "media_id"
ATTR_TITLE = "title"
ATTR_YEAR = "year"
ATTR_SHOW = "show"
ATTR_SEASON = "season"
ATTR_EPISODES = "episodes"
ATTR_TRANSFER_ID = "transfer_id"
ATTR_PATH = "path"
WHAT_FIELDS = (ATTR_RATING_KEY, ATTR_MEDIA_ID, ATTR_TITLE, ATTR_SHOW)
LEAF_TYPES = ("movie", "episode")

PROFILE_SCHEMA = vol.Schema({vol.Optional(ATTR_PROFILE): cv.string})
SYNC_MEDIA_SCHEMA = PROFILE_SCHEMA.extend(
    {
        vol.Optional(ATTR_RATING_KEY): vol.All(vol.Coerce(str), vol.Match(r"^\d+$")),
        vol.Optional(ATTR_MEDIA_ID): cv.string,
        vol.Optional(ATTR_TITLE): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_YEAR): vol.All(vol.Coerce(int), vol.Range(min=1800, max=2200)),
        vol.Optional(ATTR_SHOW): vol.All(cv.string, vol.Length(min=1)),
        vol.Optional(ATTR_SEASON): vol.All(vol.Coerce(int), vol.Range(min=0, max=9999)),
        vol.Optional(ATTR_EPISODES): vol.All(vol.Coerce(str), vol.Length(max=500)),
    }
)
# Transfer ids are the queue table's INTEGER keys (32-bit on PostgreSQL).
MAX_TRANSFER_ID = 2**31 - 1
CANCEL_SCHEMA = PROFILE_SCHEMA.extend(
    {
        vol.Required(ATTR_TRANSFER_ID): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_TRANSFER_ID)
        )
    }
)
# No file system has NUL in a path (and PostgreSQL refuses it in text: a raw database error).
REMOVE_SCHEMA = PROFILE_SCHEMA.extend(
    {
        vol.Required(ATTR_PATH): vol.All(
            cv.string, vol.Length(1), vol.Match(r"^[^\x00]*$", msg="a path cannot hold NUL")
        )
    }
)


def _invalid(
    *, translation_key: str, translation_placeholders: dict[str, str] | None = None
) -> ServiceValidationError:
    """A validation error (literal keyword arguments: the translations test reads them)."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders=translation_placeholders,
    )


def find_profile(
    hass: HomeAssistant, wanted: str | None
) -> tuple[PlexusConfigEntry, TransferManager, TransferProfile]:
    """The profile a call names (by name or subentry id; the only one when none is named)."""
    entries: list[PlexusConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    found = [
        (entry, manager, profile)
        for entry in entries
        if (manager := entry.runtime_data.transfers) is not None
        for profile in manager.profiles.values()
    ]
    names = ", ".join(p.name for _e, _m, p in found) or "-"
    if not found:
        raise _invalid(translation_key="transfer_no_profile")
    if not wanted:
        if len(found) > 1:
            raise _invalid(
                translation_key="transfer_profile_required",
                translation_placeholders={"profiles": names},
            )
        return found[0]
    for entry, manager, profile in found:
        if wanted in (profile.subentry_id, profile.name) or (
            profile.name.casefold() == wanted.casefold()
        ):
            return entry, manager, profile
    raise _invalid(
        translation_key="transfer_unknown_profile",
        translation_placeholders={"profile": wanted, "profiles": names},
    )


async def _catalog_items(
    hass: HomeAssistant, entry: PlexusConfigEntry, keys: list[str]
) -> list[CatalogItem]:
    catalog = entry.runtime_data.catalog.catalog
    manager = entry.runtime_data.transfers
    if catalog is None or manager is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="catalog_not_open",
            translation_placeholders={"server": entry.title, "error": "-"},
        )
    server_id = manager.server_id

    def read() -> list[CatalogItem]:
        return [item for key in keys if (item := catalog.get_item(server_id, key)) is not None]

    try:
        return await hass.async_add_executor_job(read)
    except DATABASE_ERRORS as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="catalog_failed",
            translation_placeholders={"server": entry.title, "error": str(err)},
        ) from err


async def _leaves(entry: PlexusConfigEntry, rating_key: str) -> list[str]:
    """Rating keys of a show's or season's episodes (asked from the server)."""
    try:
        leaves = await entry.runtime_data.coordinator.library.all_leaves(rating_key)
    except PlexError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="refresh_failed",
            translation_placeholders={"server": entry.title, "error": str(err)},
        ) from err
    return [leaf.rating_key for leaf in leaves if leaf.type == "episode"]


async def _by_rating_key(  # noqa: PLR0917 - internal helper
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    manager: TransferManager,
    profile: TransferProfile,
    rating_key: str,
    field: str,
) -> list[Candidate]:
    items = await _catalog_items(hass, entry, [rating_key])
    if not items and await _catch_up(entry):
        items = await _catalog_items(hass, entry, [rating_key])
    if not items:
        raise _invalid(
            translation_key="transfer_item_not_found",
            translation_placeholders={"field": field, "value": rating_key},
        )
    item = items[0]
    if item.type not in LEAF_TYPES:
        leaves = await _leaves(entry, item.rating_key)
        items = await _catalog_items(hass, entry, leaves)
        if len(items) < len(set(leaves)) and await _catch_up(entry):
            items = await _catalog_items(hass, entry, leaves)
    candidates = manager.candidates_from_items(profile, items)
    if not candidates:
        raise _invalid(
            translation_key="transfer_no_local_file", translation_placeholders={"title": item.title}
        )
    return candidates


async def _catch_up(entry: PlexusConfigEntry) -> bool:
    """Import what the server added since the catalog's last import; whether that worked.

    Plex announces a new item (the `library.new` webhook, an automation reacting to it) before
    the catalog's own import after the library scan has run: the item is fetched now instead.
    """
    try:
        await entry.runtime_data.catalog.async_import("incremental")
    except HomeAssistantError:
        return False  # (the import's failure is the catalog's to report; the item stays unknown)
    return True


async def _search_exact(
    entry: PlexusConfigEntry, title: str, item_type: str, year: int | None
) -> CatalogItem | None:
    hits = await entry.runtime_data.catalog.async_search(
        title, types=[item_type], year=year, limit=10
    )
    for hit in hits:
        if hit.item.title.casefold() == title.casefold() and (
            year is None or hit.item.year == year
        ):
            return hit.item
    return None


async def _what(
    hass: HomeAssistant,
    call: ServiceCall,
    entry: PlexusConfigEntry,
    manager: TransferManager,
    profile: TransferProfile,
) -> list[Candidate]:
    data = call.data
    given = [f for f in WHAT_FIELDS if data.get(f)]
    if len(given) != 1:
        raise _invalid(
            translation_key="transfer_what_required",
            translation_placeholders={"fields": ", ".join(WHAT_FIELDS)},
        )
    episodes_text: str | None = data.get(ATTR_EPISODES)
    try:
        selection = parse_episodes(episodes_text)
    except InvalidSelectionError as err:
        raise _invalid(
            translation_key="transfer_bad_episodes",
            translation_placeholders={"field": ATTR_EPISODES, "error": str(err)},
        ) from err
    season: int | None = data.get(ATTR_SEASON)
    if rating_key := data.get(ATTR_RATING_KEY):
        candidates = await _by_rating_key(
            hass, entry, manager, profile, rating_key, ATTR_RATING_KEY
        )
    elif media_id := data.get(ATTR_MEDIA_ID):
        try:
            item = await resolve_media_id(hass, entry.runtime_data.coordinator, media_id)
        except BrowseError as err:
            raise _invalid(
                translation_key="transfer_bad_media_id",
                translation_placeholders={"field": ATTR_MEDIA_ID, "error": str(err)},
            ) from err
        if item is None:
            raise _invalid(
                translation_key="transfer_item_not_found",
                translation_placeholders={"field": ATTR_MEDIA_ID, "value": media_id},
            )
        candidates = await _by_rating_key(
            hass, entry, manager, profile, item.rating_key, ATTR_MEDIA_ID
        )
    elif title := data.get(ATTR_TITLE):
        year: int | None = data.get(ATTR_YEAR)
        if profile.config.from_catalog:
            movie = await _search_exact(entry, title, "movie", year)
            candidates = [] if movie is None else manager.candidates_from_items(profile, [movie])
        else:
            assert profile.discovery is not None
            files = await profile.discovery.files(kind="movie", title=title, year=year)
            candidates = [Candidate(m, _movie_title(m)) for m in files]
        if not candidates:
            raise _invalid(
                translation_key="transfer_item_not_found",
                translation_placeholders={"field": ATTR_TITLE, "value": title},
            )
        return candidates
    else:
        show: str = data[ATTR_SHOW]
        if profile.config.from_catalog:
            found = await _search_exact(entry, show, "show", None)
            candidates = []
            if found is not None:
                keys = await _leaves(entry, found.rating_key)
                items = await _catalog_items(hass, entry, keys)
                candidates = manager.candidates_from_items(profile, items)
        else:
            assert profile.discovery is not None
            files = await profile.discovery.files(kind="episode", title=show)
            candidates = [Candidate(m, _episode_title(m)) for m in files]
        if not candidates:
            raise _invalid(
                translation_key="transfer_item_not_found",
                translation_placeholders={"field": ATTR_SHOW, "value": show},
            )
    return await _select(profile, candidates, selection, season)


async def _select(
    profile: TransferProfile,
    candidates: list[Candidate],
    selection: Any,
    season: int | None,
) -> list[Candidate]:
    """Apply season and episode selection to episode candidates (movies pass through)."""
    movies = [c for c in candidates if c.media.parsed.kind != "episode"]
    episodes = [c for c in candidates if c.media.parsed.kind == "episode"]
    if not episodes:
        return movies
    status = None
    if selection.new_only:
        assert profile.queue is not None
        status = await profile.queue.sync_status([c.media.path for c in episodes])
    by_path = {c.media.path: c for c in episodes}
    picked = select_episodes([c.media for c in episodes], selection, season=season, status=status)
    return movies + [by_path[m.path] for m in picked]


def _movie_title(media: MediaFile) -> str:
    parsed = media.parsed
    return f"{parsed.title} ({parsed.year})" if parsed.year else parsed.title


def _episode_title(media: MediaFile) -> str:
    parsed = media.parsed
    first = parsed.episodes[0] if parsed.episodes else 0
    return f"{parsed.title} S{parsed.season or 0:02d}E{first:02d}"


async def _sync_media(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry, manager, profile = find_profile(hass, call.data.get(ATTR_PROFILE))
    manager.profile(profile.subentry_id)  # unavailable while the catalog database is not open
    candidates = await _what(hass, call, entry, manager, profile)
    new_only = str(call.data.get(ATTR_EPISODES, "")).strip().casefold() == "new"
    if not candidates and not new_only:  # "new" with nothing new is not an error (automations)
        raise _invalid(translation_key="transfer_nothing_selected")
    try:
        items = await manager.async_enqueue(profile, candidates)
    except NoDestinationError as err:
        raise _invalid(
            translation_key="transfer_no_destination",
            translation_placeholders={"profile": profile.name, "media_type": err.media_type},
        ) from err
    except SourceNotAllowedError as err:
        raise _invalid(
            translation_key="transfer_path_not_allowed", translation_placeholders={"path": err.path}
        ) from err
    except PathNotAllowedError as err:
        raise _invalid(
            translation_key="transfer_path_not_allowed", translation_placeholders={"path": err.path}
        ) from err
    except PathEscapeError as err:
        raise _invalid(
            translation_key="transfer_path_escape",
            translation_placeholders={"path": err.path, "root": err.root},
        ) from err
    except SourceMissingError as err:
        raise _invalid(
            translation_key="transfer_source_missing", translation_placeholders={"path": err.path}
        ) from err
    return {
        "transfer_ids": [item.id for item in items],
        "transfers": [
            {
                "id": item.id,
                "title": item.title,
                "source": item.source,
                "path": item.destination,
                "size": item.size,
                "state": str(item.state),
            }
            for item in items
        ],
    }


async def _cancel_transfer(call: ServiceCall) -> None:
    _entry, manager, profile = find_profile(call.hass, call.data.get(ATTR_PROFILE))
    item_id: int = call.data[ATTR_TRANSFER_ID]
    try:
        await manager.async_cancel(profile.subentry_id, item_id)
    except TransferNotFoundError as err:
        raise _invalid(
            translation_key="transfer_not_found",
            translation_placeholders={"transfer_id": str(item_id), "profile": profile.name},
        ) from err


def _profiles_for(call: ServiceCall) -> list[tuple[TransferManager, TransferProfile]]:
    if call.data.get(ATTR_PROFILE):
        _entry, one, profile = find_profile(call.hass, call.data[ATTR_PROFILE])
        return [(one, profile)]
    entries: list[PlexusConfigEntry] = call.hass.config_entries.async_loaded_entries(DOMAIN)
    found = [
        (manager, profile)
        for entry in entries
        if (manager := entry.runtime_data.transfers) is not None
        for profile in manager.profiles.values()
    ]
    if not found:
        raise _invalid(translation_key="transfer_no_profile")
    return found


async def _pause_transfers(call: ServiceCall) -> None:
    for manager, profile in _profiles_for(call):
        await manager.async_pause(profile.subentry_id)


async def _resume_transfers(call: ServiceCall) -> None:
    for manager, profile in _profiles_for(call):
        await manager.async_resume(profile.subentry_id)


async def _scan_sources(call: ServiceCall) -> ServiceResponse:
    _entry, manager, profile = find_profile(call.hass, call.data.get(ATTR_PROFILE))
    result = await manager.async_scan(profile.subentry_id)
    return {
        "seen": result.seen,
        "added": result.added,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "removed": result.removed,
        "missing_roots": list(result.missing_roots),
        "seconds": round(result.seconds, 3),
    }


async def _remove_local_copy(call: ServiceCall) -> None:
    _entry, manager, profile = find_profile(call.hass, call.data.get(ATTR_PROFILE))
    path: str = call.data[ATTR_PATH]
    try:
        await manager.async_remove_local_copy(profile.subentry_id, path)
    except (PathEscapeError, PathNotAllowedError) as err:
        raise _invalid(
            translation_key="transfer_path_not_allowed", translation_placeholders={"path": path}
        ) from err
    except TransferError as err:
        raise _invalid(
            translation_key="transfer_not_copied",
            translation_placeholders={"path": path, "profile": profile.name},
        ) from err


@callback
def async_setup_transfer_services(hass: HomeAssistant) -> None:
    """Register the file-sync services (once, from services.async_setup_services)."""
    hass.services.async_register(
        DOMAIN,
        "sync_media",
        _sync_media,
        schema=SYNC_MEDIA_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, "cancel_transfer", _cancel_transfer, schema=CANCEL_SCHEMA)
    hass.services.async_register(DOMAIN, "pause_transfers", _pause_transfers, schema=PROFILE_SCHEMA)
    hass.services.async_register(
        DOMAIN, "resume_transfers", _resume_transfers, schema=PROFILE_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        "scan_sources",
        _scan_sources,
        schema=PROFILE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, "remove_local_copy", _remove_local_copy, schema=REMOVE_SCHEMA
    )
