"""Watch tracking of a server entry in HA: its webhook, the tracker, the websocket backup.

Thin glue over `tracking/` (the engine) and `catalog/matcher.py`:

- **Webhook.** Each server entry owns one (`entry.data[webhook_id]`, made in the config flow or by
  the entry migration), registered for POST only, local-only unless the option allows remote
  servers. The handler reads the multipart body through the engine (10 MiB cap), answers 4xx for
  anything it cannot accept (one log line per source per 5 minutes; never a 5xx, never a traceback)
  and 200 for every accepted payload. A server does not wait for the database: on the event loop
  the handler only reads the body, parses the JSON, drops a payload seen within the minute (its
  digest), fires the event (`plexus_webhook` on the bus, the server's `event` entity) and queues
  it. A payload of another server Plexus has an entry for is handled as that entry's; one of a
  server Plexus does not know is acknowledged, fired on the bus and recorded as skipped by this
  entry's tracker. A full inbox (10,000 waiting) answers 429.
- **Recording.** `tracking.WebhookInbox` (the engine) queues accepted webhooks and its
  supervised worker records them in batches, each one executor job here (matching, the duplicate
  checks, the watches, the audit rows in one write), after a burst has paused; creating a new
  user's entities waits for the same pause. Shutting down (the entry unloading, or Home Assistant
  stopping: a shutdown job, run before background tasks are cancelled) records what is queued
  first. Entities re-read the history once per worker run (and every couple of seconds during a
  long one), only the users whose watches changed.
- **Database.** The tracker's tables live in the catalog database. While that database is not open
  (see `CatalogCoordinator`), events still fire; the events that can become a watch
  (`media.scrobble`, `media.stop`) are held in memory (up to 1,000, oldest dropped with one
  warning) and applied when the database opens. Status: `status` (`ready`, `waiting_for_catalog`).
- **Matching.** The tracker's matchers ask the server itself (its GUID lookup) for `plex://`
  and legacy agent GUIDs the catalog does not know (an item added since the last import); the
  executor-side one does so through the event loop.
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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Final, cast

from aiohttp import hdrs, web
from aiohttp.hdrs import METH_POST
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.util import dt as dt_util
from sqlalchemy.exc import SQLAlchemyError

from .catalog.errors import short_cause
from .catalog.matcher import MediaMatcher, MediaQuery
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
    user_device_identifier,
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
    WebhookInbox,
    read_webhook,
)
from .tracking.store import TrackingSchemaError

if TYPE_CHECKING:
    from .catalog_manager import CatalogCoordinator
    from .coordinator import PlexusCoordinator

_LOGGER = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S: Final = 300.0
MAX_HELD: Final = 1_000
DRAIN_TIMEOUT_S: Final = 10.0
SERVER_LOOKUP_TIMEOUT_S: Final = 30.0
WEBHOOK_NAME: Final = "Plexus"
# Plex's identifier of the library provider in /:/scrobble and /:/unscrobble.
LIBRARY_IDENTIFIER: Final = "com.plexapp.plugins.library"
# With no monitored users, the users that get entities as they appear: a webhook's account name
# is whatever its sender wrote, and each name would be a device with its entities.
MAX_LEARNED_USERS: Final = 50


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
            server_find_guid=self._async_server_find_guid,
            threshold=self.options.auto_map_threshold,
        )
        self.store: TrackingStore | None = None
        self.tracker: WatchTracker | None = None
        self._batch_tracker: WatchTracker | None = None
        self.counters = TrackingCounters()
        # Tracked users: display name -> user id (None until seen).
        self.users: dict[str, str | None] = dict.fromkeys(self.options.monitored_users)
        self._told_user_limit = False
        self.inbox = WebhookInbox(
            entry.title,
            record=self._async_record,
            on_outcomes=self._on_outcomes,
            on_settled=self._flush_changes,
            start_task=lambda coro, name: entry.async_create_background_task(hass, coro, name),
            call_later=self._call_later,
        )
        self._held: deque[tuple[WebhookEvent, datetime]] = deque(maxlen=MAX_HELD)
        self._held_warned = False
        self._rejections: dict[str, float] = {}
        self._sessions: dict[tuple[str, str], _Seen] = {}
        self._unsubs: list[CALLBACK_TYPE] = []
        self._users_to_learn: dict[str, str | None] = {}
        self._user_task: asyncio.Task[None] | None = None
        self._changed_users: set[str] = set()
        self._conflicts_changed = False
        self._opening = False

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
            # Home Assistant stopping: record the queue before background tasks are cancelled.
            self.hass.async_add_shutdown_job(HassJob(self._async_flush)),
        ]
        self._remember_sessions(self.coordinator.data.sessions if self.coordinator.data else [])
        self._remove_unmonitored_user_devices()
        await self._async_open_store()

    @callback
    def _remove_unmonitored_user_devices(self) -> None:
        """Drop the devices (and entities) of users no longer in the monitored users option.

        Only when the option names users: with it empty, every user seen is tracked and none is
        removed. Their watch history stays in the database.
        """
        if not self.options.monitored_users:
            return
        registry = dr.async_get(self.hass)
        prefix = user_device_identifier(self.server_id, "")[1]
        for device in dr.async_entries_for_config_entry(registry, self.entry.entry_id):
            users = [
                ident[1].removeprefix(prefix)
                for ident in device.identifiers
                if ident[0] == DOMAIN and ident[1].startswith(prefix)
            ]
            if users and not any(user in self.users for user in users):
                _LOGGER.debug("Removing the device of %s (no longer monitored)", users[0])
                registry.async_update_device(device.id, remove_config_entry_id=self.entry.entry_id)

    async def async_stop(self) -> None:
        """Unregister the webhook, record what is queued, stop the worker."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        await self._async_flush()
        await self.inbox.stop()

    async def _async_flush(self) -> None:
        """Record what is queued now, at full speed (at most `DRAIN_TIMEOUT_S`)."""
        left = await self.inbox.flush(DRAIN_TIMEOUT_S)
        if left:
            _LOGGER.warning("%s webhooks of %s not recorded at shutdown", left, self.entry.title)

    @callback
    def _call_later(self, delay: float, action: Callable[[], None]) -> CALLBACK_TYPE:
        @callback
        def fire(_now: datetime) -> None:
            action()

        return async_call_later(self.hass, delay, fire)

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
            _LOGGER.warning(
                "Watch history of %s cannot be opened: %s", self.entry.title, short_cause(err)
            )
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
            server_find_guid=self._server_find_guid_from_thread,
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
        for event, received_at in held:
            self.inbox.offer(event, received_at)
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
                target.learn_user_soon(event.account.id, event.account.title)
        if not (target or self).enqueue(event):
            self._rejected(request.remote, "busy", "too many webhooks waiting to be recorded")
            return web.Response(status=429, text="busy")
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

    @callback
    def enqueue(self, event: WebhookEvent) -> bool:
        """Queue an accepted webhook for recording; False when the inbox is full.

        The same payload again within a minute is counted as a duplicate and not queued. While
        the database is not open, the events that can become a watch are held.
        """
        if self.inbox.arrived(event):
            self._count([Outcome("duplicate", "same_payload")])
            return True
        received_at = dt_util.utcnow()
        if self.tracker is None:
            self.inbox.remember(event)
            self._hold(event, received_at)
            return True
        return self.inbox.offer(event, received_at) != "busy"

    def _hold(self, event: WebhookEvent, received_at: datetime) -> None:
        if event.event not in WATCH_EVENTS:
            return
        if len(self._held) == MAX_HELD:
            self.counters.held_dropped += 1
            if not self._held_warned:
                _LOGGER.warning(
                    "Catalog database of %s still not open: oldest held watches dropped",
                    self.entry.title,
                )
                self._held_warned = True
        self._held.append((event, received_at))

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

    async def _async_record(self, batch: list[tuple[WebhookEvent, datetime]]) -> list[Outcome]:
        """Record a batch of the inbox: one executor job."""
        return await self.hass.async_add_executor_job(self._handle_batch_sync, batch)

    def _handle_batch_sync(self, batch: list[tuple[WebhookEvent, datetime]]) -> list[Outcome]:
        """Handle a batch with the executor-side tracker (runs in a worker thread).

        That tracker's database calls are direct, so its coroutine never suspends: it is driven
        to its end here, without an event loop.
        """
        tracker = self._batch_tracker
        assert tracker is not None
        return _drive(tracker.handle_many([event for event, _ in batch], [at for _, at in batch]))

    @callback
    def _on_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """What a batch became (the inbox tells entities once it settles)."""
        self._count(outcomes, flush=False)

    @callback
    def _count(self, outcomes: Sequence[Outcome], *, flush: bool = True) -> None:
        for outcome in outcomes:
            key = f"{outcome.kind}:{outcome.reason}" if outcome.reason else outcome.kind
            self.counters.outcomes[key] = self.counters.outcomes.get(key, 0) + 1
            if outcome.kind == "recorded" and outcome.watch is not None:
                self._changed_users.add(outcome.watch.user_id)
                self.learn_user(outcome.watch.user_id, outcome.watch.user_name)
                if self.cross_server:
                    self.entry.async_create_background_task(
                        self.hass, self._mark_elsewhere(outcome), "plexus cross-server watched"
                    )
            if outcome.kind == "conflict":
                self._conflicts_changed = True
        if flush:
            self._flush_changes()

    @callback
    def _flush_changes(self) -> None:
        """Tell the users' entities (those whose watches changed) and Repairs what changed."""
        if self._changed_users or self._conflicts_changed:
            async_dispatcher_send(
                self.hass,
                signal_watches_changed(self.server_id),
                frozenset(self._changed_users) if not self._conflicts_changed else None,
            )
        if self._conflicts_changed:
            self.entry.async_create_background_task(
                self.hass, async_raise_conflicts(self.hass, self), "plexus tracking conflicts"
            )
        self._changed_users.clear()
        self._conflicts_changed = False

    # -- asking the server ----------------------------------------------------------------------

    async def _async_server_find_guid(self, guid: str) -> str | None:
        """Return the rating key of the item with a GUID on this server (None: none, or failed)."""
        try:
            request = await self.coordinator.resolver.resolve(guid, self.coordinator.data.sections)
        except PlexError as err:
            _LOGGER.debug("Server lookup of %s failed: %s", guid[:80], err)
            return None
        return request.item.rating_key

    async def _server_find_guid_from_thread(self, guid: str) -> str | None:
        """The server lookup for the executor-side matcher: asks through the event loop.

        Runs in a worker thread (the batch), never on the loop; it blocks that thread until the
        loop has the answer, so (like every step of that tracker) the coroutine never suspends.
        """
        future = asyncio.run_coroutine_threadsafe(
            self._async_server_find_guid(guid), self.hass.loop
        )
        try:
            return future.result(SERVER_LOOKUP_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            return None

    async def _mark_elsewhere(self, outcome: Outcome) -> None:
        """Mark a watch as watched on the other servers that hold the item (by GUID).

        Each other server entry finds the item by its GUIDs (its catalog, else the server's own
        lookup for `plex://` and legacy GUIDs), marks it watched on that server (`/:/scrobble`, for
        the account Plexus signed in with) and records it in that entry's history.
        """
        watch = outcome.watch
        if watch is None or not watch.guids:
            return
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            manager = getattr(getattr(entry, "runtime_data", None), "tracking", None)
            if not isinstance(manager, TrackingManager) or manager is self:
                continue
            key: str | None = None
            try:
                key = await manager.catalog.async_find_by_guids(list(watch.guids), watch.type)
                if key is None:
                    found = await manager.matcher.match_guids(
                        MediaQuery(type=watch.type, guids=watch.guids, title=watch.title)
                    )
                    key = found.rating_key if found.matched else None
                if key is None:
                    _LOGGER.debug("%s is not on %s", watch.title, entry.title)
                    continue
                await manager.async_scrobble(key)
                if manager.tracker is not None:
                    await manager.tracker.mark_watched(
                        manager.server_id, key, watch.user_id, user_name=watch.user_name
                    )
            except (HomeAssistantError, PlexError, SQLAlchemyError) as err:
                _LOGGER.warning(
                    "%s not marked watched on %s: %s", watch.title or key, entry.title, err
                )
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
        if self.options.monitored_users or not self._room_for_a_user():
            return
        self.users[display] = user_id
        async_dispatcher_send(self.hass, signal_tracked_users(self.server_id), display)

    @callback
    def learn_user_soon(self, user_id: str | None, name: str) -> None:
        """`learn_user` once webhooks pause (a new user's entities are no request's work)."""
        if self.users.get(name, "") == user_id or (user_id is None and name in self.users):
            return  # known: nothing to do
        if self.options.monitored_users and name not in self.users:
            return  # not a monitored user: no entities
        if (
            name not in self.users
            and name not in self._users_to_learn
            and not self._room_for_a_user(waiting=len(self._users_to_learn))
        ):
            return
        self._users_to_learn[name] = user_id
        if self._user_task is None or self._user_task.done():
            self._user_task = self.entry.async_create_background_task(
                self.hass, self._learn_users(), f"plexus tracking users {self.entry.title}"
            )
            self._user_task.add_done_callback(self._user_task_done)

    def _room_for_a_user(self, waiting: int = 0) -> bool:
        """Whether one more user (after `waiting` others) may get entities; told once if not."""
        if len(self.users) + waiting < MAX_LEARNED_USERS:
            return True
        if not self._told_user_limit:
            self._told_user_limit = True
            _LOGGER.warning(
                "%s: more than %s Plex users seen; only the first %s get entities (the "
                "watches of all are still recorded). To choose whose, set Monitored users in "
                "the integration's options",
                self.entry.title,
                MAX_LEARNED_USERS,
                MAX_LEARNED_USERS,
            )
        return False

    @callback
    def _user_task_done(self, task: asyncio.Task[None]) -> None:
        """Supervision: a failure is logged (the users still waiting are learned next time)."""
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("Learning new users of %s failed", self.entry.title, exc_info=error)

    async def _learn_users(self) -> None:
        while self._users_to_learn:
            await self.inbox.wait_for_a_pause()
            name, user_id = self._users_to_learn.popitem()
            self.learn_user(user_id, name)

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
            "queued": self.inbox.queued,
            "held": len(self._held),
            "accepted": self.counters.accepted,
            "rejected": dict(self.counters.rejected),
            "refused_busy": self.inbox.counters.refused_busy,
            "worker_failures": self.inbox.counters.worker_failures,
            "outcomes": dict(self.counters.outcomes),
        }
