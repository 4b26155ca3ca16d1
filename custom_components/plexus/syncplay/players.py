"""A group member backed by a Plex client: commands through `PlayerControl`, state pushed in."""

from collections.abc import Callable, Mapping
import contextlib
import time
from typing import Any, Final

from ..plex.control import PlayerControl
from .interfaces import MediaRef, PlayerSnapshot, PlayerStateName, SnapshotCallback, Unsubscribe

STATES: Final[dict[str, PlayerStateName]] = {
    "stopped": "stopped",
    "buffering": "buffering",
    "playing": "playing",
    "paused": "paused",
}


class PlexMemberPlayer:
    """One Plex client as a sync-play member.

    Commands go through the server (`PlayerControl`). The position source is pushed in: call
    `update(...)` for every timeline/state report, or feed the server's websocket notifications
    to `handle_notification(kind, container)`.
    """

    def __init__(
        self,
        control: PlayerControl,
        client_id: str,
        *,
        name: str | None = None,
        capabilities: tuple[str, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Control `client_id` through `control`."""
        self._control = control
        self._client_id = client_id
        self._name = name or client_id
        self._capabilities = capabilities
        self._monotonic = monotonic
        self._snapshot = PlayerSnapshot("stopped", None, 0.0, monotonic())
        self._listeners: list[SnapshotCallback] = []

    @property
    def player_id(self) -> str:
        """The Plex client identifier."""
        return self._client_id

    @property
    def name(self) -> str:
        """Display name."""
        return self._name

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Client capabilities."""
        return self._capabilities

    @property
    def snapshot(self) -> PlayerSnapshot:
        """Last reported state."""
        return self._snapshot

    def add_listener(self, callback: SnapshotCallback) -> Unsubscribe:
        """Be told of every report."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def update(
        self, state: str, media_key: str | None, position_ms: float, at: float | None = None
    ) -> None:
        """A state/position report (from a timeline or a websocket notification)."""
        self._snapshot = PlayerSnapshot(
            STATES.get(state, "stopped"),
            media_key or None,
            float(position_ms),
            self._monotonic() if at is None else at,
        )
        for callback in list(self._listeners):
            callback(self._snapshot)

    def handle_notification(self, kind: str, container: Mapping[str, Any]) -> None:
        """Take this client's entries from a server `playing` notification."""
        if kind != "playing":
            return
        for entry in container.get("PlaySessionStateNotification") or ():
            if not isinstance(entry, Mapping) or entry.get("clientIdentifier") != self._client_id:
                continue
            offset = entry.get("viewOffset")
            self.update(
                str(entry.get("state") or "stopped"),
                str(entry.get("ratingKey") or "") or None,
                float(offset) if isinstance(offset, int | float) else 0.0,
            )

    async def play_media(self, media: MediaRef, media_key: str, offset_ms: int) -> None:
        """Start the item at an offset."""
        await self._control.play_media(
            self._client_id, media_key, media.item_type, offset_ms=offset_ms
        )

    async def seek(self, position_ms: int) -> None:
        """Seek."""
        await self._control.seek(self._client_id, position_ms)

    async def pause(self) -> None:
        """Pause."""
        await self._control.pause(self._client_id)

    async def play(self) -> None:
        """Resume."""
        await self._control.play(self._client_id)

    async def stop(self) -> None:
        """Stop."""
        await self._control.stop(self._client_id)
