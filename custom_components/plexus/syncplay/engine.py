"""The sync-play engine: one instance's part of one group, behind one facade.

Every instance (home) of a group runs one engine. Commands are led by whoever starts them: the
leader announces an instant on its own wall clock, every instance converts it to its own
monotonic clock through its NTP-style offset estimate, and sends each local player's command
early by that player's measured command latency. Each instance keeps its own players on the
group's timeline (an anchor: position P at instant T, advancing while playing).

The parts, each in its own module:

- `protocol`: signed, bounded, replay-protected messages (`MessageCodec`);
- `peers`: the other instances and their members (`Membership`);
- `clock`: clock sampling and offset estimation (`ClockSync`);
- `commands`: two-phase start and timed commands, and their order (`CommandScheduler`);
- `driver`: each local player's timed, measured commands (`MemberDriver`);
- `drift`: drift correction, buffering waits and follow mode (`DriftControl`);
- `tasks`: supervision of every background task (`TaskSupervisor`).

This module wires them together, routes incoming messages and runs the heartbeat.
"""

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import logging
from typing import Any

from .clock import ClockSync, instant
from .commands import COMMANDS, CommandScheduler
from .context import EngineContext
from .drift import DriftControl
from .driver import LocalMember, MediaResolver, MemberDriver
from .interfaces import Clock, EventCallback, MediaRef, MemberPlayer, Transport, Unsubscribe
from .latency import LatencyTracker
from .model import (
    CommandResult,
    GroupState,
    MemberInfo,
    NothingPlayingError,
    NotRunningError,
    Session,
    SyncConfig,
    check_position,
    number,
)
from .peers import Membership
from .protocol import DropReason, Message, MessageCodec

_LOGGER = logging.getLogger(__name__)

type MediaDescriber = Callable[[str], Awaitable[MediaRef]]


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
        self._ctx = ctx = EngineContext(
            config, clock, transport, on_event=on_event, on_update=on_update
        )
        self._describe_media = describe_media
        self.clocks = ClockSync(ctx)
        self.driver = MemberDriver(ctx, resolve_media)
        self.peers = Membership(ctx, self.clocks, self.driver.reports, self._adopt_session)
        self.commands = CommandScheduler(ctx, self.clocks, self.peers, self.driver)
        self.drift = DriftControl(ctx, self.driver, self.commands, self)
        self._unsubscribe: list[Unsubscribe] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def instance_id(self) -> str:
        """The id of this instance."""
        return self.config.instance_id

    @property
    def running(self) -> bool:
        """True between start() and shutdown()."""
        return self._ctx.running

    @property
    def codec(self) -> MessageCodec:
        """The group's message codec (its drop counters)."""
        return self._ctx.codec

    def add_member(self, player: MemberPlayer) -> None:
        """Make a local player a member of the group."""
        members = self.driver.members
        if player.player_id in members:
            return
        member = LocalMember(player, LatencyTracker(self.config.default_latency_s))
        member.unsubscribe = player.add_listener(
            lambda snapshot: self.drift.on_report(member, snapshot)
        )
        members[player.player_id] = member
        if self.running:
            self._ctx.tasks.spawn(self.peers.send_hello())
        self.driver.event("member_joined", member)
        self._ctx.update()

    def remove_member(self, player_id: str) -> None:
        """Take a local player out of the group."""
        member = self.driver.members.pop(player_id, None)
        if member is None:
            return
        if member.unsubscribe:
            member.unsubscribe()
        if member.task:
            member.task.cancel()
        if self.running:
            self._ctx.tasks.spawn(self.peers.send_hello())
        self.driver.event("member_left", member)
        self._ctx.update()

    async def start(self) -> None:
        """Subscribe, announce this instance and start the background loops."""
        ctx = self._ctx
        if ctx.running:
            return
        ctx.running = True
        ctx.codec.new_epoch()
        self.peers.reconnected()
        self.clocks.start()
        base = self.config.base_topic
        transport = ctx.transport
        self._unsubscribe.append(await transport.subscribe(f"{base}/all", self._receive))
        self._unsubscribe.append(
            await transport.subscribe(f"{base}/to/{self.instance_id}", self._receive)
        )
        await self.peers.send_hello()
        tasks = ctx.tasks
        tasks.supervise("heartbeat", self._heartbeat_loop)
        tasks.supervise("status", self._status_loop)
        tasks.supervise("drift", self.drift.loop)
        tasks.supervise("clock", self.clocks.loop)
        ctx.update()

    async def shutdown(self) -> None:
        """Say goodbye, unsubscribe and stop every task (players are left as they are)."""
        ctx = self._ctx
        if not ctx.running:
            return
        ctx.running = False
        with contextlib.suppress(Exception):
            await ctx.publish("bye", {})
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await ctx.tasks.cancel_all()
        for member in self.driver.members.values():
            if member.unsubscribe:
                member.unsubscribe()
                member.unsubscribe = None
        ctx.update()

    async def reconnected(self) -> None:
        """Tell the engine its transport reconnected: announce again and resync clocks.

        Until a peer shows it hears us again, its members are not listed (see `peers`).
        """
        if self.running:
            self.peers.reconnected()
            await self.peers.send_hello()
            for instance_id in list(self.peers.peers):
                self.clocks.spawn_sync(instance_id, self.config.clock_samples // 2)

    # ------------------------------------------------------------------ commands

    async def play(
        self, media: MediaRef | None = None, position_ms: float | None = None
    ) -> CommandResult:
        """Two-phase start of `media` at `position_ms` on every member, this instance leading.

        Default: what a local member plays now, from its position. A position that is not a
        finite number of milliseconds within 24 h raises `InvalidPositionError`.
        """
        self._check_running()
        if position_ms is not None:
            position_ms = check_position(position_ms)
        if media is None:
            media, current = self._current_local_media()
            if self._describe_media is not None:
                media = await self._describe_media(media.rating_key)
            if position_ms is None:
                position_ms = check_position(current)
        return await self.commands.play(media, position_ms or 0.0)

    async def pause(self) -> CommandResult:
        """Pause every member at one instant."""
        self._check_running()
        return await self.commands.timed("pause", {})

    async def resume(self) -> CommandResult:
        """Resume every member at one instant, from the group's paused position."""
        session = self._require_session()
        return await self.commands.timed(
            "start",
            {
                "position_ms": session.position_ms,
                "resume": True,
                "media": session.media.as_dict() if session.media else None,
            },
        )

    async def seek(self, position_ms: float) -> CommandResult:
        """Move every member to a position at one instant (`InvalidPositionError` if unusable)."""
        position = check_position(position_ms)
        self._require_session()
        return await self.commands.timed("seek", {"position_ms": position})

    async def stop(self) -> CommandResult:
        """Stop every member at one instant."""
        self._check_running()
        return await self.commands.timed("stop", {})

    # ------------------------------------------------------------------ what it shows

    @property
    def state(self) -> GroupState:
        """The group as this instance sees it."""
        ctx = self._ctx
        now = ctx.clock.monotonic()
        session = ctx.session
        members: list[MemberInfo] = []
        for member in self.driver.members.values():
            player = member.player
            members.append(
                MemberInfo(
                    member_id=ctx.member_id(player.player_id),
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
                    expected_precision_ms=self.driver.known_precision_ms(member),
                )
            )
        for peer in self.peers.joined():
            offset = self.clocks.offset(peer.instance_id)
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
                        latency_ms=number(item.get("latency_ms")),
                        clock_offset_ms=None if offset is None else round(offset * 1000.0, 1),
                        drift_ms=number(item.get("drift_ms")),
                        expected_precision_ms=number(item.get("expected_precision_ms")),
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
            homes=1 + len(self.peers.joined()),
            dropped=dict(ctx.codec.dropped),
        )

    def drop_stats(self) -> dict[str, Any]:
        """Counters for diagnostics.

        Dropped messages (by reason, and what awaits the next log summary), accepted ones,
        and the background failures and loop restarts of this engine.
        """
        ctx = self._ctx
        return ctx.codec.drops.stats() | {
            "accepted": ctx.codec.accepted,
            "task_failures": dict(ctx.tasks.log.failures),
            "loop_restarts": dict(ctx.tasks.restarts),
        }

    def clock_offset(self, instance_id: str) -> float | None:
        """Estimated clock offset of another instance (its clock minus ours), seconds."""
        return self.clocks.offset(instance_id)

    def latency(self, player_id: str, kind: str | None = None) -> float:
        """Measured command latency of a local member (of one command kind), seconds."""
        return self.driver.members[player_id].latency.estimate(kind)

    def _reference_offset_ms(self) -> float | None:
        """Our clock minus the reference (the leader, else the lowest instance id), ms."""
        session = self._ctx.session
        reference = session.leader if session else min([self.instance_id, *self.peers.peers])
        offset = self.clock_offset(reference)
        return None if offset is None else round(-offset * 1000.0, 1)

    # ------------------------------------------------------------------ receiving

    def _receive(self, topic: str, payload: bytes) -> None:
        ctx = self._ctx
        received = ctx.clock.now()
        if not ctx.running:
            return
        message = ctx.codec.decode(payload, self.clock_offset)
        if message is None:
            return
        if message.to is not None and message.to != self.instance_id:
            return
        self._handle(message, received)

    def _handle(self, message: Message, received: float) -> None:
        self.peers.seen(message.sender)
        body = message.body
        try:
            match message.type:
                case "hello":
                    self.peers.on_hello(message.sender, body)
                case "bye":
                    self.peers.drop(message.sender)
                case "time_req":
                    self.clocks.on_request(message.sender, instant(body, "t0"), received)
                case "time_resp":
                    self.clocks.on_response(body, received)
                case "status":
                    self.peers.on_status(message.sender, body)
                case "ready":
                    self.commands.on_ready(message.sender, body)
                case kind if kind in COMMANDS:
                    self.commands.receive(message)
                case _:
                    pass
        except (KeyError, TypeError, ValueError) as err:
            self._ctx.codec.count_drop(DropReason.MALFORMED, message.sender)
            _LOGGER.debug("Sync group %s: bad %s body (%s)", self.config.group, message.type, err)

    def _check_clock_jump(self) -> None:
        """After a jump of our wall clock: every estimate restarts and peers are told."""
        if self.clocks.check_jump():
            self._ctx.tasks.spawn(self.peers.send_hello())

    def _adopt_session(self, sender: str, data: dict[str, Any]) -> None:
        self.commands.adopt(sender, data)

    # ------------------------------------------------------------------ loops

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            self._check_clock_jump()
            self.peers.expire()
            self._ctx.codec.drops.flush()
            await self.peers.send_hello()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            if self.driver.members and self._ctx.session is not None:
                await self._ctx.publish("status", {"members": self.driver.reports(False)})

    # ------------------------------------------------------------------ helpers

    def _check_running(self) -> None:
        if not self.running:
            raise NotRunningError("the sync engine is not running")

    def _require_session(self) -> Session:
        self._check_running()
        if self._ctx.session is None:
            raise NothingPlayingError("the group plays nothing")
        return self._ctx.session

    def _current_local_media(self) -> tuple[MediaRef, float]:
        now = self._ctx.clock.monotonic()
        for member in self.driver.members.values():
            snapshot = member.player.snapshot
            if snapshot.media_key and snapshot.state != "stopped":
                return MediaRef(snapshot.media_key), snapshot.position_at(now)
        raise NothingPlayingError("no member plays anything to follow")
