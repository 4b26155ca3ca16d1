"""The catalog of one server entry in Home Assistant, as a coordinator of its own.

Thin glue over `catalog/`: the database is opened and queried in the executor, imports run on the
schedule from the options, on demand, and a few seconds after the server reports a finished
library scan. One import per server at a time; requests while one runs are coalesced by the
importer. Its data (`CatalogState`: counts, last run, progress) is set after every import and
progress step; it never polls.

The catalog is optional for everything but its own features: a database that cannot be opened
leaves the server entry running, makes the catalog's entities unavailable, raises a Repairs issue
naming the cause, and is tried again with a growing back-off (up to 15 minutes) until it opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, replace
from datetime import timedelta
import logging
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

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
from .catalog.errors import CatalogUnavailableError, short_cause
from .catalog.guids import LOCAL, UNKNOWN, parse_guid
from .catalog.matcher import MediaMatcher, ServerFindGuid, ServerSearch
from .catalog.models import TitleHit
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
from .ids import signal_library_changed
from .plex import PlexError, PlexServerAPI
from .plex.library import MediaItem
from .plex.text import rank_like_a_person, split_year

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


# Back-off between attempts to open a catalog database that could not be opened.
RETRY_FIRST_S = 30.0
RETRY_MAX_S = 15 * 60.0
# What a database that misbehaves raises: the engine turns database errors into CatalogError
# (CatalogUnavailableError); the others are a safety net for anything it does not wrap.
DATABASE_ERRORS = (CatalogError, SQLAlchemyError, OSError)


@dataclass(frozen=True, slots=True)
class CatalogState:
    """What the catalog's entities show."""

    counts: dict[str, int]
    last_run: ImportRun | None = None
    progress: ImportProgress | None = None


def _issue_id(entry: ConfigEntry) -> str:
    return f"catalog_unavailable_{entry.entry_id}"


class CatalogCoordinator(DataUpdateCoordinator[CatalogState]):
    """Catalog database, importer and their schedules for one server entry."""

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        api: PlexServerAPI,
        server_id: str,
        server_available: Callable[[], bool],
    ) -> None:
        """Prepare; `async_start` opens the database (or schedules attempts until it opens)."""
        super().__init__(hass, _LOGGER, config_entry=entry, name=f"Plex catalog {entry.title}")
        self.api = api
        self.server_id = server_id
        self._server_available = server_available
        self.catalog: Catalog | None = None
        self.importer: CatalogImporter | None = None
        self.last_result: ImportResult | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._scan_timer: CALLBACK_TYPE | None = None
        self._retry_timer: CALLBACK_TYPE | None = None
        self._retry_delay = RETRY_FIRST_S
        self._open_error: str | None = None
        self._failure_logged = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        """True while the database is open."""
        return self.catalog is not None

    @property
    def counts(self) -> dict[str, int]:
        """Items per type (empty until the first import)."""
        return self.data.counts if self.data is not None else {}

    @property
    def last_run(self) -> ImportRun | None:
        """The newest import run recorded."""
        return self.data.last_run if self.data is not None else None

    @property
    def progress(self) -> ImportProgress | None:
        """The running import's progress (None when idle)."""
        return self.importer.progress if self.importer else None

    async def async_start(self) -> None:
        """Open the database and start the schedules; a failure is retried in the background."""
        await self._async_open()
        entry = self.config_entry
        options = dict(entry.options)
        incremental = timedelta(
            minutes=options.get(CONF_INCREMENTAL_MINUTES, DEFAULT_INCREMENTAL_MINUTES)
        )
        full = timedelta(hours=options.get(CONF_FULL_HOURS, DEFAULT_FULL_HOURS))
        self._unsubs += [
            async_track_time_interval(self.hass, self._scheduled_incremental, incremental),
            async_track_time_interval(self.hass, self._scheduled_full, full),
            async_dispatcher_connect(
                self.hass, signal_library_changed(self.server_id), self._on_scan_finished
            ),
            # The first import waits until Home Assistant has settled after a start.
            async_call_later(self.hass, FIRST_IMPORT_DELAY, self._scheduled_incremental),
        ]

    async def _async_open(self) -> bool:
        """Open the database and build the importer; on failure raise a Repairs issue and retry."""
        options = dict(self.config_entry.options)
        url = catalog_url(self.hass, options)
        try:
            mappings = parse_path_mappings(options.get(CONF_PATH_MAPPINGS, ""))
            catalog = await self.hass.async_add_executor_job(Catalog, url)
            try:
                await self.hass.async_add_executor_job(
                    catalog.set_path_mappings, self.server_id, mappings
                )
            except BaseException:
                await self.hass.async_add_executor_job(catalog.close)
                raise
        except (*DATABASE_ERRORS, ValueError) as err:  # ValueError: a bad path mapping line
            self._open_failed(err, url)
            # Logged once by the coordinator ("Error fetching …"), and its recovery once.
            await self.async_refresh()
            return False
        recovered = self._open_error is not None
        self.catalog = catalog
        self.importer = CatalogImporter(
            catalog,
            async_get_clientsession(self.hass, verify_ssl=self.api.verify_ssl),
            self.api.url,
            self.api.token,
            self.server_id,
            run_sync=self.hass.async_add_executor_job,
            server_name=self.config_entry.title,
            verify_ssl=self.api.verify_ssl,
            client_identifier=self.api.client_identifier,
            on_progress=self._on_progress,
        )
        self._open_error = None
        ir.async_delete_issue(self.hass, DOMAIN, _issue_id(self.config_entry))
        self._retry_delay = RETRY_FIRST_S
        await self.async_refresh()
        if recovered:
            # Whatever the schedules skipped while the database was closed.
            self.request_import("incremental")
        return True

    @callback
    def _open_failed(self, err: Exception, url: str) -> None:
        cause = _describe(err)
        if cause != self._open_error:  # new, or another cause than the issue shows
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                _issue_id(self.config_entry),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="catalog_unavailable",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": cause,
                    "kind": err.kind if isinstance(err, CatalogUnavailableError) else "error",
                    "location": _location(url),
                },
            )
        self._open_error = cause
        delay = self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)

        @callback
        def retry(_now: Any) -> None:
            self._retry_timer = None
            self._spawn(self._async_open(), "plexus catalog open")

        self._retry_timer = async_call_later(self.hass, delay, retry)

    @override
    async def _async_update_data(self) -> CatalogState:
        """Read counts and the last run from the database."""
        catalog = self.catalog
        if catalog is None:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="catalog_not_open",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": self._open_error or "-",
                },
            )

        def read() -> tuple[dict[str, int], ImportRun | None]:
            return catalog.counts(self.server_id), catalog.last_import(self.server_id)

        try:
            counts, last_run = await self.hass.async_add_executor_job(read)
        except DATABASE_ERRORS as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="catalog_failed",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": _describe(err),
                },
            ) from err
        return CatalogState(counts=counts, last_run=last_run, progress=self.progress)

    async def async_stop(self) -> None:
        """Stop schedules and any running import, close the database."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for timer in (self._scan_timer, self._retry_timer):
            if timer is not None:
                timer()
        self._scan_timer = self._retry_timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self.importer is not None:
            await self.importer.cancel()
        if self.catalog is not None:
            await self.hass.async_add_executor_job(self.catalog.close)

    def _spawn(self, coro: Any, name: str) -> None:
        task = self.config_entry.async_create_background_task(self.hass, coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @callback
    def _scheduled_incremental(self, _now: Any) -> None:
        self.request_import("incremental")

    @callback
    def _scheduled_full(self, _now: Any) -> None:
        self.request_import("full")

    @callback
    def _on_progress(self, progress: ImportProgress) -> None:
        if self.data is not None:
            self.async_set_updated_data(replace(self.data, progress=progress))

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

        Skipped while the server is unreachable (the server coordinator already reports that
        outage) or the database is not open; the next schedule or scan imports what was missed.
        """
        if not self._server_available() or self.catalog is None:
            return
        self._spawn(self._async_background_import(mode), f"plexus {mode} import")

    async def _async_background_import(self, mode: str) -> None:
        try:
            await self.async_import(mode)
        except HomeAssistantError as err:
            if not self._failure_logged:
                _LOGGER.warning("Catalog import of %s failed: %s", self.config_entry.title, err)
                self._failure_logged = True

    def _require(self) -> tuple[Catalog, CatalogImporter]:
        if self.catalog is None or self.importer is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="catalog_not_open",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": self._open_error or "-",
                },
            )
        return self.catalog, self.importer

    async def async_import(self, mode: str, libraries: list[str] | None = None) -> ImportResult:
        """Run an import (joins a running one) and return what it did."""
        _catalog, importer = self._require()
        try:
            result = await importer.run(mode, libraries)  # type: ignore[arg-type]
        except (PlexError, *DATABASE_ERRORS) as err:
            await self.async_refresh()
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="import_failed",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": _describe(err),
                },
            ) from err
        if self._failure_logged:
            _LOGGER.info("Catalog import of %s works again", self.config_entry.title)
            self._failure_logged = False
        self.last_result = result
        await self.async_refresh()
        # Build the search index now (off the loop) so the first search after an import is fast;
        # later imports update it in place.
        with contextlib.suppress(*DATABASE_ERRORS):
            await self.hass.async_add_executor_job(_catalog.search_index)
        return result

    async def _async_read(self, read: Callable[[Catalog], Any]) -> Any:
        """Run a read in the executor; database errors become a translated error."""
        catalog, _importer = self._require()
        try:
            return await self.hass.async_add_executor_job(read, catalog)
        except DATABASE_ERRORS as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="catalog_failed",
                translation_placeholders={
                    "server": self.config_entry.title,
                    "error": _describe(err),
                },
            ) from err

    async def async_search(
        self, query: str, *, types: list[str] | None, year: int | None, limit: int
    ) -> list[SearchHit]:
        """Search this server's items in the catalog."""
        hits: list[SearchHit] = await self._async_read(
            lambda catalog: catalog.search(
                query, machine_identifier=self.server_id, types=types, year=year, limit=limit
            )
        )
        return hits

    async def async_find_by_guids(
        self, guids: list[str], item_type: str | None = None
    ) -> str | None:
        """Rating key on this server of the item carrying one of `guids` (first GUID first).

        `plex://`, `imdb://`, `tmdb://`, `tvdb://` and legacy agent GUIDs are understood; None when
        the catalog is not open, has no such item, or the GUIDs are not recognised.
        """
        if self.catalog is None:
            return None
        # Server-local and unrecognised ids name nothing on another server.
        parsed = [
            p
            for guid in guids
            if (p := parse_guid(guid)) and p.provider not in (UNKNOWN, LOCAL, "none")
        ]
        if not parsed:
            return None

        def find(catalog: Catalog) -> str | None:
            for guid in parsed:
                items = catalog.find_by_parsed_guid(guid, machine_identifier=self.server_id)
                for item in items:
                    if item_type is None or item.type == item_type:
                        return item.rating_key
            return None

        key: str | None = await self._async_read(find)
        return key

    async def async_search_media(
        self, query: str, types: set[str] | None, limit: int
    ) -> list[MediaItem]:
        """Search like a person names things (year in the query, articles), for players.

        A catalog that was never imported imports first (a fresh install answers at once).
        """
        text, year = split_year(query)
        if not text:
            return []
        if self.last_run is None and not self.counts:
            with contextlib.suppress(HomeAssistantError):
                await self.async_import("incremental")
        hits: list[tuple[TitleHit, float]] = await self._async_read(
            lambda catalog: catalog.search_titles(
                text,
                machine_identifier=self.server_id,
                types=sorted(types) if types else None,
                limit=max(limit * 4, 20),
            )
        )
        return rank_like_a_person(
            text,
            year,
            [
                (
                    MediaItem(
                        rating_key=hit.rating_key,
                        type=hit.type,
                        title=hit.title,
                        year=hit.year,
                        grandparent_title=hit.grandparent_title,
                    ),
                    score,
                )
                for hit, score in hits
            ],
            limit,
        )

    def matcher(
        self,
        *,
        server_find_guid: ServerFindGuid | None = None,
        server_search: ServerSearch | None = None,
    ) -> MediaMatcher:
        """The shared "find this item on this server" matcher over this catalog.

        It reads the catalog while its database is open and asks the server (through the given
        callables) where the catalog cannot answer.
        """
        return MediaMatcher(
            self.server_id,
            lambda: self.catalog,
            self.hass.async_add_executor_job,
            server_find_guid=server_find_guid,
            server_search=server_search,
        )

    async def async_stats(self) -> dict[str, Any] | None:
        """Numbers for diagnostics (None while the database is not open)."""
        if self.catalog is None:
            return None
        stats: dict[str, Any] = await self._async_read(lambda c: c.stats(self.server_id))
        return stats


def _describe(err: BaseException) -> str:
    """A short cause for a message: one line, no SQL, parameters, passwords or tokens.

    The catalog's own error already carries one (`cause`); anything else is shortened the way
    the catalog shortens database errors.
    """
    if isinstance(err, CatalogUnavailableError):
        return err.cause
    if isinstance(err, CatalogError | PlexError):
        text = str(err).strip()
        return (text.splitlines()[0] if text else type(err).__name__)[:200]
    return short_cause(err)


def _location(url: str) -> str:
    """Where the catalog database is, for the Repairs issue: a file, or a URL without password."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError, ValueError:
        return "-"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or "-"
    return parsed.set(query={}).render_as_string(hide_password=True)
