"""Players benchmark: state latency and search_media latency, through a real Home Assistant core.

Run: ``scripts/bench players`` (``.venv/bin/python -m benchmarks.players``).

A Plex simulator with 50 clients and a 50,000-item library runs in this process, next to a Home
Assistant core (the test harness's, with its registries) that loads Plexus from this repository.
1. State latency: 20 clients play at once; each then toggles pause/play on the device itself
   (the "remote"); the latency of one change is the HA ``state_changed`` event's wall time minus
   the instant the simulated client records the change took effect.
2. Search latency: ``media_player.search_media`` (the service Assist calls) with 200 queries —
   titles from the library with one typo, some with the year, some without the leading article.
The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
from pathlib import Path
import random
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def typo(rng: random.Random, text: str) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:])
    return text[:i] + text[i + 1 :]  # drop one letter


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from homeassistant import loader
    from homeassistant.core import Event, EventStateChangedData
    from homeassistant.helpers import entity_registry as er
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    import custom_components.plexus.const  # noqa: F401 - before HA looks for custom integrations
    from custom_components.plexus.const import DOMAIN
    from tests.conftest import entry_data
    from tests.plex_simulator import LibraryConfig, PlexSimulator

    # 50,000 items: 10,000 movies + 400 shows x 4 seasons x 24 episodes (+ shows and seasons).
    library = LibraryConfig(
        movies=args.movies, shows=400, seasons_per_show=4, episodes_per_season=24, artists=0
    )
    sim = PlexSimulator(
        token="bench-token",
        clients=args.clients,
        seed=5,
        latency_ms=(20, 60),
        library=library,
        timeline_interval_s=1.0,
    )
    await sim.start()
    config_dir = tempfile.mkdtemp(prefix="plexus-bench-")
    (Path(config_dir) / "custom_components").mkdir()
    (Path(config_dir) / "custom_components" / "plexus").symlink_to(
        ROOT / "custom_components" / "plexus"
    )
    result: dict[str, Any] = {}
    async with async_test_home_assistant(config_dir=config_dir) as hass:
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        entry = MockConfigEntry(
            domain=DOMAIN, title="Bench", unique_id=sim.machine_identifier, data=entry_data(sim)
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        while not coordinator.listener.connected:
            await asyncio.sleep(0.05)
        registry = er.async_get(hass)
        clients = list(sim.clients.values())
        entity_of = {
            c.machine_identifier: registry.async_get_entity_id(
                "media_player", DOMAIN, f"{sim.machine_identifier}-player-{c.machine_identifier}"
            )
            for c in clients
        }
        client_of = {v: k for k, v in entity_of.items()}
        seen: dict[tuple[str, str], float] = {}

        def on_change(event: Event[EventStateChangedData]) -> None:
            new = event.data["new_state"]
            old = event.data["old_state"]
            if new is None or old is None or new.state == old.state:
                return
            client_id = client_of.get(event.data["entity_id"])
            if client_id is not None:
                seen.setdefault((client_id, new.state), time.time())

        hass.bus.async_listen("state_changed", on_change)
        movies = sim.library.movies()
        playing = clients[: args.sessions]
        for i, client in enumerate(playing):
            await client.local_start(movies[i].id)
        await asyncio.sleep(2)
        latencies: list[float] = []
        for _round in range(args.rounds):
            for state, action in (("paused", "local_pause"), ("playing", "local_play")):
                seen.clear()
                changes = [await getattr(c, action)() for c in playing]
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and len(
                    [c for c in playing if (c.machine_identifier, state) in seen]
                ) < len(playing):
                    await asyncio.sleep(0.005)
                for client, change in zip(playing, changes, strict=True):
                    at = seen.get((client.machine_identifier, state))
                    if change is not None and at is not None:
                        latencies.append((at - change.wall_time) * 1000)
                await asyncio.sleep(0.3)
        result["clients"] = len(clients)
        result["sessions"] = len(playing)
        result["state_changes_measured"] = len(latencies)
        result["state_latency_ms_p50"] = pct(latencies, 0.5)
        result["state_latency_ms_p99"] = pct(latencies, 0.99)

        # One search path: the catalog, imported once before the searches are timed.
        catalog = entry.runtime_data.catalog
        await catalog.async_import("full")
        result["search_items"] = sum(catalog.counts.values())
        rng = random.Random(7)
        pool = [m for m in movies if len(m.title) > 6]
        queries = []
        for _ in range(args.queries):
            movie = rng.choice(pool)
            title = typo(rng, movie.title)
            if rng.random() < 0.3 and movie.year:
                title = f"{title} {movie.year}"
            if rng.random() < 0.3 and title.lower().startswith("the "):
                title = title[4:]
            queries.append(title)
        entity_id = entity_of[clients[0].machine_identifier]
        timings: list[float] = []
        for query in queries:
            start = time.perf_counter()
            await hass.services.async_call(
                "media_player",
                "search_media",
                {"entity_id": entity_id, "search_query": query},
                blocking=True,
                return_response=True,
            )
            timings.append((time.perf_counter() - start) * 1000)
        result["search_ms_p50"] = pct(timings, 0.5)
        result["search_ms_p99"] = pct(timings, 0.99)
        # The catalog's own part of it (index + one query), without HA's service call.
        engine = catalog.catalog
        assert engine is not None
        direct: list[float] = []
        for query in queries:
            start = time.perf_counter()
            await hass.async_add_executor_job(
                lambda q=query: engine.search_titles(
                    q, machine_identifier=sim.machine_identifier, limit=40
                )
            )
            direct.append((time.perf_counter() - start) * 1000)
        result["catalog_search_ms_p50"] = pct(direct, 0.5)
        result["catalog_search_ms_p99"] = pct(direct, 0.99)
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    await sim.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--movies", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    ordered = {
        "clients": result["clients"],
        "state_latency_ms_p50": result["state_latency_ms_p50"],
        "state_latency_ms_p99": result["state_latency_ms_p99"],
        "search_items": result["search_items"],
        "search_ms_p50": result["search_ms_p50"],
        "search_ms_p99": result["search_ms_p99"],
        "catalog_search_ms_p50": result["catalog_search_ms_p50"],
        "catalog_search_ms_p99": result["catalog_search_ms_p99"],
        "sessions": result["sessions"],
        "state_changes_measured": result["state_changes_measured"],
    }
    print(json.dumps(ordered))


if __name__ == "__main__":
    main()
