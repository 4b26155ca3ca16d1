"""Find this item on this server: the shared ``MediaMatcher`` (sync-play, tracking, file sync).

A :class:`MediaQuery` describes an item as another source knows it (a rating key of some server,
its GUIDs, title, year, and for an episode the show, season and episode). :meth:`MediaMatcher.match`
finds it on the matcher's server, in this order:

1. **rating key** — the query's server is the matcher's: its key is the item (confidence 1.0);
   with ``verify_key`` the catalog must hold it too, otherwise the next steps run;
2. **guid** — a GUID the catalog knows on this server (``plex://``, ``imdb://``, ``tmdb://``,
   ``tvdb://``, legacy agent forms with season/episode): exact (1.0);
3. **server** — asked of the server itself (``server_find_guid``), only for the GUIDs a real server
   can answer: ``plex://`` and legacy agent GUIDs (``guid=`` only matches an item's own GUID): 1.0;
4. **title** — title + year (+ season/episode) scored by :func:`.titles.match_confidence`;
   candidates come from the catalog's search (or ``server_search`` when the catalog cannot answer).
   The best candidate is taken only when it reaches ``threshold`` (default 0.90) *and* no runner-up
   is within ``margin`` of it. Otherwise the result is a **conflict** listing the ranked candidates
   (title, year, library, confidence) for the user to choose from; never a guess.

The catalog is synchronous (SQLAlchemy); every call to it goes through ``run_sync`` (e.g.
``hass.async_add_executor_job``), as :class:`.importer.CatalogImporter` does.
"""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
import logging
from typing import TYPE_CHECKING, Final, Literal

from sqlalchemy import select

from ..plex.errors import PlexError
from . import schema as s
from .guids import LOCAL, NONE, PLEX, UNKNOWN, parse_guid
from .importer import RunSync
from .models import CatalogItem
from .titles import TitleParts, confidence_of_parts, split_title

if TYPE_CHECKING:
    from .db import Catalog

_LOGGER = logging.getLogger(__name__)

DEFAULT_THRESHOLD: Final = 0.90
DEFAULT_MARGIN: Final = 0.05
# Candidates below this are not worth showing a person.
CANDIDATE_FLOOR: Final = 0.5
MAX_CANDIDATES: Final = 10
_SEARCH_LIMIT: Final = 25

type MatchMethod = Literal["rating_key", "guid", "server", "title", "passthrough"]
type MatchStatus = Literal["matched", "conflict", "not_found"]
type CatalogSource = "Catalog | Callable[[], Catalog | None] | None"


@dataclass(frozen=True, slots=True)
class MediaQuery:
    """An item as another source describes it.

    ``server`` is the machine identifier ``rating_key`` belongs to (None: unknown). ``guids`` are
    raw GUID strings, the item's own first. For an episode, ``show_title`` / ``show_year`` /
    ``show_guids`` describe its show and ``season`` / ``episode`` its numbers.
    """

    type: str
    rating_key: str | None = None
    server: str | None = None
    guids: tuple[str, ...] = ()
    title: str | None = None
    year: int | None = None
    show_title: str | None = None
    show_year: int | None = None
    show_guids: tuple[str, ...] = ()
    season: int | None = None
    episode: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible match, for a person to choose from."""

    rating_key: str
    title: str
    year: int | None
    type: str
    library: str | None
    confidence: float

    def as_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {
            "rating_key": self.rating_key,
            "title": self.title,
            "year": self.year,
            "type": self.type,
            "library": self.library,
            "confidence": self.confidence,
        }


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What the matcher found.

    ``status`` is ``matched`` (``rating_key`` set), ``conflict`` (no automatic choice; see
    ``candidates``) or ``not_found``. ``show_rating_key`` is the matched show of an episode query
    (set even when the episode itself is missing). ``candidates`` are ranked, best first.
    """

    status: MatchStatus
    rating_key: str | None = None
    confidence: float = 0.0
    method: MatchMethod | None = None
    candidates: tuple[Candidate, ...] = ()
    show_rating_key: str | None = None
    item: CatalogItem | None = field(default=None, compare=False)

    @property
    def matched(self) -> bool:
        """Return True when an item was chosen."""
        return self.status == "matched"


NOT_FOUND: Final = MatchResult("not_found")

# Asks the server for the item whose own GUID is this one; its rating key or None.
type ServerFindGuid = Callable[[str], Awaitable[str | None]]
# Asks the server for items titled so (title, year, type); candidates with confidence 0.
type ServerSearch = Callable[[str, int | None, str], Awaitable[Sequence[Candidate]]]


def _server_answerable(guid: str) -> bool:
    parsed = parse_guid(guid)
    return parsed is not None and (parsed.provider == PLEX or parsed.legacy)


def decide(
    candidates: Sequence[Candidate],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
) -> MatchResult:
    """Pick from scored candidates: the best one only when sure, else a conflict.

    Sure means: confidence ≥ ``threshold`` and no other candidate within ``margin`` of it.
    Candidates below :data:`CANDIDATE_FLOOR` are dropped; none left → not found.
    """
    ranked = sorted(
        (c for c in candidates if c.confidence >= CANDIDATE_FLOOR),
        key=lambda c: (-c.confidence, c.title, c.rating_key),
    )[:MAX_CANDIDATES]
    if not ranked:
        return NOT_FOUND
    best = ranked[0]
    runner_up = ranked[1].confidence if len(ranked) > 1 else None
    if best.confidence >= threshold and (runner_up is None or best.confidence - runner_up > margin):
        return MatchResult(
            "matched", best.rating_key, best.confidence, "title", candidates=tuple(ranked)
        )
    return MatchResult("conflict", None, best.confidence, None, candidates=tuple(ranked))


class MediaMatcher:
    """Find items on one server (see the module docstring)."""

    def __init__(
        self,
        server_id: str,
        catalog: CatalogSource,
        run_sync: RunSync,
        *,
        server_find_guid: ServerFindGuid | None = None,
        server_search: ServerSearch | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        """Match against ``server_id`` (its machine identifier).

        ``catalog`` is the catalog, or a function returning it (None while it is unavailable).
        ``server_find_guid`` / ``server_search`` ask the server itself (optional).
        """
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.server_id = server_id
        self._catalog = catalog
        self._run_sync = run_sync
        self._server_find_guid = server_find_guid
        self._server_search = server_search
        self.threshold = threshold
        self.margin = margin

    @property
    def catalog(self) -> Catalog | None:
        """Return the catalog, or None while it is unavailable."""
        source = self._catalog
        if source is None or not callable(source):
            return source
        return source()

    # -- the whole ladder ----------------------------------------------------------------------

    async def match(
        self, query: MediaQuery, *, verify_key: bool = False, by_title: bool = True
    ) -> MatchResult:
        """Find ``query`` on this server (steps in the module docstring)."""
        if query.rating_key and query.server == self.server_id:
            if not verify_key:
                return MatchResult("matched", query.rating_key, 1.0, "rating_key")
            found = await self._verified_key(query)
            if found is not None:
                return found
        exact = await self.match_guids(query)
        if exact.matched:
            return exact
        titled = NOT_FOUND
        if by_title:
            titled = await self.match_title(query)
            if titled.status != "not_found":
                return titled
        if query.rating_key and query.server is None:
            # A key of an unknown server: the best guess is that it is this server's.
            return MatchResult("matched", query.rating_key, 0.0, "passthrough")
        return titled

    async def resolve_key(self, query: MediaQuery) -> str | None:
        """Return the rating key to play here, or None (sync-play's "same item on this server").

        The same ladder as :meth:`match` without verifying the key: a conflict is no key.
        """
        result = await self.match(query)
        return result.rating_key if result.matched else None

    async def _verified_key(self, query: MediaQuery) -> MatchResult | None:
        catalog = self.catalog
        if catalog is None:
            return MatchResult("matched", query.rating_key, 1.0, "rating_key")
        assert query.rating_key is not None
        item = await self._call(catalog.get_item, self.server_id, query.rating_key)
        if item is not None and item.type == query.type:
            return MatchResult("matched", item.rating_key, 1.0, "rating_key", item=item)
        return None

    # -- GUIDs ---------------------------------------------------------------------------------

    async def match_guids(self, query: MediaQuery) -> MatchResult:
        """Find the item by its GUIDs: in the catalog, then (plex:// and legacy) on the server."""
        guids = [g for g in query.guids if g and "://" in g]
        if not guids:
            return NOT_FOUND
        catalog = self.catalog
        if catalog is not None:
            found = await self._call(self._find_guids_sync, catalog, guids, query.type)
            if found is not None:
                return MatchResult("matched", found.rating_key, 1.0, "guid", item=found)
        if self._server_find_guid is not None:
            for guid in guids:
                if not _server_answerable(guid):
                    continue
                try:
                    key = await self._server_find_guid(guid)
                except PlexError as err:
                    _LOGGER.debug("Server lookup of %s failed: %s", guid[:80], err)
                    continue
                if key:
                    return MatchResult("matched", key, 1.0, "server")
        return NOT_FOUND

    def _find_guids_sync(
        self, catalog: Catalog, guids: Iterable[str], item_type: str
    ) -> CatalogItem | None:
        for raw in guids:
            parsed = parse_guid(raw)
            # Server-local and unrecognised ids name nothing on another server.
            if parsed is None or parsed.provider in (UNKNOWN, LOCAL, NONE):
                continue
            for item in catalog.find_by_parsed_guid(parsed, machine_identifier=self.server_id):
                if item.type == item_type:
                    return item
        return None

    # -- title and year ------------------------------------------------------------------------

    async def match_title(self, query: MediaQuery) -> MatchResult:
        """Match by title and year (an episode: its show, then season/episode numbers)."""
        if query.type == "episode":
            return await self._match_episode(query)
        if not query.title:
            return NOT_FOUND
        return await self._match_titled(query.title, query.year, query.type)

    async def _match_episode(self, query: MediaQuery) -> MatchResult:
        if query.season is None or query.episode is None:
            return NOT_FOUND
        show = NOT_FOUND
        if query.show_guids:
            show = await self.match_guids(
                MediaQuery(type="show", guids=query.show_guids, title=query.show_title)
            )
        if not show.matched and query.show_title:
            show = await self._match_titled(query.show_title, query.show_year, "show")
        if not show.matched or show.rating_key is None:
            return show
        key = await self.find_episode(show.rating_key, query.season, query.episode)
        if key is None:
            return MatchResult(
                "not_found",
                confidence=show.confidence,
                method=show.method,
                candidates=show.candidates,
                show_rating_key=show.rating_key,
            )
        return MatchResult(
            "matched",
            key,
            show.confidence,
            show.method,
            candidates=show.candidates,
            show_rating_key=show.rating_key,
        )

    async def find_episode(self, show_rating_key: str, season: int, episode: int) -> str | None:
        """Return the rating key of a show's episode by its numbers (None: not in the catalog)."""
        catalog = self.catalog
        if catalog is None:
            return None
        return await self._call(
            _episode_key_sync, catalog, self.server_id, show_rating_key, season, episode
        )

    async def _match_titled(self, title: str, year: int | None, item_type: str) -> MatchResult:
        asked = split_title(title)
        year = year if year is not None else asked.year
        catalog = self.catalog
        candidates: Sequence[Candidate] = []
        if catalog is not None:
            found = await self._call(self._title_candidates_sync, catalog, title, asked, item_type)
            candidates = found or []
        elif self._server_search is not None:
            try:
                raw = await self._server_search(title, year, item_type)
            except PlexError as err:
                _LOGGER.debug("Server search for %s failed: %s", title[:80], err)
                raw = []
            candidates = [
                Candidate(c.rating_key, c.title, c.year, c.type, c.library, 0.0) for c in raw
            ]
        scored = [
            Candidate(
                c.rating_key,
                c.title,
                c.year,
                c.type,
                c.library,
                confidence_of_parts(
                    asked,
                    split_title(c.title),
                    year=year,
                    candidate_year=c.year,
                    item_type=item_type,
                    candidate_type=c.type,
                ),
            )
            for c in candidates
        ]
        return decide(scored, threshold=self.threshold, margin=self.margin)

    def _title_candidates_sync(
        self, catalog: Catalog, title: str, asked: TitleParts, item_type: str
    ) -> list[Candidate]:
        """Catalog items that may be ``title``: searched by its key and by the words as written."""
        libraries = {lib.key: lib.title for lib in catalog.libraries(self.server_id)}
        seen: dict[str, Candidate] = {}
        queries = dict.fromkeys(q for q in (asked.key, title) if q.strip())
        for text in queries:
            for hit in catalog.search(
                text, machine_identifier=self.server_id, types=[item_type], limit=_SEARCH_LIMIT
            ):
                item = hit.item
                if item.rating_key in seen:
                    continue
                seen[item.rating_key] = Candidate(
                    item.rating_key,
                    item.title,
                    item.year,
                    item.type,
                    libraries.get(item.library_key),
                    0.0,
                )
        return list(seen.values())

    async def _call[T](self, func: Callable[..., T], *args: object) -> T | None:
        """Run a catalog read in the executor; a failing catalog only means "not found here"."""
        try:
            return await self._run_sync(func, *args)
        except Exception as err:  # noqa: BLE001 - the catalog only speeds matching up
            _LOGGER.debug("Catalog lookup failed: %s", err)
            return None


def _episode_key_sync(
    catalog: Catalog, server_id: str, show_rating_key: str, season: int, episode: int
) -> str | None:
    i = s.items
    query = (
        select(i.c.rating_key)
        .join(s.servers, s.servers.c.id == i.c.server_id)
        .where(
            s.servers.c.machine_identifier == server_id,
            i.c.type == "episode",
            i.c.grandparent_rating_key == show_rating_key,
            i.c.season_number == season,
            i.c.episode_number == episode,
        )
        .order_by(i.c.id)
        .limit(1)
    )
    with catalog.engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)
