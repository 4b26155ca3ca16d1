"""Sync-play engine over the in-process bus with fake players: lifecycle, membership, clocks."""

import asyncio
from collections.abc import AsyncIterator, Callable
import logging
import math
import time
from typing import Any

import pytest

from custom_components.plexus.syncplay import (
    InvalidPositionError,
    LocalBus,
    MediaRef,
    MessageCodec,
    NotRunningError,
    PlayerSnapshot,
    SyncConfig,
    SyncEngine,
    SyncError,
)
from custom_components.plexus.syncplay.clock import MAX_SAMPLES
from custom_components.plexus.syncplay.interfaces import MessageCallback, PlayerStateName

SECRET = "local-secret"


class OffsetClock:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class FakePlayer:
    """Effects land `delay` seconds after each command."""

    def __init__(self, player_id: str, delay: float = 0.03) -> None:
        self.player_id = player_id
        self.name = player_id.title()
        self.capabilities = ("playback", "timeline")
        self.delay = delay
        self.fail = False
        self.snapshot = PlayerSnapshot("stopped", None, 0.0, time.monotonic())
        self.commands: list[str] = []
        self._listeners: list[Callable[[PlayerSnapshot], None]] = []

    def add_listener(self, callback: Callable[[PlayerSnapshot], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def set(
        self, state: PlayerStateName, key: str | None = None, position: float | None = None
    ) -> None:
        now = time.monotonic()
        self.snapshot = PlayerSnapshot(
            state,
            key if key is not None else self.snapshot.media_key,
            self.snapshot.position_at(now) if position is None else position,
            now,
        )
        for callback in list(self._listeners):
            callback(self.snapshot)

    def _later(self, *args: Any) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.set, *args)

    def report(self, state: PlayerStateName, key: str | None, position: float, at: float) -> None:
        """A report received at `at` (a client's timeline, however late it tells)."""
        self.snapshot = PlayerSnapshot(state, key, position, at)
        for callback in list(self._listeners):
            callback(self.snapshot)

    async def _command(self, name: str) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} refused {name}")
        self.commands.append(name)

    async def play_media(self, media: MediaRef, media_key: str, offset_ms: int) -> None:
        await self._command("play_media")
        self._later("playing", media_key, offset_ms)

    async def seek(self, position_ms: int) -> None:
        await self._command("seek")
        self._later(self.snapshot.state, None, position_ms)

    async def pause(self) -> None:
        await self._command("pause")
        self._later("paused")

    async def play(self) -> None:
        await self._command("play")
        self._later("playing")

    async def stop(self) -> None:
        await self._command("stop")
        self._later("stopped")


class LaggingPlayer(FakePlayer):
    """Like a real client: a command acts on the device's actual state (pause does nothing
    unless it plays, play only resumes a paused item) and every effect is reported
    `report_delay` after it happened, with the position at the moment of the report."""

    def __init__(self, player_id: str, delay: float = 0.03, report_delay: float = 0.2) -> None:
        super().__init__(player_id, delay)
        self.report_delay = report_delay
        self.real = self.snapshot

    def _later(self, *args: Any) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.effect, *args)

    def effect(
        self,
        state: PlayerStateName | None,
        key: str | None = None,
        position: float | None = None,
    ) -> None:
        """A change on the device (None: a seek); the engine hears of it `report_delay` later."""
        real, now = self.real, time.monotonic()
        if state == "paused" and real.state not in ("playing", "buffering"):
            return
        if state == "playing" and key is None and real.state != "paused":
            return
        if state is None:
            if real.state == "stopped":
                return
            state = real.state
        self.real = PlayerSnapshot(
            state,
            key if key is not None else real.media_key,
            real.position_at(now) if position is None else position,
            now,
        )
        asyncio.get_running_loop().call_later(self.report_delay, self._report, self.real)

    def _report(self, effect: PlayerSnapshot) -> None:
        now = time.monotonic()
        self.report(effect.state, effect.media_key, effect.position_at(now), now)

    async def seek(self, position_ms: int) -> None:
        await self._command("seek")
        self._later(None, None, position_ms)


class QuietPlayer(FakePlayer):
    """Takes commands; what it reports is up to the test (`report`)."""

    def _later(self, *args: Any) -> None:
        pass


class CuttableBus:
    """A LocalBus view that can go silent (a home losing its connection without a goodbye)."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.cut = False
        # Hears nothing but still sends (its subscriptions not restored yet after a reconnect).
        self.deaf = False

    async def publish(self, topic: str, payload: bytes) -> None:
        if not self.cut:
            await self.bus.publish(topic, payload)

    async def subscribe(self, topic_filter: str, callback: MessageCallback) -> Callable[[], None]:
        def deliver(topic: str, payload: bytes) -> None:
            if not self.cut and not self.deaf:
                callback(topic, payload)

        return await self.bus.subscribe(topic_filter, deliver)


class Node:
    def __init__(
        self,
        name: str,
        offset: float,
        bus: LocalBus,
        players: list[FakePlayer] | None = None,
        **options: Any,
    ) -> None:
        self.clock = OffsetClock(offset)
        self.transport = CuttableBus(bus)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.updates = 0
        self.explode = False  # the host's update callback raises while set
        options = {"heartbeat_s": 0.2, "status_interval_s": 0.2, "calibration_rounds": 0} | options
        self.engine = SyncEngine(
            SyncConfig("den", SECRET, name, name.upper(), **options),
            self.clock,
            self.transport,
            on_event=lambda kind, data: self.events.append((kind, data)),
            on_update=self._updated,
        )
        self.players = players or [FakePlayer(f"{name}-tv"), FakePlayer(f"{name}-pc", 0.05)]
        for player in self.players:
            self.engine.add_member(player)

    def _updated(self) -> None:
        self.updates += 1
        if self.explode:
            raise RuntimeError("the host's entity update failed")

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[Node, Node]]:
    bus = LocalBus()
    a, b = Node("a", 2.0, bus), Node("b", -2.0, bus)
    await a.engine.start()
    await b.engine.start()
    await wait_for(lambda: a.engine.state.homes == 2 and b.engine.state.homes == 2)
    await wait_for(lambda: a.engine.clock_offset("b") is not None)
    await wait_for(lambda: b.engine.clock_offset("a") is not None)
    yield a, b
    await a.engine.shutdown()
    await b.engine.shutdown()


def spread(*nodes: Node) -> float:
    positions = [p.snapshot.position_ms for n in nodes for p in n.players]
    return max(positions) - min(positions)


def states(*nodes: Node) -> set[str]:
    return {p.snapshot.state for n in nodes for p in n.players}


async def test_lifecycle_and_membership(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    offset = a.engine.clock_offset("b")
    assert offset is not None
    assert abs(offset + 4.0) < 0.01
    assert a.engine.clock_offset("a") == 0.0
    assert a.engine.clock_offset("nobody") is None
    state = a.engine.state
    assert state.state == "idle"
    assert not state.in_sync
    assert len(state.members) == 4
    remote = next(m for m in state.members if not m.local)
    assert remote.home == "B"
    assert remote.name
    assert remote.capabilities == ("playback", "timeline")
    assert state.clock_offset_ms == 0.0  # the reference is "a" itself (lowest id, no leader)
    assert b.engine.state.clock_offset_ms == pytest.approx(-4000.0, abs=10)

    result = await a.engine.play(MediaRef("7"), 1000)
    assert result.failed == {}
    await wait_for(lambda: states(a, b) == {"playing"})
    await wait_for(lambda: b.engine.state.state == "playing")
    assert b.engine.state.clock_offset_ms == pytest.approx(-4000.0, abs=10)
    assert a.engine.latency("a-tv") > 0

    extra = FakePlayer("b-phone")
    b.engine.add_member(extra)
    b.engine.add_member(extra)  # twice: no change
    await wait_for(lambda: len(a.engine.state.members) == 5)
    b.engine.remove_member("b-phone")
    b.engine.remove_member("b-phone")
    await wait_for(lambda: len(a.engine.state.members) == 4)
    assert a.kinds().count("member_left") == 1
    assert a.updates > 0

    await a.engine.start()  # already running: nothing happens
    await b.engine.reconnected()
    await a.engine.stop()
    await wait_for(lambda: states(a, b) == {"stopped"})
    await wait_for(lambda: b.engine.state.state == "idle")

    await b.engine.shutdown()
    await wait_for(lambda: a.engine.state.homes == 1)
    assert not b.engine.running
    with pytest.raises(NotRunningError):
        await b.engine.pause()
    await b.engine.reconnected()  # not running: ignored


async def test_silent_home_expires_and_comes_back() -> None:
    bus = LocalBus()
    a = Node("a", 0.0, bus, heartbeat_s=0.1, expire_after_s=0.4)
    b = Node("b", 1.0, bus, heartbeat_s=0.1, expire_after_s=0.4)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2)
        b.transport.cut = True
        await wait_for(lambda: a.engine.state.homes == 1, 3)
        assert a.kinds().count("member_left") == 2
        b.transport.cut = False
        await wait_for(lambda: a.engine.state.homes == 2, 3)
        assert a.kinds().count("member_joined") == 6  # two local at start, two remote twice
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


async def test_clock_jump_triggers_a_resync(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.clock.offset += 3.0
    a.engine._check_clock_jump()
    assert "clock_jump" in a.kinds()

    def resynced(node: Node, peer: str, truth: float) -> bool:
        offset = node.engine.clock_offset(peer)
        return offset is not None and abs(offset - truth) < 0.01

    await wait_for(lambda: resynced(b, "a", 7.0) and resynced(a, "b", -7.0))


async def test_bad_bodies_are_counted_not_acted_on(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    forger = MessageCodec("den", SECRET, "c", OffsetClock(0.0))
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("prepare", {"cid": "c:1", "gen": 5, "position_ms": 0}),
        ("prepare", {"cid": "c:1", "gen": 5, "media": {"rating_key": "1"}}),
        ("start", {"cid": "c:1", "gen": 5, "position_ms": 0}),
        ("start", {"cid": "c:1", "gen": 5, "at": 1.0, "position_ms": 0, "media": 3}),
        ("seek", {"cid": 1, "gen": 5}),
        ("hello", {"home": "C", "session": {"gen": 1}}),
        ("time_req", {}),
    ]
    for kind, body in bodies:
        await a.transport.publish("plexus/sync/den/all", forger.encode(kind, body))
    await wait_for(lambda: b.engine.codec.dropped["malformed"] == len(bodies))
    await a.transport.publish("plexus/sync/den/all", forger.encode("whatever", {}))
    await a.transport.publish("plexus/sync/den/to/zz", forger.encode("stop", {}, to="zz"))
    await asyncio.sleep(0.05)
    assert b.engine.codec.dropped["malformed"] == len(bodies)
    assert states(a, b) == {"stopped"}


async def test_a_hello_member_that_is_not_an_object_never_joins(nodes: tuple[Node, Node]) -> None:
    """A signed hello listing members as a number, a string and a list besides one real member,
    sent three times: the real member joins once, the others are never announced (they used to
    'join' again with every hello)."""
    _a, b = nodes
    forger = MessageCodec("den", SECRET, "c", OffsetClock(0.0))
    members = {"c/tv": {"name": "TV"}, "c/odd": 5, "c/text": "tv", "c/list": [1]}
    for _ in range(3):
        await b.transport.publish(
            "plexus/sync/den/all", forger.encode("hello", {"home": "C", "members": members})
        )
    await wait_for(lambda: "c" in b.engine.peers.peers)
    await asyncio.sleep(0.1)
    joined = [data["member_id"] for kind, data in b.events if kind == "member_joined"]
    assert joined.count("c/tv") == 1
    assert not {"c/odd", "c/text", "c/list"} & set(joined)
    assert set(b.engine.peers.peers["c"].members) == {"c/tv"}


async def test_time_exchanges_with_non_numbers_are_counted_not_answered(
    nodes: tuple[Node, Node],
) -> None:
    """Signed time_req/time_resp whose instants are strings ("nan", "1e999", "5") or missing.

    (Before: float() took the strings, so "inf" instants could reach a clock estimate.)
    """
    a, b = nodes
    forger = MessageCodec("den", SECRET, "c", OffsetClock(0.0))
    answers: list[bytes] = []
    await b.transport.subscribe("plexus/sync/den/to/c", lambda _t, p: answers.append(p))
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("time_req", {"t0": "nan"}),
        ("time_req", {"t0": "1e999"}),
        ("time_resp", {"t0": 1.0, "t1": "inf", "t2": "inf"}),
        ("time_resp", {"t0": "5", "t1": 1.0, "t2": 1.0}),
        ("time_resp", {"t0": 1.0, "t1": 1.0}),
    ]
    for kind, body in bodies:
        await a.transport.publish("plexus/sync/den/all", forger.encode(kind, body))
    await wait_for(lambda: b.engine.codec.dropped["malformed"] == len(bodies))
    await a.transport.publish("plexus/sync/den/all", forger.encode("time_req", {"t0": 1.5}))
    await wait_for(lambda: len(answers) == 2)  # a and b answer the one good request
    assert b.engine.codec.dropped["malformed"] == len(bodies)


async def test_a_failing_player_is_reported_and_the_rest_go_on(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    b.players[0].fail = True
    result = await a.engine.play(MediaRef("7"), 0)
    assert set(result.failed) == {"b/b-tv"}
    await wait_for(lambda: {p.snapshot.state for p in [*a.players, b.players[1]]} == {"playing"})
    assert b.players[0].snapshot.state == "stopped"
    assert "member_failed" in b.kinds()
    b.players[0].fail = False


async def test_unresolvable_media_and_pause_resume_seek(nodes: tuple[Node, Node]) -> None:
    a, b = nodes

    async def resolve(media: MediaRef) -> str | None:
        return None if media.rating_key == "404" else f"local-{media.rating_key}"

    b.engine.driver.resolve_media = resolve
    result = await a.engine.play(MediaRef("404"), 0)
    assert set(result.failed) == {"b/b-tv", "b/b-pc"}
    await a.engine.stop()
    await wait_for(lambda: states(a, b) == {"stopped"})

    await b.engine.play(MediaRef("9"), 5000)
    await wait_for(lambda: states(a, b) == {"playing"})
    assert {p.snapshot.media_key for p in b.players} == {"local-9"}
    await a.engine.pause()
    await wait_for(lambda: states(a, b) == {"paused"})
    await wait_for(lambda: spread(a, b) < 2)
    await b.engine.seek(60_000)
    await wait_for(lambda: {p.snapshot.position_ms for n in (a, b) for p in n.players} == {60_000})
    assert a.engine.state.state == "paused"
    await b.engine.resume()
    await wait_for(lambda: states(a, b) == {"playing"})
    await wait_for(lambda: a.engine.state.in_sync)


async def test_without_waiting_a_buffering_member_is_resynced() -> None:
    bus = LocalBus()
    a = Node("a", 0.3, bus, wait_for_buffering=False, drift_check_interval_s=0.3)
    b = Node("b", -0.3, bus, wait_for_buffering=False, drift_check_interval_s=0.3)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
        await a.engine.play(MediaRef("1"), 0)
        await wait_for(lambda: states(a, b) == {"playing"})
        await asyncio.sleep(1.0)
        player = b.players[0]
        player.set("buffering")
        await asyncio.sleep(0.5)
        assert a.engine.state.state == "playing"
        player.set("playing")
        await wait_for(lambda: "drift_corrected" in b.kinds(), 3)
        await wait_for(lambda: b.engine.state.in_sync, 3)
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


async def test_follow_mode_propagates_a_remote_seek_and_resume() -> None:
    bus = LocalBus()
    a = Node("a", 0.0, bus, follow=True)
    b = Node("b", 1.5, bus, follow=True)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
        await a.engine.play(MediaRef("1"), 0)
        await wait_for(lambda: states(a, b) == {"playing"})
        await asyncio.sleep(1.0)
        b.players[1].set("playing", None, 600_000)  # someone seeks on the remote
        await wait_for(lambda: "seeked" in a.kinds(), 3)
        await wait_for(
            lambda: all(p.snapshot.position_at(time.monotonic()) > 590_000 for p in a.players), 3
        )
        await a.engine.pause()
        await wait_for(lambda: states(a, b) == {"paused"})
        await asyncio.sleep(1.0)
        b.players[0].set("playing")  # the play button on the remote
        await wait_for(lambda: "resumed" in a.kinds(), 3)
        await wait_for(lambda: states(a, b) == {"playing"})
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


async def test_play_latency_is_taken_from_the_reported_position() -> None:
    """A client that reports late still shows when it started: report instant - (position -
    paused position). The latency sample is that start minus when the command left, lowered
    by later reports for a while (the least delayed report is the best one)."""
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv")])
    player = node.players[0]
    member = node.engine.driver.members[player.player_id]
    player.report("paused", "7", 10_000.0, time.monotonic())
    assert await node.engine.driver.command(member, "play")
    expect = member.expect
    assert expect is not None
    sent = expect.sent
    player.report("playing", "7", 10_195.0, sent + 0.300)  # started at +0.105, told at +0.3
    assert member.latency.samples("play") == [pytest.approx(0.105)]
    player.report("playing", "7", 11_200.0, sent + 1.300)  # a later, less delayed report
    assert member.latency.samples("play") == [pytest.approx(0.100)]
    player.report("playing", "7", 11_350.0, sent + 1.500)  # more delayed: no change
    player.report("playing", "7", 12_450.0, sent + 2.500)  # too long after the command
    assert member.latency.samples("play") == [pytest.approx(0.100)]

    assert await node.engine.driver.command(member, "seek", 50_000.0)
    expect = member.expect
    assert expect is not None
    player.report("playing", "7", 50_015.0, expect.sent + 0.200)  # landed at +0.185
    assert member.latency.samples("seek") == [pytest.approx(0.185)]

    assert await node.engine.driver.command(member, "pause")
    expect = member.expect
    assert expect is not None
    # no playing trajectory that reaches it in time: dated by its arrival minus the report
    # lag measured so far (0.195 s for the play, 0.015 s for the seek: 0.105 s)
    player.report("paused", "7", 50_900.0, expect.sent + 0.250)
    assert member.latency.samples("pause") == [pytest.approx(0.145)]
    assert node.engine.latency(player.player_id) == pytest.approx(0.145)  # of three


async def lagging_nodes() -> tuple[Node, Node]:
    bus = LocalBus()
    options = {"command_timeout_s": 1.5}
    a = Node("a", 1.0, bus, [LaggingPlayer("a-tv")], **options)
    b = Node("b", -1.0, bus, [LaggingPlayer("b-tv", 0.05)], **options)
    await a.engine.start()
    await b.engine.start()
    await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
    return a, b


def real_states(*nodes: Node) -> set[str]:
    return {p.real.state for n in nodes for p in n.players if isinstance(p, LaggingPlayer)}


async def test_a_start_right_after_a_stop_waits_for_the_stop() -> None:
    """The group is stopped and started again before the players' stop reports arrive: the
    last reports say "playing" the same item, so nothing needs loading, but a pause sent now
    does nothing to a stopped player. (Before: "the player did not pause" after the command
    timeout, then a late catch-up.)"""
    a, b = await lagging_nodes()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: states(a, b) == {"playing"})
        await b.engine.stop()
        await wait_for(lambda: real_states(a, b) == {"stopped"})
        assert states(a, b) == {"playing"}  # the stop reports are still on their way
        result = await b.engine.play(MediaRef("7"), 0)
        assert result.failed == {}
        await wait_for(lambda: real_states(a, b) == {"playing"})
        assert "member_failed" not in a.kinds() + b.kinds()
        assert "member_resynced" not in a.kinds() + b.kinds()
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()
        await asyncio.sleep(0.3)  # the last reports


async def test_a_player_stopped_on_the_device_is_loaded_again() -> None:
    """Someone stops a player just before a start and its report comes late: the pause sent
    to it does nothing; once it reports "stopped" the item is loaded again."""
    a, b = await lagging_nodes()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: states(a, b) == {"playing"})
        player = b.players[0]
        assert isinstance(player, LaggingPlayer)
        player.effect("stopped")  # the stop button on the remote
        result = await a.engine.play(MediaRef("7"), 0)
        assert result.failed == {}
        await wait_for(lambda: real_states(a, b) == {"playing"})
        assert player.commands.count("play_media") == 2
        assert "member_failed" not in b.kinds()
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()
        await asyncio.sleep(0.3)  # the last reports


async def test_a_seek_is_waited_for_even_when_already_near() -> None:
    """A paused player 100 ms from the target: the report from before the seek does not count
    (a command sent next would queue behind the seek on the player, and its latency sample
    would include the seek's)."""
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv")])
    player = node.players[0]
    member = node.engine.driver.members[player.player_id]
    player.report("paused", "7", 10_000.0, time.monotonic())
    task = asyncio.create_task(node.engine.driver.seek_paused(member, 10_100.0))
    await asyncio.sleep(0.05)
    assert player.commands == ["seek"]
    assert not task.done()
    player.report("paused", "7", 10_100.0, time.monotonic())
    await asyncio.wait_for(task, 1.0)
    assert member.expect is None
    assert len(member.latency.samples("seek")) == 1


async def test_the_clock_window_fills_quickly_after_a_join() -> None:
    """16 samples at once, then four times the usual rate until the window is full."""
    bus = LocalBus()
    a = Node("a", 0.5, bus, clock_sample_interval_s=0.2)
    b = Node("b", -0.5, bus, clock_sample_interval_s=0.2)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: "b" in a.engine.peers.peers)
        estimator = a.engine.clocks.estimator("b")
        assert estimator is not None
        await wait_for(lambda: len(estimator) >= 16, 1.0)
        # at one sample per interval the other 48 would take 9.6 s
        await wait_for(lambda: len(estimator) == MAX_SAMPLES, 4.0)
        offset = a.engine.clock_offset("b")
        assert offset is not None
        assert abs(offset + 1.0) < 0.01
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


# ---------------------------------------------------------------- issue 15.9: bad positions


@pytest.mark.parametrize("position", [math.inf, -math.inf, math.nan, 1e308, 86_400_001.0])
async def test_seek_and_play_refuse_impossible_positions(
    nodes: tuple[Node, Node], position: float
) -> None:
    """inf / NaN / 1e308 ms (before: accepted; the seek never reached the other home, whose
    drift loop then chased an infinite position) are refused before anything is sent."""
    a, b = nodes
    assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
    await wait_for(lambda: states(a, b) == {"playing"})
    commands = [list(p.commands) for n in (a, b) for p in n.players]
    with pytest.raises(InvalidPositionError, match="finite number of milliseconds"):
        await a.engine.seek(position)
    with pytest.raises(SyncError):
        await b.engine.play(MediaRef("7"), position)
    await asyncio.sleep(0.3)
    assert [list(p.commands) for n in (a, b) for p in n.players] == commands
    assert a.engine.state.state == b.engine.state.state == "playing"
    assert all(sum(n.engine.codec.dropped.values()) == 0 for n in (a, b))
    await asyncio.sleep(0.3)  # the last effects


async def test_signed_commands_with_impossible_positions_are_dropped(
    nodes: tuple[Node, Node],
) -> None:
    """Even with the group secret, a seek to 1e308 ms or a start at -1e12 ms is malformed."""
    a, b = nodes
    assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
    await wait_for(lambda: b.engine.state.state == "playing")
    forger = MessageCodec("den", SECRET, "c", OffsetClock(0.0))
    now = time.time()
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("seek", {"cid": "c:1", "gen": 50, "at": now, "position_ms": 1e308}),
        ("start", {"cid": "c:2", "gen": 51, "at": now, "position_ms": -1e12}),
        ("pause", {"cid": "c:3", "gen": 52, "at": now, "position_ms": 1e300}),
    ]
    for kind, body in bodies:
        await a.transport.publish("plexus/sync/den/all", forger.encode(kind, body))
    await wait_for(lambda: b.engine.codec.dropped["malformed"] == len(bodies))
    await asyncio.sleep(0.2)
    assert b.engine.state.state == "playing"
    assert b.engine.state.position_ms is not None
    assert b.engine.state.position_ms < 60_000
    await asyncio.sleep(0.3)  # the last effects


async def test_drift_loop_survives_a_raising_callback_and_a_nan_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The host's update callback raises for a while and a member reports a NaN position
    (before: the first exception ended the drift loop until reload, silently)."""
    bus = LocalBus()
    a = Node("a", 0.3, bus, drift_check_interval_s=0.3)
    b = Node("b", -0.3, bus, drift_check_interval_s=0.3)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
        assert (await a.engine.play(MediaRef("1"), 0)).failed == {}
        await wait_for(lambda: states(a, b) == {"playing"})
        await asyncio.sleep(1.0)
        with caplog.at_level(logging.ERROR):
            b.explode = True
            sick = b.players[1]
            sick.report("playing", sick.snapshot.media_key, math.nan, time.monotonic())
            await asyncio.sleep(1.0)  # several drift checks, each calling the callback
            b.explode = False
        largest = b.engine.state.largest_drift_ms
        assert largest is None or math.isfinite(largest)
        victim = b.players[0]
        victim.set("playing", None, victim.snapshot.position_at(time.monotonic()) + 3_000)
        await wait_for(
            lambda: any(
                kind == "drift_corrected" and data["player_id"] == victim.player_id
                for kind, data in b.events
            ),
            3,
        )
        sick.set("playing", None, 0.0)  # back to a real position: corrected like any other
        await wait_for(lambda: b.engine.state.in_sync, 5)
        errors = [r for r in caplog.records if "update callback" in r.getMessage()]
        assert len(errors) == 1  # logged once, however often it failed
        assert b.engine.drop_stats()["task_failures"]["the update callback"] >= 2
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


# ---------------------------------------------------------------- issue 15.17: rejoin


async def test_command_after_rejoin_reaches_a_member_that_resubscribed_late(
    nodes: tuple[Node, Node],
) -> None:
    """After a broker restart one home's subscriptions come back 0.5 s after its connection
    (before: the group still listed it, the pause sent meanwhile was lost, and that home only
    followed on a later hello, late)."""
    a, b = nodes
    assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
    await wait_for(lambda: states(a, b) == {"playing"})
    await asyncio.sleep(0.5)
    a.transport.deaf = True
    await a.engine.reconnected()
    await b.engine.reconnected()
    asyncio.get_running_loop().call_later(0.5, setattr, a.transport, "deaf", False)

    def rejoined(node: Node) -> bool:
        state = node.engine.state
        return state.homes == 2 and len(state.members) == 4

    await wait_for(lambda: rejoined(a) and rejoined(b), 5)
    result = await b.engine.pause()
    await wait_for(
        lambda: any(
            kind == "paused" and data["command_id"] == result.command_id for kind, data in a.events
        ),
        2,
    )
    await wait_for(lambda: states(a, b) == {"paused"}, 3)
    assert "joined_session" not in a.kinds()
    await asyncio.sleep(0.3)  # the last effects


async def test_pause_or_seek_with_nothing_playing_moves_no_player(
    nodes: tuple[Node, Node],
) -> None:
    """A pause of an idle group, or a seek that arrives after the session ended (a peer's seek
    racing a stop), is ignored everywhere: no player is commanded, no event, still idle."""
    a, b = nodes
    await a.engine.pause()
    await b.engine.commands.timed("seek", {"position_ms": 60_000.0})  # as a racing peer sends it
    await asyncio.sleep(0.3)  # both instants have passed (no upper bound asserted)
    for node in (a, b):
        assert node.engine.state.state == "idle"
        assert not {"paused", "seeked", "waiting"} & set(node.kinds())
        assert all(p.commands == [] for p in node.players)


async def test_a_peer_that_never_answers_prepare_does_not_hold_the_start() -> None:
    """A home that stays in the group but never reports ready (it hears nothing): after the
    ready timeout the start goes out anyway and its members are reported not ready in time."""
    bus = LocalBus()
    a = Node("a", 0.0, bus, ready_timeout_s=0.5)
    b = Node("b", 0.0, bus, ready_timeout_s=0.5)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.state.homes == 2)
        await wait_for(lambda: a.engine.clock_offset("b") is not None)
        b.transport.deaf = True
        result = await a.engine.play(MediaRef("7"), 0)
        assert result.failed == {
            "b/b-tv": "not ready in time",
            "b/b-pc": "not ready in time",
        }
        await wait_for(lambda: {p.snapshot.state for p in a.players} == {"playing"})
        assert all(p.commands == [] for p in b.players)
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


class RefusingBus(LocalBus):
    """A broker that takes subscriptions but refuses every publish (its ACL says no)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        raise ConnectionError("not authorised to publish")


async def test_a_broker_refusing_publishes_still_plays_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every publish refused, and a host that wants no callbacks: the engine neither raises
    nor stops; the local players still start and the refusals are logged."""
    clock = OffsetClock(0.0)
    engine = SyncEngine(
        SyncConfig("den", SECRET, "solo", "SOLO", heartbeat_s=0.2, calibration_rounds=0),
        clock,
        RefusingBus(),
    )
    player = FakePlayer("solo-tv")
    engine.add_member(player)
    with caplog.at_level(logging.DEBUG, logger="custom_components.plexus.syncplay"):
        await engine.start()
        try:
            result = await engine.play(MediaRef("7"), 0)
            assert result.failed == {}
            await wait_for(lambda: player.snapshot.state == "playing")
            assert engine.state.state == "playing"
        finally:
            await engine.shutdown()
    assert "publish failed: not authorised to publish" in caplog.text


async def test_a_raising_event_callback_is_logged_once_and_play_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The host's event callback raises on every event: one ERROR line with the traceback,
    repeats at debug, and the group still plays, pauses and stops."""

    def broken(kind: str, data: dict[str, Any]) -> None:
        raise RuntimeError(f"cannot fire {kind}")

    engine = SyncEngine(
        SyncConfig("den", SECRET, "solo", "SOLO", heartbeat_s=0.2, calibration_rounds=0),
        OffsetClock(0.0),
        LocalBus(),
        on_event=broken,
    )
    player = FakePlayer("solo-tv")
    engine.add_member(player)
    with caplog.at_level(logging.DEBUG, logger="custom_components.plexus.syncplay"):
        await engine.start()
        try:
            await engine.play(MediaRef("7"), 0)
            await wait_for(lambda: player.snapshot.state == "playing")
            await engine.pause()
            await wait_for(lambda: player.snapshot.state == "paused")
            await engine.stop()
            await wait_for(lambda: player.snapshot.state == "stopped")
        finally:
            await engine.shutdown()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "the event callback failed" in errors[0].getMessage()
    repeats = {
        r.getMessage().rsplit("'", 2)[-2]
        for r in caplog.records
        if "event callback failed again" in r.message
    }
    assert {"cannot fire paused", "cannot fire stopped"} <= repeats


async def test_a_paused_member_moved_on_the_device_is_put_back() -> None:
    """The group is paused; someone moves one TV's position on the device (still paused). The
    drift check puts it back to the group's paused position, and the group stays paused."""
    bus = LocalBus()
    a = Node("a", 0.3, bus, drift_check_interval_s=0.3)
    b = Node("b", -0.3, bus, drift_check_interval_s=0.3)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
        assert (await a.engine.play(MediaRef("1"), 10_000)).failed == {}
        await wait_for(lambda: states(a, b) == {"playing"})
        await a.engine.pause()
        await wait_for(lambda: states(a, b) == {"paused"})
        await wait_for(lambda: b.engine.state.state == "paused")
        paused_at = b.engine.state.position_ms
        assert paused_at is not None
        await asyncio.sleep(1.0)  # past the settle time of the pause
        moved = b.players[0]
        moved.set("paused", None, paused_at + 20_000)
        await wait_for(
            lambda: any(
                kind == "drift_corrected" and data["player_id"] == moved.player_id
                for kind, data in b.events
            ),
            5,
        )
        await wait_for(lambda: abs(moved.snapshot.position_ms - paused_at) < 1_000, 5)
        assert moved.commands[-1] == "seek"
        assert moved.snapshot.state == "paused"
        assert a.engine.state.state == b.engine.state.state == "paused"
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


class RefusingPlayer(FakePlayer):
    """Refuses some commands (the client answers an error); may ignore a load's offset."""

    def __init__(
        self,
        player_id: str,
        refuse: set[str],
        *,
        from_start: bool = False,
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(player_id)
        self.refuse = refuse
        self.from_start = from_start
        self.ignore = ignore  # taken, but nothing happens

    async def pause(self) -> None:
        if "pause" not in self.ignore:
            await super().pause()
        else:
            await self._command("pause")

    async def seek(self, position_ms: int) -> None:
        if "seek" not in self.ignore:
            await super().seek(position_ms)
        else:
            await self._command("seek")

    async def _command(self, name: str) -> None:
        if name in self.refuse:
            raise RuntimeError(f"{self.name} refused {name}")
        await super()._command(name)

    async def play_media(self, media: MediaRef, media_key: str, offset_ms: int) -> None:
        if "play_media" in self.ignore:
            await self._command("play_media")
            return
        await super().play_media(media, media_key, 0 if self.from_start else offset_ms)


@pytest.mark.parametrize(
    ("refusing", "why"),
    [
        (RefusingPlayer("a-tv", {"pause"}), "the player refused to pause"),
        (RefusingPlayer("a-tv", {"seek"}, from_start=True), "the player refused to seek"),
        (RefusingPlayer("a-tv", set(), ignore=frozenset({"pause"})), "the player did not pause"),
        (
            RefusingPlayer("a-tv", set(), from_start=True, ignore=frozenset({"seek"})),
            "the player did not seek",
        ),
        (
            RefusingPlayer("a-tv", set(), ignore=frozenset({"play_media"})),
            "the player did not load the item",
        ),
    ],
)
async def test_a_player_refusing_a_prepare_step_is_reported_and_the_rest_start(
    refusing: RefusingPlayer, why: str
) -> None:
    """A TV that refuses to pause after loading (or takes the pause and keeps playing), or
    starts the item from the beginning and refuses to seek (or takes the seek and stays): the
    play reports it with the reason and the other player starts."""
    bus = LocalBus()
    fine = FakePlayer("a-pc")
    a = Node("a", 0.0, bus, players=[refusing, fine], command_timeout_s=1.0)
    await a.engine.start()
    try:
        result = await a.engine.play(MediaRef("7"), 30_000)
        assert result.failed == {"a/a-tv": why}
        await wait_for(lambda: fine.snapshot.state == "playing")
        assert fine.snapshot.position_ms >= 30_000
        failed = [data for kind, data in a.events if kind == "member_failed"]
        if refusing.refuse:  # a refusal is an event of its own, with the player's error
            assert any(
                data["player_id"] == "a-tv" and "refused" in str(data.get("error"))
                for data in failed
            )
    finally:
        await a.engine.shutdown()


async def test_a_player_refusing_the_group_pause_keeps_playing_and_is_reported() -> None:
    """The group pauses; one TV answers the pause with an error. The others pause, that TV is
    left as it is (not sought), and a member_failed event names the refusal."""
    bus = LocalBus()
    tv = RefusingPlayer("a-tv", set())
    pc = FakePlayer("a-pc")
    a = Node("a", 0.0, bus, players=[tv, pc])
    await a.engine.start()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: {tv.snapshot.state, pc.snapshot.state} == {"playing"})
        tv.refuse = {"pause", "seek"}
        await a.engine.pause()
        await wait_for(lambda: pc.snapshot.state == "paused")
        await wait_for(
            lambda: any(
                kind == "member_failed" and data["player_id"] == "a-tv" for kind, data in a.events
            )
        )
        assert tv.snapshot.state == "playing"
        assert a.engine.state.state == "paused"
        failed = [data for kind, data in a.events if kind == "member_failed"]
        assert "refused pause" in str(failed[-1].get("error"))
        await asyncio.sleep(0.3)  # the fake players' last effects land (no timer left behind)
    finally:
        await a.engine.shutdown()


async def test_a_tv_resumed_on_the_device_while_the_group_is_paused_is_left_alone() -> None:
    """Not following: the group is paused and someone resumes one TV on the device. The drift
    check neither seeks nor pauses it (it measures nothing for it), the group stays paused."""
    bus = LocalBus()
    a = Node("a", 0.0, bus, drift_check_interval_s=0.3)
    await a.engine.start()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: states(a) == {"playing"})
        await a.engine.pause()
        await wait_for(lambda: states(a) == {"paused"})
        await asyncio.sleep(1.0)  # past the settle time of the pause
        tv = a.players[0]
        sent = len(tv.commands)
        tv.set("playing")
        await asyncio.sleep(1.0)  # several drift checks
        assert tv.commands[sent:] == []
        assert tv.snapshot.state == "playing"
        assert a.engine.state.state == "paused"
        assert not any(
            kind == "drift_corrected" and data["player_id"] == tv.player_id
            for kind, data in a.events
        )
    finally:
        await a.engine.shutdown()


async def test_following_a_paused_report_of_a_paused_group_changes_nothing() -> None:
    """Following the members: while the group is paused a TV reports paused again (a status
    refresh). That moves nothing: the group is neither resumed nor sought."""
    bus = LocalBus()
    a = Node("a", 0.0, bus, follow=True)
    await a.engine.start()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: states(a) == {"playing"})
        await a.engine.pause()
        await wait_for(lambda: states(a) == {"paused"})
        await asyncio.sleep(1.0)  # past the settle time of the pause
        seen = len(a.events)
        tv = a.players[0]
        tv.set("paused")
        await asyncio.sleep(0.5)
        assert not {"resumed", "seeked", "started"} & {kind for kind, _ in a.events[seen:]}
        assert a.engine.state.state == "paused"
        assert states(a) == {"paused"}
    finally:
        await a.engine.shutdown()


async def test_a_member_stopped_on_the_device_is_not_dragged_by_a_group_seek() -> None:
    """The group is paused and someone stops one TV on the device; a seek of the group moves
    the others and sends that TV nothing."""
    bus = LocalBus()
    a = Node("a", 0.0, bus)
    await a.engine.start()
    try:
        assert (await a.engine.play(MediaRef("7"), 0)).failed == {}
        await wait_for(lambda: states(a) == {"playing"})
        await a.engine.pause()
        await wait_for(lambda: states(a) == {"paused"})
        await asyncio.sleep(1.0)  # past the settle time of the pause
        tv, pc = a.players
        tv.set("stopped")
        sent = len(tv.commands)
        await a.engine.seek(60_000)
        await wait_for(lambda: pc.snapshot.position_ms == 60_000)
        assert tv.commands[sent:] == []
        assert tv.snapshot.state == "stopped"
        await asyncio.sleep(0.3)  # the fake players' last effects land
    finally:
        await a.engine.shutdown()
