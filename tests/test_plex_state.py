"""The server-state model: which clients are known, and what each one is playing right now."""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.plexus.plex.models import PlexClientInfo, PlexSession
from custom_components.plexus.plex.state import (
    LIVE_FRESH_FOR,
    LiveState,
    ServerState,
    finished_activity,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _session(player: str, session_key: str = "1", **fields: object) -> PlexSession:
    values: dict[str, object] = {
        "session_key": session_key,
        "rating_key": "100",
        "media_type": "movie",
        "title": "Dune",
        "player_identifier": player,
        "player_title": f"{player} title",
    }
    values.update(fields)
    return PlexSession(**values)  # type: ignore[arg-type]


def _live(state: ServerState, client_id: str, **fields: object) -> None:
    values: dict[str, object] = {
        "state": "playing",
        "rating_key": "100",
        "session_key": "1",
        "position_ms": 5_000,
        "updated_at": T0,
    }
    values.update(fields)
    state.live[client_id] = LiveState(**values)  # type: ignore[arg-type]


def test_clients_only_online_on_plex_tv_or_in_sessions_are_known() -> None:
    state = ServerState()
    listed = {"tv": PlexClientInfo("tv", "Living room TV", product="Plex for LG")}
    online = [
        PlexClientInfo("tv", "TV as plex.tv calls it"),
        PlexClientInfo("phone", "Phone", product="Plex for iOS"),
    ]
    sessions = [
        _session("tv"),
        _session(
            "web",
            player_title="",
            player_product="Plex Web",
            player_platform="Chrome",
            player_address="10.0.0.9",
        ),
    ]
    state.track_clients(listed, sessions, online, T0)

    # The server's own listing wins over plex.tv's name for the same player.
    assert state.known_clients["tv"].name == "Living room TV"
    assert state.known_clients["phone"].product == "Plex for iOS"
    web = state.known_clients["web"]
    # A player seen only in a session is described from it; no title -> its identifier.
    assert (web.name, web.product, web.platform, web.address) == (
        "web",
        "Plex Web",
        "Chrome",
        "10.0.0.9",
    )
    assert state.last_seen == {"tv": T0, "phone": T0, "web": T0}

    # A later poll without the phone: it goes stale once it has been gone long enough.
    later = T0 + timedelta(minutes=10)
    state.track_clients(listed, [], [], later)
    assert state.stale(later, timedelta(minutes=5)) == ["phone", "web"]
    assert state.stale(later, timedelta(minutes=30)) == []


def test_ignored_clients_are_dropped_with_their_live_state() -> None:
    state = ServerState()
    _live(state, "tv")
    state.ignored = frozenset({"tv"})
    state.track_clients({"tv": PlexClientInfo("tv", "TV")}, [_session("tv")], [], T0)
    assert "tv" not in state.known_clients
    assert "tv" not in state.last_seen
    assert "tv" not in state.live


def test_merge_sessions_keeps_a_fresh_notification_and_replaces_an_old_one() -> None:
    state = ServerState()
    # A notification a moment ago said position 5 s; the poll (older data) says 1 s.
    _live(state, "tv", rating_key="100", position_ms=5_000, updated_at=T0)
    # An old live state for the phone: the poll's session replaces it.
    _live(state, "phone", session_key="7", position_ms=1, updated_at=T0 - LIVE_FRESH_FOR)
    # A stale entry with no session in the poll any more: the player stopped.
    _live(state, "gone", session_key="9")
    now = T0 + timedelta(seconds=2)
    state.merge_sessions(
        [
            _session("tv", rating_key="101", view_offset_ms=1_000, state="playing"),
            _session("phone", session_key="7", view_offset_ms=60_000, state=""),
        ],
        now,
    )
    tv = state.live["tv"]
    assert (tv.position_ms, tv.rating_key, tv.updated_at) == (5_000, "101", T0)
    phone = state.live["phone"]
    # A session without a known state counts as playing (it is listed as active).
    assert (phone.state, phone.position_ms, phone.updated_at) == ("playing", 60_000, now)
    assert "gone" not in state.live


def test_merge_sessions_new_session_on_the_same_player_wins() -> None:
    state = ServerState()
    _live(state, "tv", session_key="1", position_ms=5_000)
    state.merge_sessions([_session("tv", session_key="2", view_offset_ms=0, state="paused")], T0)
    assert state.live["tv"].session_key == "2"
    assert state.live["tv"].state == "paused"
    assert state.live["tv"].position_ms == 0


def test_apply_playing_position_update_of_a_known_session_is_complete() -> None:
    state = ServerState()
    _live(state, "tv", session_key="1", position_ms=5_000)
    update = state.apply_playing(
        [
            {
                "clientIdentifier": "tv",
                "state": "paused",
                "sessionKey": "1",
                "ratingKey": "100",
                "viewOffset": 42_000,
            }
        ],
        T0 + timedelta(seconds=1),
    )
    assert update.changed == frozenset({"tv"})
    # Only a known session moved: no need to read all sessions again.
    assert update.complete is True
    assert state.live["tv"].state == "paused"
    assert state.live["tv"].position_ms == 42_000


def test_apply_playing_new_or_ended_session_asks_for_a_refresh() -> None:
    state = ServerState()
    _live(state, "tv", session_key="1")
    _live(state, "phone", session_key="3")
    update = state.apply_playing(
        [
            {"clientIdentifier": "tv", "state": "stopped", "sessionKey": "1"},
            {"clientIdentifier": "web", "state": "playing", "sessionKey": "5", "viewOffset": 10},
        ],
        T0,
    )
    assert update.complete is False
    assert update.changed == frozenset({"web"})
    assert "tv" not in state.live
    assert state.live["web"].session_key == "5"
    assert state.live["phone"].session_key == "3"


def test_apply_playing_nonsense_from_the_server() -> None:
    state = ServerState()
    _live(state, "tv", session_key="1", position_ms=5_000)
    state.ignored = frozenset({"hidden"})

    # Not a list at all: nothing changes, and the sessions must be read again.
    update = state.apply_playing({"clientIdentifier": "tv"}, T0)
    assert update.changed == frozenset()
    assert update.complete is False
    assert state.live["tv"].position_ms == 5_000

    update = state.apply_playing(
        [
            "garbage",
            {"state": "playing"},  # no client
            {"clientIdentifier": 12, "state": "playing"},  # not a string
            {"clientIdentifier": "hidden", "state": "playing", "sessionKey": "8"},
            # A position we cannot read keeps the last known position.
            {"clientIdentifier": "tv", "state": "playing", "sessionKey": "1", "viewOffset": "x"},
        ],
        T0,
    )
    assert update.changed == frozenset({"tv"})
    assert update.complete is False  # the garbage entry
    assert state.live["tv"].position_ms == 5_000
    assert "hidden" not in state.live

    # Unreadable position for a player we knew nothing about: 0.
    update = state.apply_playing(
        [{"clientIdentifier": "new", "state": "buffering", "sessionKey": "2", "viewOffset": None}],
        T0,
    )
    assert state.live["new"].position_ms == 0
    assert state.live["new"].state == "buffering"
    assert update.complete is False


def _activity(event: str, kind: object = "library.update.section") -> dict[str, object]:
    return {"event": event, "uuid": "u", "Activity": {"uuid": "u", "type": kind, "progress": 100}}


def test_finished_activity() -> None:
    ended = {"ActivityNotification": [_activity("started"), _activity("ended")]}
    assert finished_activity(ended) is True
    refreshed = {"ActivityNotification": [_activity("ended", "library.refresh.items")]}
    assert finished_activity(refreshed) is True
    assert finished_activity({"ActivityNotification": [_activity("updated"), "junk"]}) is False
    assert finished_activity({"ActivityNotification": {"event": "ended"}}) is False
    assert finished_activity(None) is False
    assert finished_activity([ended]) is False


@pytest.mark.parametrize(
    "entry",
    [
        _activity("ended", "media.generate.bif"),  # thumbnails, one item after another
        _activity("ended", "media.generate.intros"),
        _activity("ended", "provider.subscriptions.process"),
        _activity("ended", None),
        _activity("ended", 7),
        {"event": "ended", "Activity": "library.update.section"},
        {"event": "ended"},
    ],
)
def test_activities_outside_the_library_change_nothing(entry: dict[str, object]) -> None:
    """A real server reports thumbnail and intro generation, DVR and butler tasks as
    activities too; their end was taken for a library scan (a catalog import after each)."""
    assert finished_activity({"ActivityNotification": [entry]}) is False


def test_apply_playing_state_that_is_not_a_string() -> None:
    """A `playing` entry whose state is a list or an object (unhashable). Before: TypeError out
    of the model, which ended the websocket listener. Now: treated as an unknown state — the
    player's live state dropped, the sessions read again."""
    state = ServerState()
    _live(state, "tv", session_key="1", position_ms=5_000)
    update = state.apply_playing(
        [
            {"clientIdentifier": "tv", "state": ["playing"], "sessionKey": "1"},
            {"clientIdentifier": "pc", "state": {"x": 1}, "sessionKey": "2"},
        ],
        T0,
    )
    assert update.changed == frozenset()
    assert update.complete is False
    assert "tv" not in state.live
    assert "pc" not in state.live
