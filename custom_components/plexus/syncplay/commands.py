"""Group commands: two-phase start, timed pause/seek/stop, and the order they apply in.

A play is two-phase: the leader broadcasts `prepare` (every instance loads its members paused
at the position and answers `ready`), then `start` with an instant on the leader's wall clock
far enough ahead for every member (twice the worst round trip plus the slowest member's
latency plus a margin). Pause, seek, stop and resume are one `start`/`pause`/`seek`/`stop`
with such an instant. Every instance applies commands in (generation, leader) order, so two
leaders at once end in the same state everywhere; a hello showing a newer session than ours
joins it (late join, rejoin).

A slow player may take longer to load than `ready_timeout_s`: an instance still preparing says
so every `PROGRESS_S` (a `ready` with `pending`), and the leader waits `ready_timeout_s` from
the last such sign of progress, up to `READY_MAX_S` in all.
"""

import asyncio
import contextlib
from dataclasses import replace
from functools import partial
import itertools
from typing import Any, Final

from .clock import ClockSync
from .context import EngineContext
from .driver import LocalMember, MemberDriver
from .interfaces import MediaRef
from .model import CommandResult, GroupStateName, Session, number, position
from .peers import Membership
from .protocol import Message

COMMANDS = frozenset({"prepare", "start", "pause", "seek", "stop"})
PROGRESS_S: Final = 2.0
READY_MAX_S: Final = 60.0


class CommandScheduler:
    """Lead commands from this instance and follow everybody's."""

    def __init__(
        self, ctx: EngineContext, clocks: ClockSync, peers: Membership, driver: MemberDriver
    ) -> None:
        """Commands of the engine sharing `ctx`."""
        self._ctx = ctx
        self._clocks = clocks
        self._peers = peers
        self._driver = driver
        self._gen = 0
        self._last: tuple[int, str, str] = (0, "", "")
        self._cids = itertools.count(1)
        self._ready: dict[str, dict[str, dict[str, Any]]] = {}
        self._ready_changed = asyncio.Event()
        self._progress: dict[str, float] = {}

    # ------------------------------------------------------------------ leading

    async def play(self, media: MediaRef, position_ms: float) -> CommandResult:
        """Two-phase start of `media` at `position_ms` on every member, this instance leading."""
        ctx = self._ctx
        cid, gen = self._new_command()
        expected = {ctx.instance_id} | self._peers.with_members()
        self._ready[cid] = {}
        body = {"cid": cid, "gen": gen, "media": media.as_dict(), "position_ms": position_ms}
        await self.broadcast("prepare", body)
        began = ctx.clock.monotonic()
        while not expected <= set(self._ready[cid]):
            last = max(began, self._progress.get(cid, began))
            remaining = (
                min(last + ctx.config.ready_timeout_s, began + READY_MAX_S) - ctx.clock.monotonic()
            )
            if remaining <= 0:
                break
            self._ready_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._ready_changed.wait()
        self._progress.pop(cid, None)
        ready = self._ready.pop(cid, {})
        failed: dict[str, str] = {}
        latencies = [self._driver.max_latency()]
        for report in ready.values():
            for member_id, item in report.items():
                if not isinstance(item, dict) or not item.get("ok"):
                    failed[member_id] = str(item.get("error") if isinstance(item, dict) else "")
                elif (latency := number(item.get("latency_ms"))) is not None:
                    latencies.append(latency / 1000.0)
        for instance in expected - set(ready):
            peer = self._peers.peers.get(instance)
            for member_id in peer.members if peer else ():
                failed.setdefault(member_id, "not ready in time")
        at = ctx.clock.now() + self.start_lead(max(latencies))
        await self.broadcast(
            "start",
            {
                "cid": cid,
                "gen": gen,
                "at": at,
                "position_ms": position_ms,
                "resume": False,
                "media": media.as_dict(),
            },
        )
        return CommandResult(cid, failed)

    async def timed(self, kind: str, extra: dict[str, Any]) -> CommandResult:
        """A one-phase command for every member at one instant, this instance leading."""
        ctx = self._ctx
        cid, gen = self._new_command()
        at = ctx.clock.now() + self.start_lead(self._max_known_latency())
        body = {"cid": cid, "gen": gen, "at": at, **extra}
        if kind == "pause" and ctx.session is not None:
            # (whole milliseconds: the position every member is put at and Plex reports)
            body["position_ms"] = round(ctx.session.position_at(ctx.wall_to_monotonic(at)))
        await self.broadcast(kind, body)
        return CommandResult(cid)

    async def broadcast(self, kind: str, body: dict[str, Any]) -> None:
        """Publish a command and act on it here too."""
        ctx = self._ctx
        await ctx.publish(kind, body)
        now = ctx.clock.now()
        self.receive(Message(ctx.config.group, ctx.instance_id, 0, now, kind, body))

    def start_lead(self, max_latency: float) -> float:
        """How far ahead a command's instant lies, seconds."""
        config = self._ctx.config
        lead = 2.0 * self._clocks.max_delay() + max_latency + config.start_margin_s
        return max(config.min_start_lead_s, lead)

    def _new_command(self) -> tuple[str, int]:
        self._gen += 1
        return f"{self._ctx.instance_id}:{next(self._cids)}", self._gen

    def _max_known_latency(self) -> float:
        return max([self._driver.max_latency(), *self._peers.latencies()])

    # ------------------------------------------------------------------ following

    def receive(self, message: Message) -> None:
        """A command (from anyone, us included); ValueError when its body is unusable."""
        check_command(message)
        self._ctx.tasks.spawn(self._on_command(message))

    def on_ready(self, sender: str, body: dict[str, Any]) -> None:
        """An instance reports its members ready (or not), or still preparing (`pending`)."""
        cid = str(body.get("cid"))
        if cid not in self._ready:
            return
        if body.get("pending"):
            self._progress[cid] = self._ctx.clock.monotonic()
        else:
            self._ready[cid][sender] = dict(body.get("members") or {})
        self._ready_changed.set()

    def _accept(self, message: Message) -> bool:
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
        if not self._accept(message):
            return
        ctx = self._ctx
        body = message.body
        cid, gen, leader = str(body["cid"]), int(body["gen"]), message.sender
        session = ctx.session
        if message.type == "prepare":
            media = MediaRef.from_dict(body["media"])
            position = float(body["position_ms"])
            ctx.session = Session(
                gen, cid, leader, media, "preparing", position, ctx.clock.monotonic()
            )
            ctx.event("preparing", {"command_id": cid, "leader": leader, **media.as_dict()})
            ctx.update()
            await self._prepare_all(cid, media, position, leader)
            return
        at = await self._clocks.to_monotonic(leader, float(body["at"]))
        if message.type == "start":
            start_media = MediaRef.from_dict(body["media"]) if body.get("media") else None
            position = float(body["position_ms"])
            ctx.session = Session(gen, cid, leader, start_media, "playing", position, at)
            self._driver.run_timed("start", at, position)
            ctx.event(
                "resumed" if body.get("resume") else "started",
                {
                    "command_id": cid,
                    "leader": leader,
                    "position_ms": position,
                    "at": at - ctx.clock.monotonic() + ctx.clock.now(),
                },
            )
        elif message.type == "pause":
            if session is None:
                return
            position = float(body.get("position_ms", session.position_at(at)))
            state: GroupStateName = "waiting" if body.get("wait") else "paused"
            ctx.session = replace(
                session, gen=gen, cid=cid, leader=leader, state=state, position_ms=position, at=at
            )
            wait = body.get("wait")
            self._driver.run_timed("pause", at, position, skip=wait if wait else None)
            ctx.event(
                "waiting" if wait else "paused",
                {"command_id": cid, "leader": leader, "position_ms": position}
                | ({"member_id": wait} if wait else {}),
            )
        elif message.type == "seek":
            if session is None:
                return
            position = float(body["position_ms"])
            ctx.session = replace(
                session, gen=gen, cid=cid, leader=leader, position_ms=position, at=at
            )
            self._driver.run_timed("seek", at, position)
            ctx.event("seeked", {"command_id": cid, "leader": leader, "position_ms": position})
        else:  # stop
            ctx.session = None
            self._driver.run_timed("stop", at, 0.0)
            ctx.event("stopped", {"command_id": cid, "leader": leader})
        ctx.update()

    async def _prepare_all(self, cid: str, media: MediaRef, position: float, leader: str) -> None:
        ctx = self._ctx
        driver = self._driver
        results: dict[str, dict[str, Any]] = {}

        async def prepare(member: LocalMember) -> None:
            error = await driver.load(member, media, position)
            if error is None:
                member.ready_cid = cid
            else:
                driver.event("member_failed", member, error=error)
            results[ctx.member_id(member.player.player_id)] = {
                "ok": error is None,
                "error": error,
                "latency_ms": round(member.latency.estimate("play") * 1000.0, 1),
            }

        members = list(driver.members.values())
        for member in members:
            member.ready_cid = None
            driver.run(member, partial(prepare, member))
        progress = ctx.tasks.spawn(self._tell_progress(cid, leader))
        try:
            await asyncio.gather(
                *(m.task for m in members if m.task is not None), return_exceptions=True
            )
        finally:
            progress.cancel()
        if leader == ctx.instance_id:
            self._ready.setdefault(cid, {})[ctx.instance_id] = results
            self._ready_changed.set()
        else:
            await ctx.publish("ready", {"cid": cid, "members": results})

    async def _tell_progress(self, cid: str, leader: str) -> None:
        """While this instance prepares, tell the leader every `PROGRESS_S` it is not stuck."""
        ctx = self._ctx
        while True:
            await asyncio.sleep(PROGRESS_S)
            if leader == ctx.instance_id:
                self.on_ready(ctx.instance_id, {"cid": cid, "pending": True})
            else:
                await ctx.publish("ready", {"cid": cid, "pending": True})

    def adopt(self, sender: str, data: dict[str, Any]) -> None:
        """A peer's hello shows a session (checked by `check_session`): join it when newer."""
        self._ctx.tasks.spawn(self._adopt(sender, data))

    async def _adopt(self, sender: str, data: dict[str, Any]) -> None:
        ctx = self._ctx
        gen, state = int(data["gen"]), str(data["state"])
        self._gen = max(self._gen, gen)
        if gen <= self._last[0] or state not in ("playing", "paused"):
            return
        self._last = (gen, str(data["cid"]), str(data["leader"]))
        media = MediaRef.from_dict(data["media"])
        at = await self._clocks.to_monotonic(sender, float(data["at"]))
        ctx.session = Session(
            gen,
            str(data["cid"]),
            str(data["leader"]),
            media,
            "playing" if state == "playing" else "paused",
            float(data["position_ms"]),
            at,
        )
        ctx.event("joined_session", {"command_id": data["cid"], "leader": data["leader"]})
        for member in self._driver.members.values():
            self._driver.run(member, partial(self._driver.catch_up, member))
        ctx.update()


def check_command(message: Message) -> None:
    """Raise ValueError when a command body lacks what its handler reads."""
    body = message.body
    if not isinstance(body.get("cid"), str) or not isinstance(body.get("gen"), int):
        raise ValueError("command without cid/gen")  # noqa: TRY004
    if message.type == "prepare":
        MediaRef.from_dict(body.get("media"))
    elif number(body.get("at")) is None:
        raise ValueError("command without an instant")
    if message.type in ("prepare", "start", "seek") and position(body.get("position_ms")) is None:
        raise ValueError("command without a position")
    if message.type == "pause" and "position_ms" in body and position(body["position_ms"]) is None:
        raise ValueError("pause at an impossible position")
    if message.type == "start" and body.get("media") is not None:
        MediaRef.from_dict(body["media"])
