"""Sync-play end to end: two real Home Assistant homes, four players, a slow MQTT path.

Run: ``scripts/bench syncplay`` (``.venv/bin/python -m benchmarks.syncplay``; ``--help``).

Setup (issue 5): two `hass -c` processes (tests/e2e/harness.py) with wall clocks +2 s and -2 s
off, each with the MQTT integration and Plexus set up through HA's HTTP API, each with its own
simulated Plex server and two players whose resume latencies are 60/120 ms and 180/250 ms with
+-15 ms uniform jitter per command. Both homes reach the real Mosquitto (127.0.0.1:1883) through
a proxy that delays every chunk 2.5-75 ms per direction (5-150 ms per message path, in order).

Also printed: the skew that the players' +-15 ms jitter alone gives a perfect scheduler
(`jitter_floor_ms_*`, a Monte Carlo model of four independent uniform draws, not a measurement):
no open-loop start can beat it.

Measured from the players' own records (this process, one monotonic clock):
- skew = latest minus earliest start instant across the four players, for N `plexus.sync_play`
  starts and N `plexus.sync_resume` after `plexus.sync_pause` (leaders alternate between homes);
- the naive baseline, the original single-message protocol: one MQTT message
  `{"type": "play", "movieTime": "0:01:00", "playAt": <epoch ms>}` through the same slow path,
  every home starts its players at `playAt` on its own clock, no preparation, no compensation;
- drift recovery: one player stalls 1.5 s while the group plays; seconds from the end of the
  stall until all four play within 100 ms of each other (`drift_recovery_from_stall_s`: from
  its start).

Then the same two-home scenario again (two fresh Home Assistant processes, same clocks, same slow
MQTT path) with players that behave like smart-TV apps: the simulator's `tv_app` preset (each
player acts in its own 150-600 ms +-15 ms, loads an item in 1.5-4 s, reports a state change
50-250 ms late, sends a timeline only every 5 s while playing and positions in tenths of a
second, loses 2 % of its timelines). One warm-up start (not counted) lets the homes measure their
players, as a real group's first start does. Printed under `tv_app`: start and resume skew
p50/p99/max, the same jitter floor model, members not started within 30 s, and correcting seeks
per minute of `--steady-s` seconds of steady play (with the largest true spread meanwhile).
`--tv-rounds 0` skips it.
The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import logging
from pathlib import Path
import random
import secrets
import statistics
import tempfile
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
from custom_components.plexus.plex import PlexServerAPI
from custom_components.plexus.plex.control import PlayerControl
from tests.e2e.harness import HaHome, set_up_group, stop_homes
from tests.e2e.mqtt_proxy import DelayingProxy
from tests.plex_simulator import PRESETS, behaviour
from tests.test_syncplay_engine import PahoTransport

GROUP = "Bench Night"
OFFSETS_S = (2.0, -2.0)
RESUME_LATENCIES_MS = ((60, 120), (180, 250))
JITTER_MS = 15
START_POSITION_S = 60.0
TV_PRESET = "tv_app"
TV_LIMIT_S = 30.0  # a member not started this long after the command counts as not started


def jitter_floor_ms(
    players: int, jitter_ms: float = JITTER_MS, samples: int = 100_000
) -> tuple[float, float]:
    """Skew p50/p99 that the players' own jitter alone gives a perfect scheduler (a model).

    Each player's resume takes its latency plus an independent uniform(-jitter_ms, +jitter_ms)
    that nobody can know before the command is sent, so no open-loop start can beat the range
    of `players` such draws.
    """
    rng = random.Random(0)
    ranges = []
    for _ in range(samples):
        draws = [rng.uniform(-jitter_ms, jitter_ms) for _ in range(players)]
        ranges.append(max(draws) - min(draws))
    return pct(ranges, 0.5), pct(ranges, 0.99)


def player_range(resume_ms: int) -> tuple[int, int]:
    """The simulator's latency range whose fast commands (a third) are resume_ms +- jitter."""
    return (3 * (resume_ms - JITTER_MS), 3 * (resume_ms + JITTER_MS))


async def call(home: HaHome, service: str, data: dict[str, Any]) -> None:
    """Call a plexus service on a home; raise when HA refused it."""
    status, body = await home.call_service("plexus", service, data)
    if status != 200:
        raise RuntimeError(f"{home.name}: plexus.{service} -> {status}: {body}")


class NaiveHome:
    """The original protocol's receiver in one home: play at `playAt` on this home's clock."""

    def __init__(self, home: HaHome, clock_offset_s: float, proxy_port: int, topic: str) -> None:
        """Listen on `topic` through the delaying proxy."""
        self.home = home
        self.offset = clock_offset_s
        self.topic = topic
        self.transport = PahoTransport("127.0.0.1", proxy_port)
        self.tasks: set[asyncio.Task[None]] = set()
        self.control: PlayerControl | None = None

    def now(self) -> float:
        """This home's (wrong) wall clock."""
        return time.time() + self.offset

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Connect and subscribe."""
        simulator = self.home.simulator
        self.control = PlayerControl(
            PlexServerAPI(session, simulator.url, simulator.token), simulator.machine_identifier
        )
        await self.transport.start()
        await self.transport.subscribe(self.topic, self._message)

    def _message(self, topic: str, payload: bytes) -> None:
        message = json.loads(payload)
        task = asyncio.get_running_loop().create_task(self._play(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _play(self, message: dict[str, Any]) -> None:
        hours, minutes, seconds = (int(part) for part in message["movieTime"].split(":"))
        offset_ms = ((hours * 60 + minutes) * 60 + seconds) * 1000
        await asyncio.sleep(max(0.0, message["playAt"] / 1000.0 - self.now()))
        assert self.control is not None
        key = message["ratingKey"]
        await asyncio.gather(
            *(
                self.control.play_media(p.machine_identifier, key, "movie", offset_ms=offset_ms)
                for p in self.home.players
            )
        )

    async def publish(self, payload: dict[str, Any]) -> None:
        """Send the single message (through the slow path like everything else)."""
        await self.transport.publish(self.topic, json.dumps(payload).encode())

    async def close(self) -> None:
        """Disconnect."""
        await self.transport.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark."""
    proxy = DelayingProxy(seed=args.seed)
    proxy_port = await proxy.start()
    workdir = Path(tempfile.mkdtemp(prefix="plexus-bench-syncplay-"))
    homes = [
        HaHome(
            f"Home {'AB'[n]}",
            workdir,
            clock_offset_s=OFFSETS_S[n],
            player_latencies_ms=tuple(player_range(ms) for ms in RESUME_LATENCIES_MS[n]),
            seed=n + 1,
            mqtt_port=proxy_port,
        )
        for n in range(2)
    ]
    secret = secrets.token_urlsafe(24)
    players = [p for home in homes for p in home.players]
    starts: list[float] = []
    resumes: list[float] = []
    baseline: list[float] = []
    errors: dict[str, list[float]] = {p.name: [] for p in players}
    session = aiohttp.ClientSession()
    naive: list[NaiveHome] = []
    try:
        await set_up_group(homes, GROUP, secret)
        slug = GROUP.lower().replace(" ", "_")
        # Let clock sync collect samples through the slow path (as a real group would have).
        await asyncio.sleep(args.settle)
        movie = homes[0].simulator.library.movies()[0]

        for n in range(args.rounds):
            leader, other = homes[n % 2], homes[1 - n % 2]
            since = time.monotonic()
            await call(
                leader,
                "sync_play",
                {"group": GROUP, "media": movie.rating_key, "position": START_POSITION_S + n},
            )
            skew, instants = await start_skew(players, since, "play")
            starts.append(skew)
            middle = statistics.median(instants)
            for player, instant in zip(players, instants, strict=True):
                errors[player.name].append((instant - middle) * 1000.0)
            await asyncio.sleep(0.5)
            await call(leader, "sync_pause", {"group": GROUP})
            await wait_for(lambda: all(p.state == "paused" for p in players), what="pause")
            await asyncio.sleep(0.5)
            since = time.monotonic()
            await call(other, "sync_resume", {"group": GROUP})
            skew, _ = await start_skew(players, since, "play")
            resumes.append(skew)
            await asyncio.sleep(0.3)
            await call(leader, "sync_stop", {"group": GROUP})
            await wait_for(lambda: all(p.state == "stopped" for p in players), what="stop")
            print(f"round {n + 1}: start {starts[-1]:.1f} ms, resume {resumes[-1]:.1f} ms")

        # The naive baseline over the same slow MQTT path.
        topic = f"plexus-bench/naive/{uuid.uuid4().hex}"
        naive = [NaiveHome(h, OFFSETS_S[n], proxy_port, topic) for n, h in enumerate(homes)]
        for receiver in naive:
            await receiver.start(session)
        await asyncio.sleep(0.5)
        for n in range(args.baseline_rounds):
            sender = naive[n % 2]
            since = time.monotonic()
            await sender.publish(
                {
                    "type": "play",
                    "movieTime": "0:01:00",
                    "playAt": round((sender.now() + 1.0) * 1000),
                    "ratingKey": movie.rating_key,
                }
            )
            skew, _ = await start_skew(players, since, "playMedia")
            baseline.append(skew)
            for home in homes:
                for player in home.players:
                    await player.local_stop()
            print(f"baseline {n + 1}: {skew:.1f} ms")

        # Drift recovery: one player stalls 1.5 s while the group plays.
        await call(
            homes[0], "sync_play", {"group": GROUP, "media": movie.rating_key, "position": 30}
        )
        await wait_for(lambda: all(p.state == "playing" for p in players), what="playing")
        await asyncio.sleep(3.0)
        recovery, recovery_from_stall = await stall_and_recover(players, homes[1].players[0])
        offsets = []
        for home in homes:
            state = await home.state(f"sensor.{slug}_clock_offset")
            offsets.append(float(state["state"]) if state else float("nan"))
    finally:
        for receiver in naive:
            await receiver.close()
        await session.close()
        await stop_homes(homes)
        await proxy.stop()
    floor_p50, floor_p99 = jitter_floor_ms(len(players))
    return {
        **skew_figures(starts, resumes),
        "jitter_floor_ms_p50": floor_p50,
        "jitter_floor_ms_p99": floor_p99,
        "baseline_skew_ms_p50": pct(baseline, 0.5),
        "baseline_skew_ms_p99": pct(baseline, 0.99),
        "drift_recovery_s": round(recovery, 2),
        "drift_recovery_from_stall_s": round(recovery_from_stall, 2),
        # B's clock minus A's as the homes' sensors show it (true value: -4000 ms).
        "clock_b_minus_a_ms": round(offsets[1] - offsets[0], 1),
        # Each player's start minus the group's median start, ms (mean / stdev over starts):
        # a mean far from 0 is an estimation bias, the stdev is mostly the players' jitter.
        "player_error_ms": {
            name: [round(statistics.fmean(v), 1), round(statistics.pstdev(v), 1)]
            for name, v in errors.items()
        },
    }


async def run_tv_app(args: argparse.Namespace) -> dict[str, Any]:
    """The two-home scenario with `tv_app` players: starts, resumes, steady play."""
    proxy = DelayingProxy(seed=args.seed + 1)
    proxy_port = await proxy.start()
    workdir = Path(tempfile.mkdtemp(prefix="plexus-bench-syncplay-tv-"))
    rng = random.Random(args.seed)
    homes = [
        HaHome(
            f"Home {'AB'[n]}",
            workdir,
            clock_offset_s=OFFSETS_S[n],
            player_behaviours=(behaviour(TV_PRESET, rng), behaviour(TV_PRESET, rng)),
            seed=n + 1,
            mqtt_port=proxy_port,
        )
        for n in range(2)
    ]
    players = [p for home in homes for p in home.players]
    starts: list[float] = []
    resumes: list[float] = []
    not_started = {"start": 0, "resume": 0}
    errors: dict[str, list[float]] = {p.name: [] for p in players}

    def note_errors(since: float) -> None:
        """Each player's start minus the median of the players' starts (all four started)."""
        instants = [first_start(p, since, "play") for p in players]
        known = [t for t in instants if t is not None]
        if len(known) < len(players):
            return
        middle = statistics.median(known)
        for player, instant in zip(players, known, strict=True):
            errors[player.name].append((instant - middle) * 1000.0)

    try:
        await set_up_group(homes, GROUP, secrets.token_urlsafe(24))
        await asyncio.sleep(args.settle)
        movie = homes[0].simulator.library.movies()[0]

        async def stop(home: HaHome) -> None:
            await call(home, "sync_stop", {"group": GROUP})
            await wait_for(lambda: all(p.state == "stopped" for p in players), TV_LIMIT_S, "stop")
            await asyncio.sleep(0.5)  # (the last, late reports)

        # Warm-up (not counted): the homes measure their players' latencies and report lags.
        since = time.monotonic()
        await call(
            homes[0], "sync_play", {"group": GROUP, "media": movie.rating_key, "position": 30}
        )
        await await_starts(players, since, TV_LIMIT_S)
        await asyncio.sleep(1.0)
        await stop(homes[0])

        for n in range(args.tv_rounds):
            leader, other = homes[n % 2], homes[1 - n % 2]
            since = time.monotonic()
            await call(
                leader,
                "sync_play",
                {"group": GROUP, "media": movie.rating_key, "position": START_POSITION_S + n},
            )
            instants, missing = await await_starts(players, since, TV_LIMIT_S)
            not_started["start"] += missing
            if len(instants) > 1:
                starts.append((max(instants) - min(instants)) * 1000.0)
            note_errors(since)
            await asyncio.sleep(0.5)
            await call(leader, "sync_pause", {"group": GROUP})
            await wait_for(
                lambda: all(p.state == "paused" for p in players), TV_LIMIT_S, "tv_app pause"
            )
            await asyncio.sleep(1.0)
            since = time.monotonic()
            await call(other, "sync_resume", {"group": GROUP})
            instants, missing = await await_starts(players, since, TV_LIMIT_S)
            not_started["resume"] += missing
            if len(instants) > 1:
                resumes.append((max(instants) - min(instants)) * 1000.0)
            note_errors(since)
            await asyncio.sleep(0.3)
            await stop(leader)
            print(f"tv_app round {n + 1}: start {starts[-1:]}, resume {resumes[-1:]} (ms)")

        # Steady play: correcting seeks while nothing disturbs the players.
        since = time.monotonic()
        await call(
            homes[0], "sync_play", {"group": GROUP, "media": movie.rating_key, "position": 120}
        )
        await await_starts(players, since, TV_LIMIT_S)
        await asyncio.sleep(2.0)
        before = seeks(players)
        largest = 0.0
        deadline = time.monotonic() + args.steady_s
        while time.monotonic() < deadline:
            largest = max(largest, spread(players))
            await asyncio.sleep(0.1)
        steady_seeks = seeks(players) - before
        slug = GROUP.lower().replace(" ", "_")
        members = await homes[0].state(f"sensor.{slug}_members")
        precision = {
            m["name"]: m.get("expected_precision_ms")
            for m in (members or {}).get("attributes", {}).get("members", [])
        }
    finally:
        await stop_homes(homes)
        await proxy.stop()
    floor_p50, floor_p99 = jitter_floor_ms(len(players), PRESETS[TV_PRESET].jitter_ms)
    return {
        "rounds": args.tv_rounds,
        "start_p50_ms": pct(starts, 0.5) if starts else None,
        "start_p99_ms": pct(starts, 0.99) if starts else None,
        "start_max_ms": round(max(starts), 1) if starts else None,
        "resume_p50_ms": pct(resumes, 0.5) if resumes else None,
        "resume_p99_ms": pct(resumes, 0.99) if resumes else None,
        "resume_max_ms": round(max(resumes), 1) if resumes else None,
        "jitter_floor_ms_p50": floor_p50,
        "jitter_floor_ms_p99": floor_p99,
        "members_not_started": not_started["start"] + not_started["resume"],
        "false_seeks_per_min": round(steady_seeks * 60.0 / args.steady_s, 2),
        "steady_spread_max_ms": round(largest, 1),
        # What Home A's members sensor tells the user to expect from each player, ms, and each
        # player's start minus the median start (mean / stdev / largest absolute, ms).
        "expected_precision_ms": precision,
        "player_error_ms": {
            name: [
                round(statistics.fmean(v), 1),
                round(statistics.pstdev(v), 1),
                round(max(abs(x) for x in v), 1),
            ]
            for name, v in errors.items()
            if v
        },
    }


def main() -> None:
    """Parse arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="starts (and resumes)")
    parser.add_argument("--baseline-rounds", type=int, default=30)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before the first start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tv-rounds", type=int, default=25, help="tv_app starts (and resumes)")
    parser.add_argument("--steady-s", type=float, default=30.0, help="tv_app steady play, s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    random.seed(args.seed)
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    if args.tv_rounds > 0:
        result[TV_PRESET] = asyncio.run(run_tv_app(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
