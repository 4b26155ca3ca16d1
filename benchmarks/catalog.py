"""Catalog benchmark: import a 100,000-item simulated library, against a python-plexapi baseline.

Run: ``cd /work/main && .venv/bin/python -m benchmarks.catalog`` (or ``scripts/bench catalog``).

The simulator runs in this process; every import runs in a child process of its own, so the peak
RSS reported is the importer's alone. Steps, in one run:

1. full import into a fresh SQLite catalog (wall time, child peak RSS);
2. incremental import with nothing changed; then after changing 1% of the items (titles);
3. baseline: python-plexapi's fetch of the same sections (``section.all()`` per type,
   ``searchEpisodes()``, pages of plexapi's default size) followed by one upsert statement per item
   (plus its GUIDs and files) into SQLite — all in ONE transaction, which flatters the baseline;
4. catalog search latency: 200 random queries, each a stored title with one typo.

Options: ``--items N`` (default 100000), ``--page-size N``, ``--sweep 500,1000,2000,5000``
(full-import time per page size, used to choose the default), ``--skip-baseline``.
The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import os
from pathlib import Path
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import types
from typing import Any

TOKEN = "bench-token"
ROOT = Path(__file__).resolve().parent.parent
UPSERT = (
    "INSERT INTO items VALUES (?,?,?,?,?,?,?) ON CONFLICT(rating_key) DO UPDATE SET "
    "type=excluded.type, title=excluded.title, year=excluded.year, guid=excluded.guid, "
    "added_at=excluded.added_at, updated_at=excluded.updated_at"
)


# --------------------------------------------------------------------------- child processes


def _peak_rss_mb() -> float:
    """Return this process's peak RSS (VmHWM).

    Not ``getrusage().ru_maxrss``: on Linux that keeps the high-water mark from before ``exec``,
    i.e. the forking parent's RSS (here: the simulator holding 100,000 items).
    """
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _engine_only() -> None:
    """Import the engine packages without running the integration's ``__init__``.

    ``custom_components/plexus/__init__.py`` imports Home Assistant (~110 MB RSS), which inside HA
    is loaded anyway; the import process measured here is the engine's own, as HA-free code.
    """
    root = ROOT / "custom_components"
    for name, path in (("custom_components", root), ("custom_components.plexus", root / "plexus")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module


async def _child_import(args: argparse.Namespace) -> dict[str, Any]:
    _engine_only()
    from aiohttp import ClientSession

    from custom_components.plexus.catalog.db import Catalog, sqlite_url
    from custom_components.plexus.catalog.importer import CatalogImporter

    catalog = Catalog(sqlite_url(args.db))
    async with ClientSession() as session:
        importer = CatalogImporter(
            catalog, session, args.url, TOKEN, args.machine, page_size=args.page_size
        )
        started = time.perf_counter()
        result = await importer.run(args.mode)
        seconds = time.perf_counter() - started
    catalog.close()
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "counts": result.counts.as_dict()}


def _child_baseline(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["PLEXAPI_PLEXAPI_AUTORELOAD"] = "false"  # never one request per item
    from plexapi.server import PlexServer

    started = time.perf_counter()
    plex = PlexServer(args.url, TOKEN, timeout=120)
    conn = sqlite3.connect(args.db)
    conn.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS items (rating_key TEXT PRIMARY KEY, type TEXT, title TEXT,
            year INTEGER, guid TEXT, added_at INTEGER, updated_at INTEGER);
        CREATE TABLE IF NOT EXISTS guids (rating_key TEXT, guid TEXT);
        CREATE TABLE IF NOT EXISTS files (rating_key TEXT, path TEXT, size INTEGER);
        """
    )
    count = 0
    for section in plex.library.sections():
        if section.type == "movie":
            batches = [section.all()]
        elif section.type == "show":
            batches = [section.all(), section.searchSeasons(), section.searchEpisodes()]
        else:
            continue
        for items in batches:
            for item in items:
                key = str(item.ratingKey)
                conn.execute(
                    UPSERT,
                    (
                        key,
                        item.type,
                        item.title,
                        getattr(item, "year", None),
                        item.guid,
                        int(item.addedAt.timestamp()) if item.addedAt else None,
                        int(item.updatedAt.timestamp()) if item.updatedAt else None,
                    ),
                )
                conn.execute("DELETE FROM guids WHERE rating_key = ?", (key,))
                for guid in getattr(item, "guids", []) or []:
                    conn.execute("INSERT INTO guids VALUES (?, ?)", (key, guid.id))
                conn.execute("DELETE FROM files WHERE rating_key = ?", (key,))
                for media in getattr(item, "media", []) or []:
                    for part in media.parts:
                        conn.execute(
                            "INSERT INTO files VALUES (?,?,?)", (key, part.file, part.size)
                        )
                count += 1
    conn.commit()
    conn.close()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb(), "items": count}


# --------------------------------------------------------------------------- parent


async def _run_child(*argv: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.catalog",
        "--child",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child {argv[0]} failed: {err.decode()[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randrange(1, len(word) - 1)
    op = rng.choice(("delete", "insert", "replace", "swap"))
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if op == "delete":
        word = word[:pos] + word[pos + 1 :]
    elif op == "insert":
        word = word[:pos] + letter + word[pos:]
    elif op == "replace":
        word = word[:pos] + letter + word[pos + 1 :]
    else:
        word = word[: pos - 1] + word[pos] + word[pos - 1] + word[pos + 1 :]
    words[i] = word
    return " ".join(words)


def _library_config(items: int) -> Any:
    from tests.plex_simulator import LibraryConfig

    # 90% episodes in 250-ish shows of 5 seasons; movies fill up to the exact total.
    episodes = items * 9 // 10
    shows = max(1, items // 400)
    seasons_per_show = 5
    per_season = max(1, episodes // (shows * seasons_per_show))
    movies = items - shows - shows * seasons_per_show - shows * seasons_per_show * per_season
    config = LibraryConfig(
        movies=movies,
        shows=shows,
        seasons_per_show=seasons_per_show,
        episodes_per_season=per_season,
        artists=0,
        playlists=False,
        seed=1,
    )
    assert config.item_count == items, config.item_count
    return config


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    from custom_components.plexus.catalog.db import Catalog, sqlite_url
    from tests.plex_simulator import PlexSimulator

    t0 = time.perf_counter()
    sim = PlexSimulator(token=TOKEN, library=_library_config(args.items), clients=0, seed=1)
    url = await sim.start()
    sim.max_logged_requests = 0
    print(
        f"simulator: {len(sim.library)} items, built in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    tmp = Path(tempfile.mkdtemp(prefix="plexus-bench-"))
    db = tmp / "catalog.db"
    common = ["--url", url, "--machine", sim.machine_identifier]
    result: dict[str, Any] = {"items": len(sim.library)}
    try:
        if args.sweep:
            sweep = {}
            for size in (int(s) for s in args.sweep.split(",")):
                path = tmp / f"sweep-{size}.db"
                child = await _run_child(
                    "import", "--mode", "full", "--db", str(path), "--page-size", str(size), *common
                )
                sweep[size] = round(child["seconds"], 2)
                print(
                    f"page size {size}: {child['seconds']:.2f}s, {child['peak_rss_mb']:.0f} MB",
                    file=sys.stderr,
                )
            result["page_size_sweep_s"] = sweep

        page = ["--page-size", str(args.page_size)]
        full = await _run_child("import", "--mode", "full", "--db", str(db), *page, *common)
        print(f"full: {full}", file=sys.stderr)
        nochange = await _run_child(
            "import", "--mode", "incremental", "--db", str(db), *page, *common
        )
        print(f"incremental, no change: {nochange}", file=sys.stderr)
        rng = random.Random(7)
        keys = rng.sample(sorted(sim.library.items), len(sim.library) // 100)
        for key in keys:
            item = sim.library[key]
            sim.library.update_item(key, title=f"{item.title} (Remastered)")
        onepct = await _run_child(
            "import", "--mode", "incremental", "--db", str(db), *page, *common
        )
        print(f"incremental, 1% changed: {onepct}", file=sys.stderr)
        assert onepct["counts"]["updated"] >= len(keys), (
            onepct
        )  # renamed shows update their episodes

        baseline: dict[str, Any] | None = None
        if not args.skip_baseline:
            baseline = await _run_child("baseline", "--db", str(tmp / "baseline.db"), *common)
            print(f"baseline: {baseline}", file=sys.stderr)

        catalog = Catalog(sqlite_url(db))
        t1 = time.perf_counter()
        catalog.search_index()
        index_s = time.perf_counter() - t1
        titles = [
            item.title
            for item in sim.library.items.values()
            if item.type in ("movie", "show", "episode")
        ]
        queries = [_typo(rng.choice(titles), rng) for _ in range(200)]
        times: list[float] = []
        hits = 0
        for query in queries:
            t2 = time.perf_counter()
            found = catalog.search(query, limit=10)
            times.append((time.perf_counter() - t2) * 1000)
            hits += bool(found)
        catalog.close()
        times.sort()
        result.update(
            {
                "full_s": round(full["seconds"], 2),
                "full_peak_rss_mb": round(full["peak_rss_mb"], 1),
                "baseline_s": round(baseline["seconds"], 2) if baseline else None,
                "speedup_vs_baseline": round(baseline["seconds"] / full["seconds"], 2)
                if baseline
                else None,
                "incremental_nochange_s": round(nochange["seconds"], 3),
                "incremental_1pct_s": round(onepct["seconds"], 3),
                "search_ms_p50": round(statistics.median(times), 3),
                "search_ms_p99": round(times[int(len(times) * 0.99) - 1], 3),
                "search_index_build_s": round(index_s, 2),
                # Queries whose intended title is among the top 10 results.
                "search_top10_found": hits,
                "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1) if baseline else None,
                "page_size": args.page_size,
            }
        )
    finally:
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> None:
    _engine_only()
    from custom_components.plexus.catalog.importer import DEFAULT_PAGE_SIZE

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=("import", "baseline"))
    parser.add_argument("--mode", default="full")
    parser.add_argument("--url")
    parser.add_argument("--machine")
    parser.add_argument("--db")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    parser.add_argument("--sweep", default="")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    if args.child == "import":
        print(json.dumps(asyncio.run(_child_import(args))))
    elif args.child == "baseline":
        print(json.dumps(_child_baseline(args)))
    else:
        print(json.dumps(asyncio.run(_main(args))))


if __name__ == "__main__":
    main()
