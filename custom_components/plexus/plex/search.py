"""Find library items the way a person names them: exact title first, then close titles.

Built on the catalog's typo-tolerant word index; adds what spoken requests need: a year in the
query ("dune 2021", "dune (2021)"), leading articles that are said or left out ("the matrix" /
"matrix"), and a filter by media type.
"""

import asyncio
from collections.abc import Iterable
import re
from typing import Final

from ..catalog.search import SearchIndex, normalise_text
from .library import PLEX_TYPE_IDS, MediaItem, PlexLibrary
from .models import LibrarySection

_YEAR: Final = re.compile(r"\s*\(?\b(19\d\d|20\d\d)\)?\s*$")
_ARTICLES: Final = ("the ", "a ", "an ")
PAGE_SIZE: Final = 1000
# What each section type contributes to the search index.
SECTION_TYPES: Final = {
    "movie": ("movie",),
    "show": ("show", "episode"),
    "artist": ("artist", "album", "track"),
}


def _strip_article(norm: str) -> str:
    for article in _ARTICLES:
        if norm.startswith(article):
            return norm[len(article) :]
    return norm


def split_year(query: str) -> tuple[str, int | None]:
    """Split a trailing year off a query: "Dune (2021)" → ("Dune", 2021)."""
    match = _YEAR.search(query)
    if match and match.start() > 0:
        return query[: match.start()].strip(), int(match.group(1))
    return query.strip(), None


def rank_like_a_person(
    text: str, year: int | None, hits: list[tuple[MediaItem, float]], limit: int
) -> list[MediaItem]:
    """Order index hits: the exact title (articles ignored) first, then the asked year, then score.

    With a year in the query, items of that year come before all others.
    """
    wanted = _strip_article(normalise_text(text))

    def rank(hit: tuple[MediaItem, float]) -> tuple[bool, bool, float]:
        item, score = hit
        year_match = year is not None and item.year == year
        return (year_match, _strip_article(normalise_text(item.title)) == wanted, score)

    return [item for item, _ in sorted(hits, key=rank, reverse=True)[:limit]]


class LibrarySearch:
    """An in-memory search over one server's library."""

    def __init__(self) -> None:
        """Start empty."""
        self._index = SearchIndex()
        self._items: dict[int, MediaItem] = {}
        self._ids: dict[str, int] = {}

    def __len__(self) -> int:
        """Return the number of indexed items."""
        return len(self._items)

    def add(self, item: MediaItem) -> None:
        """Index an item (again)."""
        item_id = self._ids.setdefault(item.rating_key, len(self._ids) + 1)
        extra = (item.grandparent_title,) if item.type == "episode" else ()
        self._index.add(item_id, item.title, item.type, item.year, *extra)
        self._items[item_id] = item

    def search(
        self, query: str, *, media_types: Iterable[str] | None = None, limit: int = 10
    ) -> list[MediaItem]:
        """Return the best matches, best first."""
        text, year = split_year(query)
        if not text:
            return []
        types = frozenset(media_types) if media_types else None
        hits = self._index.search(text, limit=max(limit * 4, 20), types=types)
        return rank_like_a_person(
            text, year, [(self._items[item_id], score) for item_id, score in hits], limit
        )

    async def load(self, library: PlexLibrary, sections: Iterable[LibrarySection]) -> None:
        """Read every searchable item of the given sections, page by page."""
        for section in sections:
            for item_type in SECTION_TYPES.get(section.type, ()):
                start = 0
                while True:
                    items, total = await library.section_items(
                        section.key, start=start, size=PAGE_SIZE, type_id=PLEX_TYPE_IDS[item_type]
                    )
                    for item in items:
                        self.add(item)
                    start += len(items)
                    if not items or start >= total:
                        break
                    await asyncio.sleep(0)
