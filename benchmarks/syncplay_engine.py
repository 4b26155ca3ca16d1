"""Sync-play engine benchmark (no Home Assistant): start/resume skew across homes.

Run: ``scripts/bench syncplay_engine`` (``.venv/bin/python -m benchmarks.syncplay_engine``).

Two homes, each with its own engine, clock (+2 s / -2 s) and two simulated Plex clients (one
simulator per client so each has its own resume latency: 60, 120, 180, 250 ms, +-15 ms jitter).
The engines talk over the real Mosquitto on 127.0.0.1:1883 through a transport that delays
every message by 5-150 ms (random, so messages also reorder). Measured from the simulators'
records (one machine clock): skew = latest minus earliest actual start instant across the four
clients, for N sync-play starts and N resumes after pause; the naive baseline (one `playAt`
message, every home plays at that instant on its own clock, no preparation, no latency
compensation); drift recovery after one client stalls 1.5 s while playing. This is the engine
part of issue 5's benchmark; the end-to-end one (two HA processes) belongs to the HA glue.
The last line printed is one JSON object.

Every start and resume is also decomposed (``per_client``): the client's error against the
leader's intended instant (``error``; bias = mean, spread = standard deviation, ms) and three
parts that add up to it: ``clock`` (where this home put the instant against where the leader
meant it: clock-offset estimation error), ``wake`` (when the play command actually left against
the instant minus the engine's latency estimate: event-loop lateness) and ``latency`` (the
command's real latency minus that estimate). ``latency`` is split around the client's mean
latency over the run into ``jitter`` (the simulator's: uniform +-15 ms has an sd of 8.7 ms) and
``estimate_error`` (the engine's estimate minus that mean); ``report_delay_ms`` is how late the
engine heard of the starts. ``jitter_skew_ms_p50``/``_p99``: the skew each start would have had
with its jitter as the only error (latency minus the client's mean latency over the run), the
floor for this very run. Jitter alone (four independent uniform +-15 ms) gives a start skew
whose median is ~18.4 ms and whose maximum is 30 ms: no open-loop timing can do better.

``--preset NAME`` (or ``all``) runs the same starts and resumes with players that behave like
real ones (``tests/plex_simulator/presets.py``): ``fast`` (as above), ``late`` (state changes
reported 50-250 ms late), ``sparse`` (+ a timeline only every 5 s), ``coarse`` (+ positions in
whole seconds), ``slow`` (1, 1.7, 2.3, 3 s per command, 3-9 s loads, late, sparse, coarse).
Per preset: start and resume skew p50/p99/max (the simulators' records), the run's jitter
floor, correcting seeks per minute of ``--steady-s`` seconds of steady play (and the largest
true spread meanwhile), members started late (a catch-up) and members not started. One
warm-up start per preset (not counted) lets the engine measure the players first, as the
first start of a real group does. The last line: ``{"presets": {...}}``.
"""

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
from typing import Any
import uuid

import aiohttp

from benchmarks._sync import (
    await_starts,
    first_start,
    pct,
    seeks,
    skew_figures,
    spread,
    stall_and_recover,
    start_skew,
    wait_for,
)
from custom_components.plexus.plex import NotificationListener, PlexServerAPI
from custom_components.plexus.plex.control import PlayerControl
from custom_components.plexus.syncplay import (
    MediaRef,
    PlexMemberPlayer,
    SyncConfig,
    SyncEngine,
)
from custom_components.plexus.syncplay.interfaces import MessageCallback
from tests.plex_simulator import ClientBehaviour, LibraryConfig, PlexSimulator
from tests.plex_simulator.clients import SimulatedClient
from tests.test_syncplay_engine import OffsetClock, PahoTransport

DEBUG = False
LATENCIES_MS = ((60, 120), (180, 250))
JITTER_MS = 15
OFFSETS_S = (2.0, -2.0)
LIBRARY = LibraryConfig(movies=5, shows=1, seasons_per_show=1, episodes_per_season=2, artists=0)
PRESET_NAMES = ("fast", "late", "sparse", "coarse", "slow")
SLOW_LATENCIES_MS = ((1000, 1700), (2300, 3000))


def preset_behaviour(preset: str, latency_ms: float) -> ClientBehaviour | None:
    """How a benchmark player of `preset` behaves (None: the simulator's plain model)."""
    if preset == "fast":
        return None
    late = {"report_delay_ms": (50.0, 250.0), "jitter_ms": float(JITTER_MS)}
    sparse = {"timeline_interval_s": 5.0} if preset != "late" else {}
    coarse = {"granularity_ms": 1000} if preset in ("coarse", "slow") else {}
    load = {"load_ms": (3000.0, 9000.0)} if preset == "slow" else {}
    return ClientBehaviour(
        play_ms=latency_ms,
        pause_ms=latency_ms,
        seek_ms=latency_ms,
        stop_ms=latency_ms,
        **late,  # type: ignore[arg-type]
        **sparse,  # type: ignore[arg-type]
        **coarse,  # type: ignore[arg-type]
        **load,  # type: ignore[arg-type]
    )


class TimedPlayer(PlexMemberPlayer):
    """A member that notes when each play command left and the latency the engine expected."""

    def __init__(self, home: BenchHome, control: PlayerControl, client_id: str, name: str) -> None:
        super().__init__(control, client_id, name=name)
        self.home = home
        self.plays: list[tuple[float, float]] = []
        self.reports: list[tuple[str, float]] = []

    async def play(self) -> None:
        estimate = self.home.engine.latency(self.player_id, "play")
        self.plays.append((time.monotonic(), estimate))
        await super().play()

    def update(
        self, state: str, media_key: str | None, position_ms: float, at: float | None = None
    ) -> None:
        if state != self.snapshot.state:
            self.reports.append((state, time.monotonic() if at is None else at))
        super().update(state, media_key, position_ms, at)


class Decomposition:
    """Per client: error of each start against the leader's instant, and its parts (seconds)."""

    def __init__(self) -> None:
        self.intended: dict[str, dict[int, float]] = {}
        self.leaders: dict[str, int] = {}
        self.parts: dict[str, dict[str, list[float]]] = {}
        self.delivery: list[float] = []
        self.latencies: list[dict[str, float]] = []

    def add(
        self, cid: str, records: list[tuple[int, TimedPlayer, float]], show: bool = False
    ) -> None:
        views = self.intended.get(cid, {})
        leader = self.leaders.get(cid)
        if leader is None or len(views) < 2:
            return
        truth = views[leader]
        errors = []
        latencies: dict[str, float] = {}
        for home, player, started in records:
            sent = [(t, e) for t, e in player.plays if t <= started]
            if not sent:
                continue
            send, estimate = sent[-1]
            mine = views[home]
            parts = {
                "error": started - truth,
                "clock": mine - truth,
                "wake": send - (mine - estimate),
                "latency": (started - send) - estimate,
            }
            latencies[player.name] = started - send
            for key, value in (parts | {"actual": started - send, "estimate": estimate}).items():
                self.parts.setdefault(player.name, {}).setdefault(key, []).append(value)
            errors.append(round(parts["error"] * 1000.0, 1))
            seen = [at for state, at in player.reports if state == "playing" and at >= started]
            if seen:
                self.delivery.append(seen[0] - started)
        self.latencies.append(latencies)
        if show:
            print("  errors ms", errors)

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, parts in sorted(self.parts.items()):
            # the latency part split in two around the client's mean latency over the run:
            # jitter (the simulator's, ~8.7 ms sd) and the estimate's own error
            actual, estimates = parts.pop("actual"), parts.pop("estimate")
            mean = statistics.fmean(actual)
            parts["jitter"] = [value - mean for value in actual]
            parts["estimate_error"] = [value - mean for value in estimates]
            result[name] = {
                key: {
                    "mean_ms": round(statistics.fmean(values) * 1000.0, 1),
                    "sd_ms": round(statistics.pstdev(values) * 1000.0, 1),
                }
                for key, values in parts.items()
            }
            result[name]["mean_latency_ms"] = round(mean * 1000.0, 1)
        if self.delivery:
            result["report_delay_ms"] = {
                "mean_ms": round(statistics.fmean(self.delivery) * 1000.0, 2),
                "max_ms": round(max(self.delivery) * 1000.0, 2),
            }
        return result

    def jitter_skews(self) -> list[float]:
        """Per start: the skew its jitter alone gave (latency minus the client's mean), ms."""
        means = {
            name: statistics.fmean(start[name] for start in self.latencies if name in start)
            for name in self.parts
        }
        skews = []
        for start in self.latencies:
            if len(start) == len(means):
                jitters = [value - means[name] for name, value in start.items()]
                skews.append((max(jitters) - min(jitters)) * 1000.0)
        return skews


DECOMPOSITION = Decomposition()


class BenchTransport(PahoTransport):
    def publish_now(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload)


class DelayingTransport:
    """Every published message reaches the broker 5-150 ms later (a slow MQTT path)."""

    def __init__(self, inner: BenchTransport, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng

    async def publish(self, topic: str, payload: bytes) -> None:
        delay = self.rng.uniform(0.005, 0.150)
        asyncio.get_running_loop().call_later(delay, self.inner.publish_now, topic, payload)

    async def subscribe(self, topic_filter: str, callback: MessageCallback) -> Any:
        return await self.inner.subscribe(topic_filter, callback)


class BenchHome:
    def __init__(self, index: int, topic: str, rng: random.Random, preset: str = "fast") -> None:
        self.index = index
        self.preset = preset
        self.late_starts = 0
        self.topic = topic
        self.rng = rng
        self.sims: list[PlexSimulator] = []
        self.clock = OffsetClock(OFFSETS_S[index])
        self.listeners: list[NotificationListener] = []
        self.controls: list[PlayerControl] = []
        self.players: list[TimedPlayer] = []

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.transport = BenchTransport("127.0.0.1", 1883)
        await self.transport.start()
        self.engine = SyncEngine(
            SyncConfig(
                "bench", "bench-secret", f"home{self.index}", f"Home {self.index}", self.topic
            ),
            self.clock,
            DelayingTransport(self.transport, self.rng),
            on_event=self._event,
        )
        latencies = SLOW_LATENCIES_MS if self.preset == "slow" else LATENCIES_MS
        for n, latency in enumerate(latencies[self.index]):
            low, high = 3 * (latency - JITTER_MS), 3 * (latency + JITTER_MS)
            sim = PlexSimulator(
                clients=1, seed=10 * self.index + n + 1, library=LIBRARY, latency_ms=(low, high)
            )
            next(iter(sim.clients.values())).behaviour = preset_behaviour(self.preset, latency)
            await sim.start()
            self.sims.append(sim)
            control = PlayerControl(
                PlexServerAPI(session, sim.url, sim.token), sim.machine_identifier
            )
            self.controls.append(control)
            client = next(iter(sim.clients.values()))
            client.name = f"home{self.index}-{latency}ms"
            player = TimedPlayer(self, control, client.machine_identifier, client.name)
            self.players.append(player)
            connected = asyncio.Event()
            listener = NotificationListener(
                session, sim.url, sim.token, player.handle_notification, _setter(connected)
            )
            listener.start()
            await connected.wait()
            self.listeners.append(listener)
            self.engine.add_member(player)
        await self.engine.start()

    @property
    def clients(self) -> list[SimulatedClient]:
        return [next(iter(sim.clients.values())) for sim in self.sims]

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        if DEBUG and kind in ("member_resynced", "member_failed", "drift_corrected", "waiting"):
            print("  event", self.index, kind, data.get("name"), data.get("error", ""))
        if kind == "member_resynced":
            self.late_starts += 1
        if kind in ("started", "resumed"):
            cid = str(data["command_id"])
            # the instant as this home placed it, on the (shared) monotonic clock
            at = data["at"] - self.clock.now() + self.clock.monotonic()
            DECOMPOSITION.intended.setdefault(cid, {})[self.index] = at
            if data["leader"] == self.engine.instance_id:
                DECOMPOSITION.leaders[cid] = self.index

    async def close(self) -> None:
        await self.engine.shutdown()
        for listener in self.listeners:
            await listener.stop()
        await self.transport.close()
        for sim in self.sims:
            await sim.stop()


def _setter(event: asyncio.Event) -> Any:
    def on_state(connected: bool, error: Exception | None) -> None:
        event.set()

    return on_state


async def measure_start(homes: list[BenchHome], since: float, cid: str) -> float:
    """Skew of one sync start or resume (the `play` effects), decomposed per client."""
    clients = [c for h in homes for c in h.clients]
    skew, _ = await start_skew(clients, since, "play")
    records = [
        (home.index, player, started)
        for home in homes
        for player, client in zip(home.players, home.clients, strict=True)
        if (started := first_start(client, since, "play")) is not None
    ]
    DECOMPOSITION.add(cid, records, show=DEBUG)
    return skew


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    topic = f"plexus-bench/{uuid.uuid4().hex}"
    homes = [BenchHome(0, topic, rng), BenchHome(1, topic, rng)]
    session = aiohttp.ClientSession()
    starts: list[float] = []
    resumes: list[float] = []
    baseline: list[float] = []
    try:
        for home in homes:
            await home.start(session)
        await wait_for(lambda: all(h.engine.state.homes == 2 for h in homes))
        await wait_for(lambda: all(h.engine.clock_offset(f"home{1 - h.index}") for h in homes))
        clients = [c for h in homes for c in h.clients]
        key = homes[0].sims[0].library.movies()[0].rating_key
        for round_ in range(args.rounds):
            leader = homes[round_ % 2].engine
            since = time.monotonic()
            result = await leader.play(MediaRef(key), 60_000.0 + 1000 * round_)
            starts.append(await measure_start(homes, since, result.command_id))
            await asyncio.sleep(0.5)
            await leader.pause()
            await wait_for(lambda: all(h.engine.state.state == "paused" for h in homes))
            await wait_for(lambda: spread(clients) <= 2)
            since = time.monotonic()
            result = await homes[1 - round_ % 2].engine.resume()
            resumes.append(await measure_start(homes, since, result.command_id))
            await asyncio.sleep(0.3)
            await leader.stop()
            await wait_for(lambda: all(c.state == "stopped" for c in clients))
            await wait_for(lambda: all(h.engine.state.state == "idle" for h in homes))
            print(f"round {round_ + 1}: start {starts[-1]:.1f} ms, resume {resumes[-1]:.1f} ms")

        # naive baseline: one message with playAt; each home plays at that instant on its own
        # clock, no preparation, no latency compensation
        for round_ in range(args.baseline_rounds):
            leader_home = homes[round_ % 2]
            play_at = leader_home.clock.now() + 1.0
            since = time.monotonic()

            async def naive(home: BenchHome, play_at: float = play_at) -> None:
                await asyncio.sleep(rng.uniform(0.005, 0.150))  # the message's MQTT path
                await asyncio.sleep(max(0.0, play_at - home.clock.now()))
                await asyncio.gather(
                    *(
                        control.play_media(c.machine_identifier, key, "movie", offset_ms=60_000)
                        for control, c in zip(home.controls, home.clients, strict=True)
                    )
                )

            await asyncio.gather(*(naive(h) for h in homes))
            baseline.append((await start_skew(clients, since, "playMedia"))[0])
            for home in homes:
                for control, c in zip(home.controls, home.clients, strict=True):
                    await control.stop(c.machine_identifier)
            await wait_for(lambda: all(c.state == "stopped" for c in clients))

        # drift recovery: one client stalls 1.5 s while playing
        await homes[0].engine.play(MediaRef(key), 30_000.0)
        await wait_for(lambda: all(c.state == "playing" for c in clients))
        await asyncio.sleep(2.0)
        drift_recovery, _ = await stall_and_recover(clients, homes[1].clients[0])
        estimate = homes[0].engine.clock_offset("home1") or 0.0
        clock_error = abs(estimate - (OFFSETS_S[1] - OFFSETS_S[0])) * 1000.0
    finally:
        for home in homes:
            await home.close()
        await session.close()
    jitter_skews = DECOMPOSITION.jitter_skews()
    return {
        **skew_figures(starts, resumes),
        "baseline_skew_ms_p50": pct(baseline, 0.5),
        "baseline_skew_ms_p99": pct(baseline, 0.99),
        "drift_recovery_s": round(drift_recovery, 2),
        "clock_error_ms": round(clock_error, 1),
        "jitter_skew_ms_p50": pct(jitter_skews, 0.5) if jitter_skews else None,
        "jitter_skew_ms_p99": pct(jitter_skews, 0.99) if jitter_skews else None,
        "per_client": DECOMPOSITION.summary(),
    }


async def run_preset(args: argparse.Namespace, preset: str) -> dict[str, Any]:
    """Starts and resumes with players of one preset; its figures."""
    global DECOMPOSITION  # noqa: PLW0603
    DECOMPOSITION = Decomposition()
    rng = random.Random(args.seed)
    topic = f"plexus-bench/{uuid.uuid4().hex}"
    homes = [BenchHome(0, topic, rng, preset), BenchHome(1, topic, rng, preset)]
    session = aiohttp.ClientSession()
    starts: list[float] = []
    resumes: list[float] = []
    not_started = 0
    limit = 40.0 if preset == "slow" else 15.0
    failed: dict[str, int] = {}
    try:
        for home in homes:
            await home.start(session)
        await wait_for(lambda: all(h.engine.state.homes == 2 for h in homes))
        await wait_for(lambda: all(h.engine.clock_offset(f"home{1 - h.index}") for h in homes))
        clients = [c for h in homes for c in h.clients]
        key = homes[0].sims[0].library.movies()[0].rating_key

        async def stop(leader: SyncEngine) -> None:
            await leader.stop()
            await wait_for(lambda: all(c.state == "stopped" for c in clients), limit)
            await wait_for(lambda: all(h.engine.state.state == "idle" for h in homes), limit)
            await asyncio.sleep(0.3)  # (the last, late reports)

        # warm-up: the engine measures the players (not counted)
        await homes[0].engine.play(MediaRef(key), 30_000.0)
        await await_starts(clients, time.monotonic() - 60.0, limit)
        await stop(homes[0].engine)
        late_before = sum(h.late_starts for h in homes)
        for round_ in range(args.rounds):
            leader = homes[round_ % 2].engine
            since = time.monotonic()
            result = await leader.play(MediaRef(key), 60_000.0 + 1000 * round_)
            for member in result.failed.values():
                failed[member] = failed.get(member, 0) + 1
            instants, missing = await await_starts(clients, since, limit)
            not_started += missing
            if len(instants) > 1:
                starts.append((max(instants) - min(instants)) * 1000.0)
            if not missing:
                await measure_start(homes, since, result.command_id)
            await asyncio.sleep(0.5)
            await leader.pause()
            await wait_for(lambda: all(h.engine.state.state == "paused" for h in homes))
            with contextlib.suppress(TimeoutError):
                await wait_for(lambda: spread(clients) <= 2, limit)
            await asyncio.sleep(0.3 if preset == "fast" else 1.0)
            since = time.monotonic()
            result = await homes[1 - round_ % 2].engine.resume()
            instants, missing = await await_starts(clients, since, limit)
            not_started += missing
            if len(instants) > 1:
                resumes.append((max(instants) - min(instants)) * 1000.0)
            if not missing:
                await measure_start(homes, since, result.command_id)
            await asyncio.sleep(0.3)
            await stop(leader)
            print(f"{preset} round {round_ + 1}: starts {starts[-1:]}, resumes {resumes[-1:]}")
        late = sum(h.late_starts for h in homes) - late_before

        # steady play: correcting seeks while nothing disturbs the players
        await homes[0].engine.play(MediaRef(key), 120_000.0)
        await await_starts(clients, time.monotonic() - 60.0, limit)
        await asyncio.sleep(2.0)
        before = seeks(clients)
        largest = 0.0
        deadline = time.monotonic() + args.steady_s
        while time.monotonic() < deadline:
            largest = max(largest, spread(clients))
            await asyncio.sleep(0.1)
        false_seeks = seeks(clients) - before
    finally:
        for home in homes:
            await home.close()
        await session.close()
    jitter_skews = DECOMPOSITION.jitter_skews()
    return {
        "rounds": args.rounds,
        "start_p50_ms": pct(starts, 0.5) if starts else None,
        "start_p99_ms": pct(starts, 0.99) if starts else None,
        "start_max_ms": round(max(starts), 1) if starts else None,
        "resume_p50_ms": pct(resumes, 0.5) if resumes else None,
        "resume_p99_ms": pct(resumes, 0.99) if resumes else None,
        "resume_max_ms": round(max(resumes), 1) if resumes else None,
        "jitter_floor_p50_ms": pct(jitter_skews, 0.5) if jitter_skews else None,
        "jitter_floor_p99_ms": pct(jitter_skews, 0.99) if jitter_skews else None,
        "false_seeks_per_min": round(false_seeks * 60.0 / args.steady_s, 2),
        "steady_spread_max_ms": round(largest, 1),
        "members_started_late": late,
        "members_not_started": not_started,
        "members_failed": failed,
    }


async def run_presets(args: argparse.Namespace) -> dict[str, Any]:
    """Every preset asked for, one after the other."""
    names = PRESET_NAMES if args.preset == "all" else (args.preset,)
    results: dict[str, Any] = {}
    for name in names:
        results[name] = await run_preset(args, name)
        print(name, json.dumps(results[name]), flush=True)
    return {"presets": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--preset", choices=(*PRESET_NAMES, "all"), help="players like real ones (see above)"
    )
    parser.add_argument("--steady-s", type=float, default=30.0, help="steady play per preset")
    parser.add_argument("--rounds", type=int, default=30, help="starts (and resumes)")
    parser.add_argument("--baseline-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="per-client errors and events")
    args = parser.parse_args()
    global DEBUG  # noqa: PLW0603
    DEBUG = args.verbose
    if args.preset:
        print(json.dumps(asyncio.run(run_presets(args))))
        return
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
