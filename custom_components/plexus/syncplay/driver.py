"""The member driver: each local player's commands, timed and measured.

Every local member runs one action at a time (a new one cancels what it was doing). A command
is sent early by the player's measured latency for its kind, and the report that shows its
effect is a new latency sample: for a play or a seek the effect instant comes from the
reported position (report instant minus how far it got past the anchor), so a player that
reports late still gives an exact sample; a pause from where the player's playing trajectory
reached the paused position. What a report cannot date (a player whose positions are whole
seconds, a seek while paused) is dated by its arrival minus the player's report lag: measured
from the position-dated samples, or - for a player whose positions cannot date anything - the
group's, else `default_report_lag_s`. Tolerances widen to the granularity the player's
positions show (`PositionGrain`), and waits to its measured latencies.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
from functools import partial
import logging
import math
import statistics
from typing import Any, Final

from .context import EngineContext
from .interfaces import MediaRef, MemberPlayer, PlayerSnapshot, Unsubscribe
from .latency import LatencyTracker, PositionFix, PositionGrain, near

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
# Waits for a command's effect: at least this, longer for a slow player.
WAIT_S: Final = 5.0
# How long a player may stay buffering an item it loads.
LOAD_MAX_S: Final = 30.0
# A player's report lag cannot be measured when its positions cannot date anything: this much
# uncertainty (half the 50-250 ms range real TV apps show) is added to its expected precision.
UNKNOWN_LAG_MS: Final = 100.0
PRECISION_FLOOR_MS: Final = 10.0


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
    grain: PositionGrain = field(default_factory=PositionGrain)
    fix: PositionFix = field(default_factory=PositionFix)
    # The last playing report since the last command but a pause (dates a pause).
    last_playing: PlayerSnapshot | None = None
    # The last position commanded (a seek target, a load offset): reports of it date nothing.
    target_ms: float | None = None
    # The position a paused seek was seen to reach (until the next command moves it).
    at_target: float | None = None
    coarse_told: bool = False


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
                "expected_precision_ms": self.known_precision_ms(member),
            }
            if full:
                report |= {
                    "player_id": player.player_id,
                    "name": player.name,
                    "capabilities": list(player.capabilities),
                }
            reports[self._ctx.member_id(player.player_id)] = report
        return reports

    def report_lag(self, member: LocalMember) -> float:
        """The member's report lag: measured, else the group's, else the configured one (s)."""
        if member.latency.lag_measured:
            return member.latency.report_lag
        lags = [m.latency.report_lag for m in self.members.values() if m.latency.lag_measured]
        return statistics.median(lags) if lags else self._ctx.config.default_report_lag_s

    def patience(self, member: LocalMember, kind: str | None = None) -> float:
        """How long to wait for the effect of a command of `kind` on this member, seconds."""
        return max(WAIT_S, 2.0 * member.latency.estimate(kind) + self.report_lag(member) + 1.0)

    def expected_precision_ms(self, member: LocalMember) -> float:
        """How close to the others this member can be started, ms (about two deviations).

        A start is off by the player's own jitter plus the error of its play latency estimate
        (the spread of the samples it is made of over the root of their number). The samples'
        spread is taken as the jitter: it also holds what the reports could not date exactly
        (positions in tenths), which nobody can tell apart from it. Whole seconds date nothing
        (a sample is dated by the report's arrival), so the report lag nobody can measure
        (`UNKNOWN_LAG_MS`) is added.
        """
        samples = member.latency.basis("play")
        if len(samples) < 2:
            samples = member.latency.samples()  # (all kinds: they differ, a cautious spread)
        spread = 1000.0 * statistics.pstdev(samples) if len(samples) >= 2 else 0.0
        deviation = spread * math.sqrt(1.0 + 1.0 / max(1, len(samples)))
        precision = max(PRECISION_FLOOR_MS, 2.0 * deviation)
        if member.grain.plausible_ms >= 1000:
            precision += UNKNOWN_LAG_MS
        return round(precision, 1)

    def known_precision_ms(self, member: LocalMember) -> float | None:
        """The member's expected precision once it can be told (None before).

        It takes two latency samples, or positions proven to be whole seconds (nothing it is
        measured can make such a player precise).
        """
        if len(member.latency.samples()) < 2 and member.grain.proven_ms < 1000:
            return None
        return self.expected_precision_ms(member)

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
                anchor = (
                    member.at_target
                    if member.at_target is not None
                    else player.snapshot.position_ms
                )
        elif kind == "pause":
            predicate = lambda s: s.state == "paused"  # noqa: E731
        elif kind == "stop":
            predicate = lambda s: s.state == "stopped"  # noqa: E731
        else:
            predicate = partial(self._seeked, member, position, now)
            anchor = position
        if kind != "pause":
            member.last_playing = None
        if kind != "pause" or player.snapshot.state == "playing":
            member.at_target = None
        member.fix.reset()
        member.target_ms = position if kind == "seek" else member.target_ms
        # Measure only a change the command causes: nothing when already there.
        member.refine = None
        member.expect = None if predicate(player.snapshot) else Expect(kind, now, predicate, anchor)
        member.settle_until = now + 2.0 * member.latency.estimate() + 0.5
        if kind == "seek" and not member.grain.fine:
            # (a coarse player's drift is known only after a few reports)
            member.settle_until += self.report_lag(member)
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

    def _seeked(
        self, member: LocalMember, target: float, sent: float, snapshot: PlayerSnapshot
    ) -> bool:
        """Whether a report shows a seek to `target` sent at `sent`.

        Paused: at the target (to the player's granularity). Playing: past it by no more than
        the time since the seek was sent.
        """
        grain = member.grain.proven_ms  # (what it surely shows: a sample must be right)
        if snapshot.state != "playing":
            return near(snapshot.position_ms, target, SEEK_MATCH_MS, grain)
        past = snapshot.position_ms - target
        return -grain - SEEK_MATCH_MS <= past <= (snapshot.at - sent) * 1000.0 + SEEK_MATCH_MS

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
        patience = 2.0 * member.latency.estimate(expect.kind) + 0.5 + self.report_lag(member)
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
        timeout = max(self._ctx.config.command_timeout_s, self.patience(member))
        # What the player last reported may be overtaken by a command still on its way (a stop
        # just sent): decide on the state after it.
        await self.settle(member)
        for attempt in range(LOAD_ATTEMPTS):
            snapshot = player.snapshot
            if snapshot.media_key != key or snapshot.state == "stopped":
                member.target_ms, member.at_target = position, None
                member.last_playing = None
                member.fix.reset()
                try:
                    await player.play_media(media, key, round(position))
                except Exception as err:  # noqa: BLE001 - any client/server failure
                    return str(err) or type(err).__name__
                member.settle_until = self._ctx.clock.monotonic() + LOAD_MAX_S
                # First a sign of life (it buffers the item), then as long as it buffers.
                if not await self.wait_member(
                    member,
                    lambda s: s.media_key == key and s.state != "stopped",
                    timeout,
                ) or not await self.wait_member(
                    member,
                    lambda s: s.media_key == key and s.state in ("playing", "paused"),
                    LOAD_MAX_S,
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
        if not self.is_at(member, position):
            if not await self.command(member, "seek", position):
                return "the player refused to seek"
            if not await self.wait_seeked(member, position, timeout):
                return "the player did not seek"
            member.at_target = position
        rounds = self._ctx.config.calibration_rounds
        if member.latency.estimate("seek") > 1.0:
            rounds = min(rounds, 1)  # a slow player: every seek costs seconds
        for _ in range(rounds):
            # While paused, a seek away and back costs nothing visible and measures latency.
            for target in (position + CALIBRATION_STEP_MS, position):
                await self.seek_paused(member, target)
        return None

    async def _resolve(self, media: MediaRef) -> str | None:
        if self.resolve_media is None:
            return media.rating_key
        return await self.resolve_media(media)

    # ------------------------------------------------------------------ timed actions

    def is_at(self, member: LocalMember, position: float) -> bool:
        """Whether a paused member is known to be at `position`.

        A report at exactly it, or (positions coarser than that) a seek to it seen to land: a
        report in tenths or whole seconds that happens to equal it says the player is somewhere
        in the tenth or second after it.
        """
        snapshot = member.player.snapshot
        if member.at_target is not None and abs(member.at_target - position) <= 1.0:
            return member.grain.near(snapshot.position_ms, position, PAUSED_TOLERANCE_MS)
        # (exact positions: the very millisecond a seek would send, else members paused a
        # millisecond apart would stay so)
        return member.grain.fine and abs(snapshot.position_ms - round(position)) < 0.5

    def ready(self, member: LocalMember, position: float) -> bool:
        """Whether a member is loaded, paused at `position` (to its granularity), now.

        A seek to `position` still in flight counts when it was sent long enough ago to have
        taken effect (its report may be late).
        """
        snapshot = member.player.snapshot
        if not (
            snapshot.state == "paused"
            and snapshot.media_key is not None
            and snapshot.media_key == member.media_key
        ):
            return False
        if member.grain.near(snapshot.position_ms, position, PAUSED_TOLERANCE_MS):
            return True
        expect = member.expect
        return (
            expect is not None
            and expect.kind == "seek"
            and expect.anchor_ms is not None
            and abs(expect.anchor_ms - position) <= 1.0
            and self._ctx.clock.monotonic() - expect.sent
            > 1.5 * member.latency.estimate("seek") + LATE_S
        )

    async def start(self, member: LocalMember, at: float, position: float) -> None:
        """Start a member loaded paused at `position` at the monotonic instant `at`.

        Whether it is ready is judged when it is due to fire, not when the command arrives:
        the report of its last seek may still be on its way.
        """
        fire = at - member.latency.estimate("play")
        if self._ctx.clock.monotonic() <= fire + LATE_S:
            await self.sleep_until(fire)
            if self.ready(member, position):
                await self.command(member, "play")
                return
        _LOGGER.debug(
            "Sync group %s: %s not ready at its instant (%s, %.0f ms late), catching up",
            self._ctx.config.group,
            member.player.name,
            member.player.snapshot,
            (self._ctx.clock.monotonic() - fire) * 1000.0,
        )
        await self.catch_up(member)  # not ready in time: join where the group is

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
            await self.wait_member(
                member, lambda s: s.state == "paused", self.patience(member, "pause")
            )
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
        if self.is_at(member, position):
            return
        if await self.command(member, "seek", position) and await self.wait_seeked(
            member, position, self.patience(member, "seek")
        ):
            member.at_target = position

    async def wait_seeked(self, member: LocalMember, position: float, limit: float) -> bool:
        """Until the seek just sent shows: at its target, or near it in a later report.

        An earlier report near the target does not count: the next command would queue behind
        the seek on the player and its latency sample would include the seek's.
        """
        expect = member.expect
        grain = member.grain
        if expect is None:  # already there when sent: nothing to tell the effect by
            return await self.wait_member(
                member, lambda s: grain.near(s.position_ms, position, SEEK_NEAR_MS), limit
            )
        return await self.wait_member(
            member,
            lambda s: (
                member.expect is not expect
                or (s.at > expect.sent and grain.near(s.position_ms, position, SEEK_NEAR_MS))
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
            and await self.wait_member(
                member, lambda s: s.state == "paused", self.patience(member, "pause")
            )
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
        """Latency samples from the reports that show a command's effect.

        Dated by the position when the player's positions can date (see the module text),
        else by the report's arrival minus its report lag.
        """
        grain = member.grain
        if snapshot.state in ("playing", "paused") and grain.observe(
            snapshot.position_ms, member.target_ms
        ):
            self._tell_precision(member)
        if snapshot.state == "playing":
            member.fix.add(snapshot.position_ms, snapshot.at, grain.plausible_ms)
        else:
            member.fix.reset()
        refine = member.refine
        if refine is not None:
            if (
                snapshot.state != "playing"
                or snapshot.media_key != refine.media_key
                or snapshot.at - refine.sent > REFINE_S
                or not grain.fine
            ):
                member.refine = None
            else:
                effect = effect_instant(snapshot, refine.anchor_ms)
                if refine.sent <= effect and effect - refine.sent < refine.latency:
                    refine.latency = effect - refine.sent
                    member.latency.refine(refine.token, refine.latency)
        last_playing = member.last_playing
        self._measure_expected(member, snapshot, last_playing)
        if snapshot.state == "playing" and (member.expect is None or member.expect.kind == "pause"):
            member.last_playing = snapshot

    def _measure_expected(
        self, member: LocalMember, snapshot: PlayerSnapshot, last_playing: PlayerSnapshot | None
    ) -> None:
        grain = member.grain
        datable = grain.plausible_ms <= 100
        half = grain.plausible_ms / 2.0 if grain.plausible_ms > 1 else 0.0
        expect = member.expect
        if expect is None:
            return
        if snapshot.at - expect.sent > max(EXPECT_MAX_S, self.patience(member, expect.kind)):
            member.expect = None  # the effect never showed: no sample
            return
        if not expect.predicate(snapshot):
            return
        member.expect = None
        arrival_dated = max(0.0, snapshot.at - self.report_lag(member) - expect.sent)
        if expect.kind == "pause" and datable and last_playing is not None:
            # where its playing trajectory reached the paused position
            effect = last_playing.at + (snapshot.position_ms - last_playing.position_ms) / 1000.0
            if expect.sent <= effect <= snapshot.at:
                member.latency.add_report_lag(snapshot.at - effect)
                member.latency.add(expect.kind, effect - expect.sent)
            else:
                member.latency.add(expect.kind, arrival_dated)
            return
        if expect.anchor_ms is None or snapshot.state != "playing" or not datable:
            member.latency.add(expect.kind, arrival_dated)
            return
        effect = effect_instant(snapshot, expect.anchor_ms, half)
        if effect < expect.sent:
            return  # the position moved for another reason: no sample
        latency = effect - expect.sent
        member.latency.add_report_lag(snapshot.at - effect)
        token = member.latency.add(expect.kind, latency)
        if grain.fine:
            member.refine = Refine(
                token, expect.sent, expect.anchor_ms, snapshot.media_key, latency
            )

    def _tell_precision(self, member: LocalMember) -> None:
        """Show what a member's reports resolve (its granularity is better known now).

        Tell once that its positions are too coarse to start it precisely.
        """
        if member.grain.proven_ms >= 1000 and not member.coarse_told:
            member.coarse_told = True
            self.event(
                "member_imprecise",
                member,
                granularity_ms=member.grain.proven_ms,
                expected_precision_ms=self.expected_precision_ms(member),
            )
        self._ctx.update()


def effect_instant(snapshot: PlayerSnapshot, anchor_ms: float, half_ms: float = 0.0) -> float:
    """When a playing player was at `anchor_ms`, from a report of it (never after the report).

    `half_ms`: half the granularity of its positions (a truncated position is that much low
    on average).
    """
    return snapshot.at - max(0.0, snapshot.position_ms + half_ms - anchor_ms) / 1000.0
