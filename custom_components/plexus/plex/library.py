"""Reading library items from a Plex server: metadata, children, hubs, playlists (paged)."""

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from .api import PlexServerAPI
from .errors import PlexNotFoundError
from .parse import media_resolution, parse_xml, to_int

ITEM_TAGS = frozenset({"Video", "Directory", "Track", "Playlist", "Photo"})
# Plex's numeric library types, for `type=` filters.
PLEX_TYPE_IDS = {
    "movie": 1,
    "show": 2,
    "season": 3,
    "episode": 4,
    "artist": 8,
    "album": 9,
    "track": 10,
}


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One library item (or playlist) as Plexus uses it."""

    rating_key: str
    type: str
    title: str
    key: str = ""
    year: int | None = None
    index: int | None = None
    parent_index: int | None = None
    parent_title: str = ""
    grandparent_title: str = ""
    parent_rating_key: str = ""
    grandparent_rating_key: str = ""
    thumb: str = ""
    duration_ms: int = 0
    view_offset_ms: int = 0
    view_count: int = 0
    last_viewed_at: int | None = None
    library_section_id: str = ""
    child_count: int | None = None
    guid: str = ""
    playlist_type: str = ""
    # External ids from the <Guid id="imdb://..."/> children (when the response carries them).
    guids: tuple[str, ...] = ()
    # Of its file ("" for containers and audio).
    video_resolution: str = ""

    @property
    def is_container(self) -> bool:
        """True for items that have children to browse into."""
        return self.type in ("show", "season", "artist", "album", "playlist", "collection")


def parse_item(elem: ET.Element) -> MediaItem | None:
    """Turn one element of a MediaContainer into a MediaItem (None if it has no rating key)."""
    rating_key = elem.get("ratingKey")
    if not rating_key:
        return None
    return MediaItem(
        rating_key=rating_key,
        type=elem.get("type", ""),
        title=elem.get("title", ""),
        key=elem.get("key", ""),
        year=to_int(elem.get("year")),
        index=to_int(elem.get("index")),
        parent_index=to_int(elem.get("parentIndex")),
        parent_title=elem.get("parentTitle", ""),
        grandparent_title=elem.get("grandparentTitle", ""),
        parent_rating_key=elem.get("parentRatingKey", ""),
        grandparent_rating_key=elem.get("grandparentRatingKey", ""),
        thumb=elem.get("thumb") or elem.get("composite") or "",
        duration_ms=to_int(elem.get("duration")) or 0,
        view_offset_ms=to_int(elem.get("viewOffset")) or 0,
        view_count=to_int(elem.get("viewCount")) or 0,
        last_viewed_at=to_int(elem.get("lastViewedAt")),
        library_section_id=elem.get("librarySectionID", ""),
        child_count=to_int(elem.get("leafCount") or elem.get("childCount")),
        guid=elem.get("guid", ""),
        playlist_type=elem.get("playlistType", ""),
        guids=tuple(g.get("id", "") for g in elem.iterfind("Guid") if g.get("id")),
        video_resolution=media_resolution(elem),
    )


def parse_items(body: bytes | str) -> tuple[list[MediaItem], int]:
    """Parse a MediaContainer of items; returns the items and the total size."""
    root = parse_xml(body)
    items = [
        item for elem in root if elem.tag in ITEM_TAGS and (item := parse_item(elem)) is not None
    ]
    total = to_int(root.get("totalSize")) or to_int(root.get("size")) or len(items)
    return items, max(total, len(items))


class PlexLibrary:
    """Library reads of one server."""

    def __init__(self, api: PlexServerAPI) -> None:
        """Use the given server API."""
        self.api = api

    async def _items(
        self, path: str, params: dict[str, str | int] | None = None
    ) -> tuple[list[MediaItem], int]:
        return parse_items(await self.api.request(path, params=params))

    async def metadata(self, rating_key: str) -> MediaItem | None:
        """Return one item, None when the server does not know it."""
        try:
            items, _ = await self._items(
                f"/library/metadata/{rating_key}", params={"includeGuids": 1}
            )
        except PlexNotFoundError:
            return None
        return items[0] if items else None

    async def section_items(
        self, section_key: str, *, start: int = 0, size: int = 100, type_id: int | None = None
    ) -> tuple[list[MediaItem], int]:
        """Return one page of a section and the section's total."""
        params: dict[str, str | int] = {
            "X-Plex-Container-Start": start,
            "X-Plex-Container-Size": size,
        }
        if type_id is not None:
            params["type"] = type_id
        return await self._items(f"/library/sections/{section_key}/all", params)

    async def find_in_section(
        self, section_key: str, filters: dict[str, str | int]
    ) -> list[MediaItem]:
        """Return a section's items matching Plex filters (e.g. guid=, type= and title=)."""
        items, _ = await self._items(f"/library/sections/{section_key}/all", filters)
        return items

    async def children(self, rating_key: str) -> list[MediaItem]:
        """Return the children of a show, season, artist or album."""
        items, _ = await self._items(f"/library/metadata/{rating_key}/children")
        return items

    async def all_leaves(self, rating_key: str) -> list[MediaItem]:
        """Return every episode of a show (or track of an artist)."""
        items, _ = await self._items(f"/library/metadata/{rating_key}/allLeaves")
        return items

    async def on_deck(self, size: int = 50) -> list[MediaItem]:
        """Return what the server's users are in the middle of."""
        items, _ = await self._items(
            "/library/onDeck", {"X-Plex-Container-Start": 0, "X-Plex-Container-Size": size}
        )
        return items

    async def recently_added(
        self, size: int = 50, *, section_key: str | None = None
    ) -> list[MediaItem]:
        """Return the newest items (of the server, or of one section)."""
        path = (
            f"/library/sections/{section_key}/recentlyAdded"
            if section_key
            else "/library/recentlyAdded"
        )
        items, _ = await self._items(
            path, {"X-Plex-Container-Start": 0, "X-Plex-Container-Size": size}
        )
        return items

    async def playlists(self) -> list[MediaItem]:
        """Return the playlists."""
        items, _ = await self._items("/playlists")
        return items

    async def playlist_items(self, playlist_id: str) -> list[MediaItem]:
        """Return a playlist's items."""
        items, _ = await self._items(f"/playlists/{playlist_id}/items")
        return items
