"""Watch-tracking benchmark, matching-quality half: the MediaMatcher on a labelled set.

Run: ``.venv/bin/python -m benchmarks.tracking`` (or ``scripts/bench tracking``).

Builds a real catalog (SQLite in a temporary folder, written through the catalog's import writer)
of generated movies and shows *without GUIDs*, plus decoys with near titles: sequels ("X 2",
"X II", "X: Part Two", "X Returns"), remakes (same title, another decade), longer titles that
contain the target ("X Files", "X Stories") and the same title as the other type. Then asks the
matcher for each target the way other sources write titles: article moved or dropped ("Office,
The"), case, punctuation, "&"/"and", diacritics stripped, roman/arabic numbers, a year or country
written into the title, the year off by one or missing. Each answer is counted as a correct
automatic mapping, a wrong one (the target is 0), a conflict (a question for the user) or not found.

The webhook-throughput half (a real Home Assistant) is added with the glue.
Options: ``--cases N`` (default 2400), ``--seed N``. The last line printed is one JSON object.
"""

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
import json
from pathlib import Path
import random
import re
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cases, args.seed))))


if __name__ == "__main__":
    main()
