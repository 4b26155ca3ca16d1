"""Watch-tracking services: mark watched/unwatched, read the history, import the server's history.

`item` is a rating key of the server or a title to search the catalog for (the best movie or
episode hit); `user` is a tracked user's name or id. Bad input is a `ServiceValidationError` naming
the field; failures (the server refusing, the database not open) are `HomeAssistantError`s.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util
import probatio as vol
from sqlalchemy.exc import SQLAlchemyError

from .const import DOMAIN
from .ids import signal_watches_changed
from .plex import PlexError
from .plex.history import read_history
from .runtime import PlexusConfigEntry
from .service_entry import ENTRY_SCHEMA, _entry
from .tracking import Watch
from .tracking.tracker import WATCHABLE
from .tracking_manager import TrackingManager

ATTR_LIMIT = "limit"
ATTR_TYPE = "type"
ATTR_ITEM = "item"
ATTR_USER = "user"
ATTR_PUSH = "push_to_plex"
ATTR_SINCE = "since"
ATTR_MAX_ITEMS = "max_items"

MARK_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Required(ATTR_ITEM): vol.All(cv.string, vol.Length(min=1, max=500)),
        vol.Required(ATTR_USER): vol.All(cv.string, vol.Length(min=1, max=255)),
        vol.Optional(ATTR_PUSH): cv.boolean,
    }
)
HISTORY_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Optional(ATTR_USER): vol.All(cv.string, vol.Length(min=1, max=255)),
        vol.Optional(ATTR_SINCE): cv.datetime,
        vol.Optional(ATTR_TYPE): vol.In(sorted(WATCHABLE)),
        vol.Optional(ATTR_LIMIT, default=100): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=10_000)
        ),
    }
)
IMPORT_SCHEMA = ENTRY_SCHEMA.extend(
    {
        vol.Optional(ATTR_SINCE): cv.datetime,
        vol.Optional(ATTR_MAX_ITEMS, default=10_000): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=1_000_000)
        ),
    }
)


def _unknown_user(value: object) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_user",
        translation_placeholders={"field": ATTR_USER, "value": str(value)[:100]},
    )


def _unknown_item(value: object) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_item",
        translation_placeholders={"field": ATTR_ITEM, "value": str(value)[:100]},
    )


def _manager(entry: PlexusConfigEntry) -> TrackingManager:
    manager = entry.runtime_data.tracking
    if manager.tracker is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="tracking_not_ready",
            translation_placeholders={"server": entry.title},
        )
    return manager


def _user(manager: TrackingManager, text: str) -> tuple[str, str]:
    found = manager.resolve_user(text)
    if found is None:
        raise _unknown_user(text)
    return found


async def _item_key(entry: PlexusConfigEntry, text: str) -> str:
    """Return the rating key of `item`: itself when the catalog holds it, else a search's best."""
    catalog = entry.runtime_data.catalog
    server = entry.runtime_data.tracking.server_id
    text = text.strip()
    if text.isdigit() and catalog.catalog is not None:
        item = await entry.runtime_data.coordinator.hass.async_add_executor_job(
            catalog.catalog.get_item, server, text
        )
        if item is not None and item.type in WATCHABLE:
            return text
    hits = await catalog.async_search(text, types=sorted(WATCHABLE), year=None, limit=1)
    if not hits:
        raise _unknown_item(text)
    return hits[0].item.rating_key


async def _mark_watched(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    manager = _manager(entry)
    name, user_id = _user(manager, call.data[ATTR_USER])
    key = await _item_key(entry, call.data[ATTR_ITEM])
    outcome = await manager.async_mark_watched(name, user_id, key, push=call.data.get(ATTR_PUSH))
    if outcome.kind == "skipped":
        raise _unknown_item(call.data[ATTR_ITEM])
    return {"rating_key": key, "user": name, "recorded": outcome.kind == "recorded"}


async def _mark_unwatched(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    manager = _manager(entry)
    name, user_id = _user(manager, call.data[ATTR_USER])
    key = await _item_key(entry, call.data[ATTR_ITEM])
    removed = await manager.async_mark_unwatched(user_id, key, push=call.data.get(ATTR_PUSH))
    return {"rating_key": key, "user": name, "removed": removed}


async def _watch_history(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call)
    manager = _manager(entry)
    assert manager.tracker is not None
    user_id = _user(manager, call.data[ATTR_USER])[1] if ATTR_USER in call.data else None
    since: datetime | None = call.data.get(ATTR_SINCE)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt_util.get_default_time_zone())
    try:
        watches = await manager.tracker.history(
            user_id, since=since, item_type=call.data.get(ATTR_TYPE), limit=call.data[ATTR_LIMIT]
        )
    except SQLAlchemyError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="history_failed",
            translation_placeholders={"server": entry.title, "error": str(err)[:200]},
        ) from err
    records: list[Any] = [w.as_dict() for w in watches if w.server == manager.server_id]
    return {"watches": records}


async def _import_watch_history(call: ServiceCall) -> ServiceResponse:
    """Read the server's history into Plexus's (the same view twice is one watch)."""
    entry = _entry(call.hass, call)
    manager = _manager(entry)
    store = manager.store
    catalog = entry.runtime_data.catalog.catalog
    assert store is not None
    since: datetime | None = call.data.get(ATTR_SINCE)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt_util.get_default_time_zone())
    names = {user_id: name for name, user_id in manager.users.items() if user_id}
    counts = {"read": 0, "added": 0, "duplicates": 0, "skipped": 0}
    hass = call.hass
    try:
        async for page in read_history(entry.runtime_data.coordinator.api, since=since):
            for entry_ in page:
                if counts["read"] >= call.data[ATTR_MAX_ITEMS]:
                    break
                counts["read"] += 1
                if entry_.type not in WATCHABLE or entry_.account_id is None:
                    counts["skipped"] += 1
                    continue
                name = names.get(entry_.account_id)
                if not manager.tracker or not manager.tracker.monitored(entry_.account_id, name):
                    counts["skipped"] += 1
                    continue
                item = (
                    await hass.async_add_executor_job(
                        catalog.get_item, manager.server_id, entry_.rating_key
                    )
                    if catalog is not None
                    else None
                )
                watch = Watch(
                    server=manager.server_id,
                    rating_key=entry_.rating_key,
                    type=entry_.type,
                    user_id=entry_.account_id,
                    user_name=name,
                    watched_at=entry_.viewed_at,
                    source="plex_history",
                    title=entry_.title,
                    show_title=entry_.grandparent_title,
                    season=entry_.season,
                    episode=entry_.episode,
                    progress=1.0,
                )
                if item is not None:
                    watch = replace(
                        watch,
                        show_rating_key=item.grandparent_rating_key,
                        year=item.year,
                        duration_ms=item.duration,
                        guids=tuple(
                            f"{g.provider}://{g.id}" for g in item.guids if g.season is None
                        ),
                    )
                _stored, added = await hass.async_add_executor_job(store.add_watch, watch)
                counts["added" if added else "duplicates"] += 1
            if counts["read"] >= call.data[ATTR_MAX_ITEMS]:
                break
    except PlexError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="history_failed",
            translation_placeholders={"server": entry.title, "error": str(err)},
        ) from err
    if counts["added"]:
        async_dispatcher_send(hass, signal_watches_changed(manager.server_id))
    return dict(counts)


def async_setup_tracking_services(hass: HomeAssistant) -> None:
    """Register the watch-tracking services."""
    hass.services.async_register(
        DOMAIN,
        "mark_watched",
        _mark_watched,
        schema=MARK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "mark_unwatched",
        _mark_unwatched,
        schema=MARK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "watch_history",
        _watch_history,
        schema=HISTORY_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        "import_watch_history",
        _import_watch_history,
        schema=IMPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
