"""File sync in Home Assistant: one transfer queue per profile subentry (glue over `transfer/`).

The queue's tables live in the catalog's database (on the catalog's own SQLAlchemy engine), so
they survive restarts; while the catalog database is not open, the profiles' entities are
unavailable and the services say so, and the queues start as soon as it opens. The engine copies
(rsync, or its built-in copier where rsync is missing), supervises its workers and logs their
failures; this module turns its events into HA bus events (`plexus_transfer_<kind>`), dispatcher
pushes for the entities, and a Repairs issue while a full disk holds a profile up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date
import logging
from pathlib import Path, PurePath
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.event import async_track_time_change, async_track_time_interval
from homeassistant.util import dt as dt_util

from .catalog import CatalogItem, PathMapping
from .catalog_manager import CatalogCoordinator, parse_path_mappings
from .const import (
    CONF_BACKOFF_BASE,
    CONF_BACKOFF_CAP,
    CONF_BANDWIDTH_LIMIT,
    CONF_CONCURRENCY,
    CONF_FREE_SPACE_RESERVE,
    CONF_LAYOUT,
    CONF_MOVIE_DESTINATION,
    CONF_MOVIE_SOURCES,
    CONF_PATH_MAPPINGS,
    CONF_PROFILE_NAME,
    CONF_RETRIES,
    CONF_SOURCE_MODE,
    CONF_TV_DESTINATION,
    CONF_TV_SOURCES,
    CONF_VERIFY,
    DOMAIN,
    SOURCE_MODE_CATALOG,
    SUBENTRY_TRANSFER,
    TRANSFER_COPIER,
    TRANSFER_EVENT_PREFIX,
    TRANSFER_FREE_SPACE_INTERVAL,
)
from .ids import signal_transfer_profile
from .transfer import (
    CurrentTransfer,
    Discovery,
    DiskFullError,
    MediaFile,
    ParsedName,
    ProfileOptions,
    ScanProgress,
    ScanResult,
    SourceRoot,
    TransferEvent,
    TransferItem,
    TransferQueue,
    TransferRequest,
    TransferState,
    TransferStore,
    copier_for,
    plan_destination,
)
from .transfer.naming import MediaType
from .transfer.paths import free_bytes

_LOGGER = logging.getLogger(__name__)
# Engine events fired on HA's bus (the others only move the entities).
BUS_EVENTS = frozenset({"queued", "started", "finished", "failed"})


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """A profile's settings, from its subentry data."""

    name: str
    from_catalog: bool
    movie_sources: tuple[str, ...]
    tv_sources: tuple[str, ...]
    movie_destination: str
    tv_destination: str
    layout: str
    options: ProfileOptions

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ProfileConfig:
        """Build the config (ProfileOptions raises ValueError naming a bad option)."""
        destinations = tuple(
            d for d in (data.get(CONF_MOVIE_DESTINATION), data.get(CONF_TV_DESTINATION)) if d
        )
        bandwidth = int(data.get(CONF_BANDWIDTH_LIMIT, 0))
        return cls(
            name=data[CONF_PROFILE_NAME],
            from_catalog=data.get(CONF_SOURCE_MODE) == SOURCE_MODE_CATALOG,
            movie_sources=tuple(data.get(CONF_MOVIE_SOURCES, ())),
            tv_sources=tuple(data.get(CONF_TV_SOURCES, ())),
            movie_destination=data.get(CONF_MOVIE_DESTINATION) or "",
            tv_destination=data.get(CONF_TV_DESTINATION) or "",
            layout=data.get(CONF_LAYOUT, "plex"),
            options=ProfileOptions(
                verify=data.get(CONF_VERIFY, "sha256"),
                bandwidth_limit=bandwidth * 1024 if bandwidth > 0 else None,
                retries=int(data.get(CONF_RETRIES, 5)),
                backoff_base=float(data.get(CONF_BACKOFF_BASE, 2.0)),
                backoff_cap=float(data.get(CONF_BACKOFF_CAP, 60.0)),
                concurrency=int(data.get(CONF_CONCURRENCY, 1)),
                free_space_reserve=int(data.get(CONF_FREE_SPACE_RESERVE, 0)) * 1024 * 1024,
                destination_roots=destinations,
            ),
        )

    @property
    def source_roots(self) -> list[SourceRoot]:
        """The folders discovery scans (none for a profile that takes files from the catalog)."""
        if self.from_catalog:
            return []
        return [SourceRoot(p, "movie") for p in self.movie_sources] + [
            SourceRoot(p, "show") for p in self.tv_sources
        ]

    def destination_for(self, media_type: MediaType) -> str:
        """The destination root of a media type ("" when the profile has none for it)."""
        return self.movie_destination if media_type == "movie" else self.tv_destination

    @property
    def shared_destination(self) -> bool:
        """Movies and TV go to the same folder (the plex layout then adds Movies/ and TV/)."""
        return bool(self.movie_destination) and self.movie_destination == self.tv_destination


@dataclass(slots=True)
class ScanState:
    """What the scan-progress sensor shows."""

    scanning: bool = False
    seen: int = 0
    parsed: int = 0
    last: ScanResult | None = None


@dataclass(slots=True)
class TransferProfile:
    """A profile's queue and the figures its entities show."""

    subentry_id: str
    config: ProfileConfig
    queue: TransferQueue | None = None
    discovery: Discovery | None = None
    scan: ScanState = field(default_factory=ScanState)
    counts: dict[str, int] = field(default_factory=dict)
    transferred_today: int = 0
    today: date | None = None
    free_space: int | None = None
    disk_full: bool = False
    refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Transfers between their started and finished/failed/paused/cancelled events.
    running: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.config.name

    @property
    def available(self) -> bool:
        """True while its queue runs (the catalog database is open)."""
        return self.queue is not None

    @property
    def current(self) -> CurrentTransfer | None:
        """The running transfer (the first, when several run)."""
        if self.queue is None:
            return None
        return next(
            (c for item_id, c in self.queue.current.items() if item_id in self.running), None
        )

    @property
    def queue_length(self) -> int:
        """Transfers waiting, running or paused."""
        return sum(
            self.counts.get(s, 0)
            for s in (TransferState.QUEUED, TransferState.RUNNING, TransferState.PAUSED)
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file to copy, whichever way it was found (MediaFile carries path, names, type)."""

    media: MediaFile
    title: str


def disk_full_issue_id(subentry_id: str) -> str:
    """Repairs issue id of a profile held up by a full disk."""
    return f"transfer_disk_full_{subentry_id}"


def _mib(value: int) -> str:
    return f"{value / (1024 * 1024):.0f}"


class TransferManager:
    """The transfer profiles of one server entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        catalog: CatalogCoordinator,
        server_id: str,
    ) -> None:
        """Read the profile subentries; `async_start` opens their queues."""
        self.hass = hass
        self.entry = entry
        self.catalog = catalog
        self.server_id = server_id
        self.store: TransferStore | None = None
        self.copier_name: str | None = None
        self.profiles: dict[str, TransferProfile] = {}
        self.bad_profiles: dict[str, str] = {}
        for sub in entry.subentries.values():
            if sub.subentry_type != SUBENTRY_TRANSFER:
                continue
            try:
                config = ProfileConfig.from_data(dict(sub.data))
            except (ValueError, KeyError) as err:
                _LOGGER.error("Transfer profile %s is not usable: %s", sub.title, err)
                self.bad_profiles[sub.subentry_id] = str(err)
                continue
            self.profiles[sub.subentry_id] = TransferProfile(sub.subentry_id, config)
        self._unsubs: list[CALLBACK_TYPE] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opening = False
        self._stopped = False

    # -- life cycle ------------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Start the queues now if the catalog is open, otherwise as soon as it opens."""
        if not self.profiles:
            return
        self._unsubs.append(self.catalog.async_add_listener(self._catalog_changed))
        self._unsubs.append(
            async_track_time_change(self.hass, self._midnight, hour=0, minute=0, second=0)
        )
        self._unsubs.append(
            async_track_time_interval(
                self.hass, self._read_free_space, TRANSFER_FREE_SPACE_INTERVAL
            )
        )
        self._unsubs.append(
            async_dispatcher_connect(self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._entry_changed)
        )
        await self._async_open()

    @callback
    def _entry_changed(self, change: ConfigEntryChange, entry: ConfigEntry) -> None:
        """A profile subentry removed: stop its queue and forget its transfers and partials."""
        if change is not ConfigEntryChange.UPDATED or entry.entry_id != self.entry.entry_id:
            return
        for subentry_id in [s for s in self.profiles if s not in entry.subentries]:
            profile = self.profiles.pop(subentry_id)
            ir.async_delete_issue(self.hass, DOMAIN, disk_full_issue_id(subentry_id))
            self._spawn(self._forget(profile), f"plexus transfer profile {subentry_id} removed")

    async def _forget(self, profile: TransferProfile) -> None:
        queue, profile.queue = profile.queue, None
        if queue is not None:
            forgotten = await queue.forget()
        elif self.store is not None:
            store = self.store
            forgotten = await self.hass.async_add_executor_job(
                store.delete_profile, profile.subentry_id
            )
        else:  # the database is not open: nothing can be cleaned now
            _LOGGER.warning(
                "File sync profile %s was removed while the catalog database is closed; "
                "its queue stays in the database",
                profile.name,
            )
            return
        _LOGGER.info(
            "File sync profile %s removed: %s transfer(s) forgotten", profile.name, forgotten
        )

    @callback
    def _catalog_changed(self) -> None:
        if self.store is None and self.catalog.available and not self._opening:
            self._spawn(self._async_open(), "plexus transfer queues open")

    async def _async_open(self) -> None:
        catalog = self.catalog.catalog
        if catalog is None or self.store is not None or self._stopped:
            return
        self._opening = True
        try:
            store = await self.hass.async_add_executor_job(TransferStore, catalog.engine)
            copier = copier_for(TRANSFER_COPIER, run_sync=self.hass.async_add_executor_job)
            self.store = store
            self.copier_name = copier.name
            _LOGGER.debug("File sync uses the %s copier", copier.name)
            for profile in list(self.profiles.values()):
                if self.profiles.get(profile.subentry_id) is not profile:
                    continue  # removed meanwhile
                queue = TransferQueue(
                    store,
                    profile.subentry_id,
                    copier=copier,
                    run_sync=self.hass.async_add_executor_job,
                    options=profile.config.options,
                    is_allowed=self.hass.config.is_allowed_path,
                    on_event=self._event_handler(profile),
                    on_disk_full=self._disk_full_handler(profile),
                )
                profile.discovery = Discovery(store, self.hass.async_add_executor_job)
                profile.queue = queue
                await queue.start()
                await self._refresh(profile)
        except Exception:
            _LOGGER.exception("The transfer queues could not be opened")
        finally:
            self._opening = False

    async def async_stop(self) -> None:
        """Stop the queues (running transfers go back to the queue, partials kept)."""
        self._stopped = True
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        for profile in self.profiles.values():
            if profile.queue is not None:
                await profile.queue.stop()
                profile.queue = None
        self.store = None

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = self.entry.async_create_background_task(self.hass, coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- engine callbacks ------------------------------------------------------------------------

    def _event_handler(self, profile: TransferProfile) -> Callable[[TransferEvent], None]:
        @callback
        def handle(event: TransferEvent) -> None:
            if event.kind in BUS_EVENTS:
                self.hass.bus.async_fire(
                    f"{TRANSFER_EVENT_PREFIX}{event.kind}",
                    {
                        "transfer_id": event.item_id,
                        "profile": profile.name,
                        "profile_id": profile.subentry_id,
                        "title": event.title,
                        "source": event.source,
                        "path": event.destination,
                        "size": event.size,
                        "sha256": event.sha256,
                        "error": event.error,
                    },
                )
            if event.kind == "started":
                profile.running.add(event.item_id)
            elif event.kind in ("finished", "failed", "paused", "cancelled"):
                profile.running.discard(event.item_id)
            if event.kind == "finished":
                self._roll_day(profile)
                profile.transferred_today += event.size
            if event.kind in ("started", "finished") and profile.disk_full:
                profile.disk_full = False
                ir.async_delete_issue(self.hass, DOMAIN, disk_full_issue_id(profile.subentry_id))
            if event.kind == "progress":
                self._push(profile)
            else:
                self._spawn(self._refresh(profile), "plexus transfer refresh")

        return handle

    def _disk_full_handler(
        self, profile: TransferProfile
    ) -> Callable[[DiskFullError, TransferItem], None]:
        @callback
        def handle(err: DiskFullError, item: TransferItem) -> None:
            profile.disk_full = True
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                disk_full_issue_id(profile.subentry_id),
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="transfer_disk_full",
                translation_placeholders={
                    "profile": profile.name,
                    "title": item.title,
                    "path": err.path or str(Path(item.destination).parent),
                    "needed_mib": _mib(err.needed_bytes),
                    "free_mib": _mib(err.free_bytes) if err.free_bytes is not None else "?",
                },
            )

        return handle

    @callback
    def _push(self, profile: TransferProfile) -> None:
        async_dispatcher_send(self.hass, signal_transfer_profile(profile.subentry_id))

    def _roll_day(self, profile: TransferProfile) -> None:
        today = dt_util.now().date()
        if profile.today != today:
            profile.today = today
            profile.transferred_today = 0

    @callback
    def _midnight(self, _now: Any) -> None:
        for profile in self.profiles.values():
            self._roll_day(profile)
            self._push(profile)

    @callback
    def _read_free_space(self, _now: Any = None) -> None:
        for profile in self.profiles.values():
            self._spawn(self._refresh(profile), "plexus transfer refresh")

    async def _refresh(self, profile: TransferProfile) -> None:
        """Read counts, today's total and free space off the loop, then push (one at a time)."""
        async with profile.refresh_lock:
            await self._refresh_now(profile)

    async def _refresh_now(self, profile: TransferProfile) -> None:
        queue = profile.queue
        if queue is None:
            return
        items = await queue.items()
        counts: dict[str, int] = {}
        today = dt_util.now().date()
        done_today = 0
        for item in items:
            counts[item.state] = counts.get(item.state, 0) + 1
            if (
                item.state == TransferState.DONE
                and item.finished_at is not None
                and dt_util.as_local(item.finished_at).date() == today
            ):
                done_today += item.size
        profile.counts = counts
        profile.today = today
        profile.transferred_today = done_today
        roots = profile.config.options.destination_roots
        profile.free_space = await self.hass.async_add_executor_job(_free_space, roots)
        self._push(profile)

    # -- commands (services and buttons) ---------------------------------------------------------

    def profile(self, subentry_id: str) -> TransferProfile:
        """Return a profile whose queue runs; HomeAssistantError when it cannot."""
        profile = self.profiles[subentry_id]
        if profile.queue is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="transfer_unavailable",
                translation_placeholders={"profile": profile.name},
            )
        return profile

    def queue(self, subentry_id: str) -> TransferQueue:
        """Return a running profile's queue."""
        queue = self.profile(subentry_id).queue
        assert queue is not None
        return queue

    async def async_pause(self, subentry_id: str) -> None:
        """Pause a profile's queue."""
        await self.queue(subentry_id).pause()
        await self._refresh(self.profiles[subentry_id])

    async def async_resume(self, subentry_id: str) -> None:
        """Resume a profile's queue (also what a full disk paused)."""
        await self.queue(subentry_id).resume()
        await self._refresh(self.profiles[subentry_id])

    async def async_cancel(self, subentry_id: str, item_id: int) -> TransferItem:
        """Cancel one transfer."""
        item = await self.queue(subentry_id).cancel(item_id)
        await self._refresh(self.profiles[subentry_id])
        return item

    async def async_remove_local_copy(self, subentry_id: str, path: str) -> TransferItem:
        """Delete a copy this profile made."""
        item = await self.queue(subentry_id).remove_local_copy(path)
        await self._refresh(self.profiles[subentry_id])
        return item

    async def async_scan(self, subentry_id: str) -> ScanResult:
        """Scan a profile's source folders (catalog profiles have none to scan)."""
        profile = self.profile(subentry_id)
        assert profile.discovery is not None
        roots = profile.config.source_roots
        if not roots:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="transfer_no_sources",
                translation_placeholders={"profile": profile.name},
            )

        @callback
        def progress(update: ScanProgress) -> None:
            profile.scan.seen = update.seen
            profile.scan.parsed = update.parsed
            self._push(profile)

        profile.scan = ScanState(scanning=True, last=profile.scan.last)
        self._push(profile)
        try:
            result = await profile.discovery.scan(roots, progress)
        finally:
            profile.scan.scanning = False
            self._push(profile)
        profile.scan.last = result
        profile.scan.seen = result.seen
        self._push(profile)
        return result

    # -- what to copy ----------------------------------------------------------------------------

    def path_mappings(self) -> list[PathMapping]:
        """The server's path mappings (Plex path prefix => local prefix)."""
        return parse_path_mappings(self.entry.options.get(CONF_PATH_MAPPINGS, ""))

    def candidates_from_items(
        self, profile: TransferProfile, items: list[CatalogItem]
    ) -> list[Candidate]:
        """Local files of catalog items (movies and episodes whose Plex path is mapped)."""
        found: list[Candidate] = []
        mappings = self.path_mappings()
        for item in items:
            media_type: MediaType = "movie" if item.type == "movie" else "show"
            for info in item.files:
                if not info.mapped:
                    continue
                root, rel = _split_root(info.local_path, profile.config, media_type, mappings)
                if item.type == "movie":
                    parsed = ParsedName("movie", item.title, year=item.year)
                    title = f"{item.title} ({item.year})" if item.year else item.title
                else:
                    show = item.grandparent_title or item.title
                    numbers = (item.episode_number,) if item.episode_number is not None else ()
                    parsed = ParsedName(
                        "episode",
                        show,
                        season=item.season_number,
                        episodes=numbers,
                        episode_title=item.title,
                    )
                    title = f"{show} S{item.season_number or 0:02d}E{item.episode_number or 0:02d}"
                found.append(
                    Candidate(
                        MediaFile(
                            id=-1,
                            root=root,
                            media_type=media_type,
                            rel_path=rel,
                            path=info.local_path,
                            size=info.size or 0,
                            mtime_ns=0,
                            parsed=parsed,
                            link=item.rating_key,
                        ),
                        title,
                    )
                )
        return found

    async def async_enqueue(
        self, profile: TransferProfile, candidates: list[Candidate]
    ) -> list[TransferItem]:
        """Plan each destination off the loop, check the source is allowed, and queue."""
        queue = self.queue(profile.subentry_id)
        config = profile.config
        is_allowed = self.hass.config.is_allowed_path
        queued: list[TransferItem] = []
        for cand in candidates:
            media = cand.media
            root = config.destination_for(media.media_type)
            if not root:
                raise NoDestinationError(media.media_type)

            def plan(media: MediaFile = media, root: str = root) -> str:
                if not is_allowed(media.path):
                    raise SourceNotAllowedError(media.path)
                return plan_destination(
                    root,
                    layout=config.layout,  # type: ignore[arg-type]
                    rel_path=media.rel_path,
                    parsed=media.parsed,
                    media_type=media.media_type,
                    is_allowed=is_allowed,
                    type_folders=config.shared_destination,
                )

            destination = await self.hass.async_add_executor_job(plan)
            request = TransferRequest(
                media.path, destination, cand.title, file_id=media.id if media.id >= 0 else None
            )
            queued.append(await queue.enqueue(request))
        return queued

    async def async_diagnostics(self) -> dict[str, Any]:
        """Which copier runs, and each profile's queue counts."""
        return {
            "copier": self.copier_name,
            "store_open": self.store is not None,
            "profiles": {
                p.subentry_id: {
                    "available": p.available,
                    "counts": dict(p.counts),
                    "paused": p.queue.paused if p.queue else None,
                    "disk_full": p.disk_full,
                    "layout": p.config.layout,
                    "verify": p.config.options.verify,
                    "from_catalog": p.config.from_catalog,
                }
                for p in self.profiles.values()
            },
            "bad_profiles": dict(self.bad_profiles),
        }


class NoDestinationError(Exception):
    """The profile has no destination for this media type."""

    def __init__(self, media_type: str) -> None:
        """Name the media type."""
        self.media_type = media_type
        super().__init__(f"no destination for {media_type}")


class SourceNotAllowedError(Exception):
    """Home Assistant does not allow reading this source file."""

    def __init__(self, path: str) -> None:
        """Name the source."""
        self.path = path
        super().__init__(f"source is not allowed: {path}")


def _split_root(
    path: str, config: ProfileConfig, media_type: MediaType, mappings: list[PathMapping]
) -> tuple[str, str]:
    """The source root a local file is under, and its path relative to it (for `mirror`)."""
    roots = config.movie_sources if media_type == "movie" else config.tv_sources
    candidates = [*roots, *(m.local_prefix for m in mappings)]
    for root in sorted(candidates, key=len, reverse=True):
        prefix = root.rstrip("/\\")
        if path.startswith((f"{prefix}/", f"{prefix}\\")):
            return prefix, path[len(prefix) + 1 :]
    pure = PurePath(path)
    return str(pure.parent), pure.name


def _free_space(roots: tuple[str, ...]) -> int | None:
    """Free bytes at the first destination root that can tell (or its nearest parent)."""
    for root in roots:
        if (free := free_bytes(Path(root))) is not None:
            return free
    return None
