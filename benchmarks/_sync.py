"""What the two sync-play benchmarks share: percentiles, waiting, a stall and its recovery."""

import asyncio
from collections.abc import Callable
import time

from tests.plex_simulator.clients import SimulatedClient


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, rounded to 0.1."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def wait_for(check: Callable[[], bool], limit: float = 30.0, what: str = "") -> None:
    """Poll until check() holds (TimeoutError naming `what` after `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what or "condition not reached")
        await asyncio.sleep(0.01)


def first_start(player: SimulatedClient, since: float, command: str) -> float | None:
    """Monotonic instant the player first started playing because of `command` after `since`."""
    return next(
        (
            change.monotonic
            for change in player.record
            if change.monotonic > since and change.command == command and change.state == "playing"
        ),
        None,
    )


async def start_skew(
    players: list[SimulatedClient], since: float, command: str
) -> tuple[float, list[float]]:
    """Skew (ms) of the players' starts after `since` (waits for them), and each one's instant."""
    await wait_for(
        lambda: all(first_start(p, since, command) is not None for p in players),
        what=f"not every player started ({command})",
    )
    starts = [t for p in players if (t := first_start(p, since, command)) is not None]
    return (max(starts) - min(starts)) * 1000.0, starts


async def await_starts(
    players: list[SimulatedClient], since: float, limit: float, command: str = "play"
) -> tuple[list[float], int]:
    """The players' start instants after `since` (waiting up to `limit` s) and how many missed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(first_start(p, since, command) is not None for p in players):
            break
        await asyncio.sleep(0.02)
    starts = [t for p in players if (t := first_start(p, since, command)) is not None]
    return starts, len(players) - len(starts)


def seeks(players: list[SimulatedClient]) -> int:
    """Seek commands the players have received so far."""
    return sum(1 for p in players for command, _ in p.commands if command == "seekTo")


def spread(players: list[SimulatedClient]) -> float:
    """Largest minus smallest true position, ms."""
    positions = [p.position_ms for p in players]
    return max(positions) - min(positions)


def skew_figures(starts: list[float], resumes: list[float]) -> dict[str, float | int]:
    """The issue's skew figures (ms) over starts and resumes together, and each kind's median."""
    skews = starts + resumes
    return {
        "homes": 2,
        "clients": 4,
        "starts": len(skews),
        "skew_ms_p50": pct(skews, 0.5),
        "skew_ms_p99": pct(skews, 0.99),
        "skew_ms_max": round(max(skews), 1),
        "start_skew_ms_p50": pct(starts, 0.5),
        "resume_skew_ms_p50": pct(resumes, 0.5),
    }


def in_step(players: list[SimulatedClient], tolerance_ms: float = 100.0) -> bool:
    """Every player plays, all within `tolerance_ms` of each other."""
    positions = [p.position_ms for p in players]
    return all(p.state == "playing" for p in players) and (
        max(positions) - min(positions) <= tolerance_ms
    )


async def stall_and_recover(
    players: list[SimulatedClient], staller: SimulatedClient, seconds: float = 1.5
) -> tuple[float, float]:
    """Stall one playing player; seconds until all are in step again, from the stall's end and
    from its start."""
    started = time.monotonic()
    await staller.local_stall(seconds)
    ended = time.monotonic()
    await asyncio.sleep(0.05)
    await wait_for(lambda: in_step(players), 15.0, "the group did not recover from the stall")
    recovered = time.monotonic()
    return recovered - ended, recovered - started
