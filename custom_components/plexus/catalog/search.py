"""In-memory, typo-tolerant title search over the catalog.

Titles are normalised (case-folded, accents removed, punctuation to spaces) and split into
words. Each word is indexed exactly and through its one-letter deletions (the SymSpell idea), so a
query word one edit (insert, delete, substitute, swap) away from a title word still finds it.
Words are weighted by rarity (IDF); a hit's score is the matched share of the query's weight,
with a bonus for matching the whole title. Candidates come from the rarest query word, narrowed by
the others, so common words never make a search scan the whole library.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
import heapq
import math
from typing import Final

from ..plex.text import normalise_text

_FUZZY_WEIGHT: Final = 0.8
_MIN_FUZZY_LEN: Final = 3


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _edit_distance_le1(a: str, b: str) -> bool:
    """Return True when a and b are at most one edit (Damerau) apart."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    if la > lb:
        a, b = b, a
    # b is one longer than a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What the index keeps per item."""

    item_id: int
    type: str
    year: int | None
    words: tuple[str, ...]
    norm: str


class SearchIndex:
    """Word index with one-edit typo tolerance; add/remove keep it current between rebuilds."""

    def __init__(self) -> None:
        """Start empty."""
        self._entries: dict[int, IndexEntry] = {}
        self._postings: dict[str, set[int]] = defaultdict(set)
        self._deletes: dict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        """Return the number of indexed items."""
        return len(self._entries)

    def add(self, item_id: int, title: str, item_type: str, year: int | None, *extra: str) -> None:
        """Index an item under its title (and extra texts such as the show's title)."""
        if item_id in self._entries:
            self.remove(item_id)
        norm = normalise_text(title)
        words = tuple(dict.fromkeys(normalise_text(" ".join((title, *extra))).split()))
        self._entries[item_id] = IndexEntry(item_id, item_type, year, words, norm)
        for word in words:
            posting = self._postings[word]
            if not posting and len(word) >= _MIN_FUZZY_LEN:
                for deleted in _deletes(word):
                    self._deletes[deleted].add(word)
            posting.add(item_id)

    def remove(self, item_id: int) -> None:
        """Forget an item."""
        entry = self._entries.pop(item_id, None)
        if entry is None:
            return
        for word in entry.words:
            posting = self._postings.get(word)
            if posting is None:
                continue
            posting.discard(item_id)
            if not posting:
                del self._postings[word]
                if len(word) >= _MIN_FUZZY_LEN:
                    for deleted in _deletes(word):
                        variants = self._deletes.get(deleted)
                        if variants is not None:
                            variants.discard(word)
                            if not variants:
                                del self._deletes[deleted]

    def _variants(self, word: str) -> dict[str, float]:
        """Return indexed words matching ``word`` exactly (1.0) or within one edit (fuzzy)."""
        found: dict[str, float] = {}
        if word in self._postings:
            found[word] = 1.0
        if len(word) < _MIN_FUZZY_LEN:
            return found
        candidates: set[str] = set(self._deletes.get(word, ()))
        for deleted in _deletes(word):
            if deleted in self._postings:
                candidates.add(deleted)
            candidates.update(self._deletes.get(deleted, ()))
        for candidate in candidates:
            if candidate not in found and _edit_distance_le1(word, candidate):
                found[candidate] = _FUZZY_WEIGHT
        return found

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        types: Iterable[str] | None = None,
        year: int | None = None,
    ) -> list[tuple[int, float]]:
        """Return up to ``limit`` (item id, score 0-1) pairs, best first.

        Candidates are the items holding the query's rarest word, narrowed (with C-speed set
        intersections) by the next rarest words while at least ``limit`` remain; only they are
        scored, against every query word.
        """
        words = list(dict.fromkeys(normalise_text(query).split()))
        if not words or not self._entries or limit <= 0:
            return []
        type_filter = frozenset(types) if types is not None else None
        total = len(self._entries)
        per_word: list[tuple[float, set[int], set[int]]] = []
        query_weight = 0.0
        for word in words:
            variants = self._variants(word)
            exact = self._postings.get(word, set()) if variants.get(word) == 1.0 else set()
            fuzzy_sets = [self._postings[v] for v, w in variants.items() if w < 1.0]
            fuzzy: set[int] = set().union(*fuzzy_sets) - exact if fuzzy_sets else set()
            idf = math.log(1 + total / (1 + len(exact) + len(fuzzy)))
            query_weight += idf
            if exact or fuzzy:
                per_word.append((idf, exact, fuzzy))
        if not per_word:
            return []
        per_word.sort(key=lambda w: -w[0])

        def wanted(item_id: int) -> bool:
            entry = self._entries[item_id]
            return (type_filter is None or entry.type in type_filter) and (
                year is None or entry.year == year
            )

        filtering = type_filter is not None or year is not None
        candidates = per_word[0][1] | per_word[0][2]
        if filtering:
            candidates = {i for i in candidates if wanted(i)}
        for _, exact, fuzzy in per_word[1:]:
            narrowed = candidates.intersection(exact) | candidates.intersection(fuzzy)
            if len(narrowed) < limit:
                break
            candidates = narrowed

        norm_query = " ".join(words)
        ranked: list[tuple[float, int]] = []
        for item_id in candidates:
            raw = 0.0
            for idf, exact, fuzzy in per_word:
                if item_id in exact:
                    raw += idf
                elif item_id in fuzzy:
                    raw += idf * _FUZZY_WEIGHT
            entry = self._entries[item_id]
            score = raw / query_weight
            # Prefer titles that are mostly the query; an exact title match scores highest.
            extra_words = max(len(entry.words) - len(words), 0)
            score *= 0.9 + 0.1 / (1 + extra_words)
            if entry.norm == norm_query:
                score = min(1.0, score + 0.1)
            ranked.append((min(score, 1.0), item_id))
        best_hits = heapq.nlargest(limit, ranked)
        return [(item_id, round(score, 4)) for score, item_id in best_hits]
