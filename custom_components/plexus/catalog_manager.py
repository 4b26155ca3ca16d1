"""The catalog of one server entry in Home Assistant: database, importer, schedules, listeners.

Thin glue over `catalog/`: the database is opened and queried in the executor, imports run on the
schedule from the options, on demand, and a few seconds after the server reports a finished
library scan. One import per server at a time; requests while one runs are coalesced by the
importer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_call_later, async_track_time_interval

from .catalog import (
    Catalog,
    CatalogError,
    CatalogImporter,
    ImportProgress,
    ImportResult,
    ImportRun,
    PathMapping,
    SearchHit,
    sqlite_url,
)
from .catalog.guids import LOCAL, UNKNOWN, parse_guid
from .const import (
    CATALOG_FILE,
    CONF_DB_URL,
    CONF_FULL_HOURS,
    CONF_INCREMENTAL_MINUTES,
    CONF_PATH_MAPPINGS,
    DEFAULT_FULL_HOURS,
    DEFAULT_INCREMENTAL_MINUTES,
    DOMAIN,
    FIRST_IMPORT_DELAY,
    SCAN_IMPORT_DELAY,
)
from .coordinator import PlexusCoordinator
from .plex import PlexError
from .plex.library import MediaItem
from .plex.search import rank_like_a_person, split_year

_LOGGER = logging.getLogger(__name__)


def parse_path_mappings(text: str) -> list[PathMapping]:
    """Parse lines of `plex prefix => local prefix`; raises ValueError naming the bad line."""
    mappings: list[PathMapping] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        plex, sep, local = line.partition("=>")
        if not sep or not plex.strip() or not local.strip():
            raise ValueError(f"line {number}: expected 'plex path => local path'")
        mappings.append(PathMapping(plex.strip(), local.strip()))
    return mappings


def format_path_mappings(mappings: list[PathMapping]) -> str:
    """The text form of mappings (for the options form)."""
    return "\n".join(f"{m.plex_prefix} => {m.local_prefix}" for m in mappings)


def catalog_url(hass: HomeAssistant, options: dict[str, Any]) -> str:
    """The database URL: the option, or a SQLite file in HA's config folder."""
    return options.get(CONF_DB_URL) or sqlite_url(hass.config.path(CATALOG_FILE))


class CatalogManager:
    """Catalog, importer and their schedules for one server entry."""

    def __init__(self, hass: HomeAssistant, coordinator: PlexusCoordinator) -> None:
        """Prepare; `async_start` opens the database."""
        self.hass = hass
        self.coordinator = coordinator
        self.server_id = coordinator.server_identifier
        self.catalog: Catalog | None = None
        self.importer: CatalogImporter | None = None
        self.counts: dict[str, int] = {}
        self.last_run: ImportRun | None = None
        self.last_result: ImportResult | None = None
        self._listeners: list[Callable[[], None]] = []
        self._unsubs: list[CALLBACK_TYPE] = []
        self._scan_timer: CALLBACK_TYPE | None = None
        self._failure_logged = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def progress(self) -> ImportProgress | None:
        """The running import's progress (None when idle)."""
        return self.importer.progress if self.importer else None

    async def async_start(self) -> None:
        """Open the database, apply the path mappings, start the schedules and a first import."""
        entry = self.coordinator.config_entry
        options = dict(entry.options)
        url = catalog_url(self.hass, options)
        self.catalog = await self.hass.async_add_executor_job(Catalog, url)
        mappings = parse_path_mappings(options.get(CONF_PATH_MAPPINGS, ""))
        await self.hass.async_add_executor_job(
            self.catalog.set_path_mappings, self.server_id, mappings
        )
        api = self.coordinator.api
        self.importer = CatalogImporter(
            self.catalog,
            async_get_clientsession(self.hass, verify_ssl=api.verify_ssl),
            api.url,
            api.token,
            self.server_id,
            run_sync=self.hass.async_add_executor_job,
            server_name=entry.title,
            verify_ssl=api.verify_ssl,
            client_identifier=api.client_identifier,
            on_progress=self._on_progress,
        )
        await self._async_read_stats()
        incremental = timedelta(
            minutes=options.get(CONF_INCREMENTAL_MINUTES, DEFAULT_INCREMENTAL_MINUTES)
        )
        full = timedelta(hours=options.get(CONF_FULL_HOURS, DEFAULT_FULL_HOURS))
        self._unsubs += [
            async_track_time_interval(self.hass, self._scheduled_incremental, incremental),
            async_track_time_interval(self.hass, self._scheduled_full, full),
            self.coordinator.async_add_scan_listener(self._on_scan_finished),
            # The first import waits until Home Assistant has settled after a start.
            async_call_later(self.hass, FIRST_IMPORT_DELAY, self._scheduled_incremental),
        ]

    async def async_stop(self) -> None:
        """Stop schedules and any running import, close the database."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._scan_timer is not None:
            self._scan_timer()
            self._scan_timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self.importer is not None:
            await self.importer.cancel()
        if self.catalog is not None:
            await self.hass.async_add_executor_job(self.catalog.close)

    @callback
    def async_add_listener(self, update: Callable[[], None]) -> Callable[[], None]:
        """Call `update` when counts, the last run or the progress change."""
        self._listeners.append(update)
        return lambda: self._listeners.remove(update)

    @callback
    def _notify(self) -> None:
        for update in list(self._listeners):
            update()

    @callback
    def _scheduled_incremental(self, _now: Any) -> None:
        self.request_import("incremental")

    @callback
    def _scheduled_full(self, _now: Any) -> None:
        self.request_import("full")

    @callback
    def _on_progress(self, _progress: ImportProgress) -> None:
        self._notify()

    @callback
    def _on_scan_finished(self) -> None:
        """A library scan ended on the server: import what changed in a few seconds."""
        if self._scan_timer is not None:
            self._scan_timer()

        @callback
        def fire(_now: Any) -> None:
            self._scan_timer = None
            self.request_import("incremental")

        self._scan_timer = async_call_later(self.hass, SCAN_IMPORT_DELAY, fire)

    @callback
    def request_import(self, mode: str) -> None:
        """Start an import in the background (schedules, scans); failures are logged once.

        Skipped while the server is unreachable: the coordinator already reports that outage,
        and the next schedule or scan imports what was missed.
        """
        if not self.coordinator.last_update_success:
            return
        task = self.coordinator.config_entry.async_create_background_task(
            self.hass, self._async_background_import(mode), f"plexus {mode} import"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _async_background_import(self, mode: str) -> None:
        try:
            await self.async_import(mode)
        except HomeAssistantError as err:
            if not self._failure_logged:
                _LOGGER.warning(
                    "Catalog import of %s failed: %s", self.coordinator.config_entry.title, err
                )
                self._failure_logged = True

    async def async_import(self, mode: str, libraries: list[str] | None = None) -> ImportResult:
        """Run an import (joins a running one) and return what it did."""
        assert self.importer is not None
        try:
            result = await self.importer.run(mode, libraries)  # type: ignore[arg-type]
        except (PlexError, CatalogError) as err:
            await self._async_read_stats()
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="import_failed",
                translation_placeholders={
                    "server": self.coordinator.config_entry.title,
                    "error": str(err),
                },
            ) from err
        finally:
            self._notify()
        if self._failure_logged:
            _LOGGER.info("Catalog import of %s works again", self.coordinator.config_entry.title)
            self._failure_logged = False
        self.last_result = result
        await self._async_read_stats()
        return result

    async def _async_read_stats(self) -> None:
        assert self.catalog is not None
        catalog = self.catalog

        def read() -> tuple[dict[str, int], ImportRun | None]:
            return catalog.counts(self.server_id), catalog.last_import(self.server_id)

        self.counts, self.last_run = await self.hass.async_add_executor_job(read)
        self._notify()

    async def async_search(
        self, query: str, *, types: list[str] | None, year: int | None, limit: int
    ) -> list[SearchHit]:
        """Search this server's items in the catalog."""
        assert self.catalog is not None
        catalog = self.catalog
        return await self.hass.async_add_executor_job(
            lambda: catalog.search(
                query, machine_identifier=self.server_id, types=types, year=year, limit=limit
            )
        )

    async def async_find_by_guids(
        self, guids: list[str], item_type: str | None = None
    ) -> str | None:
        """Rating key on this server of the item carrying one of `guids` (first GUID first).

        `plex://`, `imdb://`, `tmdb://`, `tvdb://` and legacy agent GUIDs are understood; None when
        the catalog is not open, has no such item, or the GUIDs are not recognised.
        """
        catalog = self.catalog
        if catalog is None:
            return None
        # Server-local and unrecognised ids name nothing on another server.
        parsed = [
            p
            for guid in guids
            if (p := parse_guid(guid)) and p.provider not in (UNKNOWN, LOCAL, "none")
        ]
        if not parsed:
            return None

        def find() -> str | None:
            for guid in parsed:
                items = catalog.find_by_parsed_guid(guid, machine_identifier=self.server_id)
                for item in items:
                    if item_type is None or item.type == item_type:
                        return item.rating_key
            return None

        return await self.hass.async_add_executor_job(find)

    async def async_search_media(
        self, query: str, types: set[str] | None, limit: int
    ) -> list[MediaItem]:
        """Search like a person names things (year in the query, articles), for players."""
        text, year = split_year(query)
        if not text:
            return []
        hits = await self.async_search(
            text, types=sorted(types) if types else None, year=None, limit=max(limit * 4, 20)
        )
        return rank_like_a_person(
            text,
            year,
            [
                (
                    MediaItem(
                        rating_key=hit.item.rating_key,
                        type=hit.item.type,
                        title=hit.item.title,
                        year=hit.item.year,
                        grandparent_title=hit.item.grandparent_title or "",
                    ),
                    hit.score,
                )
                for hit in hits
            ],
            limit,
        )

    async def async_stats(self) -> dict[str, Any]:
        """Numbers for diagnostics."""
        assert self.catalog is not None
        return await self.hass.async_add_executor_job(self.catalog.stats, self.server_id)
