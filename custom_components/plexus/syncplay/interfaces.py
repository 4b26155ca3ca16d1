"""What the sync-play engine needs from its host: a clock, a transport and local players."""

from collections.abc import Callable
from dataclasses import dataclass
import time
from typing import Any, Literal, Protocol

type PlayerStateName = Literal["stopped", "buffering", "playing", "paused"]
type MessageCallback = Callable[[str, bytes], None]
type Unsubscribe = Callable[[], None]
type EventCallback = Callable[[str, dict[str, Any]], None]


class Clock(Protocol):
    """Wall clock (may disagree with other homes by seconds) and a monotonic clock."""

    def now(self) -> float:
        """Wall-clock seconds (epoch)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (the same clock asyncio's loop uses)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> float:
        """`time.time()`."""
        return time.time()

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()


class Transport(Protocol):
    """A publish/subscribe transport (HA's MQTT integration, an MQTT client, a local bus)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message."""
        ...

    async def subscribe(self, topic_filter: str, callback: MessageCallback) -> Unsubscribe:
        """Call `callback(topic, payload)` in the event loop for every matching message."""
        ...


@dataclass(frozen=True, slots=True)
class MediaRef:
    """What to play, in a form every home can resolve on its own server."""

    rating_key: str
    item_type: str = "movie"
    guid: str | None = None
    title: str | None = None
    year: int | None = None
    # The server `rating_key` belongs to (its machine identifier; None: unknown).
    server: str | None = None
    # External ids (imdb://, tmdb://, tvdb://) for homes whose server uses other agents.
    guids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "rating_key": self.rating_key,
            "item_type": self.item_type,
            "guid": self.guid,
            "title": self.title,
            "year": self.year,
            "server": self.server,
            "guids": list(self.guids),
        }

    @classmethod
    def from_dict(cls, data: Any) -> MediaRef:
        """Parse the JSON form (ValueError when it is not one)."""
        if not isinstance(data, dict) or not isinstance(data.get("rating_key"), str):
            raise ValueError("not a media reference")  # noqa: TRY004
        year = data.get("year")
        guids = data.get("guids")
        return cls(
            rating_key=data["rating_key"],
            item_type=str(data.get("item_type") or "movie"),
            guid=data["guid"] if isinstance(data.get("guid"), str) else None,
            title=data["title"] if isinstance(data.get("title"), str) else None,
            year=year if isinstance(year, int) else None,
            server=data["server"] if isinstance(data.get("server"), str) else None,
            guids=tuple(g for g in guids if isinstance(g, str))[:16]
            if isinstance(guids, list)
            else (),
        )


@dataclass(frozen=True, slots=True)
class PlayerSnapshot:
    """A player's state as last reported, at a monotonic instant."""

    state: PlayerStateName
    media_key: str | None
    position_ms: float
    at: float

    def position_at(self, monotonic: float) -> float:
        """Projected position at a monotonic instant."""
        if self.state != "playing":
            return self.position_ms
        return self.position_ms + (monotonic - self.at) * 1000.0


type SnapshotCallback = Callable[[PlayerSnapshot], None]


class MemberPlayer(Protocol):
    """One local player taking part in a group: commands plus its reported state."""

    @property
    def player_id(self) -> str:
        """Stable id (the Plex client identifier)."""
        ...

    @property
    def name(self) -> str:
        """Display name."""
        ...

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Client capabilities (e.g. "playback", "timeline")."""
        ...

    @property
    def snapshot(self) -> PlayerSnapshot:
        """Last reported state and position."""
        ...

    def add_listener(self, callback: SnapshotCallback) -> Unsubscribe:
        """Call `callback` with every new snapshot (state change or position report)."""
        ...

    async def play_media(self, media: MediaRef, media_key: str, offset_ms: int) -> None:
        """Load and start `media_key` (this server's key for `media`) at an offset."""
        ...

    async def seek(self, position_ms: int) -> None:
        """Seek."""
        ...

    async def pause(self) -> None:
        """Pause."""
        ...

    async def play(self) -> None:
        """Play / resume."""
        ...

    async def stop(self) -> None:
        """Stop."""
        ...
