"""Run the simulator stand-alone.

python -m tests.plex_simulator --host 0.0.0.0 --port 32400 --token demo-token
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from .library import LibraryConfig
from .server import PlexSimulator


def _latency(text: str) -> tuple[int, int]:
    low, _, high = text.partition(",")
    return int(low), int(high or low)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.plex_simulator",
        description="A simulated Plex Media Server with simulated players.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=32400, help="port (0 = any free port)")
    parser.add_argument("--token", default="demo-token", help="X-Plex-Token the server accepts")
    parser.add_argument("--name", default="Plexus Simulator", help="server friendly name")
    parser.add_argument("--machine-identifier", default=None, help="40-hex server id")
    parser.add_argument("--seed", type=int, default=1, help="seed for library and players")
    parser.add_argument("--clients", type=int, default=3, help="number of players")
    parser.add_argument("--movies", type=int, default=200)
    parser.add_argument("--shows", type=int, default=20)
    parser.add_argument("--seasons", type=int, default=3, help="seasons per show")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per season")
    parser.add_argument("--artists", type=int, default=10, help="0 disables the music section")
    parser.add_argument("--albums", type=int, default=2, help="albums per artist")
    parser.add_argument("--tracks", type=int, default=8, help="tracks per album")
    parser.add_argument(
        "--movie-root", action="append", default=None, help="movie folder (repeatable)"
    )
    parser.add_argument("--tv-root", action="append", default=None, help="TV folder (repeatable)")
    parser.add_argument(
        "--music-root", action="append", default=None, help="music folder (repeatable)"
    )
    parser.add_argument(
        "--latency-ms", type=_latency, default=(150, 900), help="player reaction time 'LOW,HIGH'"
    )
    parser.add_argument(
        "--timeline-interval", type=float, default=1.0, help="seconds between playing updates"
    )
    parser.add_argument(
        "--autoplay", type=int, default=0, help="start this many players playing at start-up"
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Start the simulator and serve until cancelled."""
    config = LibraryConfig(
        movies=args.movies,
        shows=args.shows,
        seasons_per_show=args.seasons,
        episodes_per_season=args.episodes,
        artists=args.artists,
        albums_per_artist=args.albums,
        tracks_per_album=args.tracks,
        movie_roots=tuple(args.movie_root or ("/data/movies",)),
        tv_roots=tuple(args.tv_root or ("/data/tv",)),
        music_roots=tuple(args.music_root or ("/data/music",)),
        seed=args.seed,
    )
    sim = PlexSimulator(
        token=args.token,
        friendly_name=args.name,
        machine_identifier=args.machine_identifier,
        library=config,
        clients=args.clients,
        seed=args.seed,
        latency_ms=args.latency_ms,
        timeline_interval_s=args.timeline_interval,
    )
    url = await sim.start(args.host, args.port)
    await sim.autoplay(args.autoplay, seed=args.seed)
    lines = [
        f"Plex simulator '{sim.friendly_name}' listening on {args.host}:{sim.port}",
        f"  URL:                {url}",
        f"  Token:              {sim.token}",
        f"  Machine identifier: {sim.machine_identifier}",
        f"  Library:            {len(sim.library)} items in {len(sim.library.sections)} sections",
        f"  Players:            {', '.join(c.name for c in sim.clients.values()) or 'none'}",
        "Press Ctrl-C to stop.",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
