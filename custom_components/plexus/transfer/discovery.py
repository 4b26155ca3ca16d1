"""Discovery: find the video files on the source roots and remember what their names say.

A scan walks each root (``os.scandir``; hidden folders and extras folders — samples, trailers,
featurettes … — skipped, as are files named like Plex's local extras ``…-trailer.mkv`` and names
that are not UTF-8, which no database can store), keeps
the files with a video extension, and compares each one's ``(size, mtime_ns)`` with the stored
row: unchanged files are not parsed again, new or changed ones are parsed
(:func:`.naming.parse_name`) and linked (the optional ``linker``), and rows of files that are gone
are deleted. A root that is missing — or present but EMPTY while rows say it held files, which is
what an unmounted share's mount point looks like — is reported in ``missing_roots`` and its rows
are kept.

All file-system and database work is synchronous and runs through ``run_sync`` (the glue passes
``hass.async_add_executor_job``); :class:`Discovery` is the async face.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
import contextlib
import logging
import os
from pathlib import Path
import time
from typing import Protocol

from .models import MediaFile, ScanOptions, ScanProgress, ScanResult, SourceRoot
from .naming import ParsedName, parse_name
from .store import TransferStore

_LOGGER = logging.getLogger(__name__)
_PROGRESS_EVERY = 250


class RunSync(Protocol):
    """Run a blocking function off the event loop (``hass.async_add_executor_job``)."""

    def __call__[T](self, func: Callable[[], T], /) -> Awaitable[T]:
        """Run ``func`` in an executor and return its result."""
        ...


# local path, parsed name -> the Plex item it is (rating key, catalog id …), or None.
type Linker = Callable[[str, ParsedName], str | None]


def is_video(name: str, options: ScanOptions) -> bool:
    """Return True for a video file that is not a sample/trailer/extra by its name."""
    stem, dot, ext = name.rpartition(".")
    if not dot or f".{ext.lower()}" not in options.extensions or name.startswith("."):
        return False
    lowered = stem.lower()
    return not any(
        lowered == suffix
        or lowered.endswith((f"-{suffix}", f".{suffix}", f"_{suffix}", f" {suffix}"))
        for suffix in options.skip_suffixes
    )


def _is_utf8(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def walk_videos(root: str, options: ScanOptions) -> Iterator[tuple[str, str, int, int]]:
    """Yield ``(path, rel_path, size, mtime_ns)`` of every video file under ``root``.

    Linked folders are followed, each folder once: a link back up the tree (or a second link
    to a folder already scanned) is skipped, not walked again and again.
    """
    stack = [(root, "")]
    visited: set[tuple[int, int]] = set()
    with contextlib.suppress(OSError):
        st = Path(root).stat()
        visited.add((st.st_dev, st.st_ino))
    while stack:
        folder, rel_folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            _LOGGER.debug("Cannot list %s: %s", folder, err)
            continue
        entries.sort(key=lambda e: e.name)
        for entry in entries:
            if not _is_utf8(entry.name):
                # Not UTF-8 on disk (Python hands it over with surrogates): no database can
                # store the path, so the file (or folder) is left out.
                _LOGGER.debug("Skipping %r: its name is not UTF-8", entry.path)
                continue
            rel = f"{rel_folder}{entry.name}"
            try:
                if entry.is_dir():
                    if entry.name.startswith(".") or entry.name.casefold() in options.skip_folders:
                        continue
                    st = entry.stat()
                    if (st.st_dev, st.st_ino) in visited:
                        _LOGGER.debug("Skipping %s: a folder already scanned", entry.path)
                        continue
                    visited.add((st.st_dev, st.st_ino))
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file() and is_video(entry.name, options):
                    st = entry.stat()
                    yield entry.path, rel, st.st_size, st.st_mtime_ns
            except OSError as err:  # vanished meanwhile, permission …
                _LOGGER.debug("Skipping %s: %s", entry.path, err)


def _root_looks_missing(root: str, has_rows: bool) -> bool:
    try:
        with os.scandir(root) as entries:
            empty = next(entries, None) is None
    except OSError:
        return True
    return empty and has_rows


def scan_sync(
    store: TransferStore,
    roots: Sequence[SourceRoot],
    options: ScanOptions | None = None,
    linker: Linker | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
) -> ScanResult:
    """Scan the roots into the store (blocking; see the module docstring)."""
    options = options or ScanOptions()
    result = ScanResult()
    started = time.perf_counter()
    for root in roots:
        root_path = os.path.normpath(root.path)
        known = store.file_index(root_path)
        if _root_looks_missing(root_path, bool(known)):
            _LOGGER.info(
                "Source root %s is missing or empty; keeping its %s files", root_path, len(known)
            )
            result.missing_roots.append(root_path)
            continue
        new: list[tuple[str, str, int, int, ParsedName, str | None]] = []
        changed: list[tuple[int, int, int, ParsedName, str | None]] = []
        seen: set[str] = set()
        parsed_count = 0
        for path, rel, size, mtime_ns in walk_videos(root_path, options):
            seen.add(path)
            result.seen += 1
            row = known.get(path)
            if row is not None and row[1] == size and row[2] == mtime_ns:
                result.unchanged += 1
            else:
                parsed = parse_name(rel, root.media_type)
                parsed_count += 1
                if parsed.parser == "fast":
                    result.parsed_fast += 1
                else:
                    result.parsed_guessit += 1
                link = _link(linker, path, parsed)
                if row is None:
                    new.append((path, rel, size, mtime_ns, parsed, link))
                else:
                    changed.append((row[0], size, mtime_ns, parsed, link))
            if progress is not None and result.seen % _PROGRESS_EVERY == 0:
                progress(ScanProgress(root_path, result.seen, parsed_count))
        removed = [row[0] for path, row in known.items() if path not in seen]
        store.write_scan(root_path, root.media_type, new, changed, removed)
        result.added += len(new)
        result.changed += len(changed)
        result.removed += len(removed)
        if progress is not None:
            progress(ScanProgress(root_path, result.seen, parsed_count))
    result.seconds = time.perf_counter() - started
    return result


def _link(linker: Linker | None, path: str, parsed: ParsedName) -> str | None:
    if linker is None:
        return None
    try:
        return linker(path, parsed)
    except Exception:
        _LOGGER.exception("The linker failed for %s; the file stays unlinked", path)
        return None


def relink_sync(store: TransferStore, linker: Linker) -> int:
    """Run the linker on every unlinked file (after a catalog import); return how many linked."""
    links: dict[int, str | None] = {}
    for media in store.files(unlinked=True):
        if (link := _link(linker, media.path, media.parsed)) is not None:
            links[media.id] = link
    if links:
        store.set_links(links)
    return len(links)


class Discovery:
    """The async face of discovery: scans run one at a time, off the event loop."""

    def __init__(
        self,
        store: TransferStore,
        run_sync: RunSync,
        *,
        options: ScanOptions | None = None,
        linker: Linker | None = None,
    ) -> None:
        """Keep the store, the executor hand-off, scan options and the optional linker."""
        self.store = store
        self.options = options or ScanOptions()
        self.linker = linker
        self._run_sync = run_sync
        self._lock = asyncio.Lock()

    @property
    def scanning(self) -> bool:
        """Return True while a scan runs."""
        return self._lock.locked()

    async def scan(
        self,
        roots: Sequence[SourceRoot],
        progress: Callable[[ScanProgress], None] | None = None,
    ) -> ScanResult:
        """Scan ``roots``; ``progress`` is called on the loop (every 250 files, and per root)."""
        if not roots:
            raise ValueError("no source roots to scan")
        loop = asyncio.get_running_loop()

        def report(update: ScanProgress) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, update)

        async with self._lock:
            return await self._run_sync(
                lambda: scan_sync(self.store, roots, self.options, self.linker, report)
            )

    async def relink(self) -> int:
        """Link the files that are not linked yet (no-op without a linker)."""
        linker = self.linker
        if linker is None:
            return 0
        return await self._run_sync(lambda: relink_sync(self.store, linker))

    async def files(
        self,
        *,
        kind: str | None = None,
        title: str | None = None,
        year: int | None = None,
        season: int | None = None,
    ) -> list[MediaFile]:
        """Return stored files by kind (movie/episode), title, year and season."""
        return await self._run_sync(
            lambda: self.store.files(kind=kind, title=title, year=year, season=season)
        )
