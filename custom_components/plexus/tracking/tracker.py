"""The watch tracker: webhook events and ended sessions into a per-user watch history.

:meth:`WatchTracker.handle` takes every accepted webhook and says what became of it
(:class:`Outcome`): ``recorded``, ``duplicate`` (the same payload within a minute, or the same play
already recorded), ``skipped`` with a reason, or ``conflict`` with the candidates a person must
choose from. Every webhook but a duplicate is written to the audit log.

What is a watch: ``media.scrobble`` (Plex sends it past 90 %), or a ``media.stop`` past the
watched threshold; a play shorter than the minimum (2 minutes: from the ``media.play``/``resume``
seen for it, else the item's length) is not one. Only movies and episodes are recorded, only for
monitored users (everyone when none are set). :meth:`WatchTracker.session_ended` is the same for
a session the notification websocket saw end (source ``websocket``), so a lost webhook is backed
up and the two records of one play are one watch (see :mod:`.store`).

Matching: the payload's own server and rating key, verified in the catalog, then GUIDs; then a
remembered mapping of the show (or movie); then the title, auto-mapped (and remembered) only at or
above the auto-map threshold with no close runner-up. Anything else waits as a pending watch until
:meth:`WatchTracker.resolve_conflict` is told the answer (a rating key, or "ignore this show").
An item the catalog cannot place at all is recorded under its own server's rating key.

Webhooks from servers the tracker has no matcher for are acknowledged and skipped
(``foreign_server``), logged once per server.

The database away (down, restarting, locked, full, read-only: an operational or interface error):
:meth:`WatchTracker.handle_many` raises :class:`StoreUnavailableError` carrying the outcomes of
the events handled before it, so the caller can keep the rest and hand them in again later. Other
database errors (a value it refuses) make that one event ``skipped``/``store_error``.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
import logging
from typing import Any, Final, Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from ..catalog.errors import short_cause
from ..catalog.importer import RunSync
from ..catalog.matcher import Candidate, MatchResult, MediaMatcher, MediaQuery
from ..catalog.titles import title_key
from .payload import ItemSummary, WebhookEvent
from .store import (
    DIGEST_WINDOW,
    AuditEntry,
    EpisodeRow,
    Mapping as ShowMapping,
    TrackingStore,
    Watch,
    WatchSource,
)

_LOGGER = logging.getLogger(__name__)

WATCHABLE: Final = frozenset({"movie", "episode"})
_STARTS: Final = frozenset({"media.play", "media.resume", "playback.started"})
_MAX_STARTS: Final = 10_000


class StoreUnavailableError(Exception):
    """The database is away: the events after the first ``len(outcomes)`` were not handled.

    ``outcomes`` are those of the first events; the rest can be handed in again.
    """

    def __init__(self, outcomes: list[Outcome], cause: str) -> None:
        """Keep the outcomes of the events handled before the database went away."""
        super().__init__(f"database unavailable: {cause}")
        self.outcomes = outcomes
        self.cause = cause


def _unavailable(err: SQLAlchemyError) -> bool:
    """Return True for the database away (worth trying again), not a value it refuses."""
    return isinstance(err, (OperationalError, InterfaceError)) or (
        isinstance(err, DBAPIError) and err.connection_invalidated
    )


type OutcomeKind = Literal["recorded", "duplicate", "skipped", "conflict"]
type MatcherSource = Mapping[str, MediaMatcher] | Callable[[str], MediaMatcher | None]


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """The tracker's options (``monitored_users``: account names or ids; empty: everyone)."""

    watched_threshold: float = 0.90
    min_play_s: float = 120.0
    monitored_users: frozenset[str] = frozenset()
    auto_map_threshold: float = 0.90
    timezone: tzinfo = UTC


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an event."""

    kind: OutcomeKind
    reason: str | None = None
    server: str | None = None
    watch: Watch | None = None
    show_key: str | None = None
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """A playing session the notification websocket saw end."""

    server: str
    user_id: str
    item: ItemSummary
    user_name: str | None = None
    played_s: float | None = None


@dataclass(frozen=True, slots=True)
class UpNext:
    """The next episode to watch of a show in progress."""

    server: str
    show_rating_key: str
    show_title: str | None
    rating_key: str
    title: str
    season: int
    episode: int
    last_watched_at: datetime


@dataclass(frozen=True, slots=True)
class Conflict:
    """A show waiting for the user: its candidates and how many watches wait on it."""

    server: str
    show_key: str
    title: str | None
    candidates: tuple[dict[str, Any], ...]
    pending: int


@dataclass(frozen=True, slots=True)
class UserStats:
    """Numbers for a user's sensors."""

    last_watched: Watch | None
    watch_time_today_min: float
    watched_today: int
    watched_this_week: int


def _user(account_id: str | None, account_title: str | None) -> str | None:
    return account_id or account_title


def show_key_of(watch: Watch) -> str:
    """Return the key a show (or movie) mapping is remembered under, per server."""
    if watch.type == "episode":
        if watch.show_rating_key:
            return f"show:{watch.show_rating_key}"
        return f"title:{title_key(watch.show_title or '')}"[:255]
    return f"{watch.type}:{watch.rating_key}"


def _query(watch: Watch, show_guids: tuple[str, ...] = ()) -> MediaQuery:
    return MediaQuery(
        type=watch.type,
        rating_key=watch.rating_key,
        server=watch.server,
        guids=watch.guids,
        title=watch.title,
        year=watch.year,
        show_title=watch.show_title,
        show_guids=show_guids,
        season=watch.season,
        episode=watch.episode,
    )


class WatchTracker:
    """Turns webhook events and ended sessions into watches (see the module docstring)."""

    def __init__(
        self,
        store: TrackingStore,
        matchers: MatcherSource,
        run_sync: RunSync,
        *,
        options: TrackerOptions | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Track into ``store``; ``matchers`` gives the matcher of each known server."""
        self.store = store
        self._matchers = matchers
        self._run = run_sync
        self.options = options or TrackerOptions()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = asyncio.Lock()
        self._starts: dict[tuple[str, str, str], datetime] = {}
        self._foreign_logged: set[str] = set()

    def matcher(self, server: str | None) -> MediaMatcher | None:
        """Return the matcher of a known server (None: not a server of ours)."""
        if server is None:
            return None
        if callable(self._matchers):
            return self._matchers(server)
        return self._matchers.get(server)

    def monitored(self, user_id: str | None, user_name: str | None = None) -> bool:
        """Return True when the user's watches are recorded."""
        users = self.options.monitored_users
        return not users or bool({user_id, user_name} & users)

    # -- webhooks --------------------------------------------------------------------------------

    async def handle(self, event: WebhookEvent, received_at: datetime | None = None) -> Outcome:
        """Handle one accepted webhook (see :meth:`handle_many`)."""
        return (await self.handle_many([event], [received_at or self._clock()]))[0]

    async def handle_many(
        self, events: Sequence[WebhookEvent], received_at: Sequence[datetime] | None = None
    ) -> list[Outcome]:
        """Handle accepted webhooks in the order received; return an outcome for each.

        Serialised (duplicate checks see every earlier one). The duplicate check is one query
        and the audit rows one write for the whole batch. ``received_at`` gives each event's
        arrival (default: now), the time its audit row and its watch carry.
        """
        times = list(received_at) if received_at is not None else [self._clock()] * len(events)
        if len(times) != len(events):
            raise ValueError("one received_at per event")
        if not events:
            return []
        async with self._lock:
            try:
                last_seen = await self._run(
                    self.store.digest_times, [e.digest for e in events], min(times) - DIGEST_WINDOW
                )
            except SQLAlchemyError as err:
                if _unavailable(err):
                    raise StoreUnavailableError([], short_cause(err)) from err
                _LOGGER.warning(
                    "%s webhooks not recorded: database error: %s", len(events), short_cause(err)
                )
                return [
                    Outcome("skipped", "store_error", e.server.id if e.server else None)
                    for e in events
                ]
            outcomes: list[Outcome] = []
            audits: list[AuditEntry] = []
            for event, now in zip(events, times, strict=True):
                seen = last_seen.get(event.digest)
                if seen is not None and now - seen < DIGEST_WINDOW:
                    outcomes.append(Outcome("duplicate", "same_payload"))
                    continue
                last_seen[event.digest] = now
                error = None
                try:
                    outcome = await self._decide(event, now)
                except SQLAlchemyError as err:
                    if _unavailable(err):
                        raise StoreUnavailableError(outcomes, short_cause(err)) from err
                    error = short_cause(err)
                    _LOGGER.warning(
                        "Webhook %s not recorded: database error: %s", event.event, error
                    )
                    outcome = Outcome(
                        "skipped", "store_error", event.server.id if event.server else None
                    )
                except Exception as err:  # a bug must not take the rest of the batch with it
                    _LOGGER.exception("Webhook %s not recorded", event.event)
                    error = f"{type(err).__name__}: {err}"[:500]
                    outcome = Outcome("skipped", "error", event.server.id if event.server else None)
                outcomes.append(outcome)
                audits.append(_audit_entry(event, outcome, now, error))
            try:
                await self._run(self.store.add_audits, audits)
            except SQLAlchemyError as err:
                _LOGGER.warning(
                    "Audit log of %s webhooks not written: %s", len(audits), short_cause(err)
                )
        return outcomes

    async def _decide(self, event: WebhookEvent, now: datetime) -> Outcome:
        server = event.server.id if event.server else None
        if server is None or self.matcher(server) is None:
            if server not in self._foreign_logged and len(self._foreign_logged) < 100:
                self._foreign_logged.add(str(server))
                _LOGGER.info("Webhook from a server Plexus does not know (%s): skipped", server)
            return Outcome("skipped", "foreign_server", server)
        item = event.item
        account = event.account
        user_id = _user(account.id, account.title) if account else None
        started: datetime | None = None
        if user_id is not None and item is not None and item.rating_key:
            start_key = (user_id, server, item.rating_key)
            if event.event in _STARTS:
                self._remember_start(start_key, now)
            elif event.event == "media.stop":
                started = self._starts.pop(start_key, None)
            if event.event == "media.scrobble":
                started = self._starts.get(start_key)
        if event.event not in ("media.scrobble", "media.stop"):
            return Outcome("skipped", "not_a_watch", server)
        if user_id is None or account is None:
            return Outcome("skipped", "no_user", server)
        if not self.monitored(account.id, account.title):
            return Outcome("skipped", "user_not_monitored", server)
        if item is None or item.type not in WATCHABLE or not item.rating_key:
            return Outcome("skipped", "not_watchable", server)
        played = (now - started).total_seconds() if started is not None else None
        if event.event == "media.stop" and (
            item.progress is None or item.progress < self.options.watched_threshold
        ):
            return Outcome("skipped", "below_threshold", server)
        if self._too_short(item, played):
            return Outcome("skipped", "too_short", server)
        watch = _watch(server, user_id, account.title, item, now=now, source="webhook")
        return await self._record(watch, item.grandparent_guid)

    def _remember_start(self, key: tuple[str, str, str], now: datetime) -> None:
        if len(self._starts) >= _MAX_STARTS:
            # Plays that never ended (lost stops); the oldest go first.
            for old in sorted(self._starts, key=self._starts.__getitem__)[: _MAX_STARTS // 10]:
                del self._starts[old]
        self._starts.setdefault(key, now)

    def _too_short(self, item: ItemSummary, played_s: float | None) -> bool:
        minimum = self.options.min_play_s
        if played_s is not None:
            return played_s < minimum
        return item.duration_ms is not None and item.duration_ms < minimum * 1000

    # -- the websocket backup ----------------------------------------------------------------------

    async def session_ended(self, session: SessionEnd) -> Outcome:
        """Record a session the websocket saw end past the threshold (source ``websocket``)."""
        item = session.item
        if self.matcher(session.server) is None:
            return Outcome("skipped", "foreign_server", session.server)
        if not self.monitored(session.user_id, session.user_name):
            return Outcome("skipped", "user_not_monitored", session.server)
        if item.type not in WATCHABLE or not item.rating_key:
            return Outcome("skipped", "not_watchable", session.server)
        if item.progress is None or item.progress < self.options.watched_threshold:
            return Outcome("skipped", "below_threshold", session.server)
        if self._too_short(item, session.played_s):
            return Outcome("skipped", "too_short", session.server)
        watch = _watch(
            session.server,
            session.user_id,
            session.user_name,
            item,
            now=self._clock(),
            source="websocket",
        )
        async with self._lock:
            return await self._record(watch, item.grandparent_guid)

    # -- matching and recording ------------------------------------------------------------------

    async def _record(self, watch: Watch, show_guid: str | None = None) -> Outcome:
        matcher = self.matcher(watch.server)
        assert matcher is not None
        query = _query(watch, (show_guid,) if show_guid else ())
        exact = await matcher.match(query, verify_key=True, by_title=False)
        if exact.matched and exact.rating_key is not None:
            show = exact.item.grandparent_rating_key if exact.item else None
            return await self._add(
                replace(
                    watch,
                    rating_key=exact.rating_key,
                    show_rating_key=show or watch.show_rating_key,
                )
            )
        show_key = show_key_of(watch)
        mapping = await self._run(self.store.mapping, watch.server, show_key)
        if mapping is not None:
            if mapping.ignored or mapping.rating_key is None:
                return Outcome("skipped", "ignored", watch.server, watch, show_key)
            return await self._add(await self._mapped(matcher, watch, mapping.rating_key))
        titled = await matcher.match_title(query)
        key = titled.show_rating_key if watch.type == "episode" else titled.rating_key
        if (
            key is not None
            and titled.method is not None
            and titled.confidence >= self.options.auto_map_threshold
        ):
            await self._run(
                self.store.set_mapping,
                ShowMapping(
                    watch.server,
                    show_key,
                    key,
                    ignored=False,
                    decided_by="auto",
                    title=watch.show_title or watch.title,
                    confidence=titled.confidence,
                ),
                self._clock(),
            )
            return await self._add(_apply(watch, titled, key))
        if titled.status == "conflict":
            return await self._pend(watch, show_key, titled)
        # Nothing in the catalog looks like it: the server's own key is the item there.
        return await self._add(watch)

    async def _mapped(self, matcher: MediaMatcher, watch: Watch, key: str) -> Watch:
        if watch.type != "episode":
            return replace(watch, rating_key=key)
        found = None
        if watch.season is not None and watch.episode is not None:
            found = await matcher.find_episode(key, watch.season, watch.episode)
        return replace(watch, rating_key=found or watch.rating_key, show_rating_key=key)

    async def _pend(self, watch: Watch, show_key: str, result: MatchResult) -> Outcome:
        await self._run(
            partial(
                self.store.add_pending,
                watch,
                show_key=show_key,
                title=watch.show_title or watch.title,
                candidates=[c.as_dict() for c in result.candidates],
                now=self._clock(),
            )
        )
        return Outcome(
            "conflict", "ambiguous", watch.server, watch, show_key, candidates=result.candidates
        )

    async def _add(self, watch: Watch) -> Outcome:
        stored, added = await self._run(self.store.add_watch, watch)
        if added:
            return Outcome("recorded", watch.source, watch.server, stored)
        return Outcome("duplicate", "same_play", watch.server, stored)

    # -- what the user does ----------------------------------------------------------------------

    async def resolve_conflict(self, server: str, show_key: str, rating_key: str | None) -> int:
        """Remember the user's answer (a rating key, or None: ignore) and apply waiting watches.

        Returns how many pending watches were recorded.
        """
        matcher = self.matcher(server)
        if matcher is None:
            raise KeyError(server)
        async with self._lock:
            waiting = await self._run(self.store.pending_watches, server, show_key)
            title = waiting[0].title if waiting else None
            await self._run(
                self.store.set_mapping,
                ShowMapping(
                    server,
                    show_key,
                    rating_key,
                    ignored=rating_key is None,
                    decided_by="user",
                    title=title,
                ),
                self._clock(),
            )
            applied = 0
            if rating_key is not None:
                for entry in waiting:
                    outcome = await self._add(await self._mapped(matcher, entry.watch, rating_key))
                    applied += outcome.kind == "recorded"
            await self._run(self.store.remove_pending, [entry.id for entry in waiting])
        return applied

    async def conflicts(self) -> list[Conflict]:
        """Return the shows waiting for the user, one entry per show."""
        waiting = await self._run(self.store.pending_watches)
        found: dict[tuple[str, str], Conflict] = {}
        for entry in waiting:
            key = (entry.server, entry.show_key)
            if key in found:
                found[key] = replace(found[key], pending=found[key].pending + 1)
            else:
                found[key] = Conflict(
                    entry.server, entry.show_key, entry.title, entry.candidates, 1
                )
        return list(found.values())

    async def mark_watched(
        self,
        server: str,
        rating_key: str,
        user_id: str,
        *,
        user_name: str | None = None,
        source: WatchSource = "manual",
    ) -> Outcome:
        """Record a watch of a catalog item by hand (or from the server's history)."""
        matcher = self.matcher(server)
        catalog = matcher.catalog if matcher is not None else None
        if matcher is None or catalog is None:
            return Outcome("skipped", "foreign_server" if matcher is None else "no_catalog", server)
        item = await self._run(catalog.get_item, server, rating_key)
        if item is None or item.type not in WATCHABLE:
            return Outcome("skipped", "unknown_item", server)
        watch = Watch(
            server=server,
            rating_key=item.rating_key,
            type=item.type,
            user_id=user_id,
            user_name=user_name,
            watched_at=self._clock(),
            source=source,
            title=item.title,
            show_title=item.grandparent_title,
            show_rating_key=item.grandparent_rating_key,
            season=item.season_number,
            episode=item.episode_number,
            year=item.year,
            guids=tuple(f"{g.provider}://{g.id}" for g in item.guids if g.season is None),
            progress=1.0,
            duration_ms=item.duration,
        )
        async with self._lock:
            return await self._add(watch)

    async def mark_unwatched(self, server: str, rating_key: str, user_id: str) -> int:
        """Forget a user's watches of an item; return how many."""
        async with self._lock:
            return await self._run(self.store.remove_watches, server, rating_key, user_id)

    # -- reads ------------------------------------------------------------------------------------

    async def history(
        self,
        user_id: str | None = None,
        *,
        since: datetime | None = None,
        item_type: str | None = None,
        limit: int = 100,
    ) -> list[Watch]:
        """Return watches, newest first."""
        return await self._run(
            partial(
                self.store.history,
                user_id,
                since=since,
                item_type=item_type,
                limit=max(1, min(limit, 10_000)),
            )
        )

    async def up_next(self, user_id: str) -> list[UpNext]:
        """Return the next episode of every show in progress, most recently watched show first.

        The next episode is the first unwatched one after the episode watched last (so going back
        to an earlier episode continues from there, and watched episodes are skipped); when none
        follows it, the first unwatched one. A show with every episode watched is not in progress.
        """
        return await self._run(self._up_next_sync, user_id)

    def _up_next_sync(self, user_id: str) -> list[UpNext]:
        # Three queries whatever the number of shows: the shows, the user's episode watches, and
        # the catalog episodes of those shows (one per server).
        shows = self.store.shows_in_progress(user_id)
        if not shows:
            return []
        watched_by_show: dict[tuple[str, str], list[Watch]] = {}
        for watch in self.store.episode_watches(user_id):
            assert watch.show_rating_key is not None
            watched_by_show.setdefault((watch.server, watch.show_rating_key), []).append(watch)
        episodes_by_show: dict[tuple[str, str], list[EpisodeRow]] = {}
        for server in dict.fromkeys(server for server, _, _ in shows):
            keys = [key for s, key, _ in shows if s == server]
            for key, rows in self.store.episodes_of(server, keys).items():
                episodes_by_show[server, key] = rows
        found: list[UpNext] = []
        for server, show_key, last in shows:
            episodes = episodes_by_show.get((server, show_key))
            watched = watched_by_show.get((server, show_key))
            if not episodes or not watched:
                continue
            chosen = _next_episode(episodes, watched)
            if chosen is None:
                continue
            found.append(
                UpNext(
                    server,
                    show_key,
                    watched[0].show_title,
                    chosen.rating_key,
                    chosen.title,
                    chosen.season,
                    chosen.episode,
                    last,
                )
            )
        return found

    async def stats(self, user_id: str) -> UserStats:
        """Return last watched, watch time and watches today, and watches this week."""
        now = self._clock().astimezone(self.options.timezone)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        week = today - timedelta(days=today.weekday())
        last = await self.history(user_id, limit=1)
        count_today, ms_today = await self._run(self.store.totals, user_id, today)
        count_week, _ = await self._run(self.store.totals, user_id, week)
        return UserStats(
            last[0] if last else None, round(ms_today / 60_000, 1), count_today, count_week
        )


def _audit_entry(
    event: WebhookEvent, outcome: Outcome, now: datetime, error: str | None
) -> AuditEntry:
    account = event.account
    return AuditEntry(
        received_at=now,
        event=event.event,
        digest=event.digest,
        status=outcome.kind,
        server=event.server.id if event.server else None,
        user=account.title or account.id if account else None,
        action=outcome.reason or outcome.kind,
        error=error,
    )


def _next_episode(episodes: list[EpisodeRow], watched: list[Watch]) -> EpisodeRow | None:
    keys = {w.rating_key for w in watched}
    numbers = {(w.season, w.episode) for w in watched if w.season is not None}

    def seen(row: EpisodeRow) -> bool:
        return row.rating_key in keys or (row.season, row.episode) in numbers

    latest = watched[0]
    position = next(
        (
            i
            for i, row in enumerate(episodes)
            if row.rating_key == latest.rating_key
            or (row.season, row.episode) == (latest.season, latest.episode)
        ),
        -1,
    )
    after = (row for row in episodes[position + 1 :] if not seen(row))
    return next(after, None) or next((row for row in episodes if not seen(row)), None)


def _watch(
    server: str,
    user_id: str,
    user_name: str | None,
    item: ItemSummary,
    *,
    now: datetime,
    source: WatchSource,
) -> Watch:
    assert item.type is not None
    assert item.rating_key is not None
    episode = item.type == "episode"
    return Watch(
        server=server,
        rating_key=item.rating_key,
        type=item.type,
        user_id=user_id,
        user_name=user_name,
        watched_at=now,
        source=source,
        title=item.title,
        show_title=item.grandparent_title if episode else None,
        show_rating_key=item.grandparent_rating_key if episode else None,
        season=item.parent_index if episode else None,
        episode=item.index if episode else None,
        year=item.year,
        guids=tuple(g for g in (item.guid, *item.guids) if g),
        progress=item.progress,
        duration_ms=item.duration_ms,
    )


def _apply(watch: Watch, result: MatchResult, key: str) -> Watch:
    if watch.type == "episode":
        return replace(watch, rating_key=result.rating_key or watch.rating_key, show_rating_key=key)
    return replace(watch, rating_key=key)
