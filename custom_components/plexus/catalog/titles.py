"""Titles as people write them, made comparable; and how confident a title/year match is.

Two sources rarely spell a title the same way: "The Office (US)", "Office, The", "the office";
"Law & Order" / "Law and Order"; "Amélie" / "Amelie"; "Rocky II" / "Rocky 2";
"Marvel's Agents of S.H.I.E.L.D." / "Marvels Agents of SHIELD". :func:`title_key` folds all of
these into one comparable key, and :func:`split_title` also hands back the year or country a
source wrote into the title.

:func:`match_confidence` scores a candidate against what was asked on a documented 0..1 scale:

* the title similarity of the two keys (rapidfuzz's normalised Levenshtein similarity of the
  keys as written, or :data:`WORD_ORDER_FACTOR` times that of the keys with their words sorted,
  whichever is higher; 1.0 only when equal);
* minus :data:`YEAR_OFF_BY_ONE` when the years differ by one (sources disagree on release vs.
  air year), minus :data:`YEAR_MISSING` when either year is unknown, and a factor of
  :data:`YEAR_WRONG_FACTOR` when they differ by more (a remake is another item);
* times :data:`TYPE_WRONG_FACTOR` when the types differ (a show is never a movie).

So an equal title with the same year scores 1.0; with no year 0.97; a year off by one 0.95; an
equal title from another decade at most 0.6, and a different type at most 0.5. A one-letter typo
costs 1/length: 0.9 in a ten-letter title, 0.83 in "Alien" vs "Aliens". Hence the default
auto-map threshold of 0.90 *and* a runner-up within a margin making the match ambiguous (the
matcher's job).

Leaf module: nothing from other Plexus modules.
"""

from dataclasses import dataclass
import re
from typing import Final
import unicodedata

from rapidfuzz.distance import Levenshtein

YEAR_OFF_BY_ONE: Final = 0.05
YEAR_MISSING: Final = 0.03
YEAR_WRONG_FACTOR: Final = 0.6
TYPE_WRONG_FACTOR: Final = 0.5
WORD_ORDER_FACTOR: Final = 0.9

# Countries sources append to tell remakes apart: "The Office (US)", "Shameless (UK)".
_COUNTRIES: Final = frozenset(
    {
        "us",
        "usa",
        "uk",
        "gb",
        "au",
        "ca",
        "nz",
        "ie",
        "fr",
        "de",
        "es",
        "it",
        "nl",
        "se",
        "dk",
        "no",
        "jp",
        "kr",
        "in",
        "br",
        "mx",
    }
)
_ARTICLES: Final = ("the", "a", "an")
# Trailing "(2005)", "[2005]", "(US)", "(UK, 2001)"; applied repeatedly.
_TRAILER: Final = re.compile(r"\s*[\(\[]\s*([^\(\)\[\]]{1,20}?)\s*[\)\]]\s*$")
# A bare trailing year after a separator: "Dune - 2021", "Dune, 2021". Not "Blade Runner 2049".
_BARE_YEAR: Final = re.compile(r"\s*[-,:]\s*((?:18|19|20)\d\d)\s*$")
_YEAR: Final = re.compile(r"(?:18|19|20)\d\d")
# Apostrophes and dots join letters ("Bob's" → "bobs", "S.H.I.E.L.D." → "shield").
_JOINERS: Final = re.compile(r"['\u2018\u2019`.]")
_NON_WORD: Final = re.compile(r"[^\w]+|_+")
_ROMAN: Final = {
    "ii": "2",
    "iii": "3",
    "iv": "4",
    "vi": "6",
    "vii": "7",
    "viii": "8",
    "ix": "9",
    "xi": "11",
    "xii": "12",
    "xiii": "13",
}


@dataclass(frozen=True, slots=True)
class TitleParts:
    """A title split into its comparable key and what a source wrote around it."""

    key: str
    year: int | None = None
    country: str | None = None


def _fold(text: str) -> str:
    """Case-fold and remove diacritics (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def split_title(text: str) -> TitleParts:
    """Split ``text`` into its key and the trailing year / country written into it.

    ``"The Office (US)"`` → key ``"office"``, country ``"us"``; ``"Dune (2021)"`` → ``"dune"``,
    2021; ``"Office, The"`` → ``"office"``. A title that is nothing but a year ("1917") keeps it.
    """
    rest = text.strip()
    year: int | None = None
    country: str | None = None
    while True:
        match = _TRAILER.search(rest)
        if match is None or match.start() == 0:
            break
        consumed = False
        for raw in re.split(r"[,/\s]+", match.group(1)):
            word = _fold(raw).strip()
            if not word:
                continue
            if _YEAR.fullmatch(word) and year is None:
                year = int(word)
                consumed = True
            elif word in _COUNTRIES and country is None:
                country = word
                consumed = True
            else:
                consumed = False
                break
        if not consumed:
            break
        rest = rest[: match.start()]
    match = _BARE_YEAR.search(rest)
    if match is not None and match.start() > 0 and year is None:
        year = int(match.group(1))
        rest = rest[: match.start()]
    return TitleParts(_key(rest), year, country)


def title_key(text: str) -> str:
    """Return the comparable key of a title (see the module docstring)."""
    return split_title(text).key


def _key(text: str) -> str:
    folded = _fold(text).replace("&", " and ").replace("+", " and ")
    # "Office, The" → "The Office" (only a trailing English article after a comma).
    head, sep, tail = folded.rpartition(",")
    if sep and tail.strip() in _ARTICLES:
        folded = f"{tail.strip()} {head}"
    folded = _JOINERS.sub("", folded)
    words = _join_letters(_NON_WORD.sub(" ", folded).split())
    # Up to two leading articles: "The A-Team" and "A-Team" are the same show.
    for _ in range(2):
        if len(words) > 1 and words[0] in _ARTICLES:
            words = words[1:]
    return " ".join(_ROMAN.get(word, word) for word in words)


def _join_letters(words: list[str]) -> list[str]:
    """Join runs of single letters: "m a s h" (from "M*A*S*H") → "mash"."""
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) > 1:
            joined.append("".join(run))
        else:
            joined.extend(run)
        run = []
        if word:
            joined.append(word)
    return joined


def title_similarity(a: str, b: str) -> float:
    """Return how alike two title *keys* are, 0..1 (1.0 only when equal)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    # Normalised Levenshtein (edits over the longer length), as written and with the words
    # sorted: one typo costs a short title more than a long one.
    as_written = Levenshtein.normalized_similarity(a, b)
    # Words in another order are a hint, not the same title ("Ines and Bjorn" / "Bjorn and Ines").
    reordered = WORD_ORDER_FACTOR * Levenshtein.normalized_similarity(
        " ".join(sorted(a.split())), " ".join(sorted(b.split()))
    )
    best = max(as_written, reordered)
    return min(best, 0.99)


def year_adjust(year: int | None, candidate_year: int | None) -> tuple[float, float]:
    """Return the (penalty, factor) for two years (see the module docstring)."""
    if year is None or candidate_year is None:
        return YEAR_MISSING, 1.0
    diff = abs(year - candidate_year)
    if diff == 0:
        return 0.0, 1.0
    if diff == 1:
        return YEAR_OFF_BY_ONE, 1.0
    return 0.0, YEAR_WRONG_FACTOR


def match_confidence(
    title: str,
    candidate_title: str,
    *,
    year: int | None = None,
    candidate_year: int | None = None,
    item_type: str | None = None,
    candidate_type: str | None = None,
) -> float:
    """Return how sure a title/year/type match is, 0..1 (scale in the module docstring).

    Raw titles are accepted: each is split (:func:`split_title`) and a year written into the title
    counts when no year is given.
    """
    asked = split_title(title)
    found = split_title(candidate_title)
    return confidence_of_parts(
        asked,
        found,
        year=year if year is not None else asked.year,
        candidate_year=candidate_year if candidate_year is not None else found.year,
        item_type=item_type,
        candidate_type=candidate_type,
    )


def confidence_of_parts(
    asked: TitleParts,
    found: TitleParts,
    *,
    year: int | None,
    candidate_year: int | None,
    item_type: str | None = None,
    candidate_type: str | None = None,
) -> float:
    """Return :func:`match_confidence` for titles already split."""
    score = title_similarity(asked.key, found.key)
    penalty, factor = year_adjust(year, candidate_year)
    score = (score - penalty) * factor
    if asked.country and found.country and asked.country != found.country:
        score *= YEAR_WRONG_FACTOR
    if item_type is not None and candidate_type is not None and item_type != candidate_type:
        score *= TYPE_WRONG_FACTOR
    return round(max(0.0, min(1.0, score)), 4)
