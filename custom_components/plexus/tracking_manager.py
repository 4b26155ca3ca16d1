"""Watch tracking of a server entry in HA: its webhook, the tracker, the websocket backup.

Thin glue over `tracking/` (the engine) and `catalog/matcher.py`:

- **Webhook.** Each server entry owns one (`entry.data[webhook_id]`, made in the config flow or by
  the entry migration), registered for POST only, local-only unless the option allows remote
  servers. The handler reads the multipart body through the engine (10 MiB cap), answers 4xx for
  anything it cannot accept (one log line per source per 5 minutes; never a 5xx, never a traceback)
  and 200 for every accepted payload. Accepted payloads are fired on the bus (`plexus_webhook`),
  sent to the server's `event` entity, and queued for the tracker; a worker task writes them to
  the database in the executor, so the answer never waits for the disk. A payload of another
  server Plexus has an entry for is handled as that entry's; one of a server Plexus does not know
  is acknowledged, fired on the bus and recorded as skipped by this entry's tracker.
- **Database.** The tracker's tables live in the catalog database. While that database is not open
  (see `CatalogCoordinator`), events still fire; the events that can become a watch
  (`media.scrobble`, `media.stop`) are held in memory (up to 1,000, oldest dropped with one
  warning) and applied when the database opens. Status: `status` (`ready`, `waiting_for_catalog`).
- **Websocket backup.** A coordinator listener compares the sessions of consecutive snapshots (and
  `playing` notifications keep each session's newest position); a session that ends is passed to
  `WatchTracker.session_ended` (source `websocket`), which records it when it ended past the
  watched threshold. The store merges a webhook and a websocket record of the same play.
- **Users.** The tracked users are the monitored users option; when it is empty, every user seen
  in sessions, webhooks or the history (learned as they appear; entities are added for each).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
import logging
import time
from typing import TYPE_CHECKING, Any, Final, cast

from aiohttp import hdrs, web
from aiohttp.hdrs import METH_POST
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.util import dt as dt_util
from sqlalchemy.exc import SQLAlchemyError

from .catalog.matcher import MediaMatcher
from .const import (
    CONF_AUTO_MAP_THRESHOLD,
    CONF_CROSS_SERVER,
    CONF_MARK_WATCHED_IN_PLEX,
    CONF_MONITORED_USERS,
    CONF_WATCHED_THRESHOLD,
    CONF_WEBHOOK_LOCAL_ONLY,
    DEFAULT_AUTO_MAP_THRESHOLD,
    DEFAULT_WATCHED_THRESHOLD,
    DOMAIN,
    EVENT_PLEXUS_WEBHOOK,
    WATCH_EVENTS,
)
from .ids import (
    signal_notification,
    signal_tracked_users,
    signal_watches_changed,
    signal_webhook,
)
from .plex import PlexError, PlexSession
from .repairs import async_raise_conflicts
from .tracking import (
    ItemSummary,
    Outcome,
    SessionEnd,
    TrackerOptions,
    TrackingStore,
    WatchTracker,
    WebhookError,
    WebhookEvent,
    read_webhook,
)
from .tracking.store import TrackingSchemaError

if TYPE_CHECKING:
    from .catalog_manager import CatalogCoordinator
    from .coordinator import PlexusCoordinator

_LOGGER = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S: Final = 300.0
MAX_HELD: Final = 1_000
QUEUE_SIZE: Final = 10_000
DRAIN_TIMEOUT_S: Final = 10.0
BATCH_SIZE: Final = 25
WEBHOOK_NAME: Final = "Plexus"
# Plex's identifier of the library provider in /:/scrobble and /:/unscrobble.
LIBRARY_IDENTIFIER: Final = "com.plexapp.plugins.library"


async def _direct[T](func: Callable[..., T], /, *args: Any) -> T:
    """Run a database call at once (the executor-side tracker is already in a worker thread)."""
    return func(*args)


def _drive[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    coro.close()
    raise RuntimeError("a tracking step waited for something; it must not")


def webhook_urls(hass: HomeAssistant, webhook_id: str) -> dict[str, str | None]:
    """Return the webhook's local URL and external URL (None where HA has none)."""
    urls: dict[str, str | None] = {}
    for key, external in (("local", False), ("external", True)):
        try:
            urls[key] = webhook.async_generate_url(
                hass,
                webhook_id,
                allow_internal=not external,
                allow_external=external,
                prefer_external=external,
            )
        except NoURLAvailableError:
            urls[key] = None
    return urls


def watched_threshold(options: dict[str, Any]) -> float:
    """Return the watched threshold option as a fraction."""
    return float(options.get(CONF_WATCHED_THRESHOLD, DEFAULT_WATCHED_THRESHOLD)) / 100.0


@dataclass(slots=True)
class _Seen:
    """A session the coordinator saw, with its newest position."""

    session: PlexSession
    position_ms: int


@dataclass(slots=True)
class TrackingCounters:
    """What the webhook and tracker did since setup (diagnostics)."""

    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    held_dropped: int = 0


class TrackingManager:
    """Watch tracking of one server entry (see the module docstring)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        coordinator: PlexusCoordinator,
        catalog: CatalogCoordinator,
    ) -> None:
        """Prepare; `async_start` registers the webhook and opens the store."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.catalog = catalog
        self.server_id = coordinator.server_identifier
        self.webhook_id: str = entry.data[CONF_WEBHOOK_ID]
        options = dict(entry.options)
        self.local_only: bool = options.get(CONF_WEBHOOK_LOCAL_ONLY, True)
        self.mark_in_plex: bool = options.get(CONF_MARK_WATCHED_IN_PLEX, False)
        self.cross_server: bool = options.get(CONF_CROSS_SERVER, False)
        self.options = TrackerOptions(
            watched_threshold=watched_threshold(options),
            monitored_users=frozenset(options.get(CONF_MONITORED_USERS, [])),
            auto_map_threshold=float(
                options.get(CONF_AUTO_MAP_THRESHOLD, DEFAULT_AUTO_MAP_THRESHOLD)
            ),
            timezone=dt_util.get_default_time_zone(),
        )
        self.matcher = MediaMatcher(
            self.server_id,
            lambda: catalog.catalog,
            hass.async_add_executor_job,
            threshold=self.options.auto_map_threshold,
        )
        self.store: TrackingStore | None = None
        self.tracker: WatchTracker | None = None
        self._batch_tracker: WatchTracker | None = None
        self.counters = TrackingCounters()
        # Tracked users: display name -> user id (None until seen).
        self.users: dict[str, str | None] = dict.fromkeys(self.options.monitored_users)
        self._queue: asyncio.Queue[WebhookEvent] = asyncio.Queue(QUEUE_SIZE)
        self._held: deque[WebhookEvent] = deque(maxlen=MAX_HELD)
        self._held_warned = False
        self._rejections: dict[str, float] = {}
        self._sessions: dict[tuple[str, str], _Seen] = {}
        self._unsubs: list[CALLBACK_TYPE] = []
        self._worker: asyncio.Task[None] | None = None
        self._opening = False
        self._failure_logged = False
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """Return `ready` when watches are recorded, else `waiting_for_catalog`."""
        return "ready" if self.tracker is not None else "waiting_for_catalog"

    async def async_start(self) -> None:
        """Register the webhook, start the worker and the websocket backup, open the store."""
        webhook.async_register(
            self.hass,
            DOMAIN,
            f"{WEBHOOK_NAME} {self.entry.title}",
            self.webhook_id,
            self._handle_webhook,
            local_only=self.local_only,
            allowed_methods=[METH_POST],
        )
        self._unsubs += [
            lambda: webhook.async_unregister(self.hass, self.webhook_id),
            self.coordinator.async_add_listener(self._on_server_update),
            self.catalog.async_add_listener(self._on_catalog_update),
            async_dispatcher_connect(
                self.hass, signal_notification(self.server_id), self._on_notification
            ),
        ]
        self._remember_sessions(self.coordinator.data.sessions if self.coordinator.data else [])
        await self._async_open_store()

    async def async_stop(self) -> None:
        """Unregister the webhook, record what is queued, stop the worker."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._stopping = True  # record what is queued at full speed
        if self._worker is not None and not self._worker.done():
            try:
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._queue.join()
            except TimeoutError:
                _LOGGER.warning(
                    "%s webhooks of %s not recorded at shutdown",
                    self._queue.qsize(),
                    self.entry.title,
                )
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    @callback
    def _on_catalog_update(self) -> None:
        if self.tracker is None and self.catalog.catalog is not None and not self._opening:
            self.entry.async_create_background_task(
                self.hass, self._async_open_store(), "plexus tracking store"
            )

    async def _async_open_store(self) -> None:
        catalog = self.catalog.catalog
        if catalog is None or self.tracker is not None or self._opening:
            return
        self._opening = True
        try:
            store = await self.hass.async_add_executor_job(TrackingStore, catalog.engine)
            known = await self.hass.async_add_executor_job(lambda: store.history(None, limit=1_000))
        except (SQLAlchemyError, TrackingSchemaError, OSError) as err:
            _LOGGER.warning("Watch history of %s cannot be opened: %s", self.entry.title, err)
            return
        finally:
            self._opening = False
        self.store = store
        self.tracker = WatchTracker(
            store,
            lambda server: self.matcher if server == self.server_id else None,
            self.hass.async_add_executor_job,
            options=self.options,
        )
        # Webhooks are handled in the executor, a batch at a time, with direct database calls
        # (the store's duplicate rules live in the database, so both trackers agree).
        batch_matcher = MediaMatcher(
            self.server_id,
            lambda: self.catalog.catalog,
            _direct,
            threshold=self.options.auto_map_threshold,
        )
        self._batch_tracker = WatchTracker(
            store,
            lambda server: batch_matcher if server == self.server_id else None,
            _direct,
            options=self.options,
        )
        for watch in known:
            self.learn_user(watch.user_id, watch.user_name)
        held = list(self._held)
        self._held.clear()
        for event in held:
            await self.async_enqueue(event)
        async_dispatcher_send(self.hass, signal_watches_changed(self.server_id))

    # -- webhook -------------------------------------------------------------------------------

    async def _handle_webhook(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        """Read, route and queue one webhook; 4xx for what cannot be accepted, never a 5xx."""
        try:
            event = await read_webhook(
                request.headers.get(hdrs.CONTENT_TYPE),
                request.content,
                content_length=request.content_length,
            )
        except WebhookError as err:
            self._rejected(request.remote, err.reason, str(err))
            return web.Response(status=err.status, text=err.reason)
        except Exception as err:  # noqa: BLE001 - a client's body must never give a 5xx
            self._rejected(request.remote, "malformed", f"{type(err).__name__}: {err}")
            return web.Response(status=400, text="malformed")
        self.counters.accepted += 1
        target = self._route(event)
        data = event.as_dict() | {
            "config_entry_id": target.entry.entry_id if target else None,
            "known_server": target is not None,
        }
        hass.bus.async_fire(EVENT_PLEXUS_WEBHOOK, data)
        if target is not None:
            async_dispatcher_send(hass, signal_webhook(target.server_id), event)
            if event.account is not None and event.account.title:
                target.learn_user(event.account.id, event.account.title)
        await (target or self).async_enqueue(event)
        return web.Response(status=200, text="ok")

    def _route(self, event: WebhookEvent) -> TrackingManager | None:
        """Return the manager of the payload's server (this one, another entry's, or None)."""
        server = event.server.id if event.server else None
        if server is None or server == self.server_id:
            return self if server is not None else None
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            runtime = getattr(entry, "runtime_data", None)
            manager = getattr(runtime, "tracking", None)
            if isinstance(manager, TrackingManager) and manager.server_id == server:
                return manager
        return None

    async def async_enqueue(self, event: WebhookEvent) -> None:
        """Queue an accepted webhook for the tracker (held while the database is not open)."""
        if self.tracker is None:
            if event.event in WATCH_EVENTS:
                if len(self._held) == MAX_HELD:
                    self.counters.held_dropped += 1
                    if not self._held_warned:
                        _LOGGER.warning(
                            "Catalog database of %s still not open: oldest held watches dropped",
                            self.entry.title,
                        )
                        self._held_warned = True
                self._held.append(event)
            return
        # Queue first: the worker starts eagerly and stops when the queue is empty.
        await self._queue.put(event)
        if self._worker is None or self._worker.done():
            self._worker = self.entry.async_create_background_task(
                self.hass, self._run_worker(), f"plexus tracking {self.entry.title}"
            )

    @callback
    def _rejected(self, source: str | None, reason: str, message: str) -> None:
        self.counters.rejected[reason] = self.counters.rejected.get(reason, 0) + 1
        key = source or "-"
        now = time.monotonic()
        last = self._rejections.get(key)
        if last is not None and now - last < REJECT_LOG_INTERVAL_S:
            return
        if len(self._rejections) > 1_000:
            self._rejections.clear()
        self._rejections[key] = now
        _LOGGER.warning(
            "Webhook of %s from %s refused (%s): %s", self.entry.title, key, reason, message
        )

    async def _run_worker(self) -> None:
        """Record queued webhooks until none is left (started by `async_enqueue`).

        What is queued is taken in batches; each batch is one executor job (see
        `_handle_batch_sync`), so a busy event loop does not slow the database work down. An
        unexpected failure is logged once and never stops the worker.
        """
        while not self._queue.empty():
            batch: list[WebhookEvent] = []
            while not self._queue.empty() and len(batch) < BATCH_SIZE:
                batch.append(self._queue.get_nowait())
            try:
                if self._batch_tracker is None:
                    for event in batch:
                        await self.async_enqueue(event)
                    continue
                started = time.monotonic()
                outcomes = await self.hass.async_add_executor_job(self._handle_batch_sync, batch)
                self._count(outcomes)
                if not self._stopping and not self._queue.empty():
                    # Under a burst, recording takes at most about half the time: answering
                    # Plex quickly comes first (what is queued is recorded a moment later).
                    await asyncio.sleep(min(time.monotonic() - started, 1.0))
            except Exception:
                if not self._failure_logged:
                    _LOGGER.exception("Webhooks of %s not recorded", self.entry.title)
                    self._failure_logged = True
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _handle_batch_sync(self, batch: list[WebhookEvent]) -> list[Outcome]:
        """Handle a batch with the executor-side tracker (runs in a worker thread).

        That tracker's database calls are direct, so its coroutines never suspend: each is
        driven to its end here, without an event loop.
        """
        tracker = self._batch_tracker
        assert tracker is not None
        return [_drive(tracker.handle(event)) for event in batch]

    @callback
    def _count(self, outcomes: list[Outcome]) -> None:
        recorded = conflict = False
        for outcome in outcomes:
            key = f"{outcome.kind}:{outcome.reason}" if outcome.reason else outcome.kind
            self.counters.outcomes[key] = self.counters.outcomes.get(key, 0) + 1
            if outcome.kind == "recorded" and outcome.watch is not None:
                recorded = True
                self.learn_user(outcome.watch.user_id, outcome.watch.user_name)
                if self.cross_server:
                    self.entry.async_create_background_task(
                        self.hass, self._mark_elsewhere(outcome), "plexus cross-server watched"
                    )
            conflict = conflict or outcome.kind == "conflict"
        if recorded or conflict:
            async_dispatcher_send(self.hass, signal_watches_changed(self.server_id))
        if conflict:
            self.entry.async_create_background_task(
                self.hass, async_raise_conflicts(self.hass, self), "plexus tracking conflicts"
            )

    async def _mark_elsewhere(self, outcome: Outcome) -> None:
        """Mark a watch as watched on the other servers that hold the item (by GUID)."""
        watch = outcome.watch
        if watch is None or not watch.guids:
            return
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            manager = getattr(getattr(entry, "runtime_data", None), "tracking", None)
            if not isinstance(manager, TrackingManager) or manager is self:
                continue
            try:
                key = await manager.catalog.async_find_by_guids(list(watch.guids), watch.type)
                if key is None or manager.tracker is None:
                    continue
                await manager.tracker.mark_watched(
                    manager.server_id, key, watch.user_id, user_name=watch.user_name
                )
                if manager.mark_in_plex:
                    await manager.async_scrobble(key)
            except (HomeAssistantError, PlexError, SQLAlchemyError) as err:
                _LOGGER.debug("Cross-server watch on %s failed: %s", entry.title, err)
            else:
                async_dispatcher_send(self.hass, signal_watches_changed(manager.server_id))

    # -- users ---------------------------------------------------------------------------------

    @callback
    def learn_user(self, user_id: str | None, name: str | None) -> None:
        """Remember a user's id; a new user (when no users are configured) gets entities."""
        display = name or user_id
        if display is None:
            return
        if display in self.users:
            if user_id and self.users[display] != user_id:
                self.users[display] = user_id
            return
        if self.options.monitored_users:
            return
        self.users[display] = user_id
        async_dispatcher_send(self.hass, signal_tracked_users(self.server_id), display)

    def user_id(self, name: str) -> str:
        """Return the history's id of a tracked user (the name itself until an id was seen)."""
        return self.users.get(name) or name

    def resolve_user(self, text: str) -> tuple[str, str] | None:
        """Return (name, user id) for a tracked user's name or id (case-insensitive)."""
        folded = text.casefold()
        for name, user_id in self.users.items():
            if folded in (name.casefold(), (user_id or "").casefold()):
                return name, user_id or name
        return None

    # -- the websocket backup ------------------------------------------------------------------

    @callback
    def _on_notification(self, kind: str, container: dict[str, Any]) -> None:
        """Keep the newest position of each session from `playing` notifications."""
        if kind != "playing":
            return
        entries = container.get("PlaySessionStateNotification")
        if not isinstance(entries, list):
            return
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            key = (str(entry.get("sessionKey", "")), str(entry.get("ratingKey", "")))
            seen = self._sessions.get(key)
            offset = entry.get("viewOffset")
            if seen is not None and isinstance(offset, int) and not isinstance(offset, bool):
                seen.position_ms = max(seen.position_ms, offset)

    @callback
    def _on_server_update(self) -> None:
        """Compare the sessions with the previous snapshot; an ended one may be a watch."""
        data = self.coordinator.data
        if data is None or not self.coordinator.last_update_success:
            return  # an unreachable server ends no session
        ended = self._remember_sessions(data.sessions)
        for seen in ended:
            self.entry.async_create_background_task(
                self.hass, self._session_ended(seen), "plexus session ended"
            )

    def _remember_sessions(self, sessions: list[PlexSession]) -> list[_Seen]:
        current: dict[tuple[str, str], _Seen] = {}
        for session in sessions:
            key = (session.session_key, session.rating_key)
            seen = self._sessions.get(key)
            live = self.coordinator.state.live.get(session.player_identifier)
            position = max(
                session.view_offset_ms,
                seen.position_ms if seen else 0,
                live.position_ms if live and live.session_key == session.session_key else 0,
            )
            current[key] = _Seen(session, position)
            if session.user:
                self.learn_user(session.user_id or None, session.user)
        ended = [seen for key, seen in self._sessions.items() if key not in current]
        self._sessions = current
        return ended

    async def _session_ended(self, seen: _Seen) -> None:
        tracker = self.tracker
        session = seen.session
        if tracker is None or not session.rating_key or not (session.user_id or session.user):
            return
        episode = session.media_type == "episode"
        item = ItemSummary(
            type=session.media_type,
            rating_key=session.rating_key,
            guid=None,
            guids=(),
            title=session.title,
            grandparent_title=session.grandparent_title or None if episode else None,
            parent_index=session.season if episode else None,
            index=session.episode if episode else None,
            year=session.year,
            view_offset_ms=seen.position_ms,
            duration_ms=session.duration_ms or None,
        )
        try:
            outcome = await tracker.session_ended(
                SessionEnd(
                    self.server_id,
                    session.user_id or session.user,
                    item,
                    user_name=session.user or None,
                )
            )
        except SQLAlchemyError as err:
            _LOGGER.debug("Ended session of %s not recorded: %s", session.user, err)
            return
        self._count([outcome])

    # -- what users and services do ------------------------------------------------------------

    async def async_scrobble(self, rating_key: str, *, watched: bool = True) -> None:
        """Mark an item watched (or unwatched) on the server itself (raises PlexError)."""
        await self.coordinator.api.request(
            "/:/scrobble" if watched else "/:/unscrobble",
            params={"key": rating_key, "identifier": LIBRARY_IDENTIFIER},
        )

    async def async_mark_watched(
        self, name: str, user_id: str, rating_key: str, *, push: bool | None = None
    ) -> Outcome:
        """Record a watch by hand; with `push` (default: the option) also on the server."""
        tracker = self._require_tracker()
        outcome = await tracker.mark_watched(self.server_id, rating_key, user_id, user_name=name)
        if outcome.kind == "recorded":
            self.learn_user(user_id, name)
            async_dispatcher_send(self.hass, signal_watches_changed(self.server_id))
        if outcome.kind != "skipped" and (self.mark_in_plex if push is None else push):
            await self._async_push(rating_key, watched=True)
        return outcome

    async def async_mark_unwatched(
        self, user_id: str, rating_key: str, *, push: bool | None = None
    ) -> int:
        """Forget a user's watches of an item; with `push` also on the server."""
        removed = await self._require_tracker().mark_unwatched(self.server_id, rating_key, user_id)
        async_dispatcher_send(self.hass, signal_watches_changed(self.server_id))
        if self.mark_in_plex if push is None else push:
            await self._async_push(rating_key, watched=False)
        return removed

    async def _async_push(self, rating_key: str, *, watched: bool) -> None:
        try:
            await self.async_scrobble(rating_key, watched=watched)
        except PlexError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="scrobble_failed",
                translation_placeholders={"server": self.entry.title, "error": str(err)},
            ) from err

    def _require_tracker(self) -> WatchTracker:
        if self.tracker is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="tracking_not_ready",
                translation_placeholders={"server": self.entry.title},
            )
        return self.tracker

    def now_watching(self, name: str) -> PlexSession | None:
        """Return what a tracked user is playing now (the newest session), if anything."""
        user_id = self.users.get(name)
        for session in self.coordinator.data.sessions:
            if session.user == name or (user_id and session.user_id == user_id):
                return session
        return None

    def diagnostics(self) -> dict[str, Any]:
        """Return the tracking state for diagnostics (the webhook id left out)."""
        return {
            "status": self.status,
            "webhook_path": "/api/webhook/**REDACTED**",
            "local_only": self.local_only,
            "options": {
                "watched_threshold": self.options.watched_threshold,
                "auto_map_threshold": self.options.auto_map_threshold,
                "mark_watched_in_plex": self.mark_in_plex,
                "cross_server": self.cross_server,
            },
            "tracked_users": len(self.users),
            "queued": self._queue.qsize(),
            "held": len(self._held),
            "accepted": self.counters.accepted,
            "rejected": dict(self.counters.rejected),
            "outcomes": dict(self.counters.outcomes),
        }
