"""Keeping the local members on the group's timeline, and following what happens on them.

Drift control: a few times per `drift_check_interval_s` every settled local member's reported
position is compared with the group's; one more than `drift_threshold_ms` off is seeked back
into step (at most once per interval). A member that reports a position that is not a finite
number is left alone (its drift is unknown) rather than corrected towards nonsense.

Member reports: a member that buffers makes the group wait (unless `wait_for_buffering` is
off) and, once it is back, brings it in step and resumes everyone; in `follow` mode a pause,
a play or a big seek done on a player's own remote becomes a group command.
"""

import asyncio
from functools import partial
import math
from typing import Final, Protocol

from .commands import CommandScheduler
from .context import EngineContext
from .driver import LocalMember, MemberDriver
from .interfaces import PlayerSnapshot
from .model import MAX_POSITION_MS, CommandResult

REMOTE_SEEK_MS: Final = 2500.0


class GroupControl(Protocol):
    """The group commands a member's own remote can trigger (the engine's public ones)."""

    async def pause(self) -> CommandResult:
        """Pause every member."""
        ...

    async def resume(self) -> CommandResult:
        """Resume every member."""
        ...

    async def seek(self, position_ms: float) -> CommandResult:
        """Seek every member."""
        ...


class DriftControl:
    """Drift correction and reactions to what local members report."""

    def __init__(
        self,
        ctx: EngineContext,
        driver: MemberDriver,
        commands: CommandScheduler,
        group: GroupControl,
    ) -> None:
        """Drift control of the engine sharing `ctx`."""
        self._ctx = ctx
        self._driver = driver
        self._commands = commands
        self._group = group

    async def loop(self) -> None:
        """Check the drift a few times per interval."""
        while True:
            await asyncio.sleep(self._ctx.config.drift_check_interval_s / 3.0)
            self.check()

    def check(self) -> None:
        """Compare every settled member with the group; correct those too far off."""
        ctx = self._ctx
        session = ctx.session
        now = ctx.clock.monotonic()
        changed = False
        for member in self._driver.members.values():
            snapshot = member.player.snapshot
            if session is None or session.state not in ("playing", "paused"):
                member.drift_ms = None
                continue
            if (
                member.busy
                or now < member.settle_until
                or snapshot.state not in ("playing", "paused")
            ):
                continue
            if snapshot.state != ("playing" if session.state == "playing" else "paused"):
                continue
            drift, uncertainty = self._drift(member, now)
            if not math.isfinite(drift):
                member.drift_ms = None  # a nonsensical report: nothing to correct towards
                continue
            member.drift_ms = drift
            changed = True
            # Never "correct" what the member's reports cannot resolve.
            if (
                abs(drift) > ctx.config.drift_threshold_ms + uncertainty
                and now - member.last_check >= ctx.config.drift_check_interval_s
            ):
                member.last_check = now
                self._driver.event("drift_corrected", member, drift_ms=drift)
                if session.state == "playing":
                    target = session.position_at(now + member.latency.estimate("seek"))
                    self._driver.run(member, partial(self._correct, member, target))
                else:
                    self._driver.run(
                        member, partial(self._driver.seek_paused, member, session.position_ms)
                    )
        if changed:
            ctx.update()

    def _drift(self, member: LocalMember, now: float) -> tuple[float, float]:
        """A member's drift from the group at `now`, and how far off that may be, ms.

        Exact positions: the last report, projected. Truncated ones: every report since the
        member last jumped, narrowed together (`PositionFix`), and the leftover uncertainty.
        """
        session = self._ctx.session
        assert session is not None
        snapshot = member.player.snapshot
        grain = member.grain.plausible_ms
        group = session.position_at(now)
        if grain <= 1:
            return snapshot.position_at(now) - group, 0.0
        if snapshot.state == "playing":
            estimate = member.fix.position_at(now)
            if estimate is not None:
                return estimate - group, member.fix.uncertainty_ms
        return snapshot.position_at(now) + grain / 2.0 - group, grain / 2.0

    async def _correct(self, member: LocalMember, position: float) -> None:
        await self._driver.command(member, "seek", position)

    def on_report(self, member: LocalMember, snapshot: PlayerSnapshot) -> None:
        """A member reported: measure, then react to buffering and (in follow mode) remotes."""
        driver = self._driver
        driver.measure(member, snapshot)
        member.changed.set()
        ctx = self._ctx
        if not ctx.running:
            return
        session = ctx.session
        settled = member.busy == 0 and ctx.clock.monotonic() >= member.settle_until
        if session is None or not settled:
            return
        member_id = ctx.member_id(member.player.player_id)
        if snapshot.state == "buffering" and session.state == "playing":
            if ctx.config.wait_for_buffering and not member.waiting:
                member.waiting = True
                ctx.tasks.spawn(self._commands.timed("pause", {"wait": member_id}))
            return
        if member.waiting and snapshot.state in ("playing", "paused"):
            member.waiting = False
            if session.state == "waiting":
                ctx.tasks.spawn(self._recover_waiting(member))
            return
        if not ctx.config.follow:
            return
        if session.state == "playing" and snapshot.state == "paused":
            ctx.tasks.spawn(self._group.pause())
        elif session.state == "paused" and snapshot.state == "playing":
            ctx.tasks.spawn(self._group.resume())
        elif session.state == "playing" and snapshot.state == "playing":
            expected = session.position_at(snapshot.at)
            if abs(snapshot.position_ms - expected) > REMOTE_SEEK_MS and math.isfinite(
                snapshot.position_ms
            ):
                target = snapshot.position_ms + self._commands.start_lead(0.0) * 1000.0
                ctx.tasks.spawn(self._group.seek(min(max(0.0, target), MAX_POSITION_MS)))

    async def _recover_waiting(self, member: LocalMember) -> None:
        """The member that made the group wait is back: pause it in place, then resume all."""
        ctx = self._ctx
        if ctx.session is None:
            return
        await self._driver.run_and_wait(member, partial(self._driver.catch_up, member))
        if ctx.session is not None and ctx.session.state == "waiting":
            await self._group.resume()
