"""Text normalisation and ranking shared by every search and match (a leaf: imports nothing).

- `normalise_text`: case-folded, accents removed, punctuation as single spaces.
- `split_year`: a trailing year off a query ("dune 2021", "Dune (2021)").
- `rank_like_a_person`: search hits ordered the way a person names things: the asked year first,
  then the exact title (leading articles said or left out), then the search score.
"""

from collections.abc import Sequence
import re
from typing import Final, Protocol
import unicodedata

_NON_WORD: Final = re.compile(r"[^\w]+|_+")
_YEAR: Final = re.compile(r"\s*\(?\b(19\d\d|20\d\d)\)?\s*$")
_ARTICLES: Final = ("the ", "a ", "an ")


class Titled(Protocol):
    """Anything with a title and a year (library items, catalog items)."""

    @property
    def title(self) -> str:
        """The title."""
        ...

    @property
    def year(self) -> int | None:
        """The year, if known."""
        ...


def normalise_text(text: str) -> str:
    """Return ``text`` case-folded, without accents and with punctuation as single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def strip_article(norm: str) -> str:
    """A normalised title without its leading article ("the matrix" → "matrix")."""
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


def rank_like_a_person[T: Titled](
    text: str, year: int | None, hits: Sequence[tuple[T, float]], limit: int
) -> list[T]:
    """Order search hits: the asked year first, then the exact title (articles ignored), then score.

    With a year in the query, items of that year come before all others.
    """
    wanted = strip_article(normalise_text(text))

    def rank(hit: tuple[T, float]) -> tuple[bool, bool, float]:
        item, score = hit
        year_match = year is not None and item.year == year
        return (year_match, strip_article(normalise_text(item.title)) == wanted, score)

    return [item for item, _ in sorted(hits, key=rank, reverse=True)[:limit]]
