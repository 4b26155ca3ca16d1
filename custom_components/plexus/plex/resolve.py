"""Turn what `play_media` receives into a library item to play.

Accepted: a rating key ("1234"); a Plex GUID ("plex://movie/5d77…", "imdb://tt…", legacy agent
GUIDs); core-plex style `plex://{json}` or plain JSON searches:
{"library_name": "Movies", "title": "Dune", "year": 2021}
{"library_name": "TV Shows", "title": "Show", "season": 1, "episode": 3}   (also show_name,
season_number, episode_number)
{"library_name": "Music", "artist_name": "A", "album_name": "B", "track_name": "C"}
{"playlist_name": "Road trip"}
plus the options "shuffle" (bool), "resume" (bool: start where the user stopped) and "offset"
(seconds).
"""

from dataclasses import dataclass
from typing import Any

from .errors import PlexError
from .library import PLEX_TYPE_IDS, MediaItem, PlexLibrary
from .models import LibrarySection
from .search_query import BadMediaIdError, parse_search
from .text import normalise_text, split_year


class MediaNotFoundError(PlexError):
    """Nothing in the library matches the request."""


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """An item and how to start it."""

    item: MediaItem
    offset_ms: int = 0
    shuffle: bool = False


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

    async def resolve(self, media_id: str, sections: list[LibrarySection]) -> PlayRequest:
        """Return what to play; raises MediaNotFoundError or BadMediaIdError."""
        media_id = media_id.strip()
        if media_id.isdigit():
            return PlayRequest(await self._by_key(media_id))
        if media_id.startswith(("plex://{", "{")):
            return await self._by_search(media_id.removeprefix("plex://"), sections)
        if "://" in media_id:
            return PlayRequest(await self._by_guid(media_id, sections))
        raise BadMediaIdError(f"not a rating key, GUID or search: {media_id[:60]}")

    async def _by_key(self, rating_key: str) -> MediaItem:
        item = await self._library.metadata(rating_key)
        if item is None:
            raise MediaNotFoundError(f"no item with rating key {rating_key}")
        return item

    async def _by_guid(self, guid: str, sections: list[LibrarySection]) -> MediaItem:
        for section in sections:
            items = await self._library.find_in_section(section.key, {"guid": guid})
            if items:
                return items[0]
        raise MediaNotFoundError(f"no item with GUID {guid[:80]}")

    async def _by_search(self, text: str, sections: list[LibrarySection]) -> PlayRequest:
        query: dict[str, Any] = parse_search(text).as_query()  # types and ranges checked
        item = await self._search_item(query, sections)
        offset_ms = 0
        if "offset" in query:
            try:
                offset_ms = int(float(query["offset"]) * 1000)
            except (TypeError, ValueError) as err:
                raise BadMediaIdError("offset must be a number of seconds") from err
        elif query.get("resume"):
            offset_ms = item.view_offset_ms
        return PlayRequest(item, offset_ms=offset_ms, shuffle=bool(query.get("shuffle")))

    async def _search_item(
        self, query: dict[str, Any], sections: list[LibrarySection]
    ) -> MediaItem:
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

    async def _child(self, parent: MediaItem, match: Any, what: str) -> MediaItem:
        for child in await self._library.children(parent.rating_key):
            if match(child):
                return child
        raise MediaNotFoundError(f"{parent.title} has no such {what}")
