"""Import a Plex server's libraries into the catalog (async; no Home Assistant).

How it reads Plex:

* ``/library/sections`` lists the libraries; movie, show and music libraries are imported.
* Each library is read per item type — movies (``type=1``); shows, seasons and episodes
  (``type=2``, ``3``, ``4``: episodes come flat for the whole section, never one request per
  show); artists, albums, tracks (``8``, ``9``, ``10``) — in pages
  (``X-Plex-Container-Start``/``X-Plex-Container-Size``) with ``includeGuids=1``.
* Responses are parsed as a stream while they arrive; parsed items are written in batches
  through the caller's executor while the next page is read, so memory stays flat.

Full import: every item is read; items whose stored fingerprint is unchanged are not rewritten;
items the server no longer lists are removed (checked against a cheap key listing first, so an
item that merely moved between pages while paging is not lost).

Incremental import: per library, only items with ``updatedAt >=`` the server's clock (its HTTP
``Date``; asked as ``updatedAt>`` one second earlier, Plex's filter being strict) when the last
successful run started reading — or, from a server that sends no
``Date``, the highest ``updatedAt`` that run saw — are read and upserted; deletions are found by
comparing the stored rating keys with a key listing (``ratingKey`` only is read), which is
skipped when a size-only request shows the server holds exactly as many items of the type as the
catalog. An item whose metadata
changed without its ``updatedAt`` changing is not seen by an incremental run; the next full run
picks it up. A library never imported before is read in full.

Atomicity: the whole run is one database transaction (see ``writer.ImportWriter``). Any failure —
HTTP error, bad XML, database error, cancellation — rolls everything back, so the catalog stays
exactly as it was, and the run is recorded as failed with the error. An answer that is not a
well-formed ``MediaContainer`` (a proxy's login page, ``<html/>``) is such a failure, never an
empty library; an empty library listing removes libraries only when the previous run saw one too
(``ImportWriter.sync_libraries``). Database errors leave as ``CatalogUnavailableError``.

Concurrency: one import per server at a time. A request made while an import runs is coalesced:
at most one follow-up run is queued (full wins over incremental, library selections are merged),
and every request made meanwhile gets that follow-up's result.
"""

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from functools import partial
import logging
import time
from typing import Any, Final, Protocol, TypeVar

import aiohttp

from custom_components.plexus.plex.api import plex_headers
from custom_components.plexus.plex.errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexResponseError,
)

from .db import Catalog
from .errors import short_cause
from .models import ImportCounts, ImportMode, ItemRecord, LibraryRecord
from .writer import ImportWriter
from .xmlstream import ItemStreamParser, KeyStreamParser, ParseError, parse_sections

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

# Plex's numeric search types per library type, top level first.
SECTION_ITEM_TYPES: Final[dict[str, tuple[tuple[int, str], ...]]] = {
    "movie": ((1, "movie"),),
    "show": ((2, "show"), (3, "season"), (4, "episode")),
    "artist": ((8, "artist"), (9, "album"), (10, "track")),
}
# Chosen by measurement (benchmarks/catalog.py --sweep, 100,000 items from the simulator, full
# import into SQLite on 2 cores; two runs): page size 500 -> 10.3/12.6 s, 1000 -> 9.4/10.3 s,
# 2000 -> 10.9/9.1 s, 5000 -> 10.4/10.5 s. Below 1000 the round trips cost; beyond 2000 nothing is
# gained and memory grows. Pages of this size keep each read of the server's database short.
DEFAULT_PAGE_SIZE: Final = 2000
DEFAULT_KEY_PAGE_SIZE: Final = 10000
DEFAULT_BATCH_SIZE: Final = 1000
_CHUNK: Final = 64 * 1024
_PARSE_CHUNK: Final = 256 * 1024  # bytes of XML parsed per executor job


class RunSync(Protocol):
    """Run a blocking function off the event loop (``hass.async_add_executor_job`` fits)."""

    def __call__(self, func: Callable[..., _T], /, *args: Any) -> Awaitable[_T]:
        """Run ``func(*args)`` in a worker thread."""
        ...


@dataclass(slots=True)
class ImportProgress:
    """Where a running import is; handed to the progress callback as it moves."""

    mode: ImportMode
    libraries_total: int = 0
    libraries_done: int = 0
    library: str | None = None
    items_done: int = 0
    items_total: int = 0
    # Items of the current library: done so far and expected (from the server's totalSize).
    library_items_done: int = 0
    library_items_total: int = 0

    @property
    def percent(self) -> float:
        """Return an overall estimate in percent (libraries weighted equally)."""
        if self.libraries_total == 0:
            return 0.0
        within = (
            min(self.library_items_done / self.library_items_total, 1.0)
            if self.library_items_total
            else 0.0
        )
        done = (self.libraries_done + (within if self.library else 0.0)) / self.libraries_total
        return round(min(done, 1.0) * 100, 1)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a finished import did."""

    mode: ImportMode
    counts: ImportCounts
    duration: float
    libraries: tuple[str, ...]


@dataclass(slots=True)
class _Request:
    mode: ImportMode
    libraries: frozenset[str] | None = None

    def merge(self, other: _Request) -> _Request:
        mode: ImportMode = "full" if "full" in (self.mode, other.mode) else "incremental"
        if self.libraries is None or other.libraries is None:
            return _Request(mode, None)
        return _Request(mode, self.libraries | other.libraries)


@dataclass(slots=True)
class _PageStats:
    items: int = 0
    total: int | None = None
    listed: int = 0
    seen: set[str] = field(default_factory=set)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a future's error as seen (a write the failed run no longer waits for)."""
    if not future.cancelled() and (error := future.exception()) is not None:
        _LOGGER.debug("A batch write of a failed import also failed: %s", short_cause(error))


class CatalogImporter:
    """Imports one Plex server into a :class:`Catalog`."""

    def __init__(
        self,
        catalog: Catalog,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        machine_identifier: str,
        *,
        run_sync: RunSync | None = None,
        server_name: str | None = None,
        verify_ssl: bool = True,
        client_identifier: str = "plexus",
        page_size: int = DEFAULT_PAGE_SIZE,
        key_page_size: int = DEFAULT_KEY_PAGE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        request_timeout: float = 60.0,
        on_progress: Callable[[ImportProgress], None] | None = None,
    ) -> None:
        """Remember the server and how to run blocking work (``asyncio.to_thread`` by default)."""
        self.catalog = catalog
        self.machine_identifier = machine_identifier
        self.server_name = server_name
        self._session = session
        self._url = base_url.rstrip("/")
        self._headers = plex_headers(client_identifier, token)
        self._ssl = verify_ssl
        self._run_sync: RunSync = run_sync or asyncio.to_thread
        self.page_size = page_size
        self.key_page_size = key_page_size
        self.batch_size = batch_size
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=15, sock_read=request_timeout
        )
        self.on_progress = on_progress
        self.progress: ImportProgress | None = None
        self._task: asyncio.Task[ImportResult] | None = None
        self._next: asyncio.Task[ImportResult] | None = None
        self._next_request: _Request | None = None
        self.runs_started = 0
        # The server's clock (HTTP Date) when the current run started reading.
        self._server_time: int | None = None

    @property
    def running(self) -> bool:
        """Return True while an import runs (or one is queued)."""
        return self._task is not None and not self._task.done()

    async def run(
        self, mode: ImportMode = "incremental", libraries: Collection[str] | None = None
    ) -> ImportResult:
        """Import now, or coalesce with the import already running (see the module docstring).

        ``libraries`` limits the run to sections with these keys or titles.
        """
        request = _Request(mode, frozenset(libraries) if libraries else None)
        if self._next is not None and self._next_request is not None:
            # A follow-up run is queued (and has not started): join it.
            self._next_request = self._next_request.merge(request)
            return await asyncio.shield(self._next)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._execute(request))
            return await asyncio.shield(self._task)
        self._next_request = request
        self._next = asyncio.create_task(self._execute_after(self._task))
        return await asyncio.shield(self._next)

    async def _execute_after(self, previous: asyncio.Task[ImportResult]) -> ImportResult:
        await asyncio.wait([previous])
        request = self._next_request or _Request("incremental")
        self._task, self._next, self._next_request = self._next, None, None
        return await self._execute(request)

    async def cancel(self) -> None:
        """Cancel a running import and any queued one (the catalog stays unchanged)."""
        tasks = [t for t in (self._next, self._task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- one run --------------------------------------------------------------------------------

    async def _execute(self, request: _Request) -> ImportResult:
        self.runs_started += 1
        started = time.monotonic()
        progress = self.progress = ImportProgress(request.mode)
        writer = await self._run_sync(
            self.catalog.begin_import, self.machine_identifier, request.mode, self.server_name
        )
        try:
            sections = await self._sections()
            selected = [
                sec
                for sec in sections
                if sec.type in SECTION_ITEM_TYPES
                and (
                    request.libraries is None
                    or sec.key in request.libraries
                    or sec.title in request.libraries
                )
            ]
            progress.libraries_total = len(selected)
            self._report()
            await self._run_sync(writer.sync_libraries, sections)
            for section in selected:
                progress.library = section.title
                progress.library_items_done = progress.library_items_total = 0
                self._report()
                await self._import_library(writer, section, request.mode)
                progress.libraries_done += 1
            progress.library = None
            counts = await self._run_sync(writer.commit)
        except BaseException as err:
            await asyncio.shield(self._run_sync(writer.fail, err))
            if isinstance(err, asyncio.CancelledError):
                _LOGGER.debug("Import of %s cancelled", self.machine_identifier)
            raise
        finally:
            self.progress = None
        self._report(progress)
        return ImportResult(
            request.mode, counts, time.monotonic() - started, tuple(sec.title for sec in selected)
        )

    def _report(self, progress: ImportProgress | None = None) -> None:
        progress = progress or self.progress
        if self.on_progress is not None and progress is not None:
            self.on_progress(replace(progress))

    async def _import_library(
        self, writer: ImportWriter, section: LibraryRecord, mode: ImportMode
    ) -> None:
        marker = await self._run_sync(writer.start_library, section.key)
        incremental = mode == "incremental" and marker is not None
        pending: asyncio.Future[None] | None = None
        batch: list[ItemRecord] = []

        async def flush() -> None:
            nonlocal pending, batch
            if pending is not None:
                await pending
                pending = None
            if batch:
                pending = asyncio.ensure_future(self._run_sync(writer.write_batch, batch))
                # The run may fail before this write is awaited (a bad page): its error is then
                # one of the run's consequences, not news; retrieve it so it is not logged alone.
                pending.add_done_callback(_retrieve)
                batch = []

        # Sent as "updatedAt>=<N>", which Plex splits at the "=": the filter "updatedAt>" (strictly
        # greater than N). N = marker - 1, so an item changed in the marker's own second is read
        # again; unchanged items are skipped by their fingerprint.
        extra = {"updatedAt>": str(marker - 1)} if incremental and marker is not None else {}
        types = SECTION_ITEM_TYPES[section.type]
        assert self.progress is not None
        server_totals: dict[int, int] = {}
        for type_number, _ in types:
            total = await self._count(section.key, type_number, extra)
            if incremental:
                server_totals[type_number] = await self._count(section.key, type_number, {})
            self.progress.library_items_total += total
            self.progress.items_total += total
        self._report()
        for type_number, type_name in types:
            stats = _PageStats()
            start = 0
            while True:
                page = await self._fetch_items(section.key, type_number, start, extra)
                stats.listed += page.count
                stats.total = page.total_size
                for item in page.items:
                    if item.rating_key in stats.seen:
                        continue
                    stats.seen.add(item.rating_key)
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        await flush()
                assert self.progress is not None
                self.progress.library_items_done += len(page.items)
                self.progress.items_done += len(page.items)
                self._report()
                start += page.count
                if page.count < self.page_size or (
                    page.total_size is not None and start >= page.total_size
                ):
                    break
            await flush()
            if pending is not None:
                await pending
                pending = None
            # Deletions: stored keys the server no longer lists. After an incremental run's
            # upserts every item the server has is stored, so equal counts mean nothing was
            # deleted and the key listing can be skipped.
            known = await self._run_sync(writer.known_keys, [type_name])
            missing = known - stats.seen
            if missing and server_totals.get(type_number) != len(known):
                listed = await self._fetch_keys(section.key, type_number)
                gone = missing - listed
                if gone:
                    await self._run_sync(writer.remove_items, gone)
        await self._run_sync(partial(writer.finish_library, marker=self._server_time))

    # -- HTTP -------------------------------------------------------------------------------------

    async def _sections(self) -> list[LibraryRecord]:
        self._server_time = None
        body = await self._get("/library/sections", {}, remember_date=True)
        try:
            return parse_sections(body)
        except ParseError as err:
            raise PlexResponseError(f"/library/sections: not a MediaContainer ({err})") from err

    async def _get(
        self, path: str, params: dict[str, str], *, remember_date: bool = False
    ) -> bytes:
        chunks: list[bytes] = []

        async def collect(data: bytes) -> None:
            chunks.append(data)

        await self._stream(path, params, collect, remember_date=remember_date)
        return b"".join(chunks)

    async def _stream(
        self,
        path: str,
        params: dict[str, str],
        consume: Callable[[bytes], Awaitable[None]],
        *,
        remember_date: bool = False,
    ) -> None:
        # Build the query by hand so Plex filter operators (updatedAt>=…) stay unencoded.
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self._url}{path}" + (f"?{query}" if query else "")
        try:
            async with self._session.get(
                url, headers=self._headers, ssl=self._ssl, timeout=self._timeout
            ) as resp:
                if resp.status == 401:
                    raise PlexAuthError(f"GET {path}: the server rejected the token")
                if resp.status >= 400:
                    raise PlexConnectionError(f"GET {path}: HTTP {resp.status}")
                if remember_date:
                    self._server_time = _http_date(resp.headers.get("Date"))
                async for data in resp.content.iter_chunked(_CHUNK):
                    await consume(data)
        except ParseError as err:
            raise PlexResponseError(f"{path}: not a MediaContainer ({err})") from err
        except TimeoutError as err:
            raise PlexConnectionError(f"GET {path}: timed out") from err
        except (aiohttp.ClientError, OSError) as err:
            raise PlexConnectionError(f"GET {path}: {type(err).__name__}") from err

    async def _fetch_items(
        self, section_key: str, type_number: int, start: int, extra: dict[str, str]
    ) -> _Page:
        params = {
            "type": str(type_number),
            "includeGuids": "1",
            **extra,
            "X-Plex-Container-Start": str(start),
            "X-Plex-Container-Size": str(self.page_size),
        }
        parser = ItemStreamParser()
        items: list[ItemRecord] = []
        path = f"/library/sections/{section_key}/all"
        feeder = _OffLoopFeed(self._run_sync, lambda data: items.extend(parser.feed(data)))
        await self._stream(path, params, feeder.consume)

        def finish() -> None:
            items.extend(parser.close())

        try:
            await feeder.finish(finish)
        except ParseError as err:
            raise PlexResponseError(f"{path}: not a MediaContainer ({err})") from err
        return _Page(items, parser.listed, parser.total_size)

    async def _count(self, section_key: str, type_number: int, extra: dict[str, str]) -> int:
        """Return how many items of one type match (a size-only request)."""
        params = {
            "type": str(type_number),
            **extra,
            "X-Plex-Container-Start": "0",
            "X-Plex-Container-Size": "0",
        }
        parser = KeyStreamParser()
        feeder = _OffLoopFeed(self._run_sync, parser.feed)
        path = f"/library/sections/{section_key}/all"
        await self._stream(path, params, feeder.consume)
        try:
            await feeder.finish(parser.close)
        except ParseError as err:
            raise PlexResponseError(f"{path}: not a MediaContainer ({err})") from err
        total = _int_or_none(parser.container.get("totalSize"))
        return total if total is not None else parser.count

    async def _fetch_keys(self, section_key: str, type_number: int) -> set[str]:
        """Return every rating key of one type in a section (only the keys are read)."""
        keys: set[str] = set()
        start = 0
        path = f"/library/sections/{section_key}/all"
        while True:
            parser = KeyStreamParser()
            feeder = _OffLoopFeed(self._run_sync, parser.feed)

            params = {
                "type": str(type_number),
                "includeGuids": "0",
                # Ask for the keys only; a server that ignores these still answers correctly.
                "includeFields": "ratingKey,type",
                "excludeElements": (
                    "Media,Genre,Country,Director,Writer,Role,Producer,Collection,Label,Guid"
                ),
                "X-Plex-Container-Start": str(start),
                "X-Plex-Container-Size": str(self.key_page_size),
            }
            await self._stream(path, params, feeder.consume)
            try:
                await feeder.finish(parser.close)
            except ParseError as err:
                raise PlexResponseError(f"{path}: not a MediaContainer ({err})") from err
            keys.update(parser.keys)
            start += parser.count
            total = _int_or_none(parser.container.get("totalSize"))
            if parser.count < self.key_page_size or (total is not None and start >= total):
                return keys


class _OffLoopFeed:
    """Feed a response to a parser in the executor, a few hundred KiB at a time.

    A page of a large library is megabytes of XML that arrive faster than they parse; parsed
    chunk by chunk on the event loop they held it for 200-300 ms at a time (seen with asyncio's
    debug mode during a 100,000-item import). Chunks are gathered and parsed in one executor job
    per ``_PARSE_CHUNK``; each job finishes before the next starts, so the parser is never used
    from two threads at once.
    """

    def __init__(self, run_sync: RunSync, feed: Callable[[bytes], object]) -> None:
        self._run_sync = run_sync
        self._feed = feed
        self._buffer = bytearray()

    async def consume(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _PARSE_CHUNK:
            await self._run_sync(self._feed, self._take())

    async def finish(self, close: Callable[[], object]) -> None:
        """Parse what is left and close the parser (in the executor)."""
        tail = self._take()

        def last() -> None:
            if tail:
                self._feed(tail)
            close()

        await self._run_sync(last)

    def _take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@dataclass(slots=True)
class _Page:
    items: Sequence[ItemRecord]
    count: int
    total_size: int | None


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except TypeError, ValueError, IndexError, OverflowError:
        return None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
