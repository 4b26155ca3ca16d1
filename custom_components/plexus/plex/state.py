"""What one Plex server is doing right now: clients seen, live play states, sessions.

A small model the Home Assistant coordinator feeds (polls, websocket notifications) and reads; it
knows nothing of Home Assistant. Times are passed in (``now``) so it is easy to test.

- ``known_clients``: every client seen (listed by the server, seen playing, or online on plex.tv),
  with ``last_seen``; a client gone for longer than the stale time is reported by ``stale``.
- ``live``: per client, its newest play state and position. ``playing`` notifications update it
  within milliseconds (``apply_playing``); a poll's sessions fill in what notifications missed
  (``merge_sessions``) without overwriting something newer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from .models import PlexClientInfo, PlexSession

PLAYER_STATES: Final = frozenset({"playing", "paused", "buffering"})
# A notification newer than this still wins over a poll's session for the same session key.
LIVE_FRESH_FOR: Final = timedelta(seconds=10)
# Activities of this kind change what a library holds (see ``finished_activity``).
LIBRARY_ACTIVITY_PREFIX: Final = "library."


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a client is doing right now, from the newest notification or session."""

    state: str
    rating_key: str
    session_key: str
    position_ms: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PlayingUpdate:
    """What a ``playing`` notification changed."""

    # Clients whose live state changed.
    changed: frozenset[str]
    # False when the sessions must be read again: a new or ended session, or data we cannot use.
    complete: bool


class ServerState:
    """Clients and live play states of one server."""

    def __init__(self) -> None:
        """Start empty."""
        self.known_clients: dict[str, PlexClientInfo] = {}
        self.last_seen: dict[str, datetime] = {}
        self.live: dict[str, LiveState] = {}
        self.ignored: frozenset[str] = frozenset()

    def track_clients(
        self,
        listed: dict[str, PlexClientInfo],
        sessions: Iterable[PlexSession],
        online: Iterable[PlexClientInfo],
        now: datetime,
    ) -> None:
        """Remember every client seen; players that only appear in sessions or plex.tv count too."""
        for player in online:
            if player.machine_identifier not in listed:
                self.known_clients.setdefault(player.machine_identifier, player)
                self.last_seen[player.machine_identifier] = now
        for client_id, client in listed.items():
            self.known_clients[client_id] = client
            self.last_seen[client_id] = now
        for session in sessions:
            client_id = session.player_identifier
            if client_id not in listed:
                self.known_clients.setdefault(
                    client_id,
                    PlexClientInfo(
                        machine_identifier=client_id,
                        name=session.player_title or client_id,
                        product=session.player_product,
                        platform=session.player_platform,
                        address=session.player_address,
                    ),
                )
            self.last_seen[client_id] = now
        for client_id in self.ignored & set(self.known_clients):
            self.forget(client_id)

    def forget(self, client_id: str) -> None:
        """Drop a client (stale, ignored or deleted by the user)."""
        self.known_clients.pop(client_id, None)
        self.last_seen.pop(client_id, None)
        self.live.pop(client_id, None)

    def stale(self, now: datetime, after: timedelta) -> list[str]:
        """Clients not seen for longer than ``after``."""
        return [cid for cid, seen in self.last_seen.items() if now - seen > after]

    def merge_sessions(self, sessions: Iterable[PlexSession], now: datetime) -> None:
        """Take positions from a poll's sessions unless a notification told us something newer."""
        fresh: dict[str, LiveState] = {}
        for session in sessions:
            current = self.live.get(session.player_identifier)
            if (
                current is not None
                and current.session_key == session.session_key
                and now - current.updated_at < LIVE_FRESH_FOR
            ):
                fresh[session.player_identifier] = replace(
                    current, rating_key=session.rating_key or current.rating_key
                )
                continue
            fresh[session.player_identifier] = LiveState(
                state=session.state if session.state in PLAYER_STATES else "playing",
                rating_key=session.rating_key,
                session_key=session.session_key,
                position_ms=session.view_offset_ms,
                updated_at=now,
            )
        self.live = fresh

    def apply_playing(self, entries: Any, now: datetime) -> PlayingUpdate:
        """Update live states from the entries of a ``playing`` notification (raw JSON)."""
        if not isinstance(entries, list):
            return PlayingUpdate(frozenset(), complete=False)
        changed: set[str] = set()
        complete = True
        for entry in entries:
            if not isinstance(entry, dict):
                complete = False
                continue
            client_id = entry.get("clientIdentifier")
            state = entry.get("state")
            if not isinstance(client_id, str) or client_id in self.ignored:
                continue
            current = self.live.get(client_id)
            session_key = str(entry.get("sessionKey", ""))
            if not isinstance(state, str) or state not in PLAYER_STATES:
                self.live.pop(client_id, None)
                complete = False
                continue
            if current is None or current.session_key != session_key:
                complete = False
            try:
                position = int(entry.get("viewOffset", 0))
            except TypeError, ValueError, OverflowError:
                position = current.position_ms if current else 0
            changed.add(client_id)
            self.live[client_id] = LiveState(
                state=str(state),
                rating_key=str(entry.get("ratingKey", "")),
                session_key=session_key,
                position_ms=position,
                updated_at=now,
            )
        return PlayingUpdate(frozenset(changed), complete=complete)


def _library_activity(entry: dict[str, Any]) -> bool:
    activity = entry.get("Activity")
    kind = activity.get("type") if isinstance(activity, dict) else None
    return isinstance(kind, str) and kind.startswith(LIBRARY_ACTIVITY_PREFIX)


def finished_activity(container: Any) -> bool:
    """True when an ``activity`` notification reports a library activity that ended.

    Library activities (a scan, ``library.update.section``; a metadata refresh,
    ``library.refresh.items``) change what a library holds. A real server also reports many
    others that do not: thumbnails, intro and credits detection (``media.generate.*``), one per
    item for hours during its nightly maintenance, butler tasks, DVR subscriptions.
    """
    if not isinstance(container, dict):
        return False
    entries = container.get("ActivityNotification")
    if not isinstance(entries, list):
        return False
    return any(
        isinstance(e, dict) and e.get("event") == "ended" and _library_activity(e) for e in entries
    )
