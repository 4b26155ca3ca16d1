"""WatchTracker and its store on a real catalog (SQLite and PostgreSQL): what becomes a watch."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
import logging
from pathlib import Path
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError, OperationalError

from custom_components.plexus.catalog.db import Catalog
from custom_components.plexus.catalog.matcher import MediaMatcher
from custom_components.plexus.catalog.models import LibraryRecord
from custom_components.plexus.tracking.payload import (
    EVENT_TYPES,
    ItemSummary,
    WebhookError,
    WebhookEvent,
    parse_payload,
)
from custom_components.plexus.tracking.store import (
    AUDIT_ROWS,
    SCHEMA_VERSION,
    AuditEntry,
    TrackingSchemaError,
    TrackingStore,
    Watch,
    plays,
    schema_version,
)
from custom_components.plexus.tracking.tracker import (
    SessionEnd,
    StoreUnavailableError,
    TrackerOptions,
    WatchTracker,
)
from tests.test_catalog_matcher import episode, record
from tests.test_tracking_payload import json_values

FIXTURES = Path(__file__).parent / "fixtures"
SYNTHETIC = {
    p.name: json.loads(p.read_bytes())
    for p in sorted((FIXTURES / "webhooks-synthetic").glob("*.json"))
}
REAL = {p.name: p.read_bytes() for p in sorted((FIXTURES / "webhooks").glob("*.json"))}
HOME = "0123456789abcdef0123456789abcdef01234567"
OTHER_KNOWN = "27a04b118b1bf1f25f8e99306785453623e18b67"  # the movary captures' server
START = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # a Monday evening

# The Synthetic Show (5000): S1E1-3 = 5012-5014, S2E1-2 = 5021-5022, a special S0E1 = 5001.
SHOW_EPISODES = [
    ("5001", 0, 1),
    ("5012", 1, 1),
    ("5013", 1, 2),
    ("5014", 1, 3),
    ("5021", 2, 1),
    ("5022", 2, 2),
]
OTHER_SHOW = [("7011", 1, 1), ("7012", 1, 2)]


def build(catalog: Catalog) -> None:
    writer = catalog.begin_import(HOME, "full")
    writer.sync_libraries(
        [
            LibraryRecord(key="1", type="movie", title="Movies"),
            LibraryRecord(key="2", type="show", title="TV Shows"),
        ]
    )
    writer.start_library("1")
    writer.write_batch(
        [
            record("6001", "movie", "Synthetic Movie", 1999, ("plex://movie/6001",)),
            record("6002", "movie", "Short Film", 2020),
        ]
    )
    writer.finish_library()
    writer.start_library("2")
    writer.write_batch(
        [
            record("5000", "show", "The Synthetic Show", 2021),
            record("7000", "show", "Other Show", 2019),
            record("8000", "show", "The Office", 2005),
            record("8100", "show", "The Office", 2001),
            episode("8011", "8000", "The Office", 1, 1),
            episode("8111", "8100", "The Office", 1, 1),
            *(episode(k, "5000", "The Synthetic Show", s, e) for k, s, e in SHOW_EPISODES),
            *(episode(k, "7000", "Other Show", s, e) for k, s, e in OTHER_SHOW),
        ]
    )
    writer.finish_library()
    writer.commit()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def store(catalog: Catalog) -> TrackingStore:
    build(catalog)
    return TrackingStore(catalog.engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_tracker(
    catalog: Catalog, store: TrackingStore, clock: Clock, **options: Any
) -> WatchTracker:
    matchers = {
        server: MediaMatcher(server, catalog, asyncio.to_thread) for server in (HOME, OTHER_KNOWN)
    }
    return WatchTracker(
        store, matchers, asyncio.to_thread, options=TrackerOptions(**options), clock=clock
    )


@pytest.fixture
def tracker(catalog: Catalog, store: TrackingStore, clock: Clock) -> WatchTracker:
    return make_tracker(catalog, store, clock)


def event(name: str, *, top: dict[str, Any] | None = None, **meta: Any) -> WebhookEvent:
    """A synthetic payload with Metadata fields (and top-level keys) replaced."""
    doc = json.loads(json.dumps(SYNTHETIC[name]))
    doc.update(top or {})
    for key, value in meta.items():
        if value is None:
            doc["Metadata"].pop(key, None)
        else:
            doc["Metadata"][key] = value
    return parse_payload(json.dumps(doc))


def scrobble(rating_key: str, season: int, number: int, **meta: Any) -> WebhookEvent:
    return event(
        "media.scrobble-episode.json",
        ratingKey=rating_key,
        parentIndex=season,
        index=number,
        **meta,
    )


async def watch_all(tracker: WatchTracker, clock: Clock, keys: list[tuple[str, int, int]]) -> None:
    for key, season, number in keys:
        clock.tick(hours=1)
        assert (await tracker.handle(scrobble(key, season, number))).kind == "recorded"


# -- webhooks into watches ------------------------------------------------------------------------


async def test_scrobble_is_recorded_once(
    tracker: WatchTracker, store: TrackingStore, clock: Clock
) -> None:
    first = await tracker.handle(event("media.scrobble-episode.json"))
    assert (first.kind, first.reason, first.server) == ("recorded", "webhook", HOME)
    assert first.watch is not None
    assert (first.watch.rating_key, first.watch.show_rating_key) == ("5012", "5000")
    assert (first.watch.season, first.watch.episode, first.watch.user_name) == (1, 1, "alice")
    # Delivered twice within a minute: recorded once, audited once.
    clock.tick(seconds=30)
    again = await tracker.handle(event("media.scrobble-episode.json"))
    assert (again.kind, again.reason) == ("duplicate", "same_payload")
    assert len(store.audit_log()) == 1
    # The same payload later is a new delivery but the same play.
    clock.tick(minutes=2)
    later = await tracker.handle(event("media.scrobble-episode.json"))
    assert (later.kind, later.reason) == ("duplicate", "same_play")
    assert [(a.status, a.action) for a in store.audit_log()] == [
        ("duplicate", "same_play"),
        ("recorded", "webhook"),
    ]
    history = await tracker.history("1")
    assert [(w.rating_key, w.source, w.watched_at) for w in history] == [("5012", "webhook", START)]


async def test_stop_needs_the_threshold_and_a_real_play(
    tracker: WatchTracker, clock: Clock
) -> None:
    below = await tracker.handle(event("media.stop-episode.json", viewOffset=900000))
    assert (below.kind, below.reason) == ("skipped", "below_threshold")
    # A play seen starting one minute before its stop is too short, however far it got.
    await tracker.handle(event("media.play-episode.json", ratingKey="5013", index=2))
    clock.tick(minutes=1)
    short = await tracker.handle(
        event("media.stop-episode.json", ratingKey="5013", index=2, viewOffset=1750000)
    )
    assert (short.kind, short.reason) == ("skipped", "too_short")
    # Twenty minutes of play past 90 %: a watch.
    await tracker.handle(event("media.play-episode.json", ratingKey="5014", index=3))
    clock.tick(minutes=20)
    past = await tracker.handle(event("media.stop-episode.json", ratingKey="5014", index=3))
    assert (past.kind, past.reason) == ("recorded", "webhook")
    # An item shorter than the minimum, no start seen: not a watch.
    tiny = await tracker.handle(
        event("media.scrobble-episode.json", ratingKey="5021", duration=60000, viewOffset=59000)
    )
    assert (tiny.kind, tiny.reason) == ("skipped", "too_short")


async def test_lower_threshold_option(catalog: Catalog, store: TrackingStore, clock: Clock) -> None:
    tracker = make_tracker(catalog, store, clock, watched_threshold=0.8)
    outcome = await tracker.handle(event("media.stop-episode.json", viewOffset=1500000))
    assert outcome.kind == "recorded"
    assert outcome.watch is not None
    assert outcome.watch.progress == pytest.approx(1500000 / 1800000)


async def test_webhook_and_websocket_of_one_play_are_one_watch(
    tracker: WatchTracker, clock: Clock
) -> None:
    item = event("media.scrobble-episode.json").item
    assert item is not None
    assert (await tracker.handle(event("media.scrobble-episode.json"))).kind == "recorded"
    clock.tick(minutes=4)
    ended = replace_item(item, view_offset_ms=1790000)
    backup = await tracker.session_ended(SessionEnd(HOME, "1", ended, "alice", played_s=1700))
    assert (backup.kind, backup.reason) == ("duplicate", "same_play")
    history = await tracker.history("1")
    assert len(history) == 1
    assert history[0].source == "webhook"
    assert history[0].progress == pytest.approx(1790000 / 1800000)
    # The other way round: the websocket first (webhook lost or late), then the webhook.
    other = replace_item(item, rating_key="5013", index=2)
    first = await tracker.session_ended(SessionEnd(HOME, "1", other, "alice", played_s=1700))
    assert (first.kind, first.reason) == ("recorded", "websocket")
    clock.tick(minutes=1)
    late = await tracker.handle(event("media.scrobble-episode.json", ratingKey="5013", index=2))
    assert late.kind == "duplicate"
    assert [w.source for w in await tracker.history("1")] == ["websocket", "webhook"]
    # Watching it again the next day is a new watch.
    clock.tick(days=1)
    assert (await tracker.handle(event("media.scrobble-episode.json"))).kind == "recorded"


def replace_item(item: ItemSummary, **changes: Any) -> ItemSummary:
    from dataclasses import replace

    return replace(item, **changes)


async def test_websocket_session_rules(tracker: WatchTracker) -> None:
    item = event("media.stop-episode.json").item
    assert item is not None
    low = replace_item(item, view_offset_ms=100000)
    assert (await tracker.session_ended(SessionEnd(HOME, "1", low))).reason == "below_threshold"
    assert (
        await tracker.session_ended(SessionEnd(HOME, "1", item, played_s=30))
    ).reason == "too_short"
    assert (await tracker.session_ended(SessionEnd("elsewhere", "1", item))).reason == (
        "foreign_server"
    )
    track = replace_item(item, type="track")
    assert (await tracker.session_ended(SessionEnd(HOME, "1", track))).reason == "not_watchable"


async def test_monitored_users(catalog: Catalog, store: TrackingStore, clock: Clock) -> None:
    tracker = make_tracker(catalog, store, clock, monitored_users=frozenset({"alice"}))
    assert (await tracker.handle(event("media.scrobble-episode.json"))).kind == "recorded"
    bob = {"Account": {"id": 4242, "title": "bob"}}
    skipped = await tracker.handle(event("media.scrobble-episode.json", top=bob))
    assert (skipped.kind, skipped.reason) == ("skipped", "user_not_monitored")
    assert await tracker.history("4242") == []
    # Events of unmonitored users are still audited.
    assert store.audit_log()[0].user == "bob"
    # By id as well as by name.
    by_id = make_tracker(catalog, store, clock, monitored_users=frozenset({"4242"}))
    clock.tick(hours=2)
    assert (await by_id.handle(event("media.scrobble-episode.json", top=bob))).kind == "recorded"


async def test_foreign_server_is_acknowledged_and_logged_once(
    tracker: WatchTracker, store: TrackingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = {"Server": {"title": "Friend", "uuid": "f" * 40}}
    with caplog.at_level(logging.INFO, logger="custom_components.plexus.tracking"):
        for minute in range(3):
            clock.tick(minutes=minute + 1)
            outcome = await tracker.handle(
                event("media.scrobble-episode.json", top=foreign, viewOffset=1620000 + minute)
            )
            assert (outcome.kind, outcome.reason, outcome.server) == (
                "skipped",
                "foreign_server",
                "f" * 40,
            )
    assert sum("does not know" in r.message for r in caplog.records) == 1
    assert await tracker.history() == []
    assert [a.status for a in store.audit_log()] == ["skipped"] * 3


async def test_every_event_type_gets_an_outcome(
    tracker: WatchTracker, store: TrackingStore, clock: Clock
) -> None:
    outcomes = {}
    for name in SYNTHETIC:
        clock.tick(minutes=5)
        outcomes[SYNTHETIC[name]["event"]] = await tracker.handle(event(name))
    kinds = {name: (o.kind, o.reason) for name, o in outcomes.items()}
    assert kinds["media.scrobble"] == ("recorded", "webhook")
    assert kinds["media.stop"] == ("duplicate", "same_play")
    for name in ("media.play", "media.pause", "library.new", "device.new", "media.teleport"):
        assert kinds[name] == ("skipped", "not_a_watch")
    assert {a.event for a in store.audit_log()} == {d["event"] for d in SYNTHETIC.values()}


async def test_every_real_payload_is_handled(
    tracker: WatchTracker, store: TrackingStore, clock: Clock
) -> None:
    for raw in REAL.values():
        clock.tick(minutes=5)
        outcome = await tracker.handle(parse_payload(raw))
        assert outcome.kind in ("recorded", "skipped")
    # The movary scrobble is a server we know (by its uuid), its movie is not in the catalog:
    # recorded under its own server's rating key.
    recorded = await tracker.history()
    assert [(w.server, w.rating_key, w.title) for w in recorded] == [
        (OTHER_KNOWN, "26697", "Big Trouble in Little China")
    ]
    assert len(store.audit_log()) == len(REAL)


async def test_unknown_item_is_recorded_under_its_own_key(tracker: WatchTracker) -> None:
    outcome = await tracker.handle(
        event(
            "media.scrobble-episode.json",
            ratingKey="99999",
            grandparentRatingKey="99990",
            grandparentTitle="Nothing Like It",
            grandparentGuid=None,
            guid="plex://episode/unknown",
            Guid=[],
        )
    )
    assert (outcome.kind, outcome.watch.rating_key if outcome.watch else None) == (
        "recorded",
        "99999",
    )


async def test_stale_key_found_by_guid(tracker: WatchTracker) -> None:
    moved = event(
        "media.stop-episode.json",
        ratingKey="424242",
        type="movie",
        title="Synthetic Movie",
        guid="plex://movie/6001",
        grandparentTitle=None,
        grandparentRatingKey=None,
    )
    found = await tracker.handle(moved)
    assert found.kind == "recorded"
    assert found.watch is not None
    assert found.watch.rating_key == "6001"


# -- conflicts, mappings ----------------------------------------------------------------------


def office(key: str = "90001", season: int = 1, number: int = 1) -> WebhookEvent:
    """An episode of "The Office" whose show the catalog does not know by key: US or UK?"""
    return event(
        "media.scrobble-episode.json",
        ratingKey=key,
        grandparentRatingKey="90000",
        grandparentTitle="The Office",
        grandparentGuid=None,
        guid=f"plex://episode/{key}",
        Guid=[],
        parentIndex=season,
        index=number,
    )


async def test_conflict_waits_for_the_user_then_applies(
    tracker: WatchTracker, store: TrackingStore, clock: Clock
) -> None:
    outcome = await tracker.handle(office())
    assert (outcome.kind, outcome.show_key) == ("conflict", "show:90000")
    assert {c.rating_key for c in outcome.candidates} >= {"8000", "8100"}
    assert await tracker.history() == []
    conflicts = await tracker.conflicts()
    assert [(c.server, c.show_key, c.title, c.pending) for c in conflicts] == [
        (HOME, "show:90000", "The Office", 1)
    ]
    assert conflicts[0].candidates[0]["library"] == "TV Shows"
    clock.tick(hours=1)
    assert (await tracker.handle(office("90002", 1, 2))).kind == "conflict"
    assert (await tracker.conflicts())[0].pending == 2
    # The user picks the US version: both waiting watches are applied (episode 1 is in the
    # catalog, episode 2 is not: it keeps its own key), and the choice is remembered.
    assert await tracker.resolve_conflict(HOME, "show:90000", "8000") == 2
    assert await tracker.conflicts() == []
    history = await tracker.history("1")
    assert [(w.rating_key, w.show_rating_key) for w in history] == [
        ("90002", "8000"),
        ("8011", "8000"),
    ]
    mapping = store.mapping(HOME, "show:90000")
    assert mapping is not None
    assert (mapping.rating_key, mapping.decided_by, mapping.ignored) == ("8000", "user", False)
    clock.tick(days=1)
    again = await tracker.handle(office())
    assert (again.kind, again.watch.rating_key if again.watch else None) == ("recorded", "8011")


async def test_ignored_show_is_skipped(tracker: WatchTracker, clock: Clock) -> None:
    assert (await tracker.handle(office())).kind == "conflict"
    assert await tracker.resolve_conflict(HOME, "show:90000", None) == 0
    assert await tracker.conflicts() == []
    clock.tick(hours=3)
    outcome = await tracker.handle(office("90005"))
    assert (outcome.kind, outcome.reason) == ("skipped", "ignored")
    assert await tracker.history() == []
    with pytest.raises(KeyError):
        await tracker.resolve_conflict("elsewhere", "show:1", None)


async def test_sure_title_is_auto_mapped_and_remembered(
    tracker: WatchTracker, store: TrackingStore
) -> None:
    outcome = await tracker.handle(
        event(
            "media.scrobble-episode.json",
            ratingKey="77777",
            grandparentRatingKey="77770",
            grandparentTitle="Synthetic Show, The",
            grandparentGuid=None,
            guid="plex://episode/77777",
            Guid=[],
            parentIndex=2,
            index=1,
        )
    )
    assert outcome.kind == "recorded"
    assert outcome.watch is not None
    assert (outcome.watch.rating_key, outcome.watch.show_rating_key) == ("5021", "5000")
    mapping = store.mapping(HOME, "show:77770")
    assert mapping is not None
    assert (mapping.rating_key, mapping.decided_by) == ("5000", "auto")
    assert mapping.confidence is not None
    assert mapping.confidence >= 0.9


# -- Up Next -----------------------------------------------------------------------------------


async def test_up_next_across_seasons_most_recent_show_first(
    tracker: WatchTracker, clock: Clock
) -> None:
    await watch_all(tracker, clock, [("5012", 1, 1), ("5013", 1, 2), ("5014", 1, 3)])
    up = await tracker.up_next("1")
    assert [(u.rating_key, u.season, u.episode, u.show_title) for u in up] == [
        ("5021", 2, 1, "The Synthetic Show")
    ]
    clock.tick(hours=1)
    other = scrobble(
        "7011", 1, 1, grandparentRatingKey="7000", grandparentTitle="Other Show", Guid=[]
    )
    assert (await tracker.handle(other)).kind == "recorded"
    assert [u.rating_key for u in await tracker.up_next("1")] == ["7012", "5021"]
    # Back to the first show: it is first again.
    await watch_all(tracker, clock, [("5021", 2, 1)])
    assert [u.rating_key for u in await tracker.up_next("1")] == ["5022", "7012"]
    # Finished: the show leaves Up Next. Other users have their own.
    await watch_all(tracker, clock, [("5022", 2, 2)])
    assert [u.rating_key for u in await tracker.up_next("1")] == ["7012"]
    assert await tracker.up_next("4242") == []


async def test_up_next_when_watched_out_of_order(tracker: WatchTracker, clock: Clock) -> None:
    # S1E1, then a jump to S2E1, then back to S1E2: continue from there, skip what was seen.
    await watch_all(tracker, clock, [("5012", 1, 1), ("5021", 2, 1), ("5013", 1, 2)])
    assert [u.rating_key for u in await tracker.up_next("1")] == ["5014"]
    await watch_all(tracker, clock, [("5014", 1, 3)])
    assert [u.rating_key for u in await tracker.up_next("1")] == ["5022"]
    # Only the last episode left unwatched at the start: after the latest nothing is unwatched,
    # so the gap is next.
    await tracker.mark_unwatched(HOME, "5012", "1")
    await watch_all(tracker, clock, [("5022", 2, 2)])
    assert [u.rating_key for u in await tracker.up_next("1")] == ["5012"]


# -- manual marks, history, stats ---------------------------------------------------------------


async def test_mark_watched_and_unwatched(tracker: WatchTracker, clock: Clock) -> None:
    marked = await tracker.mark_watched(HOME, "6001", "1", user_name="alice")
    assert (marked.kind, marked.reason) == ("recorded", "manual")
    assert marked.watch is not None
    assert (marked.watch.title, marked.watch.progress) == ("Synthetic Movie", 1.0)
    assert (await tracker.mark_watched(HOME, "nope", "1")).reason == "unknown_item"
    assert (await tracker.mark_watched(HOME, "5000", "1")).reason == "unknown_item"  # a show
    assert (await tracker.mark_watched("elsewhere", "6001", "1")).reason == "foreign_server"
    clock.tick(days=2)
    await tracker.mark_watched(HOME, "5012", "1")
    assert await tracker.mark_unwatched(HOME, "6001", "1") == 1
    assert [w.rating_key for w in await tracker.history("1")] == ["5012"]
    assert await tracker.mark_unwatched(HOME, "6001", "1") == 0


async def test_history_filters(tracker: WatchTracker, clock: Clock) -> None:
    await tracker.mark_watched(HOME, "6001", "1")
    await watch_all(tracker, clock, [("5012", 1, 1), ("5013", 1, 2)])
    assert [w.type for w in await tracker.history("1")] == ["episode", "episode", "movie"]
    assert [w.rating_key for w in await tracker.history("1", item_type="movie")] == ["6001"]
    assert [
        w.rating_key for w in await tracker.history("1", since=START + timedelta(minutes=90))
    ] == ["5013"]
    assert len(await tracker.history("1", limit=1)) == 1
    assert await tracker.history("nobody") == []


async def test_stats(catalog: Catalog, store: TrackingStore, clock: Clock) -> None:
    tracker = make_tracker(catalog, store, clock)
    clock.now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday
    await tracker.handle(scrobble("5012", 1, 1))
    clock.tick(hours=1)
    await tracker.handle(scrobble("5013", 1, 2))
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday of the same week
    await tracker.mark_watched(HOME, "6001", "1")
    clock.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # the Sunday before
    await tracker.handle(scrobble("5014", 1, 3))
    clock.now = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    stats = await tracker.stats("1")
    assert stats.last_watched is not None
    assert stats.last_watched.rating_key == "5013"
    assert (stats.watched_today, stats.watch_time_today_min, stats.watched_this_week) == (
        2,
        60.0,
        3,
    )


# -- the store ---------------------------------------------------------------------------------


async def test_history_survives_reopening(
    catalog: Catalog, store: TrackingStore, tracker: WatchTracker, clock: Clock
) -> None:
    await watch_all(tracker, clock, [("5012", 1, 1), ("5013", 1, 2)])
    assert (await tracker.handle(office())).kind == "conflict"
    before = await tracker.history("1")
    reopened_catalog = Catalog(catalog.url, schema=catalog.schema)
    try:
        reopened = TrackingStore(reopened_catalog.engine)
        again = make_tracker(reopened_catalog, reopened, clock)
        assert await again.history("1") == before
        assert [u.rating_key for u in await again.up_next("1")] == ["5014"]
        assert [c.show_key for c in await again.conflicts()] == ["show:90000"]
        assert reopened.ensure_schema() == SCHEMA_VERSION
    finally:
        reopened_catalog.close()


def test_newer_schema_is_refused(store: TrackingStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(insert(schema_version).values(version=99, applied_at=START))
    with pytest.raises(TrackingSchemaError, match="newer"):
        store.ensure_schema()


def test_audit_is_pruned(store: TrackingStore) -> None:
    def entry(when: datetime, n: int) -> AuditEntry:
        return AuditEntry(when, "media.play", f"{n:064x}", "skipped")

    store.add_audit(entry(START - timedelta(days=31), 0))
    for n in range(1, 6):
        store.add_audit(entry(START - timedelta(minutes=n), n))
    assert store.prune_audit(START) == 1
    # Beyond the row cap, the earliest received (first written) go.
    assert store.prune_audit(START, max_rows=3) == 2
    assert [a.digest[-1] for a in store.audit_log()] == ["5", "4", "3"]
    assert AUDIT_ROWS == 100_000


def test_times_must_be_aware(store: TrackingStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        store.seen_digest("x", datetime(2026, 1, 1))  # noqa: DTZ001


def test_old_schema_is_migrated(catalog: Catalog, store: TrackingStore) -> None:
    """A version-1 database (no play claims) is brought forward and keeps its watches."""
    watch = Watch(HOME, "5012", "episode", "1", START, "webhook", show_rating_key="5000")
    assert store.add_watch(watch)[1]
    with store.engine.begin() as conn:
        plays.drop(conn)
        conn.execute(delete(schema_version))
        conn.execute(insert(schema_version).values(version=1, applied_at=START))
    reopened = TrackingStore(catalog.engine)
    assert reopened.ensure_schema() == SCHEMA_VERSION
    assert [w.rating_key for w in reopened.history("1")] == ["5012"]
    later = replace(watch, watched_at=START + timedelta(minutes=5))
    assert reopened.add_watch(later)[1] is False


def test_concurrent_writers_of_one_play_make_one_watch(
    catalog: Catalog, store: TrackingStore
) -> None:
    """Two writers (own engines, own threads) record the same play at once: one watch each time.

    The duplicate rule is one database operation (the play's claim), so neither a thread nor a
    second process writing the same play can slip its watch in between the other's look-up and
    insert.
    """
    other = Catalog(catalog.url, schema=catalog.schema)
    try:
        stores = [store, TrackingStore(other.engine)]
        rounds = 25
        barrier = threading.Barrier(2)
        added: list[bool] = []

        def write(which: int) -> None:
            for n in range(rounds):
                watch = Watch(
                    HOME,
                    f"9{n:03d}",
                    "movie",
                    "1",
                    START + timedelta(seconds=which),
                    "webhook" if which == 0 else "websocket",
                    duration_ms=1_800_000,
                )
                barrier.wait(timeout=30)
                added.append(stores[which].add_watch(watch)[1])

        threads = [threading.Thread(target=write, args=(which,)) for which in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert added.count(True) == rounds
        assert added.count(False) == rounds
        keys = [w.rating_key for w in store.history(None, limit=1_000)]
        assert sorted(keys) == [f"9{n:03d}" for n in range(rounds)]
    finally:
        other.close()


async def test_webhook_and_websocket_racing_are_one_watch(
    catalog: Catalog, store: TrackingStore, clock: Clock
) -> None:
    """The webhook tracker and the websocket tracker (two trackers, two threads) at once."""
    webhook_side = make_tracker(catalog, store, clock)
    websocket_side = make_tracker(catalog, store, clock)
    keys = [key for key, season, _ in SHOW_EPISODES if season > 0]
    for key, season, number in ((k, s, e) for k, s, e in SHOW_EPISODES if s > 0):
        scrobbled = scrobble(key, season, number)
        assert scrobbled.item is not None
        ended = SessionEnd(HOME, "1", scrobbled.item, "alice", played_s=1700)
        outcomes = await asyncio.gather(
            webhook_side.handle(scrobbled), websocket_side.session_ended(ended)
        )
        assert sorted(o.kind for o in outcomes) == ["duplicate", "recorded"]
    watches = await webhook_side.history("1")
    assert sorted(w.rating_key for w in watches) == sorted(keys)


def _plausible(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly right-looking values, sometimes any JSON (a real payload's keys, odd contents)."""
    return st.one_of(values, values, values, values, json_values)


tracker_payloads = st.fixed_dictionaries(
    {
        "event": _plausible(
            st.sampled_from(["media.scrobble", "media.stop"])
            | st.sampled_from([*EVENT_TYPES, "media.teleport"])
        ),
        "Account": _plausible(
            st.fixed_dictionaries(
                {"id": _plausible(st.integers(1, 3)), "title": _plausible(st.just("alice"))}
            )
        ),
        "Server": _plausible(
            st.fixed_dictionaries(
                {"uuid": _plausible(st.sampled_from([HOME, HOME, OTHER_KNOWN, "elsewhere"]))}
            )
        ),
        "Metadata": _plausible(
            st.fixed_dictionaries(
                {
                    "type": _plausible(st.sampled_from(["movie", "episode", "track", "show"])),
                    "ratingKey": _plausible(st.sampled_from(["6001", "5012", "5013", "404"])),
                    "title": _plausible(st.sampled_from(["The Office", "Synthetic Movie"])),
                    "grandparentTitle": _plausible(st.just("The Synthetic Show")),
                    "grandparentRatingKey": _plausible(st.just("5000")),
                    "parentIndex": _plausible(st.integers(0, 3)),
                    "index": _plausible(st.integers(0, 3)),
                    "year": _plausible(st.integers(1900, 2100)),
                    "viewOffset": _plausible(st.integers(0, 2_000_000)),
                    "duration": _plausible(st.integers(0, 2_000_000)),
                    "Guid": _plausible(st.lists(st.fixed_dictionaries({"id": json_values}))),
                },
                optional={"guid": _plausible(st.just("plex://movie/6001"))},
            )
        ),
    }
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None
)
@given(st.lists(tracker_payloads, min_size=1, max_size=6))
async def test_generated_payloads_never_raise_in_the_tracker(
    tracker: WatchTracker, docs: list[dict[str, Any]]
) -> None:
    """Whatever a payload holds, once parsed the tracker says what became of it."""
    events = []
    for doc in docs:
        try:
            events.append(parse_payload(json.dumps(doc)))
        except WebhookError:
            continue
    outcomes = await tracker.handle_many(events)
    assert len(outcomes) == len(events)
    assert {o.kind for o in outcomes} <= {"recorded", "duplicate", "skipped", "conflict"}


async def test_a_bug_in_one_event_does_not_lose_the_batch(
    tracker: WatchTracker, store: TrackingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One event failing unexpectedly is audited with its error; the others are recorded."""
    real = tracker._decide

    async def decide(event: WebhookEvent, now: datetime) -> Any:
        if event.item is not None and event.item.rating_key == "5013":
            raise KeyError("surprise")
        return await real(event, now)

    monkeypatch.setattr(tracker, "_decide", decide)
    events = [scrobble("5012", 1, 1), scrobble("5013", 1, 2), scrobble("5014", 1, 3)]
    outcomes = await tracker.handle_many(events)
    assert [(o.kind, o.reason) for o in outcomes] == [
        ("recorded", "webhook"),
        ("skipped", "error"),
        ("recorded", "webhook"),
    ]
    audit = store.audit_log()
    assert [a.status for a in reversed(audit)] == ["recorded", "skipped", "recorded"]
    assert "surprise" in (audit[1].error or "")


# -- a database in trouble ------------------------------------------------------------------------


async def test_a_database_in_trouble_skips_the_batch_with_store_error_and_says_so(
    tracker: WatchTracker,
    store: TrackingStore,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database away (OperationalError on the duplicate check): StoreUnavailableError with no
    outcome, nothing written, so the caller can hand the whole batch in again. Away at the second
    event's write: the first event's outcome is carried, the second not handled. A value the
    database refuses (IntegrityError): that event is `store_error`, audited with the cause, the
    next event still recorded. The audit log cannot be written: a warning, outcomes returned."""

    def down(*_: Any, **__: Any) -> Any:
        raise OperationalError(
            "INSERT INTO plexus_watches (title) VALUES (?)",
            ("Alice's film",),
            Exception("connection reset"),
        )

    def refused(*_: Any, **__: Any) -> Any:
        raise IntegrityError(
            "INSERT INTO plexus_watches (title) VALUES (?)",
            ("Alice's film",),
            Exception("value refused"),
        )

    batch = [scrobble("5012", 1, 1), scrobble("5013", 1, 2)]
    with monkeypatch.context() as patch:
        patch.setattr(store, "digest_times", down)
        with pytest.raises(StoreUnavailableError) as caught:
            await tracker.handle_many(batch)
    assert caught.value.outcomes == []
    assert "connection reset" in caught.value.cause
    assert "INSERT INTO" not in caught.value.cause
    assert store.audit_log() == []
    assert await tracker.history("1") == []

    real_add = store.add_watch

    def second_down(watch: Watch) -> Any:
        if watch.rating_key == "5013":
            down()
        return real_add(watch)

    with monkeypatch.context() as patch:
        patch.setattr(store, "add_watch", second_down)
        with pytest.raises(StoreUnavailableError) as caught:
            await tracker.handle_many(batch)
    assert [(o.kind, o.reason) for o in caught.value.outcomes] == [("recorded", "webhook")]
    assert [w.rating_key for w in await tracker.history("1")] == ["5012"]
    # handed in again once the database is back: the first is the same play, the second recorded
    outcomes = await tracker.handle_many(batch)
    assert [(o.kind, o.reason) for o in outcomes] == [
        ("duplicate", "same_play"),
        ("recorded", "webhook"),
    ]
    assert sorted(w.rating_key for w in await tracker.history("1")) == ["5012", "5013"]

    clock.tick(hours=1)
    calls = 0

    def first_refused(watch: Watch) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            refused()
        return real_add(watch)

    batch = [scrobble("5014", 1, 3), scrobble("5015", 1, 4)]
    with monkeypatch.context() as patch:
        patch.setattr(store, "add_watch", first_refused)
        outcomes = await tracker.handle_many(batch)
    assert [(o.kind, o.reason) for o in outcomes] == [
        ("skipped", "store_error"),
        ("recorded", "webhook"),
    ]
    audit = {a.action: a for a in store.audit_log()}
    assert "value refused" in (audit["store_error"].error or "")
    # one line naming the cause: neither the SQL nor its parameters (titles, user names)
    ours = [r for r in caplog.records if r.name.startswith("custom_components.plexus")]
    logged = " ".join(r.getMessage() for r in ours) + (audit["store_error"].error or "")
    assert "INSERT INTO" not in logged
    assert "Alice's film" not in logged

    clock.tick(hours=1)
    with monkeypatch.context() as patch:
        patch.setattr(store, "add_audits", down)
        outcome = await tracker.handle(scrobble("5016", 1, 5))
    assert (outcome.kind, outcome.reason) == ("recorded", "webhook")
    assert any("Audit log of 1 webhooks not written" in r.getMessage() for r in caplog.records)


async def test_a_session_of_a_user_not_monitored_is_skipped(
    catalog: Catalog, store: TrackingStore, clock: Clock
) -> None:
    """The websocket backup follows the monitored users option too."""
    tracker = make_tracker(catalog, store, clock, monitored_users=frozenset({"bob"}))
    item = event("media.scrobble-episode.json").item
    assert item is not None
    ended = replace_item(item, view_offset_ms=1790000)
    outcome = await tracker.session_ended(SessionEnd(HOME, "1", ended, "alice", played_s=1700))
    assert (outcome.kind, outcome.reason) == ("skipped", "user_not_monitored")
    assert await tracker.history(None) == []


async def test_up_next_of_a_show_on_a_server_never_imported_is_empty(
    tracker: WatchTracker, store: TrackingStore
) -> None:
    """A watch kept for a server whose library was never imported (its history read before the
    first import): Up Next has no episodes to offer for it, and no error."""
    watch = Watch(
        server=OTHER_KNOWN,  # a server of ours, its library not imported
        rating_key="42",
        type="episode",
        user_id="1",
        watched_at=START,
        source="plex_history",
        title="Pilot",
        show_title="Elsewhere",
        show_rating_key="40",
        season=1,
        episode=1,
    )
    store.add_watch(watch)
    assert await tracker.up_next("1") == []
