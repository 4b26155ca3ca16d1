"""The member driver: each local player's commands, timed and measured.

Every local member runs one action at a time (a new one cancels what it was doing). A command
is sent early by the player's measured latency for its kind, and the report that shows its
effect is a new latency sample: for a play or a seek the effect instant comes from the
reported position (report instant minus how far it got past the anchor), so a player that
reports late still gives an exact sample.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
from functools import partial
import logging
from typing import Any, Final

from .context import EngineContext
from .interfaces import MediaRef, MemberPlayer, PlayerSnapshot, Unsubscribe
from .latency import LatencyTracker

_LOGGER = logging.getLogger(__name__)

type MediaResolver = Callable[[MediaRef], Awaitable[str | None]]
type Action = Callable[[], Coroutine[Any, Any, None]]

PAUSED_TOLERANCE_MS: Final = 60.0
SEEK_MATCH_MS: Final = 20.0
SEEK_NEAR_MS: Final = 250.0
CALIBRATION_STEP_MS: Final = 1000.0
LATE_S: Final = 0.02
EXPECT_MAX_S: Final = 3.0
REFINE_S: Final = 2.0
SPIN_S: Final = 0.003
LOAD_ATTEMPTS: Final = 2


@dataclass(slots=True)
class Expect:
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
class Refine:
    """A recorded latency sample that later position reports may lower (see `Expect`)."""

    token: int
    sent: float
    anchor_ms: float
    media_key: str | None
    latency: float


@dataclass(slots=True)
class LocalMember:
    """A local player in the group and what the driver knows about it."""

    player: MemberPlayer
    latency: LatencyTracker
    unsubscribe: Unsubscribe | None = None
    busy: int = 0
    settle_until: float = 0.0
    ready_cid: str | None = None
    drift_ms: float | None = None
    last_check: float = 0.0
    expect: Expect | None = None
    refine: Refine | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    media_key: str | None = None
    waiting: bool = False


class MemberDriver:
    """Drive the local members: load, start, pause, seek, stop, catch up; measure latency."""

    def __init__(self, ctx: EngineContext, resolve_media: MediaResolver | None = None) -> None:
        """Members of the engine sharing `ctx`; `resolve_media` finds another home's item."""
        self._ctx = ctx
        self.resolve_media = resolve_media
        self.members: dict[str, LocalMember] = {}

    def event(self, kind: str, member: LocalMember, **extra: Any) -> None:
        """An event about one member."""
        self._ctx.event(kind, self.describe(member) | extra)

    def describe(self, member: LocalMember) -> dict[str, Any]:
        """A member as events name it."""
        player = member.player
        return {
            "member_id": self._ctx.member_id(player.player_id),
            "player_id": player.player_id,
            "name": player.name,
            "home": self._ctx.config.home,
        }

    def reports(self, full: bool) -> dict[str, dict[str, Any]]:
        """The members as hello (`full`) and status messages describe them."""
        reports: dict[str, dict[str, Any]] = {}
        for member in self.members.values():
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
            reports[self._ctx.member_id(player.player_id)] = report
        return reports

    def max_latency(self) -> float:
        """The largest latency estimate of any local member, seconds (0 without members)."""
        return max(
            (max(m.latency.estimate(), m.latency.estimate("play")) for m in self.members.values()),
            default=0.0,
        )

    # ------------------------------------------------------------------ running actions

    def run(self, member: LocalMember, action: Action) -> None:
        """Run the member's next action, after (instead of) what it was doing."""
        previous = member.task
        if previous is not None and not previous.done():
            previous.cancel()
        member.task = self._ctx.tasks.spawn(self._action(member, action))

    async def run_and_wait(self, member: LocalMember, action: Action) -> None:
        """Run the member's next action and wait for it (or its cancellation)."""
        self.run(member, action)
        if member.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await member.task

    async def _action(self, member: LocalMember, action: Action) -> None:
        member.busy += 1
        try:
            await action()
        except Exception as err:  # noqa: BLE001 - one member's failure must not stop the rest
            self._ctx.tasks.log.failed(f"a member action ({type(err).__name__})", err)
        finally:
            member.busy -= 1

    # ------------------------------------------------------------------ commands

    async def command(self, member: LocalMember, kind: str, position: float = 0.0) -> bool:
        """Send one command; measure its latency from the state it leads to."""
        player = member.player
        now = self._ctx.clock.monotonic()
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
        member.expect = None if predicate(player.snapshot) else Expect(kind, now, predicate, anchor)
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
            self.event("member_failed", member, error=str(err))
            return False
        return True

    async def wait_member(
        self, member: LocalMember, predicate: Callable[[PlayerSnapshot], bool], limit: float
    ) -> bool:
        """Until the member's reported state satisfies `predicate` (False after `limit` s)."""
        try:
            async with asyncio.timeout(limit):
                while not predicate(member.player.snapshot):
                    member.changed.clear()
                    await member.changed.wait()
        except TimeoutError:
            return False
        return True

    async def settle(self, member: LocalMember) -> None:
        """Until the state change of the member's last command shows (or it should have)."""
        expect = member.expect
        if expect is None or expect.kind not in ("play", "pause", "stop"):
            return
        patience = min(EXPECT_MAX_S, 2.0 * member.latency.estimate(expect.kind) + 0.5)
        limit = expect.sent + patience - self._ctx.clock.monotonic()
        if limit > 0:
            await self.wait_member(member, lambda _: member.expect is not expect, limit)

    async def sleep_until(self, monotonic: float) -> None:
        """Sleep until a monotonic instant; the last few ms yield-spin instead of sleeping.

        The loop's timers wake up to a millisecond or so late (the selector's granularity);
        yielding in a loop for the last `SPIN_S` keeps other tasks running and is exact.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (monotonic - self._ctx.clock.monotonic())
        delay = deadline - loop.time()
        if delay > SPIN_S:
            await asyncio.sleep(delay - SPIN_S)
        while loop.time() < deadline:  # noqa: ASYNC110 - a deliberate yield-spin
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ loading

    async def load(self, member: LocalMember, media: MediaRef, position: float) -> str | None:
        """Load `media` paused at `position`; None when ready, else why not."""
        player = member.player
        key = await self._resolve(media)
        if key is None:
            return "media not found on this server"
        member.media_key = key
        timeout = self._ctx.config.command_timeout_s
        # What the player last reported may be overtaken by a command still on its way (a stop
        # just sent): decide on the state after it.
        await self.settle(member)
        for attempt in range(LOAD_ATTEMPTS):
            snapshot = player.snapshot
            if snapshot.media_key != key or snapshot.state == "stopped":
                try:
                    await player.play_media(media, key, round(position))
                except Exception as err:  # noqa: BLE001 - any client/server failure
                    return str(err) or type(err).__name__
                member.settle_until = self._ctx.clock.monotonic() + timeout
                if not await self.wait_member(
                    member,
                    lambda s: s.media_key == key and s.state in ("playing", "paused"),
                    timeout,
                ):
                    return "the player did not load the item"
            if player.snapshot.state == "paused":
                break
            if not await self.command(member, "pause"):
                return "the player refused to pause"
            # A player that stops (or changes item) meanwhile never pauses: load it again.
            if not await self.wait_member(
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
            if not await self.command(member, "seek", position):
                return "the player refused to seek"
            if not await self.wait_seeked(member, position, timeout):
                return "the player did not seek"
        for _ in range(self._ctx.config.calibration_rounds):
            # While paused, a seek away and back costs nothing visible and measures latency.
            for target in (position + CALIBRATION_STEP_MS, position):
                await self.seek_paused(member, target)
        return None

    async def _resolve(self, media: MediaRef) -> str | None:
        if self.resolve_media is None:
            return media.rating_key
        return await self.resolve_media(media)

    # ------------------------------------------------------------------ timed actions

    async def start(self, member: LocalMember, at: float, position: float) -> None:
        """Start a member loaded paused at `position` at the monotonic instant `at`."""
        snapshot = member.player.snapshot
        ready = (
            snapshot.state == "paused"
            and snapshot.media_key is not None
            and snapshot.media_key == member.media_key
            and abs(snapshot.position_ms - position) <= PAUSED_TOLERANCE_MS
        )
        fire = at - member.latency.estimate("play")
        if not ready or self._ctx.clock.monotonic() > fire + LATE_S:
            await self.catch_up(member)  # not ready in time: join where the group is
            return
        await self.sleep_until(fire)
        await self.command(member, "play")

    async def catch_up(self, member: LocalMember) -> None:
        """Bring a member to where the group is (late start, rejoin, recovery)."""
        ctx = self._ctx
        session = ctx.session
        if session is None or session.media is None:
            return
        snapshot = member.player.snapshot
        key = member.media_key or session.media.rating_key
        if snapshot.state in ("stopped", "buffering") or snapshot.media_key != key:
            target = session.position_at(ctx.clock.monotonic())
            error = await self.load(member, session.media, target)
            if error is not None:
                self.event("member_failed", member, error=error)
                return
        elif snapshot.state == "playing":
            await self.command(member, "pause")
            await self.wait_member(member, lambda s: s.state == "paused", 5.0)
        session = ctx.session
        if session is None:
            return
        if session.state != "playing":
            await self.seek_paused(member, session.position_ms)
            return
        for attempt in range(3):
            seek_latency = member.latency.estimate("seek")
            play_latency = member.latency.estimate("play")
            target = ctx.clock.monotonic() + seek_latency + play_latency + 0.3 + 0.5 * attempt
            position = session.position_at(target)
            await self.seek_paused(member, position)
            fire = target - play_latency
            if ctx.clock.monotonic() < fire:
                await self.sleep_until(fire)
                await self.command(member, "play")
                self.event("member_resynced", member)
                return
        await self.command(member, "play")

    async def seek_paused(self, member: LocalMember, position: float) -> None:
        """Seek a paused member and wait until it shows."""
        if abs(member.player.snapshot.position_ms - position) <= 1.0:
            return
        if await self.command(member, "seek", position):
            await self.wait_seeked(member, position, 5.0)

    async def wait_seeked(self, member: LocalMember, position: float, limit: float) -> bool:
        """Until the seek just sent shows: at its target, or near it in a later report.

        An earlier report near the target does not count: the next command would queue behind
        the seek on the player and its latency sample would include the seek's.
        """
        expect = member.expect
        if expect is None:  # already there when sent: nothing to tell the effect by
            return await self.wait_member(
                member, lambda s: abs(s.position_ms - position) < SEEK_NEAR_MS, limit
            )
        return await self.wait_member(
            member,
            lambda s: (
                member.expect is not expect
                or (s.at > expect.sent and abs(s.position_ms - position) < SEEK_NEAR_MS)
            ),
            limit,
        )

    def will_play(self, member: LocalMember) -> bool:
        """Playing, buffering, or told to play with the effect not seen yet."""
        expect = member.expect
        return member.player.snapshot.state in ("playing", "buffering") or (
            expect is not None and expect.kind == "play"
        )

    async def pause(self, member: LocalMember, at: float, position: float) -> None:
        """Pause a member at the monotonic instant `at`, then put it at `position`."""
        await self.sleep_until(at - member.latency.estimate("pause"))
        if self.will_play(member) and not (
            await self.command(member, "pause")
            and await self.wait_member(member, lambda s: s.state == "paused", 5.0)
        ):
            return
        if member.player.snapshot.state == "paused":
            await self.seek_paused(member, position)

    async def seek(self, member: LocalMember, at: float, position: float) -> None:
        """Seek a member at the monotonic instant `at` (further when late and playing)."""
        fire = at - member.latency.estimate("seek")
        await self.sleep_until(fire)
        if member.player.snapshot.state == "stopped":
            return
        session = self._ctx.session
        late = self._ctx.clock.monotonic() - fire
        if late > LATE_S and session is not None and session.state == "playing":
            position += late * 1000.0  # too late for the instant: land where the group is
        await self.command(member, "seek", position)

    async def stop(self, member: LocalMember, at: float) -> None:
        """Stop a member at the monotonic instant `at`."""
        await self.sleep_until(at - member.latency.estimate("stop"))
        if member.player.snapshot.state != "stopped" or self.will_play(member):
            await self.command(member, "stop")

    def run_timed(self, kind: str, at: float, position: float, skip: str | None = None) -> None:
        """Run a timed action on every member (but the one called `skip`)."""
        for member in self.members.values():
            if self._ctx.member_id(member.player.player_id) == skip:
                continue
            if kind == "start":
                member.waiting = False
                self.run(member, partial(self.start, member, at, position))
            elif kind == "pause":
                self.run(member, partial(self.pause, member, at, position))
            elif kind == "seek":
                self.run(member, partial(self.seek, member, at, position))
            else:
                self.run(member, partial(self.stop, member, at))

    # ------------------------------------------------------------------ reports

    def measure(self, member: LocalMember, snapshot: PlayerSnapshot) -> None:
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
                effect = effect_instant(snapshot, refine.anchor_ms)
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
        effect = effect_instant(snapshot, expect.anchor_ms)
        if effect < expect.sent:
            return  # the position moved for another reason: no sample
        latency = effect - expect.sent
        member.latency.add_report_lag(snapshot.at - effect)
        token = member.latency.add(expect.kind, latency)
        member.refine = Refine(token, expect.sent, expect.anchor_ms, snapshot.media_key, latency)


def effect_instant(snapshot: PlayerSnapshot, anchor_ms: float) -> float:
    """When a playing player was at `anchor_ms`, from a report of it (never after the report)."""
    return snapshot.at - max(0.0, snapshot.position_ms - anchor_ms) / 1000.0
