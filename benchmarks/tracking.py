"""Watch-tracking benchmark: webhook throughput through a real Home Assistant, and matching quality.

Run: ``.venv/bin/python -m benchmarks.tracking`` (or ``scripts/bench tracking``).

**Throughput half.** A real Home Assistant (``hass -c``, the e2e harness ``tests/e2e/harness.py``)
with Plexus on a simulated server whose library has ``--items`` items (default 100,000), imported
into the catalog first (``plexus.import_library``). Then ``--webhooks`` real-shaped webhooks
(multipart, the payload's JSON shaped like the captures in ``tests/fixtures/webhooks``; mixed
events, 20 % scrobbles of distinct items by five users, and a few scrobbles re-sent as Plex does)
are posted over loopback at ``--rate`` per second, each on its own schedule (open loop), and the
client-side latency of each request is measured (the client first opens ``--warm-connections``
connections with HEAD requests, which the webhook answers without running its handler, and
freezes its own garbage collector: the simulator's library lives in the client process, and a
collection walking it mid-burst would count as Home Assistant's latency). A latency timeline and
the slowest 1 % are printed; HA's log tail goes to stderr, with the event loop's slow steps when
HA runs with ``PYTHONASYNCIODEBUG=1``. Then what was posted is compared with what was
recorded (``plexus.watch_history``): ``lost`` = scrobbles not recorded, ``duplicates`` = records
beyond one per (user, item). ``--skip-ha`` runs the matching half only.

**Matching half.**

Builds a real catalog (SQLite in a temporary folder, written through the catalog's import writer)
of generated movies and shows *without GUIDs*, plus decoys with near titles: sequels ("X 2",
"X II", "X: Part Two", "X Returns"), remakes (same title, another decade), longer titles that
contain the target ("X Files", "X Stories") and the same title as the other type. Then asks the
matcher for each target the way other sources write titles: article moved or dropped ("Office,
The"), case, punctuation, "&"/"and", diacritics stripped, roman/arabic numbers, a year or country
written into the title, the year off by one or missing. Each answer is counted as a correct
automatic mapping, a wrong one (the target is 0), a conflict (a question for the user) or not found.

Options: ``--cases N`` (default 2400), ``--seed N``. The last line printed is one JSON object.
"""

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
import gc
import json
import os
from pathlib import Path
import random
import re
import shutil
import sys
import tempfile
import time
from typing import Any
import unicodedata

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.plexus.catalog.db import Catalog, sqlite_url  # noqa: E402
from custom_components.plexus.catalog.matcher import MediaMatcher, MediaQuery  # noqa: E402
from custom_components.plexus.catalog.models import ItemRecord, LibraryRecord  # noqa: E402

SERVER = "bench-server"
ADJECTIVES = [
    "Silent",
    "Dark",
    "Last",
    "Lost",
    "Golden",
    "Broken",
    "Hidden",
    "Secret",
    "Crimson",
    "Frozen",
    "Wild",
    "Little",
    "Great",
    "Empty",
    "Burning",
    "Quiet",
    "Endless",
    "Distant",
    "Savage",
    "Hollow",
    "Electric",
    "Velvet",
    "Iron",
    "Paper",
    "Glass",
    "Midnight",
    "Northern",
    "Southern",
    "Bitter",
    "Brave",
    "Strange",
    "Lucky",
    "Final",
    "First",
    "Wicked",
    "Holy",
    "Royal",
    "Sacred",
    "Fallen",
]
NOUNS = [
    "Garden",
    "River",
    "Kingdom",
    "Empire",
    "Station",
    "Harbor",
    "Forest",
    "Mountain",
    "Island",
    "Storm",
    "Shadow",
    "Mirror",
    "Letter",
    "Promise",
    "Journey",
    "Legacy",
    "Horizon",
    "Signal",
    "Circle",
    "Machine",
    "Orchard",
    "Voyage",
    "Frontier",
    "Border",
    "Winter",
    "Summer",
    "Dream",
    "Bridge",
    "Tower",
    "Road",
    "Ocean",
    "Planet",
    "Valley",
    "Secret",
    "Crown",
    "Heart",
    "Hunter",
    "Ghost",
    "Witness",
    "Stranger",
    "Soldier",
    "Doctor",
    "Teacher",
    "Detective",
    "Family",
    "Office",
    "Hotel",
    "Prison",
    "School",
    "Factory",
]
NAMES = [
    "Amélie",
    "Zoë",
    "Chloé",
    "Renée",
    "André",
    "José",
    "Dvořák",
    "Łukasz",
    "Søren",
    "Björn",
    "Müller",
    "François",
    "Inés",
    "Núñez",
    "Jack",
    "Mary",
    "Bob",
    "Alice",
    "Oscar",
    "Lena",
    "Marco",
    "Nina",
    "Omar",
    "Rosa",
    "Felix",
    "Hugo",
    "Iris",
    "Leo",
    "Maya",
    "Theo",
]
PLACES = [
    "Paris",
    "Tokyo",
    "Berlin",
    "Cairo",
    "Lisbon",
    "Oslo",
    "Lima",
    "Dublin",
    "Seoul",
    "Havana",
    "Prague",
    "Québec",
]
PATTERNS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"The {r.choice(ADJECTIVES)} {r.choice(NOUNS)}",
    lambda r: f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)}",
    lambda r: f"A {r.choice(NOUNS)} in {r.choice(PLACES)}",
    lambda r: f"{r.choice(NAMES)}'s {r.choice(NOUNS)}",
    lambda r: f"{r.choice(NOUNS)} & {r.choice(NOUNS)}",
    lambda r: f"The {r.choice(NOUNS)} of {r.choice(PLACES)}",
    lambda r: f"{r.choice(NOUNS)}: {r.choice(ADJECTIVES)} {r.choice(NOUNS)}",
    lambda r: f"{r.choice(NAMES)} and the {r.choice(ADJECTIVES)} {r.choice(NOUNS)}",
    lambda r: f"Mr. {r.choice(NAMES)}",
    lambda r: f"The {r.choice(NOUNS)} {r.choice(['II', 'III', 'IV'])}",
    lambda r: f"{r.choice(NAMES)} & {r.choice(NAMES)}",
    lambda r: f"Café {r.choice(PLACES)}",
)
ROMAN = {"II": "2", "III": "3", "IV": "4"}
ROMAN_WORD = re.compile(r"\b(II|III|IV)\b")


@dataclass(frozen=True, slots=True)
class Case:
    query: MediaQuery
    expected: str
    variant: str


def strip_accents(text: str) -> str:
    return (
        "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        .replace("ł", "l")
        .replace("Ł", "L")
        .replace("ø", "o")
        .replace("Ø", "O")
    )


def written(title: str, year: int, item_type: str, r: random.Random) -> tuple[str, int | None, str]:
    """Return (title, year, variant name) as another source might write them."""
    variant = r.choice(
        (
            "verbatim",
            "article_moved",
            "article_dropped",
            "lower",
            "upper",
            "punctuation",
            "and",
            "diacritics",
            "year_in_title",
            "country",
            "numbers",
            "year_off_by_one",
            "year_missing",
        )
    )
    text: str = title
    asked_year: int | None = year
    if variant == "article_moved":
        for article in ("The ", "A "):
            if text.startswith(article):
                text = f"{text[len(article) :]}, {article.strip()}"
    elif variant == "article_dropped":
        for article in ("The ", "A "):
            text = text.removeprefix(article)
    elif variant == "lower":
        text = text.lower()
    elif variant == "upper":
        text = text.upper()
    elif variant == "punctuation":
        text = text.replace("'", "").replace(": ", " - ").replace(".", "")
    elif variant == "and":
        text = text.replace(" & ", " and ") if "&" in text else text.replace(" and ", " & ")
    elif variant == "diacritics":
        text = strip_accents(text)
    elif variant == "year_in_title":
        text, asked_year = f"{text} ({year})", None
    elif variant == "country":
        text = f"{text} ({r.choice(['US', 'UK'])})" if item_type == "show" else f"{text} ({year})"
        asked_year = year
    elif variant == "numbers":
        text = ROMAN_WORD.sub(lambda m: ROMAN[m.group(1)], text)
    elif variant == "year_off_by_one":
        asked_year = year + r.choice((-1, 1))
    elif variant == "year_missing":
        asked_year = None
    return text, asked_year, variant


def generate(
    cases: int, seed: int
) -> tuple[list[ItemRecord], list[ItemRecord], list[tuple[str, str, int, str]]]:
    """Return (movies, shows, targets as (key, title, year, type))."""
    r = random.Random(seed)
    movies: list[ItemRecord] = []
    shows: list[ItemRecord] = []
    targets: list[tuple[str, str, int, str]] = []
    used: set[tuple[str, str]] = set()
    next_key = 1000

    def add(title: str, year: int, item_type: str) -> str:
        nonlocal next_key
        next_key += 1
        used.add((item_type, strip_accents(title).casefold()))
        key = str(next_key)
        item = ItemRecord(rating_key=key, type=item_type, title=title, year=year, updated_at=1)
        (movies if item_type == "movie" else shows).append(item)
        return key

    while len(targets) < cases:
        item_type = "movie" if r.random() < 0.6 else "show"
        title = r.choice(PATTERNS)(r)
        norm = strip_accents(title).casefold()
        if (item_type, norm) in used:
            continue
        year = r.randint(1950, 2025)
        key = add(title, year, item_type)
        targets.append((key, title, year, item_type))
        roll = r.random()
        # Decoys, each a real item in the catalog that a careless matcher would take.
        if roll < 0.15:
            add(f"{title} {r.choice(['2', 'II', 'Returns'])}", year + r.randint(2, 6), item_type)
        elif roll < 0.25:
            add(f"{title}: Part Two", year + r.randint(1, 4), item_type)
        elif roll < 0.35:
            add(title, year - r.randint(15, 40), item_type)  # a remake's original
        elif roll < 0.42:
            add(f"{title} {r.choice(['Files', 'Stories', 'Chronicles'])}", year, item_type)
        elif roll < 0.50 and ("show" if item_type == "movie" else "movie", norm) not in used:
            add(title, year, "show" if item_type == "movie" else "movie")
    return movies, shows, targets


def build_catalog(path: Path, movies: list[ItemRecord], shows: list[ItemRecord]) -> Catalog:
    catalog = Catalog(sqlite_url(path / "catalog.db"))
    writer = catalog.begin_import(SERVER, "full")
    writer.sync_libraries(
        [
            LibraryRecord(key="1", type="movie", title="Movies"),
            LibraryRecord(key="2", type="show", title="TV Shows"),
        ]
    )
    for section, items in (("1", movies), ("2", shows)):
        writer.start_library(section)
        for start in range(0, len(items), 1000):
            writer.write_batch(items[start : start + 1000])
        writer.finish_library()
    writer.commit()
    return catalog


async def direct(func: Callable[..., Any], /, *args: Any) -> Any:
    return func(*args)


async def run(cases: int, seed: int) -> dict[str, Any]:
    movies, shows, targets = generate(cases, seed)
    r = random.Random(seed + 1)
    labelled = []
    for key, title, year, item_type in targets:
        text, asked_year, variant = written(title, year, item_type, r)
        labelled.append(
            Case(
                MediaQuery(item_type, server="elsewhere", title=text, year=asked_year), key, variant
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_catalog(Path(tmp), movies, shows)
        try:
            matcher = MediaMatcher(SERVER, catalog, direct)
            catalog.search_index()
            outcomes: Counter[str] = Counter()
            by_variant: dict[str, Counter[str]] = {}
            wrong: list[dict[str, Any]] = []
            started = time.perf_counter()
            for case in labelled:
                result = await matcher.match(case.query)
                if result.matched:
                    kind = "correct" if result.rating_key == case.expected else "wrong"
                else:
                    kind = result.status
                outcomes[kind] += 1
                by_variant.setdefault(case.variant, Counter())[kind] += 1
                if kind == "wrong" and len(wrong) < 10:
                    wrong.append({"query": case.query.title, "year": case.query.year})
            elapsed = time.perf_counter() - started
        finally:
            catalog.close()
    total = len(labelled)
    for variant, counts in sorted(by_variant.items()):
        print(f"{variant:18} {dict(counts)}")
    if wrong:
        print("wrong:", wrong)
    return {
        "catalog_items": len(movies) + len(shows),
        "decoys": len(movies) + len(shows) - total,
        "match_cases": total,
        "match_correct_auto": outcomes["correct"],
        "match_correct_auto_pct": round(100 * outcomes["correct"] / total, 2),
        "match_wrong_auto": outcomes["wrong"],
        "match_conflicts": outcomes["conflict"],
        "match_not_found": outcomes["not_found"],
        "match_ms_mean": round(1000 * elapsed / total, 3),
    }


# --- throughput half: webhooks into a real Home Assistant ---------------------------------------

USERS = [(1, "owner"), (2, "alice"), (3, "bob"), (4, "carol"), (5, "dave")]
OTHER_EVENTS = [
    ("media.play", 25),
    ("media.pause", 20),
    ("media.resume", 15),
    ("media.stop", 10),
    ("media.rate", 5),
    ("library.new", 5),
]


def webhook_payload(item: Any, event: str, user: tuple[int, str], server: str) -> dict[str, Any]:
    """A payload shaped like Plex's (see tests/fixtures/webhooks)."""
    duration = item.duration or 1_800_000
    metadata: dict[str, Any] = {
        "librarySectionType": "show" if item.type == "episode" else "movie",
        "ratingKey": item.rating_key,
        "key": f"/library/metadata/{item.rating_key}",
        "guid": item.guid,
        "type": item.type,
        "title": item.title,
        "librarySectionTitle": "TV Shows" if item.type == "episode" else "Movies",
        "librarySectionID": item.section_id,
        "year": item.year,
        "duration": duration,
        "viewOffset": duration * 93 // 100 if event == "media.scrobble" else duration // 3,
        "addedAt": item.added_at,
        "updatedAt": item.updated_at,
        "Guid": [{"id": guid} for guid in item.ext_guids],
    }
    if item.type == "episode" and item.parent is not None and item.grandparent is not None:
        metadata |= {
            "index": item.index,
            "parentIndex": item.parent.index,
            "parentRatingKey": item.parent.rating_key,
            "parentTitle": item.parent.title,
            "grandparentRatingKey": item.grandparent.rating_key,
            "grandparentTitle": item.grandparent.title,
            "grandparentGuid": item.grandparent.guid,
        }
    payload: dict[str, Any] = {
        "event": event,
        "user": True,
        "owner": user[0] == 1,
        "Account": {"id": user[0], "thumb": "https://plex.tv/users/0/avatar", "title": user[1]},
        "Server": {"title": "Bench", "uuid": server},
        "Player": {
            "local": True,
            "publicAddress": "203.0.113.7",
            "title": f"TV of {user[1]}",
            "uuid": f"player-{user[0]}",
        },
        "Metadata": metadata,
    }
    if event == "media.rate":
        payload["rating"] = 8
    return payload


def plan_webhooks(
    items: list[Any], count: int, server: str, r: random.Random
) -> tuple[list[bytes], set[tuple[str, str]]]:
    """The bodies to post (multipart) and the (user id, rating key) pairs that must be recorded."""
    r.shuffle(items)
    scrobble_items = iter(items[: count // 4])  # disjoint from the played ones (too-short rule)
    other_items = items[count // 4 :]
    events, weights = zip(*OTHER_EVENTS, strict=True)
    bodies: list[bytes] = []
    expected: set[tuple[str, str]] = set()
    sent_scrobbles: list[bytes] = []
    for n in range(count):
        user = USERS[n % len(USERS)]
        if n % 5 == 0:
            if sent_scrobbles and r.random() < 0.1:
                bodies.append(r.choice(sent_scrobbles))  # Plex sending one again
                continue
            item = next(scrobble_items)
            body = multipart(webhook_payload(item, "media.scrobble", user, server))
            sent_scrobbles.append(body)
            expected.add((str(user[0]), item.rating_key))
        else:
            event = r.choices(events, weights)[0]
            body = multipart(webhook_payload(r.choice(other_items), event, user, server))
        bodies.append(body)
    return bodies, expected


BOUNDARY = "plexus-bench-boundary"


def multipart(payload: dict[str, Any]) -> bytes:
    """The body Plex posts: a ``payload`` part (JSON) and a small ``thumb`` JPEG part."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="payload"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n"
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="thumb"; filename="t.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff\xd8"
        + b"\0" * 2048
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def print_timeline(timeline: list[tuple[float, float]], step_s: float = 0.5) -> None:
    """Latency by when the request was sent (where a slow tail comes from)."""
    buckets: dict[int, list[float]] = {}
    for sent, latency in timeline:
        buckets.setdefault(int(sent // step_s), []).append(latency)
    for n, values in sorted(buckets.items()):
        print(
            f"sent {n * step_s:5.1f}s: {len(values):4} requests, "
            f"p50 {percentile(values, 50):7.1f} ms, max {max(values):7.1f} ms"
        )
    slowest = sorted(timeline, key=lambda t: -t[1])[: max(1, len(timeline) // 100)]
    print("slowest 1 %:", ", ".join(f"{ms:.0f} ms at {at:.2f}s" for at, ms in sorted(slowest)))


async def stored_entry(path: Path, wait_s: float = 60.0) -> dict[str, Any]:
    """The Plexus config entry as HA stored it (written a moment after the flow ends)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            entries = json.loads(await asyncio.to_thread(path.read_text))["data"]["entries"]
            return next(e for e in entries if e["domain"] == "plexus")
        except OSError, ValueError, KeyError, StopIteration:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Start HA with Plexus and a big catalog; post webhooks at the rate; compare."""
    import aiohttp

    from benchmarks.catalog import _library_config
    from tests.e2e.harness import HaHome
    from tests.plex_simulator import PlexSimulator

    workdir = Path(tempfile.mkdtemp(prefix="plexus-bench-tracking-"))
    home = HaHome("Bench Home", workdir, player_latencies_ms=())
    home.simulator = PlexSimulator(
        clients=0, seed=3, library=_library_config(args.items), token="bench-token"
    )
    figures: dict[str, Any] = {"catalog_size": args.items}
    try:
        started = time.perf_counter()
        await home.start(timeout=300)
        await home.add_plexus(timeout=120)
        figures["ha_start_s"] = round(time.perf_counter() - started, 1)
        entry = await stored_entry(home.config_dir / ".storage" / "core.config_entries")
        url = f"{home.url}/api/webhook/{entry['data']['webhook_id']}"
        server = entry["unique_id"]
        headers = {"Authorization": f"Bearer {home.token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            started = time.perf_counter()
            async with http.post(
                f"{home.url}/api/services/plexus/import_library?return_response",
                json={"mode": "full"},
                headers=headers,
            ) as resp:
                imported = await resp.json(content_type=None)
            figures["catalog_import_s"] = round(time.perf_counter() - started, 1)
            print("import:", imported)
            lib = home.simulator.library
            items = lib.movies() + lib.episodes()
            bodies, expected = plan_webhooks(items, args.webhooks, server, random.Random(args.seed))
            latencies: list[float] = []
            statuses: Counter[int] = Counter()
            connector_limit = aiohttp.TCPConnector(limit=200)
            async with aiohttp.ClientSession(connector=connector_limit) as poster:
                content_type = f"multipart/form-data; boundary={BOUNDARY}"

                timeline: list[tuple[float, float]] = []

                async def post(at: float, body: bytes) -> None:
                    await asyncio.sleep(max(0.0, at - time.perf_counter()))
                    sent = time.perf_counter()
                    async with poster.post(
                        url, data=body, headers={"Content-Type": content_type}
                    ) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                    latency = 1000 * (time.perf_counter() - sent)
                    latencies.append(latency)
                    timeline.append((sent - t0, latency))

                # Open the client's connections first (HEAD: the webhook answers without running
                # the handler), so the timed burst measures webhooks, not TCP set-up.
                async def head() -> None:
                    async with poster.head(url) as resp:
                        await resp.read()

                await asyncio.gather(*(head() for _ in range(args.warm_connections)))
                # The simulator's big library lives in this process: keep the client's garbage
                # collector from walking it mid-burst (its pauses would count as HA's latency).
                gc.collect()
                gc.freeze()
                t0 = time.perf_counter() + 1.0
                posting = time.perf_counter()
                await asyncio.gather(
                    *(post(t0 + n / args.rate, body) for n, body in enumerate(bodies))
                )
                elapsed = time.perf_counter() - t0
                posting_s = time.perf_counter() - posting
            print_timeline(timeline)
            recorded: list[dict[str, Any]] = []
            posted = time.perf_counter()
            deadline = time.monotonic() + args.drain_timeout
            while time.monotonic() < deadline:
                async with http.post(
                    f"{home.url}/api/services/plexus/watch_history?return_response",
                    json={"limit": 10_000},
                    headers=headers,
                ) as resp:
                    recorded = (await resp.json(content_type=None))["service_response"]["watches"]
                if len(recorded) >= len(expected):
                    break
                await asyncio.sleep(0.5)
            drain_s = time.perf_counter() - posted
        got = [(w["user_id"], w["rating_key"]) for w in recorded]
        figures |= {
            "webhooks": len(bodies),
            "rate_per_s": args.rate,
            "achieved_rate_per_s": round(len(bodies) / elapsed, 1),
            "posting_s": round(posting_s, 2),
            "recorded_within_s": round(drain_s, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "latency_ms_p50": round(percentile(latencies, 50), 2),
            "latency_ms_p99": round(percentile(latencies, 99), 2),
            "latency_ms_max": round(max(latencies), 2),
            "scrobbles_expected": len(expected),
            "recorded": len(got),
            "lost": len(expected - set(got)),
            "duplicates": len(got) - len(set(got)),
            "unexpected": len(set(got) - expected),
        }
    finally:
        # HA's last lines, and the event loop's slow steps when run with PYTHONASYNCIODEBUG=1.
        log = home.log_tail(100_000).splitlines()
        slow = [f"{line[:200]} … {line[-24:]}" for line in log if "Executing <" in line]
        print("\n".join(slow[-60:]), file=sys.stderr)
        print("\n".join(log[-40:]), file=sys.stderr)
        await home.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main() -> None:
    """Run both halves (or the matching half only) and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--items", type=int, default=100_000, help="catalog size")
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0, help="webhooks per second")
    parser.add_argument(
        "--warm-connections", type=int, default=50, help="connections opened before the burst"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait for the records"
    )
    parser.add_argument("--skip-ha", action="store_true", help="the matching half only")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    if not args.skip_ha:
        figures |= asyncio.run(run_throughput(args))
    figures |= asyncio.run(run(args.cases, args.seed))
    figures["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
