"""Turn what `play_media` receives into a library item to play.

Accepted: a rating key ("1234"); a Plex GUID ("plex://movie/5d77…", "imdb://tt…", legacy agent
GUIDs); core-plex style `plex://{json}` or plain JSON searches:
{"library_name": "Movies", "title": "Dune", "year": 2021}
{"library_name": "TV Shows", "title": "Show", "season": 1, "episode": 3}   (also show_name,
season_number, episode_number)
{"library_name": "Music", "artist_name": "A", "album_name": "B", "track_name": "C"}
{"playlist_name": "Road trip"}
{"next_after": "1234"}   (the episode after episode 1234 in its show, into the next season)
plus the options "shuffle" (bool), "resume" (bool: start where the user stopped) and "offset"
(seconds).

GUIDs: a real server's ``guid=`` filter matches only an item's own GUID, so external ids
(``imdb://``, ``tmdb://``, ``tvdb://``, which new-agent items carry only as ``<Guid>`` children)
are found through the catalog (``find_by_guids``); the server is asked only for ``plex://`` and
legacy agent GUIDs (``com.plexapp.agents.…``, ``local://``), after the catalog.

Containers (show, season, artist, album, playlist) are played as play queues of their leaves;
`starting_point` picks where a show or season starts (its On Deck episode) unless shuffled.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from .errors import PlexError
from .library import PLEX_TYPE_IDS, MediaItem, PlexLibrary
from .models import LibrarySection
from .search_query import BadMediaIdError, parse_search
from .text import normalise_text, split_year


class MediaNotFoundError(PlexError):
    """Nothing in the library matches the request."""


# (GUIDs, item type or None) -> rating key on this server, None when unknown (the catalog).
type GuidLookup = Callable[[list[str], str | None], Awaitable[str | None]]
# GUID forms a server's own `guid=` filter can match (an item's own GUID).
SERVER_GUID_PREFIXES: Final = ("plex://", "com.plexapp.agents.", "local://")
# Containers whose play queue starts at the On Deck leaf (artists and albums start at the top).
RESUMABLE_CONTAINERS: Final = frozenset({"show", "season"})


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """An item and how to start it (`start_key`: the leaf of a container to start at)."""

    item: MediaItem
    offset_ms: int = 0
    shuffle: bool = False
    start_key: str | None = None


def on_deck_leaf(leaves: Sequence[MediaItem]) -> MediaItem | None:
    """The leaf Plex would resume a show or season at.

    The episode in progress (the latest watched of several); else the first unwatched one after
    the last watched; else the first unwatched; else the first.
    """
    if not leaves:
        return None
    in_progress = [leaf for leaf in leaves if leaf.view_offset_ms > 0]
    if in_progress:
        return max(in_progress, key=lambda leaf: leaf.last_viewed_at or 0)
    watched = [n for n, leaf in enumerate(leaves) if leaf.view_count]
    if watched:
        last = max(watched, key=lambda n: (leaves[n].last_viewed_at or 0, n))
        after = next((leaf for leaf in leaves[last + 1 :] if not leaf.view_count), None)
        if after is not None:
            return after
    return next((leaf for leaf in leaves if not leaf.view_count), leaves[0])


def _same(a: str, b: str) -> bool:
    return normalise_text(a) == normalise_text(b)


def _pick(items: list[MediaItem], title: str, year: int | None = None) -> MediaItem | None:
    exact = [i for i in items if _same(i.title, title)]
    if year is not None:
        exact = [i for i in exact if i.year == year] or exact
    return exact[0] if exact else None


class MediaResolver:
    """Resolve media ids against one server's library."""

    def __init__(self, library: PlexLibrary) -> None:
        """Use the given library reader."""
        self._library = library

    async def resolve(
        self,
        media_id: str,
        sections: list[LibrarySection],
        *,
        find_by_guids: GuidLookup | None = None,
    ) -> PlayRequest:
        """Return what to play; raises MediaNotFoundError or BadMediaIdError.

        `find_by_guids` (the catalog) resolves GUIDs first; without it external ids find nothing.
        """
        media_id = media_id.strip()
        if media_id.isdigit():
            return PlayRequest(await self._by_key(media_id))
        if media_id.startswith(("plex://{", "{")):
            return await self._by_search(media_id.removeprefix("plex://"), sections)
        if "://" in media_id:
            return PlayRequest(await self._by_guid(media_id, sections, find_by_guids))
        raise BadMediaIdError(f"not a rating key, GUID or search: {media_id[:60]}")

    async def starting_point(self, request: PlayRequest) -> PlayRequest:
        """Where a show or season starts: its On Deck episode, resumed (not when shuffled)."""
        item = request.item
        if item.type not in RESUMABLE_CONTAINERS or request.shuffle or request.start_key:
            return request
        leaves = (
            await self._library.all_leaves(item.rating_key)
            if item.type == "show"
            else await self._library.children(item.rating_key)
        )
        leaf = on_deck_leaf(leaves)
        if leaf is None:
            raise MediaNotFoundError(f"{item.title} has nothing to play")
        return replace(
            request,
            start_key=leaf.rating_key,
            offset_ms=request.offset_ms or leaf.view_offset_ms,
        )

    async def _by_key(self, rating_key: str) -> MediaItem:
        item = await self._library.metadata(rating_key)
        if item is None:
            raise MediaNotFoundError(f"no item with rating key {rating_key}")
        return item

    async def _by_guid(
        self, guid: str, sections: list[LibrarySection], find_by_guids: GuidLookup | None
    ) -> MediaItem:
        if find_by_guids is not None and (key := await find_by_guids([guid], None)) is not None:
            return await self._by_key(key)
        if guid.startswith(SERVER_GUID_PREFIXES):
            for section in sections:
                items = await self._library.find_in_section(section.key, {"guid": guid})
                if items:
                    return items[0]
            raise MediaNotFoundError(f"no item with GUID {guid[:80]}")
        raise MediaNotFoundError(
            f"no item with the external id {guid[:80]} in the catalog "
            "(external ids are looked up in the catalog: import the library first)"
        )

    async def _by_search(self, text: str, sections: list[LibrarySection]) -> PlayRequest:
        query: dict[str, Any] = parse_search(text).as_query()  # types and ranges checked
        item = await self._search_item(query, sections)
        offset_ms = 0
        if "offset" in query:
            # parse_search checked it: a finite number of seconds within range.
            offset_ms = int(float(query["offset"]) * 1000)
        elif query.get("resume"):
            offset_ms = item.view_offset_ms
        return PlayRequest(item, offset_ms=offset_ms, shuffle=bool(query.get("shuffle")))

    async def _search_item(
        self, query: dict[str, Any], sections: list[LibrarySection]
    ) -> MediaItem:
        if after := query.get("next_after"):
            return await self._next_episode(str(after))
        if playlist_name := query.get("playlist_name"):
            found = _pick(await self._library.playlists(), str(playlist_name))
            if found is None:
                raise MediaNotFoundError(f"no playlist named {playlist_name}")
            return found
        library_name = query.get("library_name")
        candidates = [s for s in sections if library_name is None or _same(s.title, library_name)]
        if not candidates:
            raise MediaNotFoundError(f"no library named {library_name}")
        title = query.get("title") or query.get("show_name") or query.get("artist_name")
        if not title:
            raise BadMediaIdError("the search needs a title")
        text, year = split_year(str(title))
        if "year" in query:
            year = int(query["year"])
        season = query.get("season", query.get("season_number"))
        episode = query.get("episode", query.get("episode_number"))
        album = query.get("album_name")
        track = query.get("track_name")
        for section in candidates:
            item_type = {"movie": "movie", "show": "show", "artist": "artist"}.get(section.type)
            if item_type is None:
                continue
            items = await self._library.find_in_section(
                section.key, {"type": PLEX_TYPE_IDS[item_type], "title": text}
            )
            found = _pick(items, text, year)
            if found is None:
                continue
            if season is not None:
                found = await self._child(found, lambda i, n=int(season): i.index == n, "season")
                if episode is not None:
                    found = await self._child(
                        found, lambda i, n=int(episode): i.index == n, "episode"
                    )
            elif album is not None:
                found = await self._child(found, lambda i, t=str(album): _same(i.title, t), "album")
                if track is not None:
                    found = await self._child(
                        found, lambda i, t=str(track): _same(i.title, t), "track"
                    )
            return found
        raise MediaNotFoundError(f"nothing called {text} in {library_name or 'any library'}")

    async def _next_episode(self, rating_key: str) -> MediaItem:
        """The episode after `rating_key` in its show (the next season's first after a finale)."""
        episode = await self._by_key(rating_key)
        if episode.type != "episode" or not episode.grandparent_rating_key:
            raise MediaNotFoundError(f"{episode.title} is not an episode of a show")
        leaves = await self._library.all_leaves(episode.grandparent_rating_key)
        keys = [leaf.rating_key for leaf in leaves]
        if rating_key not in keys:
            raise MediaNotFoundError(f"{episode.title} is not among its show's episodes")
        position = keys.index(rating_key)
        if position + 1 >= len(leaves):
            raise MediaNotFoundError(f"{episode.title} is its show's last episode")
        return leaves[position + 1]

    async def _child(self, parent: MediaItem, match: Any, what: str) -> MediaItem:
        for child in await self._library.children(parent.rating_key):
            if match(child):
                return child
        raise MediaNotFoundError(f"{parent.title} has no such {what}")
