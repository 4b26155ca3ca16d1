"""A Plex Media Server simulator for tests, the live demo and benchmarks.

    sim = PlexSimulator(token="t", clients=3, seed=1)
    url = await sim.start()          # http://127.0.0.1:<port>
    ...
    await sim.stop()

Run it stand-alone with `python -m tests.plex_simulator --help`.
"""

from .clients import PlayQueue, SimulatedClient, StateChange
from .library import Item, Library, LibraryConfig, MediaInfo, Playlist, Section
from .plextv import PlexTvSimulator
from .presets import PRESETS, ClientBehaviour, behaviour
from .server import PlexSimulator

__all__ = [
    "PRESETS",
    "ClientBehaviour",
    "Item",
    "Library",
    "LibraryConfig",
    "MediaInfo",
    "PlayQueue",
    "Playlist",
    "PlexSimulator",
    "PlexTvSimulator",
    "Section",
    "SimulatedClient",
    "StateChange",
    "behaviour",
]
