"""The sync-play engine: membership, clock sync, scheduled commands and drift control.

Every instance (home) of a group runs one engine. Commands are led by whoever starts them: the
leader announces an instant on its own wall clock, every instance converts it to its own
monotonic clock through its NTP-style offset estimate, and sends each local player's command
early by that player's measured command latency. Each instance keeps its own players on the
group's timeline (an anchor: position P at instant T, advancing while playing).
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field, replace
from functools import partial
import itertools
import logging
import math
from typing import Any, Final, Literal

from .clock import MAX_SAMPLES, ClockSample, OffsetEstimator
from .interfaces import (
    Clock,
    EventCallback,
    MediaRef,
    MemberPlayer,
    PlayerSnapshot,
    Transport,
    Unsubscribe,
)
from .latency import LatencyTracker
from .protocol import Message, MessageCodec

_LOGGER = logging.getLogger(__name__)

type GroupStateName = Literal["idle", "preparing", "playing", "paused", "waiting"]
type MediaResolver = Callable[[MediaRef], Awaitable[str | None]]
type MediaDescriber = Callable[[str], Awaitable[MediaRef]]
type _Action = Callable[[], Coroutine[Any, Any, None]]

PAUSED_TOLERANCE_MS: Final = 60.0
REMOTE_SEEK_MS: Final = 2500.0
SEEK_MATCH_MS: Final = 20.0
SEEK_NEAR_MS: Final = 250.0
CALIBRATION_STEP_MS: Final = 1000.0
LATE_S: Final = 0.02
EXPECT_MAX_S: Final = 3.0
REFINE_S: Final = 2.0
SPIN_S: Final = 0.003
CLOCK_SPACING_S: Final = 0.02
CLOCK_FILL_RATE: Final = 4
LOAD_ATTEMPTS: Final = 2


class SyncError(Exception):
    """A sync-play command cannot be carried out."""


class NothingPlayingError(SyncError):
    """No local member plays anything to follow."""


class NotRunningError(SyncError):
    """The engine is not started."""


@dataclass(slots=True)
class SyncConfig:
    """Settings of one group on one instance."""

    group: str
    secret: str
    instance_id: str
    home: str
    base_topic: str = ""
    drift_threshold_ms: float = 400.0
    drift_check_interval_s: float = 1.5
    status_interval_s: float = 1.5
    heartbeat_s: float = 5.0
    expire_after_s: float = 15.0
    ready_timeout_s: float = 10.0
    min_start_lead_s: float = 0.5
    start_margin_s: float = 0.15
    wait_for_buffering: bool = True
    follow: bool = False
    clock_samples: int = 16
    clock_sample_interval_s: float = 1.0
    clock_jump_s: float = 0.5
    replay_window_s: float = 30.0
    default_latency_s: float = 0.2
    command_timeout_s: float = 8.0
    calibration_rounds: int = 2

    def __post_init__(self) -> None:
        """Default topic `plexus/sync/<group>`."""
        if not self.base_topic:
            self.base_topic = f"plexus/sync/{self.group}"
        self.base_topic = self.base_topic.rstrip("/")


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member as the HA entities show it."""

    member_id: str
    player_id: str
    name: str
    home: str
    instance_id: str
    local: bool
    state: str
    capabilities: tuple[str, ...]
    latency_ms: float | None
    clock_offset_ms: float | None
    drift_ms: float | None


@dataclass(frozen=True, slots=True)
class GroupState:
    """Group state for entities and diagnostics."""

    state: GroupStateName
    media: MediaRef | None
    position_ms: float | None
    leader: str | None
    members: tuple[MemberInfo, ...]
    largest_drift_ms: float | None
    in_sync: bool
    clock_offset_ms: float | None
    instance_id: str
    homes: int
    dropped: dict[str, int]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: its id and the members that failed (the others went on)."""

    command_id: str
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Session:
    """The group's timeline: position `position_ms` at local monotonic `at`."""

    gen: int
    cid: str
    leader: str
    media: MediaRef | None
    state: GroupStateName
    position_ms: float
    at: float

    def position_at(self, monotonic: float) -> float:
        if self.state != "playing":
            return self.position_ms
        return self.position_ms + (monotonic - self.at) * 1000.0


@dataclass(slots=True)
class _Expect:
    """A command sent to a member whose effect is not seen yet.

    `anchor_ms` is the position the player is at when the effect happens (the paused position
    for a play, the target for a seek): a later report of it playing at position P received at
    instant T then shows when the effect happened, T - (P - anchor), however late it reported.
    """

    kind: str
    sent: float
    predicate: Callable[[PlayerSnapshot], bool]
    anchor_ms: float | None = None


@dataclass(slots=True)
class _Refine:
    """A recorded latency sample that later position reports may lower (see `_Expect`)."""

    token: int
    sent: float
    anchor_ms: float
    media_key: str | None
    latency: float


@dataclass(slots=True)
class _LocalMember:
    player: MemberPlayer
    latency: LatencyTracker
    unsubscribe: Unsubscribe | None = None
    busy: int = 0
    settle_until: float = 0.0
    ready_cid: str | None = None
    drift_ms: float | None = None
    last_check: float = 0.0
    expect: _Expect | None = None
    refine: _Refine | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    media_key: str | None = None
    waiting: bool = False


@dataclass(slots=True)
class _Peer:
    instance_id: str
    home: str
    last_seen: float
    epoch: int
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock: OffsetEstimator = field(default_factory=OffsetEstimator)
    synced: asyncio.Event = field(default_factory=asyncio.Event)


class SyncEngine:
    """One instance's engine for one sync group."""

    def __init__(
        self,
        config: SyncConfig,
        clock: Clock,
        transport: Transport,
        *,
        on_event: EventCallback | None = None,
        on_update: Callable[[], None] | None = None,
        resolve_media: MediaResolver | None = None,
        describe_media: MediaDescriber | None = None,
    ) -> None:
        """Prepare the engine; `start()` joins the group.

        `resolve_media` finds another home's item on this server (its key, or None);
        `describe_media` turns a local key into what other homes need to find it (GUIDs, title).
        """
        self.config = config
        self._clock = clock
        self._transport = transport
        self._on_event = on_event
        self._on_update = on_update
        self._resolve_media = resolve_media
        self._describe_media = describe_media
        self.codec = MessageCodec(
            config.group,
            config.secret,
            config.instance_id,
            clock,
            window_s=config.replay_window_s,
        )
        self._members: dict[str, _LocalMember] = {}
        self._peers: dict[str, _Peer] = {}
        self._session: _Session | None = None
        self._gen = 0
        self._last: tuple[int, str, str] = (0, "", "")
        self._cids = itertools.count(1)
        self._epoch = 0
        self._ready: dict[str, dict[str, dict[str, Any]]] = {}
        self._ready_changed = asyncio.Event()
        self._time_waiters: dict[float, asyncio.Future[ClockSample]] = {}
        self._unsubscribe: list[Unsubscribe] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wall_minus_mono = 0.0
        self._running = False

    # ------------------------------------------------------------------ public API

    @property
    def instance_id(self) -> str:
        """The id of this instance."""
        return self.config.instance_id

    @property
    def running(self) -> bool:
        """True between start() and shutdown()."""
        return self._running

    def add_member(self, player: MemberPlayer) -> None:
        """Make a local player a member of the group."""
        if player.player_id in self._members:
            return
        member = _LocalMember(player, LatencyTracker(self.config.default_latency_s))
        member.unsubscribe = player.add_listener(
            lambda snapshot: self._member_changed(member, snapshot)
        )
        self._members[player.player_id] = member
        if self._running:
            self._spawn(self._send_hello())
        self._event("member_joined", self._member_event(member))
        self._update()

    def remove_member(self, player_id: str) -> None:
        """Take a local player out of the group."""
        member = self._members.pop(player_id, None)
        if member is None:
            return
        if member.unsubscribe:
            member.unsubscribe()
        if member.task:
            member.task.cancel()
        if self._running:
            self._spawn(self._send_hello())
        self._event("member_left", self._member_event(member))
        self._update()

    async def start(self) -> None:
        """Subscribe, announce this instance and start the background loops."""
        if self._running:
            return
        self._running = True
        self._wall_minus_mono = self._clock.now() - self._clock.monotonic()
        base = self.config.base_topic
        self._unsubscribe.append(await self._transport.subscribe(f"{base}/all", self._receive))
        self._unsubscribe.append(
            await self._transport.subscribe(f"{base}/to/{self.instance_id}", self._receive)
        )
        await self._send_hello()
        for loop in (self._heartbeat_loop, self._status_loop, self._drift_loop, self._clock_loop):
            self._spawn(loop())
        self._update()

    async def shutdown(self) -> None:
        """Say goodbye, unsubscribe and stop every task (players are left as they are)."""
        if not self._running:
            return
        self._running = False
        with contextlib.suppress(Exception):
            await self._publish("bye", {})
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for member in self._members.values():
            if member.unsubscribe:
                member.unsubscribe()
                member.unsubscribe = None
        self._update()

    async def reconnected(self) -> None:
        """Tell the engine its transport reconnected: announce again and resync clocks."""
        if self._running:
            await self._send_hello()
            for peer in list(self._peers.values()):
                self._spawn(self._sync_clock(peer.instance_id, self.config.clock_samples // 2))

    async def play(
        self, media: MediaRef | None = None, position_ms: float | None = None
    ) -> CommandResult:
        """Two-phase start of `media` at `position_ms` on every member, this instance leading.

        Default: what a local member plays now, from its position.
        """
        self._check_running()
        if media is None:
            media, current = self._current_local_media()
            if self._describe_media is not None:
                media = await self._describe_media(media.rating_key)
            if position_ms is None:
                position_ms = current
        position = max(0.0, position_ms or 0.0)
        cid, gen = self._new_command()
        expected = {self.instance_id} | {p.instance_id for p in self._peers.values() if p.members}
        self._ready[cid] = {}
        body = {"cid": cid, "gen": gen, "media": media.as_dict(), "position_ms": position}
        await self._broadcast("prepare", body)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.ready_timeout_s):
                while not expected <= set(self._ready[cid]):
                    self._ready_changed.clear()
                    await self._ready_changed.wait()
        ready = self._ready.pop(cid, {})
        failed: dict[str, str] = {}
        latencies = [self._max_local_latency()]
        for report in ready.values():
            for member_id, item in report.items():
                if not isinstance(item, dict) or not item.get("ok"):
                    failed[member_id] = str(item.get("error") if isinstance(item, dict) else "")
                elif (latency := _number(item.get("latency_ms"))) is not None:
                    latencies.append(latency / 1000.0)
        for instance in expected - set(ready):
            peer = self._peers.get(instance)
            for member_id in peer.members if peer else ():
                failed.setdefault(member_id, "not ready in time")
        at = self._clock.now() + self._start_lead(max(latencies))
        await self._broadcast(
            "start",
            {
                "cid": cid,
                "gen": gen,
                "at": at,
                "position_ms": position,
                "resume": False,
                "media": media.as_dict(),
            },
        )
        return CommandResult(cid, failed)

    async def pause(self) -> CommandResult:
        """Pause every member at one instant."""
        return await self._timed_command("pause", {})

    async def resume(self) -> CommandResult:
        """Resume every member at one instant, from the group's paused position."""
        session = self._require_session()
        return await self._timed_command(
            "start",
            {
                "position_ms": session.position_ms,
                "resume": True,
                "media": session.media.as_dict() if session.media else None,
            },
        )

    async def seek(self, position_ms: float) -> CommandResult:
        """Move every member to a position at one instant."""
        self._require_session()
        return await self._timed_command("seek", {"position_ms": max(0.0, position_ms)})

    async def stop(self) -> CommandResult:
        """Stop every member at one instant."""
        return await self._timed_command("stop", {})

    @property
    def state(self) -> GroupState:
        """The group as this instance sees it."""
        now = self._clock.monotonic()
        session = self._session
        members: list[MemberInfo] = []
        for member in self._members.values():
            player = member.player
            members.append(
                MemberInfo(
                    member_id=self._member_id(player.player_id),
                    player_id=player.player_id,
                    name=player.name,
                    home=self.config.home,
                    instance_id=self.instance_id,
                    local=True,
                    state=player.snapshot.state,
                    capabilities=player.capabilities,
                    latency_ms=round(member.latency.estimate("play") * 1000.0, 1),
                    clock_offset_ms=0.0,
                    drift_ms=member.drift_ms,
                )
            )
        for peer in self._peers.values():
            offset = peer.clock.offset
            for member_id, item in peer.members.items():
                members.append(
                    MemberInfo(
                        member_id=member_id,
                        player_id=str(item.get("player_id", "")),
                        name=str(item.get("name", "")),
                        home=peer.home,
                        instance_id=peer.instance_id,
                        local=False,
                        state=str(item.get("state", "stopped")),
                        capabilities=tuple(item.get("capabilities") or ()),
                        latency_ms=_number(item.get("latency_ms")),
                        clock_offset_ms=None if offset is None else round(offset * 1000.0, 1),
                        drift_ms=_number(item.get("drift_ms")),
                    )
                )
        drifts = [abs(m.drift_ms) for m in members if m.drift_ms is not None]
        largest = max(drifts) if drifts else None
        return GroupState(
            state=session.state if session else "idle",
            media=session.media if session else None,
            position_ms=round(session.position_at(now), 1) if session else None,
            leader=session.leader if session else None,
            members=tuple(members),
            largest_drift_ms=largest,
            in_sync=session is not None
            and session.state in ("playing", "paused")
            and (largest is None or largest <= self.config.drift_threshold_ms),
            clock_offset_ms=self._reference_offset_ms(),
            instance_id=self.instance_id,
            homes=1 + len(self._peers),
            dropped=dict(self.codec.dropped),
        )

    def clock_offset(self, instance_id: str) -> float | None:
        """Estimated clock offset of another instance (its clock minus ours), seconds."""
        if instance_id == self.instance_id:
            return 0.0
        peer = self._peers.get(instance_id)
        return peer.clock.offset if peer else None

    def latency(self, player_id: str, kind: str | None = None) -> float:
        """Measured command latency of a local member (of one command kind), seconds."""
        return self._members[player_id].latency.estimate(kind)

    # ------------------------------------------------------------------ sending

    async def _publish(self, kind: str, body: dict[str, Any], to: str | None = None) -> None:
        topic = f"{self.config.base_topic}/to/{to}" if to else f"{self.config.base_topic}/all"
        try:
            await self._transport.publish(topic, self.codec.encode(kind, body, to=to))
        except Exception as err:  # noqa: BLE001 - any transport failure: heartbeats recover
            _LOGGER.debug("Sync group %s: publish failed: %s", self.config.group, err)

    async def _broadcast(self, kind: str, body: dict[str, Any]) -> None:
        """Publish a command and act on it here too."""
        await self._publish(kind, body)
        self._handle(
            Message(self.config.group, self.instance_id, 0, self._clock.now(), kind, body),
            self._clock.now(),
        )

    async def _send_hello(self) -> None:
        body: dict[str, Any] = {
            "home": self.config.home,
            "epoch": self._epoch,
            "members": self._member_reports(full=True),
        }
        session = self._session
        if session is not None:
            now_mono = self._clock.monotonic()
            body["session"] = {
                "gen": session.gen,
                "cid": session.cid,
                "leader": session.leader,
                "media": session.media.as_dict() if session.media else None,
                "state": session.state,
                "position_ms": session.position_at(now_mono),
                "at": self._clock.now(),
            }
        await self._publish("hello", body)

    def _member_reports(self, *, full: bool) -> dict[str, dict[str, Any]]:
        reports: dict[str, dict[str, Any]] = {}
        for member in self._members.values():
            player = member.player
            report: dict[str, Any] = {
                "state": player.snapshot.state,
                "latency_ms": round(member.latency.estimate("play") * 1000.0, 1),
                "drift_ms": None if member.drift_ms is None else round(member.drift_ms, 1),
            }
            if full:
                report |= {
                    "player_id": player.player_id,
                    "name": player.name,
                    "capabilities": list(player.capabilities),
                }
            reports[self._member_id(player.player_id)] = report
        return reports

    # ------------------------------------------------------------------ receiving

    def _receive(self, topic: str, payload: bytes) -> None:
        received = self._clock.now()
        if not self._running:
            return
        message = self.codec.decode(payload, self.clock_offset)
        if message is None:
            return
        if message.to is not None and message.to != self.instance_id:
            return
        self._handle(message, received)

    def _handle(self, message: Message, received: float) -> None:
        peer = self._peers.get(message.sender)
        if peer is not None:
            peer.last_seen = self._clock.monotonic()
        body = message.body
        try:
            match message.type:
                case "hello":
                    self._on_hello(message)
                case "bye":
                    self._drop_peer(message.sender)
                case "time_req":
                    t0 = float(body["t0"])
                    self._spawn(self._on_time_request(message.sender, t0, received))
                case "time_resp":
                    self._on_time_response(message, received)
                case "status":
                    self._on_status(message)
                case "ready":
                    self._ready.get(str(body.get("cid")), {})[message.sender] = dict(
                        body.get("members") or {}
                    )
                    self._ready_changed.set()
                case "prepare" | "start" | "pause" | "seek" | "stop":
                    _check_command(message)
                    self._spawn(self._on_command(message))
                case _:
                    pass
        except (KeyError, TypeError, ValueError) as err:
            self.codec.dropped["malformed"] += 1
            _LOGGER.debug("Sync group %s: bad %s body (%s)", self.config.group, message.type, err)

    def _on_hello(self, message: Message) -> None:
        body = message.body
        peer = self._peers.get(message.sender)
        epoch = int(body.get("epoch", 0))
        if peer is None:
            peer = _Peer(message.sender, str(body.get("home", "")), self._clock.monotonic(), epoch)
            self._peers[message.sender] = peer
            self._spawn(self._send_hello())
            self._spawn(self._sync_clock(peer.instance_id, self.config.clock_samples))
        elif epoch != peer.epoch:
            peer.epoch = epoch
            peer.clock.clear()
            peer.synced.clear()
            self._spawn(self._sync_clock(peer.instance_id, self.config.clock_samples))
        peer.home = str(body.get("home", peer.home))
        members = body.get("members")
        if isinstance(members, dict):
            for member_id in set(peer.members) - set(members):
                self._event("member_left", {"member_id": member_id, "home": peer.home})
            for member_id in members:
                if member_id not in peer.members:
                    self._event("member_joined", {"member_id": member_id, "home": peer.home})
            peer.members = {k: dict(v) for k, v in members.items() if isinstance(v, dict)}
        session = body.get("session")
        if isinstance(session, dict):
            _check_session(session)
            self._spawn(self._adopt_session(message.sender, session))
        self._update()

    def _on_status(self, message: Message) -> None:
        peer = self._peers.get(message.sender)
        members = message.body.get("members")
        if peer is None or not isinstance(members, dict):
            return
        for member_id, item in members.items():
            if member_id in peer.members and isinstance(item, dict):
                peer.members[member_id].update(item)
        self._update()

    def _drop_peer(self, instance_id: str) -> None:
        peer = self._peers.pop(instance_id, None)
        if peer is None:
            return
        for member_id in peer.members:
            self._event("member_left", {"member_id": member_id, "home": peer.home})
        self._update()

    # ------------------------------------------------------------------ clock sync

    async def _on_time_request(self, sender: str, t0: float, received: float) -> None:
        body = {"t0": t0, "t1": received, "t2": self._clock.now()}
        await self._publish("time_resp", body, to=sender)

    def _on_time_response(self, message: Message, received: float) -> None:
        t0 = float(message.body["t0"])
        waiter = self._time_waiters.pop(t0, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(
                ClockSample(t0, float(message.body["t1"]), float(message.body["t2"]), received)
            )

    async def _sync_clock(self, instance_id: str, samples: int) -> None:
        """Take `samples` four-timestamp samples against a peer.

        The requests go out `CLOCK_SPACING_S` apart without waiting for the answers, so a burst
        is done in about one round trip (each answer is matched by its `t0`).
        """
        exchanges: list[asyncio.Task[None]] = []
        for n in range(samples):
            if n:
                await asyncio.sleep(CLOCK_SPACING_S)
            if instance_id not in self._peers or not self._running:
                break
            exchanges.append(self._spawn(self._clock_sample(instance_id)))
        await asyncio.gather(*exchanges, return_exceptions=True)

    async def _clock_sample(self, instance_id: str) -> None:
        """One four-timestamp exchange with a peer (nothing when it is not answered in 1 s)."""
        t0 = self._clock.now()
        while t0 in self._time_waiters:
            t0 = math.nextafter(t0, math.inf)
        waiter: asyncio.Future[ClockSample] = asyncio.get_running_loop().create_future()
        self._time_waiters[t0] = waiter
        await self._publish("time_req", {"t0": t0}, to=instance_id)
        try:
            async with asyncio.timeout(1.0):
                sample = await waiter
        except TimeoutError:
            return
        finally:
            self._time_waiters.pop(t0, None)
        peer = self._peers.get(instance_id)
        if peer is None:
            return
        peer.clock.add(sample)
        if not peer.synced.is_set():
            peer.synced.set()
            self._update()

    async def _offset_of(self, instance_id: str) -> float:
        """Offset to an instance, syncing first when nothing is known yet."""
        if instance_id == self.instance_id:
            return 0.0
        peer = self._peers.get(instance_id)
        if peer is None:
            return 0.0
        if peer.clock.offset is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):
                    await peer.synced.wait()
        return peer.clock.offset or 0.0

    async def _to_monotonic(self, instance_id: str, wall: float) -> float:
        """An instant on `instance_id`'s wall clock as our monotonic time."""
        offset = await self._offset_of(instance_id)
        return wall - offset - self._clock.now() + self._clock.monotonic()

    def _check_clock_jump(self) -> None:
        wall_minus_mono = self._clock.now() - self._clock.monotonic()
        if abs(wall_minus_mono - self._wall_minus_mono) > self.config.clock_jump_s:
            _LOGGER.info("Sync group %s: the wall clock jumped; resyncing", self.config.group)
            self._epoch += 1
            self._event("clock_jump", {"jump_s": wall_minus_mono - self._wall_minus_mono})
            for peer in self._peers.values():
                peer.clock.clear()
                peer.synced.clear()
                self._spawn(self._sync_clock(peer.instance_id, self.config.clock_samples))
            self._spawn(self._send_hello())
        self._wall_minus_mono = wall_minus_mono

    def _reference_offset_ms(self) -> float | None:
        """Our clock minus the reference (the leader, else the lowest instance id), ms."""
        session = self._session
        reference = session.leader if session else min([self.instance_id, *self._peers])
        offset = self.clock_offset(reference)
        return None if offset is None else round(-offset * 1000.0, 1)

    # ------------------------------------------------------------------ commands

    def _new_command(self) -> tuple[str, int]:
        self._gen += 1
        return f"{self.instance_id}:{next(self._cids)}", self._gen

    async def _timed_command(self, kind: str, extra: dict[str, Any]) -> CommandResult:
        self._check_running()
        cid, gen = self._new_command()
        at = self._clock.now() + self._start_lead(self._max_known_latency())
        body = {"cid": cid, "gen": gen, "at": at, **extra}
        if kind == "pause" and self._session is not None:
            session = self._session
            body["position_ms"] = session.position_at(
                at - self._clock.now() + self._clock.monotonic()
            )
        await self._broadcast(kind, body)
        return CommandResult(cid)

    def _start_lead(self, max_latency: float) -> float:
        delays = [p.clock.delay for p in self._peers.values() if p.clock.delay is not None]
        max_rtt = max(delays, default=0.0)
        lead = 2.0 * max_rtt + max_latency + self.config.start_margin_s
        return max(self.config.min_start_lead_s, lead)

    def _max_local_latency(self) -> float:
        return max(
            (max(m.latency.estimate(), m.latency.estimate("play")) for m in self._members.values()),
            default=0.0,
        )

    def _max_known_latency(self) -> float:
        latencies = [self._max_local_latency()]
        for peer in self._peers.values():
            latencies.extend(
                float(item["latency_ms"]) / 1000.0
                for item in peer.members.values()
                if isinstance(item.get("latency_ms"), int | float)
            )
        return max(latencies)

    def _accept_command(self, message: Message) -> bool:
        """Apply commands in (generation, leader) order; a start follows its own prepare."""
        gen = int(message.body["gen"])
        cid = str(message.body["cid"])
        self._gen = max(self._gen, gen)
        last_gen, last_cid, last_leader = self._last
        if message.type == "start" and cid == last_cid:
            return True
        accept = gen > last_gen if gen != last_gen else message.sender > last_leader
        if accept:
            self._last = (gen, cid, message.sender)
        return accept

    async def _on_command(self, message: Message) -> None:
        if not self._accept_command(message):
            return
        body = message.body
        cid, gen, leader = str(body["cid"]), int(body["gen"]), message.sender
        session = self._session
        if message.type == "prepare":
            media = MediaRef.from_dict(body["media"])
            position = float(body["position_ms"])
            self._session = _Session(
                gen, cid, leader, media, "preparing", position, self._clock.monotonic()
            )
            self._event("preparing", {"command_id": cid, "leader": leader, **media.as_dict()})
            self._update()
            await self._prepare_all(cid, media, position, leader)
            return
        at = await self._to_monotonic(leader, float(body["at"]))
        if message.type == "start":
            start_media = MediaRef.from_dict(body["media"]) if body.get("media") else None
            position = float(body["position_ms"])
            self._session = _Session(gen, cid, leader, start_media, "playing", position, at)
            for member in self._members.values():
                member.waiting = False
                self._run_member(member, partial(self._start_member, member, cid, at, position))
            self._event(
                "resumed" if body.get("resume") else "started",
                {
                    "command_id": cid,
                    "leader": leader,
                    "position_ms": position,
                    "at": at - self._clock.monotonic() + self._clock.now(),
                },
            )
        elif message.type == "pause":
            if session is None:
                return
            position = float(body.get("position_ms", session.position_at(at)))
            state: GroupStateName = "waiting" if body.get("wait") else "paused"
            self._session = replace(
                session, gen=gen, cid=cid, leader=leader, state=state, position_ms=position, at=at
            )
            for member_id, member in self._members.items():
                if self._member_id(member_id) != body.get("wait"):
                    self._run_member(member, partial(self._pause_member, member, at, position))
            self._event(
                "waiting" if body.get("wait") else "paused",
                {"command_id": cid, "leader": leader, "position_ms": position}
                | ({"member_id": body["wait"]} if body.get("wait") else {}),
            )
        elif message.type == "seek":
            if session is None:
                return
            position = float(body["position_ms"])
            self._session = replace(
                session, gen=gen, cid=cid, leader=leader, position_ms=position, at=at
            )
            for member in self._members.values():
                self._run_member(member, partial(self._seek_member, member, at, position))
            self._event("seeked", {"command_id": cid, "leader": leader, "position_ms": position})
        else:  # stop
            self._session = None
            for member in self._members.values():
                self._run_member(member, partial(self._stop_member, member, at))
            self._event("stopped", {"command_id": cid, "leader": leader})
        self._update()

    async def _prepare_all(self, cid: str, media: MediaRef, position: float, leader: str) -> None:
        results: dict[str, dict[str, Any]] = {}

        async def prepare(member: _LocalMember) -> None:
            error = await self._load_member(member, media, position)
            if error is None:
                member.ready_cid = cid
            else:
                self._event("member_failed", self._member_event(member) | {"error": error})
            results[self._member_id(member.player.player_id)] = {
                "ok": error is None,
                "error": error,
                "latency_ms": round(member.latency.estimate("play") * 1000.0, 1),
            }

        members = list(self._members.values())
        for member in members:
            member.ready_cid = None
            self._run_member(member, partial(prepare, member))
        await asyncio.gather(
            *(m.task for m in members if m.task is not None), return_exceptions=True
        )
        body = {"cid": cid, "members": results}
        if leader == self.instance_id:
            self._ready.setdefault(cid, {})[self.instance_id] = results
            self._ready_changed.set()
        else:
            await self._publish("ready", body)

    async def _adopt_session(self, sender: str, data: dict[str, Any]) -> None:
        """A peer's hello shows a newer session than ours: join it (late join / rejoin)."""
        gen, state = int(data["gen"]), str(data["state"])
        self._gen = max(self._gen, gen)
        if gen <= self._last[0] or state not in ("playing", "paused"):
            return
        self._last = (gen, str(data["cid"]), str(data["leader"]))
        media = MediaRef.from_dict(data["media"])
        at = await self._to_monotonic(sender, float(data["at"]))
        self._session = _Session(
            gen,
            str(data["cid"]),
            str(data["leader"]),
            media,
            "playing" if state == "playing" else "paused",
            float(data["position_ms"]),
            at,
        )
        self._event("joined_session", {"command_id": data["cid"], "leader": data["leader"]})
        for member in self._members.values():
            self._run_member(member, partial(self._catch_up, member))
        self._update()

    # ------------------------------------------------------------------ per-member actions

    def _run_member(self, member: _LocalMember, action: _Action) -> None:
        """Run the member's next action, after (instead of) what it was doing."""
        previous = member.task
        if previous is not None and not previous.done():
            previous.cancel()
        member.task = self._spawn(self._member_action(member, action))

    async def _member_action(self, member: _LocalMember, action: _Action) -> None:
        member.busy += 1
        try:
            await action()
        except Exception:
            _LOGGER.exception("Sync group %s: member action failed", self.config.group)
        finally:
            member.busy -= 1

    async def _command(self, member: _LocalMember, kind: str, position: float = 0.0) -> bool:
        """Send one command; measure its latency from the state it leads to."""
        player = member.player
        now = self._clock.monotonic()
        predicate: Callable[[PlayerSnapshot], bool]
        anchor: float | None = None
        if kind == "play":
            predicate = lambda s: s.state == "playing"  # noqa: E731
            if player.snapshot.state == "paused":
                anchor = player.snapshot.position_ms
        elif kind == "pause":
            predicate = lambda s: s.state == "paused"  # noqa: E731
        elif kind == "stop":
            predicate = lambda s: s.state == "stopped"  # noqa: E731
        else:
            target = position
            predicate = lambda s: abs(s.position_at(s.at) - target) < SEEK_MATCH_MS  # noqa: E731
            anchor = position
        # Measure only a change the command causes: nothing when already there.
        member.refine = None
        member.expect = (
            None if predicate(player.snapshot) else _Expect(kind, now, predicate, anchor)
        )
        member.settle_until = now + 2.0 * member.latency.estimate() + 0.5
        try:
            if kind == "play":
                await player.play()
            elif kind == "pause":
                await player.pause()
            elif kind == "stop":
                await player.stop()
            else:
                await player.seek(round(position))
        except Exception as err:  # noqa: BLE001 - any client/server failure
            member.expect = None
            self._event("member_failed", self._member_event(member) | {"error": str(err)})
            return False
        return True

    async def _wait_member(
        self, member: _LocalMember, predicate: Callable[[PlayerSnapshot], bool], limit: float
    ) -> bool:
        try:
            async with asyncio.timeout(limit):
                while not predicate(member.player.snapshot):
                    member.changed.clear()
                    await member.changed.wait()
        except TimeoutError:
            return False
        return True

    async def _settle(self, member: _LocalMember) -> None:
        """Until the state change of the member's last command shows (or it should have)."""
        expect = member.expect
        if expect is None or expect.kind not in ("play", "pause", "stop"):
            return
        patience = min(EXPECT_MAX_S, 2.0 * member.latency.estimate(expect.kind) + 0.5)
        limit = expect.sent + patience - self._clock.monotonic()
        if limit > 0:
            await self._wait_member(member, lambda _: member.expect is not expect, limit)

    async def _sleep_until(self, monotonic: float) -> None:
        """Sleep until a monotonic instant; the last few ms yield-spin instead of sleeping.

        The loop's timers wake up to a millisecond or so late (the selector's granularity);
        yielding in a loop for the last `SPIN_S` keeps other tasks running and is exact.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (monotonic - self._clock.monotonic())
        delay = deadline - loop.time()
        if delay > SPIN_S:
            await asyncio.sleep(delay - SPIN_S)
        while loop.time() < deadline:  # noqa: ASYNC110 - a deliberate yield-spin
            await asyncio.sleep(0)

    async def _load_member(
        self, member: _LocalMember, media: MediaRef, position: float
    ) -> str | None:
        """Load `media` paused at `position`; None when ready, else why not."""
        player = member.player
        key = await self._resolve(media)
        if key is None:
            return "media not found on this server"
        member.media_key = key
        timeout = self.config.command_timeout_s
        # What the player last reported may be overtaken by a command still on its way (a stop
        # just sent): decide on the state after it.
        await self._settle(member)
        for attempt in range(LOAD_ATTEMPTS):
            snapshot = player.snapshot
            if snapshot.media_key != key or snapshot.state == "stopped":
                try:
                    await player.play_media(media, key, round(position))
                except Exception as err:  # noqa: BLE001 - any client/server failure
                    return str(err) or type(err).__name__
                member.settle_until = self._clock.monotonic() + timeout
                if not await self._wait_member(
                    member,
                    lambda s: s.media_key == key and s.state in ("playing", "paused"),
                    timeout,
                ):
                    return "the player did not load the item"
            if player.snapshot.state == "paused":
                break
            if not await self._command(member, "pause"):
                return "the player refused to pause"
            # A player that stops (or changes item) meanwhile never pauses: load it again.
            if not await self._wait_member(
                member,
                lambda s: s.state in ("paused", "stopped") or s.media_key != key,
                timeout,
            ):
                return "the player did not pause"
            after = player.snapshot  # (a new report: not the one checked above)
            if after.state == "paused" and after.media_key == key:
                break
            if attempt == LOAD_ATTEMPTS - 1:
                return "the player did not pause"
        if abs(player.snapshot.position_ms - position) > 1.0:
            if not await self._command(member, "seek", position):
                return "the player refused to seek"
            if not await self._wait_seeked(member, position, timeout):
                return "the player did not seek"
        for _ in range(self.config.calibration_rounds):
            # While paused, a seek away and back costs nothing visible and measures latency.
            for target in (position + CALIBRATION_STEP_MS, position):
                await self._seek_paused(member, target)
        return None

    async def _resolve(self, media: MediaRef) -> str | None:
        if self._resolve_media is None:
            return media.rating_key
        return await self._resolve_media(media)

    async def _start_member(
        self, member: _LocalMember, cid: str, at: float, position: float
    ) -> None:
        snapshot = member.player.snapshot
        ready = (
            snapshot.state == "paused"
            and snapshot.media_key is not None
            and snapshot.media_key == member.media_key
            and abs(snapshot.position_ms - position) <= PAUSED_TOLERANCE_MS
        )
        fire = at - member.latency.estimate("play")
        if not ready or self._clock.monotonic() > fire + LATE_S:
            await self._catch_up(member)  # not ready in time: join where the group is
            return
        await self._sleep_until(fire)
        await self._command(member, "play")

    async def _catch_up(self, member: _LocalMember) -> None:
        """Bring a member to where the group is (late start, rejoin, recovery)."""
        session = self._session
        if session is None or session.media is None:
            return
        snapshot = member.player.snapshot
        key = member.media_key or session.media.rating_key
        if snapshot.state in ("stopped", "buffering") or snapshot.media_key != key:
            target = session.position_at(self._clock.monotonic())
            error = await self._load_member(member, session.media, target)
            if error is not None:
                self._event("member_failed", self._member_event(member) | {"error": error})
                return
        elif snapshot.state == "playing":
            await self._command(member, "pause")
            await self._wait_member(member, lambda s: s.state == "paused", 5.0)
        session = self._session
        if session is None:
            return
        if session.state != "playing":
            await self._seek_paused(member, session.position_ms)
            return
        for attempt in range(3):
            seek_latency = member.latency.estimate("seek")
            play_latency = member.latency.estimate("play")
            target = self._clock.monotonic() + seek_latency + play_latency + 0.3 + 0.5 * attempt
            position = session.position_at(target)
            await self._seek_paused(member, position)
            fire = target - play_latency
            if self._clock.monotonic() < fire:
                await self._sleep_until(fire)
                await self._command(member, "play")
                self._event("member_resynced", self._member_event(member))
                return
        await self._command(member, "play")

    async def _seek_paused(self, member: _LocalMember, position: float) -> None:
        if abs(member.player.snapshot.position_ms - position) <= 1.0:
            return
        if await self._command(member, "seek", position):
            await self._wait_seeked(member, position, 5.0)

    async def _wait_seeked(self, member: _LocalMember, position: float, limit: float) -> bool:
        """Until the seek just sent shows: at its target, or near it in a later report.

        An earlier report near the target does not count: the next command would queue behind
        the seek on the player and its latency sample would include the seek's.
        """
        expect = member.expect
        if expect is None:  # already there when sent: nothing to tell the effect by
            return await self._wait_member(
                member, lambda s: abs(s.position_ms - position) < SEEK_NEAR_MS, limit
            )
        return await self._wait_member(
            member,
            lambda s: (
                member.expect is not expect
                or (s.at > expect.sent and abs(s.position_ms - position) < SEEK_NEAR_MS)
            ),
            limit,
        )

    def _will_play(self, member: _LocalMember) -> bool:
        """Playing, buffering, or told to play with the effect not seen yet."""
        expect = member.expect
        return member.player.snapshot.state in ("playing", "buffering") or (
            expect is not None and expect.kind == "play"
        )

    async def _pause_member(self, member: _LocalMember, at: float, position: float) -> None:
        await self._sleep_until(at - member.latency.estimate("pause"))
        if self._will_play(member) and not (
            await self._command(member, "pause")
            and await self._wait_member(member, lambda s: s.state == "paused", 5.0)
        ):
            return
        if member.player.snapshot.state == "paused":
            await self._seek_paused(member, position)

    async def _seek_member(self, member: _LocalMember, at: float, position: float) -> None:
        fire = at - member.latency.estimate("seek")
        await self._sleep_until(fire)
        if member.player.snapshot.state == "stopped":
            return
        session = self._session
        late = self._clock.monotonic() - fire
        if late > LATE_S and session is not None and session.state == "playing":
            position += late * 1000.0  # too late for the instant: land where the group is
        await self._command(member, "seek", position)

    async def _stop_member(self, member: _LocalMember, at: float) -> None:
        await self._sleep_until(at - member.latency.estimate("stop"))
        if member.player.snapshot.state != "stopped" or self._will_play(member):
            await self._command(member, "stop")

    # ------------------------------------------------------------------ member reports

    def _member_changed(self, member: _LocalMember, snapshot: PlayerSnapshot) -> None:
        self._measure(member, snapshot)
        member.changed.set()
        if not self._running:
            return
        session = self._session
        settled = member.busy == 0 and self._clock.monotonic() >= member.settle_until
        if session is None or not settled:
            return
        member_id = self._member_id(member.player.player_id)
        if snapshot.state == "buffering" and session.state == "playing":
            if self.config.wait_for_buffering and not member.waiting:
                member.waiting = True
                self._spawn(self._timed_command("pause", {"wait": member_id}))
            return
        if member.waiting and snapshot.state in ("playing", "paused"):
            member.waiting = False
            if session.state == "waiting":
                self._spawn(self._recover_waiting(member))
            return
        if not self.config.follow:
            return
        if session.state == "playing" and snapshot.state == "paused":
            self._spawn(self.pause())
        elif session.state == "paused" and snapshot.state == "playing":
            self._spawn(self.resume())
        elif session.state == "playing" and snapshot.state == "playing":
            expected = session.position_at(snapshot.at)
            if abs(snapshot.position_ms - expected) > REMOTE_SEEK_MS:
                self._spawn(self.seek(snapshot.position_ms + self._start_lead(0.0) * 1000.0))

    def _measure(self, member: _LocalMember, snapshot: PlayerSnapshot) -> None:
        """Latency samples from the reports that show a command's effect."""
        refine = member.refine
        if refine is not None:
            if (
                snapshot.state != "playing"
                or snapshot.media_key != refine.media_key
                or snapshot.at - refine.sent > REFINE_S
            ):
                member.refine = None
            else:
                effect = _effect_instant(snapshot, refine.anchor_ms)
                if refine.sent <= effect and effect - refine.sent < refine.latency:
                    refine.latency = effect - refine.sent
                    member.latency.refine(refine.token, refine.latency)
        expect = member.expect
        if expect is None:
            return
        if snapshot.at - expect.sent > EXPECT_MAX_S:
            member.expect = None  # the effect never showed: no sample
            return
        if not expect.predicate(snapshot):
            return
        member.expect = None
        if expect.anchor_ms is None or snapshot.state != "playing":
            member.latency.add(expect.kind, snapshot.at - expect.sent)
            return
        effect = _effect_instant(snapshot, expect.anchor_ms)
        if effect < expect.sent:
            return  # the position moved for another reason: no sample
        latency = effect - expect.sent
        member.latency.add_report_lag(snapshot.at - effect)
        token = member.latency.add(expect.kind, latency)
        member.refine = _Refine(token, expect.sent, expect.anchor_ms, snapshot.media_key, latency)

    async def _recover_waiting(self, member: _LocalMember) -> None:
        """The member that made the group wait is back: pause it in place, then resume all."""
        session = self._session
        if session is None:
            return
        await self._run_and_wait(member, partial(self._catch_up, member))
        if self._session is not None and self._session.state == "waiting":
            await self.resume()

    async def _run_and_wait(self, member: _LocalMember, action: _Action) -> None:
        self._run_member(member, action)
        if member.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await member.task

    # ------------------------------------------------------------------ loops

    async def _clock_loop(self) -> None:
        """One more sample per peer every interval; the estimators keep the best recent ones.

        Until a peer's estimator holds a full window of samples (after a join or a clock jump)
        it is sampled `CLOCK_FILL_RATE` times as often: the estimate tightens with the count.
        """
        for tick in itertools.count(1):
            await asyncio.sleep(self.config.clock_sample_interval_s / CLOCK_FILL_RATE)
            for peer in list(self._peers.values()):
                if tick % CLOCK_FILL_RATE == 0 or len(peer.clock) < MAX_SAMPLES:
                    self._spawn(self._sync_clock(peer.instance_id, 1))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            self._check_clock_jump()
            now = self._clock.monotonic()
            for peer in list(self._peers.values()):
                if now - peer.last_seen > self.config.expire_after_s:
                    _LOGGER.info(
                        "Sync group %s: %s went silent", self.config.group, peer.instance_id
                    )
                    self._drop_peer(peer.instance_id)
            await self._send_hello()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            if self._members and self._session is not None:
                await self._publish("status", {"members": self._member_reports(full=False)})

    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.drift_check_interval_s / 3.0)
            self._check_drift()

    def _check_drift(self) -> None:
        session = self._session
        now = self._clock.monotonic()
        changed = False
        for member in self._members.values():
            snapshot = member.player.snapshot
            if session is None or session.state not in ("playing", "paused"):
                member.drift_ms = None
                continue
            if (
                member.busy
                or now < member.settle_until
                or snapshot.state
                not in (
                    "playing",
                    "paused",
                )
            ):
                continue
            drift = snapshot.position_at(now) - session.position_at(now)
            if snapshot.state != ("playing" if session.state == "playing" else "paused"):
                continue
            member.drift_ms = drift
            changed = True
            if (
                abs(drift) > self.config.drift_threshold_ms
                and now - member.last_check >= self.config.drift_check_interval_s
            ):
                member.last_check = now
                self._event("drift_corrected", self._member_event(member) | {"drift_ms": drift})
                if session.state == "playing":
                    target = session.position_at(now + member.latency.estimate("seek"))
                    self._run_member(member, partial(self._correct, member, target))
                else:
                    self._run_member(
                        member, partial(self._seek_paused, member, session.position_ms)
                    )
        if changed:
            self._update()

    async def _correct(self, member: _LocalMember, position: float) -> None:
        await self._command(member, "seek", position)

    # ------------------------------------------------------------------ helpers

    def _spawn[T](self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("Sync group %s: task failed", self.config.group, exc_info=error)

    def _member_id(self, player_id: str) -> str:
        return f"{self.instance_id}/{player_id}"

    def _member_event(self, member: _LocalMember) -> dict[str, Any]:
        return {
            "member_id": self._member_id(member.player.player_id),
            "player_id": member.player.player_id,
            "name": member.player.name,
            "home": self.config.home,
        }

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(kind, {"group": self.config.group, **data})

    def _update(self) -> None:
        if self._on_update is not None:
            self._on_update()

    def _check_running(self) -> None:
        if not self._running:
            raise NotRunningError("the sync engine is not running")

    def _require_session(self) -> _Session:
        self._check_running()
        if self._session is None:
            raise NothingPlayingError("the group plays nothing")
        return self._session

    def _current_local_media(self) -> tuple[MediaRef, float]:
        now = self._clock.monotonic()
        for member in self._members.values():
            snapshot = member.player.snapshot
            if snapshot.media_key and snapshot.state != "stopped":
                return MediaRef(snapshot.media_key), snapshot.position_at(now)
        raise NothingPlayingError("no member plays anything to follow")


def _check_command(message: Message) -> None:
    """Raise ValueError when a command body lacks what its handler reads."""
    body = message.body
    if not isinstance(body.get("cid"), str) or not isinstance(body.get("gen"), int):
        raise ValueError("command without cid/gen")  # noqa: TRY004
    if message.type == "prepare":
        MediaRef.from_dict(body.get("media"))
    elif _number(body.get("at")) is None:
        raise ValueError("command without an instant")
    if message.type in ("prepare", "start", "seek") and _number(body.get("position_ms")) is None:
        raise ValueError("command without a position")
    if message.type == "start" and body.get("media") is not None:
        MediaRef.from_dict(body["media"])


def _check_session(data: dict[str, Any]) -> None:
    """Raise ValueError when a hello's session is incomplete."""
    if (
        not isinstance(data.get("gen"), int)
        or not isinstance(data.get("cid"), str)
        or not isinstance(data.get("leader"), str)
        or not isinstance(data.get("state"), str)
        or _number(data.get("position_ms")) is None
        or _number(data.get("at")) is None
    ):
        raise ValueError("incomplete session")
    if data["state"] in ("playing", "paused"):
        MediaRef.from_dict(data.get("media"))


def _effect_instant(snapshot: PlayerSnapshot, anchor_ms: float) -> float:
    """When a playing player was at `anchor_ms`, from a report of it (never after the report)."""
    return snapshot.at - max(0.0, snapshot.position_ms - anchor_ms) / 1000.0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
