"""Simulated Plex players: remote-control commands with realistic delay, playback clock, record.

A player takes a command, answers at once, and the effect happens a jittered moment later
(playMedia: stopped -> buffering -> playing). Every effect is appended to `record` with the
wall-clock and monotonic instant it happened and reported to the host (the simulator), which
pushes it as a `playing` websocket notification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, field
import random
import time
from typing import Any, Final, Literal, Protocol

from .library import LEAF_TYPES, Item, Library
from .presets import ClientBehaviour

type PlayerState = Literal["stopped", "buffering", "playing", "paused"]
type StreamDecision = Literal["directplay", "copy", "transcode"]

STEP_FORWARD_MS: Final = 30_000
STEP_BACK_MS: Final = 15_000
FAST_COMMANDS: Final = frozenset(
    {
        "pause",
        "play",
        "stop",
        "seekTo",
        "skipNext",
        "skipPrevious",
        "skipTo",
        "stepForward",
        "stepBack",
        "setParameters",
        "setStreams",
        "refreshPlayQueue",
    }
)
CONTROLLABLE: Final = (
    "playPause,stop,volume,shuffle,repeat,seekTo,skipPrevious,skipNext,stepBack,stepForward"
)


@dataclass(frozen=True, slots=True)
class StateChange:
    """One effect on a player, with the instant it took effect."""

    state: str
    rating_key: str | None
    position_ms: int
    wall_time: float
    monotonic: float
    command: str


@dataclass(slots=True)
class PlayQueue:
    """A server-side play queue: (playQueueItemID, ratingKey) pairs and a selection."""

    id: int
    items: list[tuple[int, str]]
    source_uri: str
    selected_index: int = 0
    version: int = 1
    shuffled: bool = False

    def index_of(self, rating_key: str) -> int | None:
        """Position of the first entry for rating_key."""
        return next((n for n, (_, key) in enumerate(self.items) if key == rating_key), None)


class ClientHost(Protocol):
    """What a simulated player needs from the server it belongs to."""

    library: Library

    def command_delay(self, *, fast: bool, latency_ms: tuple[int, int] | None = None) -> float:
        """Seconds a command takes to take effect (jittered; `latency_ms` overrides the host's)."""
        ...

    def client_changed(self, client: SimulatedClient, change: StateChange) -> None:
        """Called after every effect."""
        ...

    def play_queue(self, queue_id: int) -> PlayQueue | None:
        """An existing play queue."""
        ...

    def create_play_queue(
        self, rating_keys: list[str], *, source_uri: str, start_key: str | None = None
    ) -> PlayQueue:
        """Create a play queue."""
        ...

    def play_queue_from_uri(self, uri: str, *, start_key: str | None = None) -> PlayQueue | None:
        """Create a play queue from a `server://...` or `library://...` uri."""
        ...

    def new_session_key(self) -> str:
        """The next session key."""
        ...


@dataclass(eq=False)
class SimulatedClient:
    """One player that shows up in `/clients` and can be remote-controlled through the server."""

    host: ClientHost = field(repr=False)
    machine_identifier: str
    name: str
    product: str = "Plex for Android (TV)"
    platform: str = "Android"
    platform_version: str = "11"
    device: str = "SHIELD Android TV"
    device_class: str = "stb"
    model: str = "mdarcy"
    vendor: str = "NVIDIA"
    version: str = "10.20.0.1234"
    profile: str = "Android"
    address: str = "192.168.1.50"
    port: int = 32500
    capabilities: str = "timeline,playback,navigation,mirror,playqueues"
    stream_decision: StreamDecision = "directplay"
    location: Literal["lan", "wan"] = "lan"
    remote_public_address: str = "198.51.100.7"
    user_id: int = 1
    user_title: str = "plexowner"
    online: bool = True
    accepts_control: bool = True
    # False: the app is open but another app has the screen; it answers every command with 200
    # and starts nothing (what a TV does with Plex in the background).
    foreground: bool = True
    # True: like Plex for Roku, a playback command acts only when its `type` names the kind of
    # media playing (video, music, photo) or is `all`; any other is answered 200 and ignored.
    needs_type: bool = False
    # (low, high) command delay in ms for this player (None: the server's); fast commands /3.
    latency_ms: tuple[int, int] | None = None
    # How a real kind of player behaves (presets.py); None: the simple model above.
    behaviour: ClientBehaviour | None = None
    state: PlayerState = "stopped"
    rating_key: str | None = None
    volume: int = 100
    muted: bool = False
    record: list[StateChange] = field(default_factory=list)
    commands: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    session_key: str | None = None
    session_id: str = ""
    session_started: float = 0.0
    play_queue: PlayQueue | None = None
    play_queue_item_id: int | None = None
    last_command_id: int = 0
    # Streams chosen with setStreams (None: the item's default audio / no subtitles).
    audio_stream_id: int | None = None
    subtitle_stream_id: int | None = None
    _position_base: int = field(default=0, repr=False)
    _position_since: float = field(default=0.0, repr=False)
    _queue: asyncio.Queue[tuple[str, dict[str, str]]] | None = field(default=None, repr=False)
    _worker: asyncio.Task[None] | None = field(default=None, repr=False)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    # ------------------------------------------------------------------ derived state

    @property
    def item(self) -> Item | None:
        """The item loaded in the player."""
        return self.host.library.get(self.rating_key) if self.rating_key else None

    @property
    def position_ms(self) -> int:
        """Playback position; advances with the monotonic clock while playing."""
        if self.state != "playing":
            return self._position_base
        elapsed = int((time.monotonic() - self._position_since) * 1000)
        position = self._position_base + elapsed
        item = self.item
        if item is not None and item.duration:
            position = min(position, item.duration)
        return position

    @property
    def is_active(self) -> bool:
        """True while there is a session (playing, paused or buffering)."""
        return self.state != "stopped" and self.rating_key is not None

    @property
    def controllable(self) -> str:
        """The `controllable` attribute of the player's timeline."""
        return CONTROLLABLE

    @property
    def transcode_key(self) -> str:
        """Key of the transcode session of the current stream."""
        return f"{self.machine_identifier[:8]}-{self.session_key or 0}"

    @property
    def bandwidth(self) -> int:
        """Session bandwidth in kbps."""
        item = self.item
        if item is None or item.media is None:
            return 0
        if self.stream_decision == "transcode":
            return 4000 if item.media.video_codec else 320
        return item.media.bitrate

    # ------------------------------------------------------------------ effects

    def _set_position(self, position: int) -> None:
        item = self.item
        if item is not None and item.duration:
            position = min(position, item.duration)
        self._position_base = max(0, position)
        self._position_since = time.monotonic()

    def _apply(
        self,
        command: str,
        *,
        state: PlayerState | None = None,
        rating_key: str | Literal[False] | None = False,
        position: int | None = None,
    ) -> StateChange:
        """Change state/item/position at this instant, record it and tell the host."""
        current = self.position_ms
        if rating_key is not False and rating_key != self.rating_key:
            self.rating_key = rating_key
            self.session_key = self.host.new_session_key() if rating_key else self.session_key
            self.session_id = f"{self.machine_identifier[:6]}{self.session_key}".ljust(24, "0")
            self.session_started = time.time()
        if state is not None:
            self.state = state
        self._set_position(position if position is not None else current)
        change = StateChange(
            state=self.state,
            rating_key=self.rating_key,
            position_ms=self._position_base,
            wall_time=time.time(),
            monotonic=time.monotonic(),
            command=command,
        )
        self.record.append(change)
        self.host.client_changed(self, change)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return change

    def _stop(self, command: str) -> StateChange:
        item = self.item
        position = self.position_ms
        change = self._apply(command, state="stopped", position=position)
        if item is not None and item.duration:
            library = self.host.library
            if position >= item.duration * 0.9:
                library.mark_watched(item.rating_key)
            elif position > 60_000:
                library.set_progress(item.rating_key, position)
        self.rating_key = None
        self.audio_stream_id = None
        self.subtitle_stream_id = None
        self.play_queue = None
        self.play_queue_item_id = None
        self._position_base = 0
        return change

    def _select(self, queue: PlayQueue, index: int) -> str:
        queue.selected_index = index
        item_id, rating_key = queue.items[index]
        self.play_queue = queue
        self.play_queue_item_id = item_id
        return rating_key

    def _sibling(self, step: int) -> str | None:
        queue = self.play_queue
        if queue is not None:
            index = queue.selected_index + step
            if 0 <= index < len(queue.items):
                return self._select(queue, index)
            return None
        item = self.item
        if item is None or item.parent is None:
            return None
        siblings = item.parent.children
        index = siblings.index(item) + step
        return siblings[index].rating_key if 0 <= index < len(siblings) else None

    def advance_if_finished(self) -> None:
        """Called periodically: when the item ends, play the next queue entry or stop."""
        item = self.item
        if self.state != "playing" or item is None or not item.duration:
            return
        if self.position_ms < item.duration:
            return
        self.host.library.mark_watched(item.rating_key)
        next_key = self._sibling(1) if self.play_queue is not None else None
        if next_key is None:
            self._stop("ended")
            return
        self._apply("ended", state="playing", rating_key=next_key, position=0)

    # ------------------------------------------------------------------ commands

    def submit(self, command: str, params: Mapping[str, str]) -> None:
        """Accept a remote-control command (answered at once, effective later, in order)."""
        command_id = params.get("commandID", "")
        if command_id.isdigit():
            self.last_command_id = int(command_id)
        self.commands.append((command, dict(params)))
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name=f"plex-sim client {self.name}"
            )
        self._queue.put_nowait((command, dict(params)))

    async def close(self) -> None:
        """Stop the command worker."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            command, params = await self._queue.get()
            await self._execute(command, params)

    async def _execute(self, command: str, params: dict[str, str]) -> None:
        if self.behaviour is not None:
            delay = self.behaviour.command_delay(command, self._rng)
        else:
            delay = self.host.command_delay(
                fast=command in FAST_COMMANDS, latency_ms=self.latency_ms
            )
        if command in ("playMedia", "createPlayQueue"):
            await self._start_from_command(command, params, delay)
            return
        await asyncio.sleep(delay)
        if self.needs_type and params.get("type") not in ("all", self._media_kind()):
            return
        handler = _COMMANDS.get(command)
        if handler is not None:
            handler(self, params)

    def _media_kind(self) -> str:
        item = self.item
        item_type = item.type if item is not None else ""
        return {"track": "music", "photo": "photo"}.get(item_type, "video")

    async def _start_from_command(self, command: str, params: dict[str, str], delay: float) -> None:
        key = params.get("key", "")
        rating_key = key.rsplit("/", 1)[-1] if key else None
        queue: PlayQueue | None = None
        container_key = params.get("containerKey", "")
        if container_key.startswith("/playQueues/"):
            queue_id = container_key[len("/playQueues/") :].split("?", 1)[0]
            queue = self.host.play_queue(int(queue_id)) if queue_id.isdigit() else None
        elif params.get("uri"):
            queue = self.host.play_queue_from_uri(params["uri"], start_key=key or None)
        if rating_key is None and queue is not None and queue.items:
            rating_key = queue.items[queue.selected_index][1]
        item = self.host.library.get(rating_key) if rating_key is not None else None
        if item is None or item.type not in LEAF_TYPES or not self.foreground:
            # A real player shows an error (a show, an album or a playlist is not something it
            # can play; an unknown item) and stays where it was; in the background it does nothing.
            return
        assert rating_key is not None
        if queue is None or queue.index_of(rating_key) is None:
            queue = self.host.create_play_queue(
                [rating_key], source_uri=f"library://x/item/%2Flibrary%2Fmetadata%2F{rating_key}"
            )
        index = queue.index_of(rating_key)
        assert index is not None
        offset = int(params.get("offset") or 0)
        await asyncio.sleep(delay * 0.4)
        if self.is_active and self.rating_key != rating_key:
            self._stop(command)
        self._select(queue, index)
        self._apply(command, state="buffering", rating_key=rating_key, position=offset)
        await asyncio.sleep(delay * 0.6)
        if self.rating_key == rating_key and self.state == "buffering":
            self._apply(command, state="playing")

    def _cmd_pause(self, params: Mapping[str, str]) -> None:
        if self.state in ("playing", "buffering"):
            self._apply("pause", state="paused")

    def _cmd_play(self, params: Mapping[str, str]) -> None:
        if self.state in ("paused", "buffering") and self.rating_key:
            self._apply("play", state="playing")

    def _cmd_stop(self, params: Mapping[str, str]) -> None:
        if self.is_active:
            self._stop("stop")

    def _cmd_seek(self, params: Mapping[str, str]) -> None:
        if self.is_active:
            self._apply("seekTo", position=int(params.get("offset") or 0))

    def _cmd_step(self, command: str, delta: int) -> None:
        if self.is_active:
            self._apply(command, position=self.position_ms + delta)

    def _cmd_skip(self, command: str, step: int) -> None:
        if not self.is_active:
            return
        if step < 0 and self.position_ms > 5_000:
            self._apply(command, position=0)  # like real players: first back to the start
            return
        next_key = self._sibling(step)
        if next_key is None:
            if step > 0:
                self._stop(command)
            return
        self._apply(command, state="playing", rating_key=next_key, position=0)

    def _cmd_skip_to(self, params: Mapping[str, str]) -> None:
        key = params.get("key", "").rsplit("/", 1)[-1]
        queue = self.play_queue
        if not self.is_active or queue is None:
            return
        index = queue.index_of(key)
        if index is not None:
            self._apply(
                "skipTo", state="playing", rating_key=self._select(queue, index), position=0
            )

    def _cmd_set_parameters(self, params: Mapping[str, str]) -> None:
        volume = params.get("volume")
        if volume is not None and volume.lstrip("-").isdigit():
            self.volume = max(0, min(100, int(volume)))
            self.muted = self.volume == 0
            self._apply("setParameters")

    def _cmd_set_streams(self, params: Mapping[str, str]) -> None:
        """Switch the audio track or the subtitles (`subtitleStreamID=0`: none)."""
        audio = params.get("audioStreamID", "")
        subtitles = params.get("subtitleStreamID", "")
        if audio.isdigit():
            self.audio_stream_id = int(audio)
        if subtitles.isdigit():
            self.subtitle_stream_id = int(subtitles) or None

    # ------------------------------------------------------------------ local (on the device)

    async def local_start(self, rating_key: str | int, offset_ms: int = 0) -> StateChange:
        """Someone starts an item on the device itself (takes effect immediately)."""
        key = str(rating_key)
        if key not in self.host.library:
            raise KeyError(f"no item {key}")
        if self.is_active and self.rating_key != key:
            self._stop("local_stop")
        queue = self.host.create_play_queue(
            [key], source_uri=f"library://x/item/%2Flibrary%2Fmetadata%2F{key}"
        )
        self._select(queue, 0)
        return self._apply("local_start", state="playing", rating_key=key, position=offset_ms)

    async def local_pause(self) -> StateChange | None:
        """The pause button on the remote."""
        if self.state not in ("playing", "buffering"):
            return None
        return self._apply("local_pause", state="paused")

    async def local_play(self) -> StateChange | None:
        """The play button on the remote (resumes a paused item)."""
        if self.state != "paused":
            return None
        return self._apply("local_play", state="playing")

    async def local_seek(self, offset_ms: int) -> StateChange | None:
        """Seek on the device."""
        if not self.is_active:
            return None
        return self._apply("local_seek", position=offset_ms)

    async def local_stall(self, seconds: float) -> StateChange | None:
        """The player stalls while playing (network hiccup): buffering, then playing again.

        The position does not advance while it buffers, so afterwards it is `seconds` behind.
        """
        if self.state != "playing":
            return None
        self._apply("stall", state="buffering")
        await asyncio.sleep(seconds)
        state: str = self.state  # a command may have changed it meanwhile
        if state != "buffering":
            return None
        return self._apply("stall", state="playing")

    async def local_stop(self) -> StateChange | None:
        """Stop on the device."""
        if not self.is_active:
            return None
        return self._stop("local_stop")

    # ------------------------------------------------------------------ waiting (tests)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until predicate() holds after some effect (TimeoutError after timeout)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    async def wait_for_state(
        self, state: str, timeout: float = 5.0, *, rating_key: str | int | None = None
    ) -> StateChange:
        """Wait until the player is in state (and on rating_key); return the latest record."""

        def reached() -> bool:
            return self.state == state and (
                rating_key is None or self.rating_key == str(rating_key)
            )

        await self.wait_for(reached, timeout)
        if self.record and self.record[-1].state == state:
            return self.record[-1]
        return StateChange(
            state=self.state,
            rating_key=self.rating_key,
            position_ms=self.position_ms,
            wall_time=time.time(),
            monotonic=time.monotonic(),
            command="",
        )

    async def wait_for_change(self, timeout: float = 5.0) -> StateChange:
        """Wait for the next effect and return it."""
        count = len(self.record)
        await self.wait_for(lambda: len(self.record) > count, timeout)
        return self.record[-1]

    # ------------------------------------------------------------------ notifications

    @property
    def reported_position_ms(self) -> int:
        """The position as the player reports it (its behaviour's granularity)."""
        position = self.position_ms
        return position if self.behaviour is None else self.behaviour.reported_position(position)

    def notification(self) -> dict[str, Any]:
        """The `playing` websocket notification for the current state."""
        rating_key = self.rating_key or (self.record[-1].rating_key if self.record else "") or ""
        entry: dict[str, Any] = {
            "sessionKey": self.session_key or "",
            "clientIdentifier": self.machine_identifier,
            "guid": "",
            "ratingKey": rating_key,
            "url": "",
            "key": f"/library/metadata/{rating_key}",
            "viewOffset": self.reported_position_ms,
            "playQueueItemID": self.play_queue_item_id or 0,
            "playQueueID": self.play_queue.id if self.play_queue else 0,
            "state": self.state,
        }
        if self.stream_decision != "directplay" and self.state != "stopped":
            entry["transcodeSession"] = self.transcode_key
        return {
            "NotificationContainer": {
                "type": "playing",
                "size": 1,
                "PlaySessionStateNotification": [entry],
            }
        }

    def transcode_notification(self) -> dict[str, Any]:
        """The `transcodeSession.update` notification PMS sends while the stream transcodes."""
        item = self.item
        duration = item.duration if item is not None and item.duration else 0
        return {
            "NotificationContainer": {
                "type": "transcodeSession.update",
                "size": 1,
                "TranscodeSession": [
                    {
                        "key": f"/transcode/sessions/{self.transcode_key}",
                        "throttled": False,
                        "complete": False,
                        "progress": round(100 * self.position_ms / duration, 1) if duration else 0,
                        "speed": 1.5,
                        "duration": duration,
                        "context": "streaming",
                        "videoDecision": "transcode"
                        if self.stream_decision == "transcode"
                        else "copy",
                        "audioDecision": "copy",
                        "protocol": "dash",
                    }
                ],
            }
        }


_COMMANDS: Final[dict[str, Callable[[SimulatedClient, Mapping[str, str]], None]]] = {
    "pause": SimulatedClient._cmd_pause,
    "play": SimulatedClient._cmd_play,
    "stop": SimulatedClient._cmd_stop,
    "seekTo": SimulatedClient._cmd_seek,
    "stepForward": lambda c, p: c._cmd_step("stepForward", STEP_FORWARD_MS),
    "stepBack": lambda c, p: c._cmd_step("stepBack", -STEP_BACK_MS),
    "skipNext": lambda c, p: c._cmd_skip("skipNext", 1),
    "skipPrevious": lambda c, p: c._cmd_skip("skipPrevious", -1),
    "skipTo": SimulatedClient._cmd_skip_to,
    "setParameters": SimulatedClient._cmd_set_parameters,
    "setStreams": SimulatedClient._cmd_set_streams,
}
