"""Sync-play engine end to end: several homes in one process over the real Mosquitto broker.

Each home has its own Plex simulator (clients with 60-250 ms command latency), its own clock
(seconds off the others) and its own engine; the engines talk through an asyncio adapter around
paho-mqtt. Skews are measured from the simulators' records, which share this machine's clock.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, field
import json
import shutil
import socket
import subprocess
import time
from typing import Any
import uuid

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from custom_components.plexus.plex import NotificationListener, PlexServerAPI
from custom_components.plexus.plex.control import PlayerControl
from custom_components.plexus.syncplay import (
    LocalBus,
    MediaRef,
    MessageCodec,
    NothingPlayingError,
    PlexMemberPlayer,
    SyncConfig,
    SyncEngine,
    topic_matches,
)
from custom_components.plexus.syncplay.interfaces import MessageCallback
from tests.plex_simulator import LibraryConfig, PlexSimulator
from tests.plex_simulator.clients import SimulatedClient, StateChange

pytestmark = pytest.mark.usefixtures("socket_enabled")

BROKER = ("127.0.0.1", 1883)
SECRET = "correct horse battery staple"
LIBRARY = LibraryConfig(movies=5, shows=1, seasons_per_show=1, episodes_per_season=2, artists=0)
# Alignment, not precision (the benchmarks measure that): players here act in 60-250 ms, so a member
# that ignored the agreed instant would be off by up to ~190 ms. 100 ms was exceeded (101-113 ms) on
# a loaded two-core machine, including one CI-like run; 150 ms keeps the test meaningful and stable.
SKEW_BOUND_S = 0.15
SKEWS: dict[str, list[float]] = {}


class OffsetClock:
    """This machine's clock, `offset` seconds off (another home's wall clock)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class PahoTransport:
    """A small asyncio adapter around paho-mqtt 2.x (a network thread; callbacks in the loop)."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscriptions: list[tuple[str, MessageCallback]] = []
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.on_reconnect: Callable[[], Any] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self._host, self._port, keepalive=5)
        self._client.loop_start()
        async with asyncio.timeout(5):
            await self.connected.wait()

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # loop closed during teardown
            self._loop.call_soon_threadsafe(function, *args)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        for topic_filter in {f for f, _ in self._subscriptions}:
            client.subscribe(topic_filter)
        self._call(self._connected)

    def _connected(self) -> None:
        self.connects += 1
        self.connected.set()
        if self.connects > 1 and self.on_reconnect is not None:
            asyncio.get_running_loop().create_task(self.on_reconnect())

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._call(self.connected.clear)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self._call(self._acked, mid)

    def _acked(self, mid: int) -> None:
        future = self._acks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._call(self._dispatch, message.topic, bytes(message.payload))

    def _dispatch(self, topic: str, payload: bytes) -> None:
        for topic_filter, callback in list(self._subscriptions):
            if topic_matches(topic_filter, topic):
                callback(topic, payload)

    async def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload)

    async def subscribe(self, topic_filter: str, callback: MessageCallback) -> Callable[[], None]:
        entry = (topic_filter, callback)
        self._subscriptions.append(entry)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _, mid = self._client.subscribe(topic_filter)
        if mid is not None:
            self._acks[mid] = future
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await future

        def unsubscribe() -> None:
            if entry in self._subscriptions:
                self._subscriptions.remove(entry)

        return unsubscribe


@dataclass
class Home:
    """One home: a simulator, its players and one engine."""

    name: str
    sim: PlexSimulator
    session: aiohttp.ClientSession
    transport: PahoTransport | LocalBus
    clock: OffsetClock
    engine: SyncEngine
    listener: NotificationListener
    players: dict[str, PlexMemberPlayer]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def clients(self) -> list[SimulatedClient]:
        return list(self.sim.clients.values())


class Group:
    """Create homes sharing a topic; tear everything down at the end."""

    def __init__(self, topic: str, broker: tuple[str, int] = BROKER) -> None:
        self.topic = topic
        self.broker = broker
        self.homes: list[Home] = []
        self.bus = LocalBus()

    async def add_home(
        self,
        name: str,
        offset: float,
        *,
        clients: int = 2,
        seed: int = 1,
        local: bool = False,
        instance_id: str | None = None,
        sim: PlexSimulator | None = None,
        **options: Any,
    ) -> Home:
        if sim is None:
            sim = PlexSimulator(clients=clients, seed=seed, library=LIBRARY, latency_ms=(60, 250))
            await sim.start()
        session = aiohttp.ClientSession()
        transport: PahoTransport | LocalBus
        if local:
            transport = self.bus
        else:
            transport = PahoTransport(*self.broker)
            await transport.start()
        control = PlayerControl(PlexServerAPI(session, sim.url, sim.token), sim.machine_identifier)
        players = {
            c.machine_identifier: PlexMemberPlayer(control, c.machine_identifier, name=c.name)
            for c in sim.clients.values()
        }
        connected = asyncio.Event()

        def on_notification(kind: str, container: dict[str, Any]) -> None:
            for player in players.values():
                player.handle_notification(kind, container)

        listener = NotificationListener(
            session, sim.url, sim.token, on_notification, lambda up, err: connected.set()
        )
        listener.start()
        async with asyncio.timeout(5):
            await connected.wait()
        clock = OffsetClock(offset)
        config = SyncConfig(
            group="movie-night",
            secret=SECRET,
            instance_id=instance_id or f"{name}-{uuid.uuid4().hex[:6]}",
            home=name,
            base_topic=self.topic,
            **options,
        )
        events: list[tuple[str, dict[str, Any]]] = []
        engine = SyncEngine(
            config, clock, transport, on_event=lambda kind, data: events.append((kind, data))
        )
        for player in players.values():
            engine.add_member(player)
        if isinstance(transport, PahoTransport):
            transport.on_reconnect = engine.reconnected
        await engine.start()
        home = Home(name, sim, session, transport, clock, engine, listener, players, events)
        self.homes.append(home)
        return home

    async def remove_home(self, home: Home, *, stop_sim: bool = True) -> None:
        self.homes.remove(home)
        await home.engine.shutdown()
        await home.listener.stop()
        if isinstance(home.transport, PahoTransport):
            await home.transport.close()
        await home.session.close()
        if stop_sim:
            await home.sim.stop()

    async def wait_joined(self, timeout: float = 5.0) -> None:
        """Until every engine knows every other home and has a clock offset to it."""
        ids = {h.engine.instance_id for h in self.homes}

        def joined() -> bool:
            return all(
                {m.instance_id for m in h.engine.state.members} == ids
                and all(h.engine.clock_offset(i) is not None for i in ids)
                for h in self.homes
            )

        await wait_for(joined, timeout)

    async def close(self) -> None:
        for home in list(self.homes):
            await self.remove_home(home)

    @property
    def clients(self) -> list[SimulatedClient]:
        return [c for h in self.homes for c in h.clients]


async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def wait_records(
    clients: list[SimulatedClient], command: str, since: float, timeout: float = 8.0
) -> list[StateChange]:
    """The first record of `command` after `since` on every client (waits for the effects)."""

    def first(client: SimulatedClient) -> StateChange | None:
        return next(
            (r for r in client.record if r.command == command and r.wall_time > since), None
        )

    await wait_for(lambda: all(first(c) is not None for c in clients), timeout)
    return [r for c in clients if (r := first(c)) is not None]


def skew(name: str, records: list[StateChange]) -> float:
    times = [r.wall_time for r in records]
    value = max(times) - min(times)
    SKEWS.setdefault(name, []).append(value * 1000.0)
    print(f"skew {name}: {value * 1000.0:.1f} ms over {len(records)} clients")  # noqa: T201
    return value


def assert_landed(records: list[StateChange], target: float) -> None:
    """Every member started or seeked at `target`, or (a member late for the instant, which
    lands where the group is by then) a little past it, within the skew bound."""
    for record in records:
        assert 0 <= record.position_ms - target <= SKEW_BOUND_S * 1000, (record, target)


@pytest.fixture
async def group() -> AsyncIterator[Group]:
    group = Group(f"plexus-test/{uuid.uuid4().hex}")
    try:
        yield group
    finally:
        await group.close()


async def play_and_check(
    group: Group, leader: Home, position: float = 60_000.0, bound_s: float = SKEW_BOUND_S
) -> None:
    since = time.time()
    rating_key = leader.sim.library.movies()[0].rating_key
    result = await leader.engine.play(MediaRef(rating_key, "movie"), position)
    assert result.failed == {}
    records = await wait_records(group.clients, "play", since)
    assert skew("play", records) < bound_s
    assert {r.rating_key for r in records} == {rating_key}
    for record in records:
        assert abs(record.position_ms - position) < 5
    await wait_for(lambda: all(h.engine.state.state == "playing" for h in group.homes))


async def test_play_pause_seek_resume_stop_line_up(group: Group) -> None:
    homes = [
        await group.add_home("north", 4.3, seed=1),
        await group.add_home("south", -3.7, seed=2),
        await group.add_home("west", 0.9, seed=3),
    ]
    await group.wait_joined()
    offset = homes[0].engine.clock_offset(homes[1].engine.instance_id)
    assert offset is not None
    assert abs(offset - (-3.7 - 4.3)) < 0.02

    await play_and_check(group, homes[1])
    state = homes[0].engine.state
    assert state.leader == homes[1].engine.instance_id
    assert len(state.members) == 6
    assert state.homes == 3

    since = time.time()
    await homes[2].engine.pause()
    records = await wait_records(group.clients, "pause", since)
    assert skew("pause", records) < SKEW_BOUND_S
    await wait_for(lambda: len({c.position_ms for c in group.clients}) == 1)
    paused_at = group.clients[0].position_ms
    await wait_for(lambda: all(h.engine.state.state == "paused" for h in group.homes))

    since = time.time()
    await homes[0].engine.resume()
    records = await wait_records(group.clients, "play", since)
    assert skew("resume", records) < SKEW_BOUND_S
    assert_landed(records, paused_at)

    since = time.time()
    await homes[1].engine.seek(600_000)
    records = await wait_records(group.clients, "seekTo", since)
    assert skew("seek", records) < SKEW_BOUND_S
    assert_landed(records, 600_000)
    positions = [c.position_ms for c in group.clients]
    assert max(positions) - min(positions) < SKEW_BOUND_S * 1000

    since = time.time()
    await homes[0].engine.stop()
    records = await wait_records(group.clients, "stop", since)
    assert skew("stop", records) < SKEW_BOUND_S
    await wait_for(lambda: all(h.engine.state.state == "idle" for h in group.homes))
    assert all(sum(h.engine.codec.dropped.values()) == 0 for h in group.homes)
    kinds = {kind for kind, _ in homes[0].events}
    assert {"member_joined", "preparing", "started", "paused", "resumed", "seeked"} <= kinds


def forge(secret: str, clock: OffsetClock, kind: str, body: dict[str, Any], **kwargs: Any) -> bytes:
    codec = MessageCodec(kwargs.pop("group", "movie-night"), secret, kwargs.pop("sender"), clock)
    return codec.encode(kind, body, **kwargs)


async def test_forged_replayed_tampered_and_garbage_change_nothing(group: Group) -> None:
    a = await group.add_home("north", 2.5, seed=1)
    b = await group.add_home("south", -4.0, seed=2)
    await group.wait_joined()
    captured: list[bytes] = []
    spy = PahoTransport(*BROKER)
    await spy.start()
    await spy.subscribe(f"{group.topic}/#", lambda topic, payload: captured.append(payload))
    try:
        await play_and_check(group, a)
        record_counts = [len(c.record) for c in group.clients]
        start = next(p for p in captured if json.loads(p)["type"] == "start")
        a_id = a.engine.instance_id
        key = a.sim.library.movies()[1].rating_key
        media = MediaRef(key).as_dict()
        clock = OffsetClock(2.5)
        now = clock.now()
        tampered = json.loads(start)
        tampered["body"]["position_ms"] = 0
        unsigned = json.loads(start)
        del unsigned["sig"]
        attacks = {
            "bad_signature": [
                forge(
                    "wrong secret", clock, "stop", {"cid": "x:1", "gen": 99, "at": now}, sender=a_id
                ),
                json.dumps(tampered).encode(),
                forge(
                    "wrong secret",
                    clock,
                    "prepare",
                    {"cid": "x:2", "gen": 99, "media": media, "position_ms": 0},
                    sender="evil",
                ),
            ],
            "replayed": [start],
            "unsigned": [json.dumps(unsigned).encode()],
            "malformed": [b"\x00\xff garbage", b"[1, 2, 3]", b"{}" * 3, b"null"],
            "wrong_group": [
                forge(
                    SECRET,
                    clock,
                    "stop",
                    {"cid": "x:3", "gen": 99, "at": now},
                    sender=a_id,
                    group="other-group",
                ),
            ],
            "out_of_window": [
                forge(
                    SECRET,
                    OffsetClock(2.5 - 120),
                    "stop",
                    {"cid": "x:4", "gen": 99, "at": now},
                    sender=a_id,
                ),
            ],
        }
        before = dict(b.engine.codec.dropped)
        for payloads in attacks.values():
            for payload in payloads:
                await spy.publish(f"{group.topic}/all", payload)
        expected = {k: before[k] + len(v) for k, v in attacks.items()}
        await wait_for(lambda: b.engine.codec.dropped == expected)
        # a valid signature over a body the engine cannot use is dropped as malformed too
        await spy.publish(
            f"{group.topic}/all",
            forge(SECRET, clock, "stop", {"cid": 1}, sender="intruder-with-the-secret"),
        )
        expected["malformed"] += 1
        await wait_for(lambda: b.engine.codec.dropped == expected)
        await asyncio.sleep(0.5)  # nothing may happen: give a wrongly accepted command time
        assert [len(c.record) for c in group.clients] == record_counts
        assert all(c.state == "playing" for c in group.clients)
        assert b.engine.state.state == "playing"
        assert b.engine.state.dropped == expected
    finally:
        await spy.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(
    shutil.which("mosquitto") is None and shutil.which("/usr/sbin/mosquitto") is None,
    reason="mosquitto not installed",
)
async def test_broker_restart_recovers() -> None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()

    async def start_broker() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # noqa: ASYNC220, S603
            [binary, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        async def listening() -> None:
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    return
                await asyncio.sleep(0.05)

        async with asyncio.timeout(5):
            await listening()
        return process

    broker = await start_broker()
    group = Group(f"plexus-test/{uuid.uuid4().hex}", ("127.0.0.1", port))
    try:
        a = await group.add_home("north", 1.7, seed=1)
        b = await group.add_home("south", -1.2, seed=2)
        await group.wait_joined()
        await play_and_check(group, a)

        broker.terminate()
        await asyncio.to_thread(broker.wait)
        await wait_for(lambda: not any(h.transport.connected.is_set() for h in group.homes))  # type: ignore[union-attr]
        broker = await start_broker()
        restarted = time.monotonic()
        await wait_for(
            lambda: all(h.transport.connected.is_set() for h in group.homes),  # type: ignore[union-attr]
            10,
        )
        await group.wait_joined(10)
        since = time.time()
        await b.engine.pause()
        records = await wait_records(group.clients, "pause", since)
        assert skew("pause after broker restart", records) < SKEW_BOUND_S
        assert time.monotonic() - restarted < 10
        assert a.engine.state.state == "paused"
    finally:
        await group.close()
        broker.terminate()
        await asyncio.to_thread(broker.wait)


async def test_member_leaves_and_rejoins(group: Group) -> None:
    a = await group.add_home("north", 3.0, seed=1)
    b = await group.add_home("south", -2.0, seed=2)
    b_id = b.engine.instance_id
    await group.wait_joined()
    await play_and_check(group, a)

    sim_b = b.sim
    await group.remove_home(b, stop_sim=False)
    await wait_for(lambda: a.engine.state.homes == 1)
    assert len(a.engine.state.members) == 2
    assert sum(kind == "member_left" for kind, _ in a.events) == 2
    for client in sim_b.clients.values():
        await client.local_stop()

    b2 = await group.add_home("south", -2.0, sim=sim_b, instance_id=b_id)
    await wait_for(lambda: sum(kind == "member_resynced" for kind, _ in b2.events) == 2, 10)
    await wait_for(lambda: all(c.state == "playing" for c in group.clients), 5)
    assert b2.engine.state.state == "playing"
    await asyncio.sleep(0.3)  # let the last effects land
    positions = [c.position_ms for c in group.clients]
    assert max(positions) - min(positions) < 150
    assert a.engine.state.homes == 2


async def test_drift_is_corrected(group: Group) -> None:
    a = await group.add_home("north", 1.0, seed=1, drift_check_interval_s=0.6)
    b = await group.add_home("south", -1.0, seed=2, drift_check_interval_s=0.6)
    await group.wait_joined()
    await play_and_check(group, a)
    victim = b.clients[0]
    await victim.local_seek(victim.position_ms + 3_000)
    await wait_for(lambda: any(kind == "drift_corrected" for kind, _ in b.events), 5)
    await wait_for(lambda: victim.record[-1].command == "seekTo", 5)
    await asyncio.sleep(0.1)
    positions = [c.position_ms for c in group.clients]
    assert max(positions) - min(positions) < SKEW_BOUND_S * 1000
    await wait_for(lambda: b.engine.state.in_sync, 5)
    state = b.engine.state
    assert state.largest_drift_ms is not None


async def test_follow_mode_and_buffering_wait(group: Group) -> None:
    a = await group.add_home("north", 0.5, seed=1, follow=True)
    b = await group.add_home("south", -0.5, seed=2, follow=True)
    await group.wait_joined()
    await play_and_check(group, a)
    await asyncio.sleep(1.0)  # let the start settle

    since = time.time()
    await b.clients[1].local_pause()
    await wait_records(a.clients, "pause", since)
    await wait_for(lambda: all(c.state == "paused" for c in group.clients))
    await wait_for(lambda: len({c.position_ms for c in group.clients}) == 1)
    assert a.engine.state.state == "paused"

    since = time.time()
    await a.engine.resume()
    await wait_records(group.clients, "play", since)
    await asyncio.sleep(1.0)

    # a stall: the player buffers for a while; the group waits, then goes on together
    staller = a.clients[0]
    staller._apply("stall", state="buffering")
    await wait_for(lambda: b.engine.state.state == "waiting")
    await wait_for(lambda: all(c.state == "paused" for c in group.clients if c is not staller))
    staller._apply("stall", state="playing")
    since = time.time()
    await wait_for(lambda: all(h.engine.state.state == "playing" for h in group.homes), 5)
    records = await wait_records(group.clients, "play", since)
    assert skew("resume after stall", records) < SKEW_BOUND_S
    await asyncio.sleep(0.1)
    positions = [c.position_ms for c in group.clients]
    assert max(positions) - min(positions) < SKEW_BOUND_S * 1000


async def test_local_group_follows_what_is_playing(group: Group) -> None:
    home = await group.add_home("here", 0.0, clients=3, local=True)
    with pytest.raises(NothingPlayingError):
        await home.engine.play()
    with pytest.raises(NothingPlayingError):
        await home.engine.resume()
    first = home.clients[0]
    rating_key = home.sim.library.movies()[2].rating_key
    await first.local_start(rating_key, 120_000)
    await wait_for(lambda: home.players[first.machine_identifier].snapshot.state == "playing")
    since = time.time()
    result = await home.engine.play()
    records = await wait_records(home.clients, "play", since)
    assert result.failed == {}
    assert skew("local play", records) < SKEW_BOUND_S
    assert {r.rating_key for r in records} == {rating_key}
    assert min(r.position_ms for r in records) >= 120_000
    state = home.engine.state
    assert state.media is not None
    assert state.media.rating_key == rating_key
    assert state.homes == 1


async def test_a_refusing_client_does_not_hold_the_others(group: Group) -> None:
    a = await group.add_home("north", 1.0, seed=1, ready_timeout_s=3.0)
    b = await group.add_home("south", -1.0, seed=2, ready_timeout_s=3.0)
    await group.wait_joined()
    refusing = b.clients[0]
    refusing.accepts_control = False
    since = time.time()
    result = await a.engine.play(MediaRef(a.sim.library.movies()[0].rating_key), 0)
    assert set(result.failed) == {f"{b.engine.instance_id}/{refusing.machine_identifier}"}
    others = [c for c in group.clients if c is not refusing]
    records = await wait_records(others, "play", since)
    assert skew("play without a refusing client", records) < SKEW_BOUND_S
    assert refusing.state == "stopped"
    assert any(kind == "member_failed" for kind, _ in b.events)


async def test_late_reports_still_start_together(group: Group) -> None:
    """Players that report their state 50-250 ms late (through their timeline, as real ones do)
    still all start on the group's instant, none falls back to a late catch-up.

    Samples of paused seeks can only be dated from the report's arrival, so the first start
    (before any play sample dated from the position) may be ~100 ms apart; from the second on
    the measured report lag makes the players' own play samples count.
    """
    homes = []
    for name, offset, seed in (("north", 2.1, 11), ("south", -1.4, 12)):
        sim = PlexSimulator(
            clients=2, seed=seed, library=LIBRARY, latency_ms=(60, 250), report_delay_ms=(50, 250)
        )
        await sim.start()
        homes.append(await group.add_home(name, offset, sim=sim))
    await group.wait_joined()
    for round_ in range(4):
        # The first start has no dated play sample yet: its latency comes from late reports.
        bound = 0.25 if round_ == 0 else SKEW_BOUND_S
        await play_and_check(group, homes[round_ % 2], 60_000.0 + 5_000 * round_, bound_s=bound)
        since = time.time()
        await homes[0].engine.stop()
        await wait_records(group.clients, "stop", since)
    assert not [e for h in homes for e in h.events if e[0] in ("member_resynced", "member_failed")]
