"""The simulated Plex library: sections, items, playlists, generated deterministically.

Everything is indexed for speed: items by rating key, one pre-sorted list per (section, type),
children per parent. Runtime changes (`add_movie`, `add_episode`, `update_item`, `delete_item`)
keep those indexes up to date instead of rebuilding anything.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
import random
import re
import time
from typing import Any, Final, Literal
import unicodedata
import uuid as uuid_mod

from . import names

type ItemType = Literal["movie", "show", "season", "episode", "artist", "album", "track"]
type Listener = Callable[[dict[str, Any]], None]

SEARCH_TYPES: Final[dict[str, int]] = {
    "movie": 1,
    "show": 2,
    "season": 3,
    "episode": 4,
    "artist": 8,
    "album": 9,
    "track": 10,
    "playlist": 15,
    "collection": 18,
}
TYPE_BY_NUMBER: Final[dict[int, str]] = {v: k for k, v in SEARCH_TYPES.items()}
SECTION_TYPES: Final[dict[str, tuple[ItemType, ...]]] = {
    "movie": ("movie",),
    "show": ("show", "season", "episode"),
    "artist": ("artist", "album", "track"),
}
LEAF_TYPES: Final = frozenset({"movie", "episode", "track"})
ARTICLES: Final = ("the ", "a ", "an ")
DEFAULT_BASE_TIME: Final = 1_750_000_000  # 2025-06-15; generated dates lie before this


def title_sort_of(title: str) -> str:
    """Return the sort title Plex derives for English titles (leading article dropped)."""
    lowered = title.lower()
    for article in ARTICLES:
        if lowered.startswith(article) and len(title) > len(article):
            return title[len(article) :]
    return title


def fold(text: str) -> str:
    """Lowercase and strip accents (Plex search matches "amelie" to "Amélie")."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _roots(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def is_windows_path(root: str) -> bool:
    """Return True for `D:\\Media` and `\\\\nas\\share` style roots."""
    return "\\" in root or bool(re.match(r"^[A-Za-z]:", root))


def join_path(root: str, *parts: str) -> str:
    """Join path parts in the style of the root (backslashes for Windows roots)."""
    sep = "\\" if is_windows_path(root) else "/"
    return sep.join([root.rstrip("\\/"), *parts])


_UNSAFE_FILENAME = re.compile(r'[<>:"/\\|?*]')


def safe_filename(name: str) -> str:
    """Return a file name the way media managers write titles to disk."""
    return _UNSAFE_FILENAME.sub("", name.replace(": ", " - ").replace("/", "-")).strip()


@dataclass
class LibraryConfig:
    """What the generated library contains. All counts may be 0 (0 artists disables music)."""

    movies: int = 200
    shows: int = 20
    seasons_per_show: int = 3
    episodes_per_season: int = 8
    artists: int = 10
    albums_per_artist: int = 2
    tracks_per_album: int = 8
    movie_roots: str | Sequence[str] = ("/data/movies",)
    tv_roots: str | Sequence[str] = ("/data/tv",)
    music_roots: str | Sequence[str] = ("/data/music",)
    movie_section_title: str = "Movies"
    tv_section_title: str = "TV Shows"
    music_section_title: str = "Music"
    playlists: bool = True
    seed: int = 1
    base_time: int = DEFAULT_BASE_TIME

    @property
    def item_count(self) -> int:
        """Number of metadata items the config generates (all types)."""
        seasons = self.shows * self.seasons_per_show
        albums = self.artists * self.albums_per_artist
        return (
            self.movies
            + self.shows
            + seasons
            + seasons * self.episodes_per_season
            + self.artists
            + albums
            + albums * self.tracks_per_album
        )


@dataclass(slots=True)
class MediaInfo:
    """One Media + Part pair (what `<Media>` and `<Part>` describe)."""

    id: int
    part_id: int
    container: str
    duration: int
    bitrate: int
    file: str
    size: int
    audio_codec: str
    audio_channels: int
    video_codec: str | None = None
    video_resolution: str | None = None
    width: int | None = None
    height: int | None = None
    video_frame_rate: str | None = None
    video_profile: str | None = None
    aspect_ratio: float | None = None


@dataclass(slots=True, eq=False)
class Item:
    """A metadata item of any type. Attribute names are snake_case forms of Plex's."""

    id: int
    type: ItemType
    section_id: int
    title: str
    added_at: int
    updated_at: int
    guid: str
    year: int | None = None
    index: int | None = None
    parent: Item | None = None
    title_sort: str = ""
    original_title: str | None = None
    ext_guids: tuple[str, ...] = ()
    duration: int | None = None
    originally_available_at: str | None = None
    summary: str = ""
    tagline: str | None = None
    studio: str | None = None
    content_rating: str | None = None
    rating: float | None = None
    audience_rating: float | None = None
    genres: tuple[str, ...] = ()
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    view_count: int = 0
    view_offset: int = 0
    last_viewed_at: int | None = None
    media: MediaInfo | None = None
    location: str | None = None  # folder of a show or artist
    children: list[Item] = field(default_factory=list)
    sort_key: tuple[Any, ...] = ()
    title_lc: str = ""

    @property
    def rating_key(self) -> str:
        """The ratingKey as Plex sends it (a string)."""
        return str(self.id)

    @property
    def key(self) -> str:
        """The item's `key` attribute."""
        if self.type in LEAF_TYPES:
            return f"/library/metadata/{self.id}"
        return f"/library/metadata/{self.id}/children"

    @property
    def grandparent(self) -> Item | None:
        """The show of an episode, the artist of a track."""
        return self.parent.parent if self.parent is not None else None

    @property
    def search_type(self) -> int:
        """Plex's numeric type (1 movie, 2 show, ...)."""
        return SEARCH_TYPES[self.type]

    def leaves(self) -> list[Item]:
        """Playable descendants in order (episodes of a show, tracks of an artist...)."""
        if self.type in LEAF_TYPES:
            return [self]
        out: list[Item] = []
        for child in self.children:
            out.extend(child.leaves())
        return out

    def all_guids(self) -> tuple[str, ...]:
        """The item's own guid followed by its external (`<Guid>`) ids."""
        return (self.guid, *self.ext_guids)


@dataclass(slots=True)
class Section:
    """A library section (`<Directory>` in `/library/sections`)."""

    id: int
    type: Literal["movie", "show", "artist"]
    title: str
    agent: str
    scanner: str
    uuid: str
    locations: tuple[str, ...]
    created_at: int
    updated_at: int
    scanned_at: int
    language: str = "en"
    refreshing: bool = False
    scan_uuid: str | None = None

    @property
    def key(self) -> str:
        """The section key as a string."""
        return str(self.id)

    @property
    def item_types(self) -> tuple[ItemType, ...]:
        """The item types this section holds, top level first."""
        return SECTION_TYPES[self.type]


@dataclass(slots=True)
class Playlist:
    """A playlist (`smart`: its items come from a filter; the server refuses to edit them)."""

    id: int
    title: str
    playlist_type: Literal["video", "audio"]
    items: list[int]
    guid: str
    added_at: int
    updated_at: int
    summary: str = ""
    view_count: int = 0
    last_viewed_at: int | None = None
    smart: bool = False
    # Each entry's playlistItemID (parallel to `items`; stable while entries come and go).
    entry_ids: list[int] = field(default_factory=list)

    @property
    def rating_key(self) -> str:
        """The ratingKey as a string."""
        return str(self.id)

    def entries(self) -> list[tuple[int, int]]:
        """(playlistItemID, rating key) of each entry, in order."""
        while len(self.entry_ids) < len(self.items):  # items appended directly by a test
            self.entry_ids.append(self.id * 1000 + len(self.entry_ids))
        return list(zip(self.entry_ids, self.items, strict=False))


@dataclass(slots=True)
class Collection:
    """A (non-smart) collection of items of one section."""

    id: int
    section_id: int
    title: str
    subtype: str
    items: list[int]
    guid: str
    added_at: int
    updated_at: int
    summary: str = ""
    content_rating: str | None = None

    @property
    def rating_key(self) -> str:
        """The ratingKey as a string."""
        return str(self.id)


# Field aliases accepted by update_item (Plex camelCase -> attribute).
_FIELD_ALIASES: Final[dict[str, str]] = {
    "titleSort": "title_sort",
    "originalTitle": "original_title",
    "addedAt": "added_at",
    "updatedAt": "updated_at",
    "viewCount": "view_count",
    "viewOffset": "view_offset",
    "lastViewedAt": "last_viewed_at",
    "contentRating": "content_rating",
    "audienceRating": "audience_rating",
    "originallyAvailableAt": "originally_available_at",
    "guids": "ext_guids",
}
_SORT_AFFECTING: Final = frozenset({"title", "title_sort", "year", "index"})


class Library:
    """All sections and items of the simulated server."""

    def __init__(
        self, config: LibraryConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Generate the library described by config (deterministic for a given seed)."""
        self.config = config or LibraryConfig()
        self.clock = clock
        self.sections: dict[str, Section] = {}
        self.items: dict[str, Item] = {}
        self.playlists: dict[str, Playlist] = {}
        self.collections: dict[str, Collection] = {}
        self.version = 0
        self._lists: dict[tuple[int, str], list[Item]] = {}
        self._listeners: list[Listener] = []
        self._query_cache: OrderedDict[tuple[Any, ...], list[Item]] = OrderedDict()
        self._next_id = 1
        self._next_media_id = 100_000
        self._next_entry_id = 90_000_000  # playlistItemIDs added at run time
        self._tag_ids: dict[tuple[str, str], int] = {}
        self._rng = random.Random(self.config.seed)
        self._generate()

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        """Number of metadata items."""
        return len(self.items)

    def __contains__(self, rating_key: object) -> bool:
        """True when the rating key exists."""
        return str(rating_key) in self.items

    def __getitem__(self, rating_key: str | int) -> Item:
        """The item with this rating key (KeyError when unknown)."""
        return self.items[str(rating_key)]

    def get(self, rating_key: str | int) -> Item | None:
        """The item with this rating key, or None."""
        return self.items.get(str(rating_key))

    def section(self, section_id: str | int) -> Section:
        """The section with this id (KeyError when unknown)."""
        return self.sections[str(section_id)]

    def section_of_type(self, section_type: str) -> Section | None:
        """The first section of a type (movie, show, artist)."""
        return next((s for s in self.sections.values() if s.type == section_type), None)

    def items_of_type(self, section_id: str | int, item_type: str) -> list[Item]:
        """The (live, do not modify) default-sorted list of one type in one section."""
        return self._lists.get((int(section_id), item_type), [])

    def all_of_type(self, item_type: str) -> list[Item]:
        """Items of one type across all sections."""
        out: list[Item] = []
        for (_, kind), items in self._lists.items():
            if kind == item_type:
                out.extend(items)
        return out

    def movies(self) -> list[Item]:
        """All movies (default sort)."""
        return self.all_of_type("movie")

    def shows(self) -> list[Item]:
        """All shows."""
        return self.all_of_type("show")

    def seasons(self) -> list[Item]:
        """All seasons."""
        return self.all_of_type("season")

    def episodes(self) -> list[Item]:
        """All episodes."""
        return self.all_of_type("episode")

    def artists(self) -> list[Item]:
        """All artists."""
        return self.all_of_type("artist")

    def albums(self) -> list[Item]:
        """All albums."""
        return self.all_of_type("album")

    def tracks(self) -> list[Item]:
        """All tracks."""
        return self.all_of_type("track")

    def tag_id(self, kind: str, tag: str) -> int:
        """A stable id for a tag (genre, director...), as Plex numbers them."""
        key = (kind, tag)
        found = self._tag_ids.get(key)
        if found is None:
            found = self._tag_ids[key] = len(self._tag_ids) + 1
        return found

    def cached(self, key: tuple[Any, ...], build: Callable[[], list[Item]]) -> list[Item]:
        """Memoise a filtered/sorted result until the library changes."""
        full_key = (self.version, *key)
        found = self._query_cache.get(full_key)
        if found is not None:
            self._query_cache.move_to_end(full_key)
            return found
        result = build()
        self._query_cache[full_key] = result
        while len(self._query_cache) > 64:
            self._query_cache.popitem(last=False)
        return result

    # ------------------------------------------------------------------ listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call listener with every notification payload; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(payload)

    def _timeline(self, item: Item, state: int, metadata_state: str | None = None) -> None:
        entry: dict[str, Any] = {
            "identifier": "com.plexapp.plugins.library",
            "sectionID": str(item.section_id),
            "itemID": item.rating_key,
            "parentItemID": item.parent.rating_key if item.parent else None,
            "rootItemID": (item.grandparent or item.parent or item).rating_key,
            "type": item.search_type,
            "title": item.title,
            "state": state,
            "updatedAt": item.updated_at,
        }
        if entry["parentItemID"] is None:
            del entry["parentItemID"]
        if metadata_state:
            entry["metadataState"] = metadata_state
        self._emit(
            {"NotificationContainer": {"type": "timeline", "size": 1, "TimelineEntry": [entry]}}
        )

    def activity(self, section: Section, event: str, progress: int) -> None:
        """Push an `activity` notification for a library scan of section."""
        if section.scan_uuid is None:
            section.scan_uuid = str(uuid_mod.UUID(int=self._rng.getrandbits(128), version=4))
        activity = {
            "uuid": section.scan_uuid,
            "type": "library.update.section",
            "cancellable": False,
            "userID": 1,
            "title": f"Scanning {section.title}",
            "subtitle": "",
            "progress": progress,
            "Context": {
                "accessible": False,
                "exhaustive": False,
                "librarySectionID": section.key,
                "refreshed": False,
            },
        }
        self._emit(
            {
                "NotificationContainer": {
                    "type": "activity",
                    "size": 1,
                    "ActivityNotification": [
                        {"event": event, "uuid": section.scan_uuid, "Activity": activity}
                    ],
                }
            }
        )

    def start_scan(self, section_id: str | int) -> Section:
        """Mark a section as scanning and push the `started` activity."""
        section = self.section(section_id)
        section.refreshing = True
        section.scan_uuid = None
        self.activity(section, "started", 0)
        return section

    def finish_scan(self, section_id: str | int) -> None:
        """End a scan: push the `ended` activity Plex sends and update scannedAt."""
        section = self.section(section_id)
        section.refreshing = False
        section.scanned_at = int(self.clock())
        self.activity(section, "ended", 100)
        section.scan_uuid = None

    # ------------------------------------------------------------------ runtime changes

    def _new_id(self) -> int:
        new = self._next_id
        self._next_id += 1
        return new

    def _new_media_ids(self) -> tuple[int, int]:
        media_id = self._next_media_id
        self._next_media_id += 2
        return media_id, media_id + 1

    def _changed(self) -> None:
        self.version += 1
        self._query_cache.clear()

    def _sort_key(self, item: Item) -> tuple[Any, ...]:
        ts = item.title_sort.lower()
        if item.type in ("movie", "show", "artist"):
            return (ts, item.year or 0, item.id)
        parent = item.parent
        assert parent is not None
        if item.type in ("season", "album"):
            return (*parent.sort_key, item.index or 0, item.year or 0, ts, item.id)
        return (*parent.sort_key, item.index or 0, item.id)

    def _index(self, item: Item, *, sorted_insert: bool) -> None:
        item.title_sort = item.title_sort or title_sort_of(item.title)
        item.title_lc = fold(item.title)
        item.sort_key = self._sort_key(item)
        self.items[item.rating_key] = item
        lst = self._lists.setdefault((item.section_id, item.type), [])
        if sorted_insert:
            bisect.insort(lst, item, key=lambda it: it.sort_key)
            if item.parent is not None:
                bisect.insort(item.parent.children, item, key=lambda it: (it.index or 0, it.id))
        else:
            lst.append(item)
            if item.parent is not None:
                item.parent.children.append(item)

    def _unindex(self, item: Item) -> None:
        for child in list(item.children):
            self._unindex(child)
        self.items.pop(item.rating_key, None)
        lst = self._lists.get((item.section_id, item.type), [])
        pos = bisect.bisect_left(lst, item.sort_key, key=lambda it: it.sort_key)
        if pos < len(lst) and lst[pos] is item:
            del lst[pos]
        elif item in lst:
            lst.remove(item)
        holders: list[Playlist | Collection] = [
            *self.playlists.values(),
            *self.collections.values(),
        ]
        for holder in holders:
            if item.id in holder.items:
                holder.items = [i for i in holder.items if i != item.id]

    def _reindex_subtree(self, item: Item) -> None:
        lst = self._lists[(item.section_id, item.type)]
        lst.remove(item)
        item.title_sort = title_sort_of(item.title) if not item.title_sort else item.title_sort
        item.title_lc = fold(item.title)
        item.sort_key = self._sort_key(item)
        bisect.insort(lst, item, key=lambda it: it.sort_key)
        if item.parent is not None:
            item.parent.children.sort(key=lambda it: (it.index or 0, it.id))
        for child in item.children:
            self._reindex_subtree(child)

    def _default_section(self, section_type: str, section_id: str | int | None) -> Section:
        if section_id is not None:
            return self.section(section_id)
        section = self.section_of_type(section_type)
        if section is None:
            raise KeyError(f"no {section_type} section")
        return section

    def add_movie(
        self,
        title: str,
        *,
        year: int | None = None,
        section_id: str | int | None = None,
        added_at: int | None = None,
        updated_at: int | None = None,
        guid: str | None = None,
        guids: Sequence[str] = (),
        duration_ms: int | None = None,
        file: str | None = None,
        notify: bool = True,
        **fields: Any,
    ) -> Item:
        """Add a movie at runtime (addedAt/updatedAt default to the library clock)."""
        section = self._default_section("movie", section_id)
        now = int(self.clock())
        item_id = self._new_id()
        year = year or 2024
        item = Item(
            id=item_id,
            type="movie",
            section_id=section.id,
            title=title,
            year=year,
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else (added_at or now),
            guid=guid or f"plex://movie/{self._rng.getrandbits(96):024x}",
            ext_guids=tuple(guids),
            duration=duration_ms or 6_000_000,
            originally_available_at=f"{year}-01-01",
            summary=f"{title} ({year}).",
        )
        item.media = self._video_media(
            item.duration or 0,
            file or join_path(section.locations[0], safe_filename(f"{title} ({year})") + ".mkv"),
            resolution="1080",
        )
        for name, value in fields.items():
            setattr(item, _FIELD_ALIASES.get(name, name), value)
        self._index(item, sorted_insert=True)
        self._changed()
        if notify:
            self._timeline(item, 0, "created")
            self._timeline(item, 5)
        return item

    def add_show(
        self,
        title: str,
        *,
        year: int | None = None,
        section_id: str | int | None = None,
        added_at: int | None = None,
        guid: str | None = None,
        notify: bool = True,
    ) -> Item:
        """Add an empty show at runtime."""
        section = self._default_section("show", section_id)
        now = int(self.clock())
        year = year or 2024
        show = Item(
            id=self._new_id(),
            type="show",
            section_id=section.id,
            title=title,
            year=year,
            index=1,
            added_at=added_at if added_at is not None else now,
            updated_at=added_at if added_at is not None else now,
            guid=guid or f"plex://show/{self._rng.getrandbits(96):024x}",
            originally_available_at=f"{year}-01-01",
            location=join_path(section.locations[0], safe_filename(f"{title} ({year})")),
        )
        self._index(show, sorted_insert=True)
        self._changed()
        if notify:
            self._timeline(show, 0, "created")
            self._timeline(show, 5)
        return show

    def _find_show(self, show: str | int | Item) -> Item:
        if isinstance(show, Item):
            return show
        found = self.items.get(str(show))
        if found is not None and found.type == "show":
            return found
        for candidate in self.shows():
            if candidate.title == str(show):
                return candidate
        return self.add_show(str(show))

    def add_episode(
        self,
        show: str | int | Item,
        season: int = 1,
        episode: int | None = None,
        *,
        title: str | None = None,
        added_at: int | None = None,
        updated_at: int | None = None,
        guid: str | None = None,
        guids: Sequence[str] = (),
        duration_ms: int | None = None,
        file: str | None = None,
        notify: bool = True,
        **fields: Any,
    ) -> Item:
        """Add an episode; show is a rating key, an Item or a title (created when unknown)."""
        show_item = self._find_show(show)
        now = int(self.clock())
        added = added_at if added_at is not None else now
        season_item = next((s for s in show_item.children if s.index == season), None)
        if season_item is None:
            season_item = Item(
                id=self._new_id(),
                type="season",
                section_id=show_item.section_id,
                title=f"Season {season}",
                index=season,
                parent=show_item,
                added_at=added,
                updated_at=added,
                guid=f"plex://season/{self._rng.getrandbits(96):024x}",
                year=show_item.year,
            )
            self._index(season_item, sorted_insert=True)
        number = episode if episode is not None else len(season_item.children) + 1
        ep_title = title or f"Episode {number}"
        item = Item(
            id=self._new_id(),
            type="episode",
            section_id=show_item.section_id,
            title=ep_title,
            index=number,
            parent=season_item,
            year=show_item.year,
            added_at=added,
            updated_at=updated_at if updated_at is not None else added,
            guid=guid or f"plex://episode/{self._rng.getrandbits(96):024x}",
            ext_guids=tuple(guids),
            duration=duration_ms or 2_400_000,
            summary=f"{show_item.title} S{season:02d}E{number:02d}.",
        )
        location = show_item.location or join_path(
            self.section(show_item.section_id).locations[0], safe_filename(show_item.title)
        )
        item.media = self._video_media(
            item.duration or 0,
            file
            or join_path(
                location,
                f"Season {season:02d}",
                safe_filename(f"{show_item.title} - S{season:02d}E{number:02d} - {ep_title}")
                + ".mkv",
            ),
            resolution="1080",
        )
        for name, value in fields.items():
            setattr(item, _FIELD_ALIASES.get(name, name), value)
        self._index(item, sorted_insert=True)
        self._changed()
        if notify:
            self._timeline(item, 0, "created")
            self._timeline(item, 5)
        return item

    def update_item(self, rating_key: str | int, **fields: Any) -> Item:
        """Change fields (snake_case or Plex camelCase); bumps updatedAt unless given."""
        item = self[rating_key]
        resort = False
        for name, value in fields.items():
            attr = _FIELD_ALIASES.get(name, name)
            if not hasattr(item, attr) or attr in ("id", "type", "section_id", "children"):
                raise AttributeError(f"cannot set {name!r} on an item")
            if attr == "title" and "title_sort" not in fields and "titleSort" not in fields:
                item.title_sort = ""
            setattr(item, attr, tuple(value) if attr == "ext_guids" else value)
            resort = resort or attr in _SORT_AFFECTING
        if "updated_at" not in fields and "updatedAt" not in fields:
            item.updated_at = max(int(self.clock()), item.updated_at + 1)
        if resort:
            self._reindex_subtree(item)
        self._changed()
        self._timeline(item, 5)
        return item

    def delete_item(self, rating_key: str | int) -> None:
        """Remove an item and everything below it."""
        item = self[rating_key]
        removed = [item, *self._descendants(item)]
        self._unindex(item)
        if item.parent is not None:
            item.parent.children.remove(item)
        self._changed()
        for gone in removed:
            self._timeline(gone, 9, "deleted")

    def _descendants(self, item: Item) -> Iterator[Item]:
        for child in item.children:
            yield child
            yield from self._descendants(child)

    def mark_watched(self, rating_key: str | int) -> Item:
        """What a scrobble does: one more play, no resume point."""
        item = self[rating_key]
        for leaf in item.leaves():
            leaf.view_count += 1
            leaf.view_offset = 0
            leaf.last_viewed_at = int(self.clock())
        self._changed()
        return item

    def mark_unwatched(self, rating_key: str | int) -> Item:
        """What an unscrobble does."""
        item = self[rating_key]
        for leaf in item.leaves():
            leaf.view_count = 0
            leaf.view_offset = 0
            leaf.last_viewed_at = None
        self._changed()
        return item

    def set_progress(self, rating_key: str | int, offset_ms: int) -> None:
        """Store a resume point (what `/:/timeline` reports do)."""
        item = self[rating_key]
        item.view_offset = max(0, offset_ms)
        item.last_viewed_at = int(self.clock())
        self._changed()

    def add_playlist(
        self,
        title: str,
        items: Iterable[str | int],
        *,
        playlist_type: str | None = None,
        smart: bool = False,
    ) -> Playlist:
        """Create a playlist of the given rating keys (`smart`: as if made from a filter)."""
        ids = [int(k) for k in items]
        if playlist_type is None:
            first = self.items.get(str(ids[0])) if ids else None
            playlist_type = "audio" if first is not None and first.type == "track" else "video"
        now = int(self.clock())
        playlist = Playlist(
            id=self._new_id(),
            title=title,
            playlist_type="audio" if playlist_type == "audio" else "video",
            items=ids,
            guid=f"com.plexapp.agents.none://{uuid_mod.UUID(int=self._rng.getrandbits(128))}",
            added_at=now,
            updated_at=now,
            smart=smart,
        )
        self.playlists[playlist.rating_key] = playlist
        self._changed()
        return playlist

    def add_to_playlist(self, playlist_id: str, keys: Iterable[str | int]) -> Playlist | None:
        """Append items to a playlist (`PUT /playlists/<id>/items`)."""
        playlist = self.playlists.get(str(playlist_id))
        if playlist is None:
            return None
        playlist.entries()
        for key in keys:
            playlist.items.append(int(key))
            self._next_entry_id += 1
            playlist.entry_ids.append(self._next_entry_id)
        playlist.updated_at = int(self.clock())
        self._changed()
        return playlist

    def remove_playlist_entry(self, playlist_id: str, entry_id: int) -> bool:
        """Remove one entry by its playlistItemID (`DELETE /playlists/<id>/items/<entry>`)."""
        playlist = self.playlists.get(str(playlist_id))
        if playlist is None:
            return False
        for n, (entry, _key) in enumerate(playlist.entries()):
            if entry == entry_id:
                del playlist.items[n]
                del playlist.entry_ids[n]
                playlist.updated_at = int(self.clock())
                self._changed()
                return True
        return False

    # ------------------------------------------------------------------ generation

    def _video_media(
        self, duration: int, file: str, *, resolution: str, rng: random.Random | None = None
    ) -> MediaInfo:
        rng = rng or self._rng
        width, height, lo, hi = _RESOLUTIONS[resolution]
        bitrate = rng.randint(lo, hi)
        ext = file.rsplit(".", 1)[-1]
        codec = "hevc" if resolution == "4k" or rng.random() < 0.2 else "h264"
        if ext == "avi":
            codec = "mpeg4"
        audio_codec, channels = _AUDIO[rng.randrange(len(_AUDIO))]
        media_id, part_id = self._new_media_ids()
        return MediaInfo(
            id=media_id,
            part_id=part_id,
            container=ext,
            duration=duration,
            bitrate=bitrate,
            file=file,
            size=bitrate * 125 * (duration // 1000),
            audio_codec=audio_codec,
            audio_channels=channels,
            video_codec=codec,
            video_resolution=resolution,
            width=width,
            height=height,
            video_frame_rate="24p",
            video_profile="main 10" if codec == "hevc" else "high",
            aspect_ratio=round(width / height, 2),
        )

    def _hex24(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def _pick_tags(self, pool: Sequence[str], lo: int, hi: int) -> tuple[str, ...]:
        count = self._rng.randint(lo, hi)
        return tuple(self._rng.sample(pool, count)) if count else ()

    def _people(self, count: int) -> tuple[str, ...]:
        rng = self._rng
        return tuple(
            f"{names.FIRST_NAMES[rng.randrange(len(names.FIRST_NAMES))]} "
            f"{names.LAST_NAMES[rng.randrange(len(names.LAST_NAMES))]}"
            for _ in range(count)
        )

    def _title(self, taken: set[str]) -> str:
        rng = self._rng
        for _ in range(20):
            adj = names.ADJECTIVES[rng.randrange(len(names.ADJECTIVES))]
            noun = names.NOUNS[rng.randrange(len(names.NOUNS))]
            noun2 = names.NOUNS[rng.randrange(len(names.NOUNS))]
            first = names.FIRST_NAMES[rng.randrange(len(names.FIRST_NAMES))]
            pattern = rng.randrange(10)
            title = (
                f"{adj} {noun}",
                f"The {adj} {noun}",
                f"A {noun} of {noun2}s",
                f"{noun}: {adj} {noun2}",
                f"{first}'s {noun}",
                f"{noun} & {noun2}",
                f"The {noun} of the {adj} {noun2}",
                f"{adj} {noun} {rng.randint(2, 4)}",
                f"Who Stole the {noun}?",
                f"{noun}!",
            )[pattern]
            if title not in taken:
                taken.add(title)
                return title
        title = f"{names.ADJECTIVES[0]} {names.NOUNS[0]} {len(taken)}"
        taken.add(title)
        return title

    def _dates(self, years_back: float = 6.0) -> tuple[int, int]:
        base = self.config.base_time
        added = base - int(self._rng.random() * years_back * 365 * 86400)
        updated = added + int(self._rng.random() * (base - added))
        return added, updated

    def _watch_state(self, item: Item) -> None:
        roll = self._rng.random()
        if roll < 0.3:
            item.view_count = self._rng.randint(1, 4)
            item.last_viewed_at = item.updated_at
        elif roll < 0.36 and item.duration:
            item.view_offset = int(item.duration * self._rng.uniform(0.1, 0.8))
            item.last_viewed_at = item.updated_at

    def _make_section(
        self, section_type: Literal["movie", "show", "artist"], title: str, roots: Sequence[str]
    ) -> Section:
        agent, scanner = _AGENTS[section_type]
        base = self.config.base_time
        section = Section(
            id=len(self.sections) + 1,
            type=section_type,
            title=title,
            agent=agent,
            scanner=scanner,
            uuid=str(uuid_mod.UUID(int=self._rng.getrandbits(128), version=4)),
            locations=tuple(roots),
            created_at=base - 7 * 365 * 86400,
            updated_at=base - 86400,
            scanned_at=base - 3600,
        )
        self.sections[section.key] = section
        return section

    def _generate(self) -> None:
        cfg = self.config
        if cfg.movies:
            self._generate_movies(
                self._make_section("movie", cfg.movie_section_title, _roots(cfg.movie_roots))
            )
        if cfg.shows:
            self._generate_shows(
                self._make_section("show", cfg.tv_section_title, _roots(cfg.tv_roots))
            )
        if cfg.artists:
            self._generate_music(
                self._make_section("artist", cfg.music_section_title, _roots(cfg.music_roots))
            )
        for lst in self._lists.values():
            lst.sort(key=lambda it: it.sort_key)
        for item in self.items.values():
            if item.children:
                item.children.sort(key=lambda it: (it.index or 0, it.id))
        if cfg.playlists:
            self._generate_playlists()
        self._generate_collections()
        self._changed()

    def _movie_guid(self, n: int, item_id: int) -> tuple[str, tuple[str, ...]]:
        rng = self._rng
        imdb = f"imdb://tt{rng.randint(100_000, 9_999_999):07d}"
        tmdb = f"tmdb://{rng.randint(10, 999_999)}"
        tvdb = f"tvdb://{rng.randint(1000, 400_000)}"
        form = _MOVIE_GUID_FORMS[n % len(_MOVIE_GUID_FORMS)]
        if form == "plex":
            return f"plex://movie/{self._hex24()}", (imdb, tmdb, tvdb)
        if form == "plex2":
            return f"plex://movie/{self._hex24()}", (imdb, tmdb)
        if form == "imdb":
            return f"com.plexapp.agents.imdb://{imdb[7:]}?lang=en", ()
        if form == "tmdb":
            return f"com.plexapp.agents.themoviedb://{tmdb[7:]}?lang=en", ()
        if form == "local":
            return f"local://{item_id}", ()
        return f"com.plexapp.agents.none://{item_id}?lang=xn", ()

    def _generate_movies(self, section: Section) -> None:
        cfg = self.config
        rng = self._rng
        taken: set[str] = set()
        roots = section.locations
        for n in range(cfg.movies):
            if n < len(names.SPECIAL_MOVIES):
                title, year, original = names.SPECIAL_MOVIES[n]
                taken.add(title)
            else:
                title, year, original = self._title(taken), rng.randint(1950, 2025), None
            item_id = self._new_id()
            guid, ext = self._movie_guid(n, item_id)
            added, updated = self._dates()
            duration = rng.randint(80, 180) * 60_000 + rng.randint(0, 59_999)
            resolution = _RES_CHOICES[rng.randrange(len(_RES_CHOICES))]
            ext_name = "avi" if resolution == "sd" and rng.random() < 0.5 else _CONTAINERS[n % 3]
            folder = safe_filename(f"{title} ({year})")
            file = join_path(roots[n % len(roots)], folder, f"{folder}.{ext_name}")
            item = Item(
                id=item_id,
                type="movie",
                section_id=section.id,
                title=title,
                original_title=original,
                year=year,
                added_at=added,
                updated_at=updated,
                guid=guid,
                ext_guids=ext,
                duration=duration,
                originally_available_at=f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                summary=_SUMMARIES[n % len(_SUMMARIES)].format(title=title),
                tagline=f"Every {names.NOUNS[n % len(names.NOUNS)].lower()} has a price.",
                studio=names.STUDIOS[rng.randrange(len(names.STUDIOS))],
                content_rating=names.CONTENT_RATINGS_MOVIE[
                    rng.randrange(len(names.CONTENT_RATINGS_MOVIE))
                ],
                rating=round(rng.uniform(3.0, 9.8), 1),
                audience_rating=round(rng.uniform(3.0, 9.8), 1),
                genres=self._pick_tags(names.GENRES_VIDEO, 1, 3),
                directors=self._people(1),
                writers=self._people(rng.randint(1, 2)),
                producers=self._people(1),
                countries=self._pick_tags(names.COUNTRIES, 1, 1),
                roles=self._people(rng.randint(3, 6)),
            )
            item.media = self._video_media(duration, file, resolution=resolution)
            self._watch_state(item)
            self._index(item, sorted_insert=False)

    def _show_guids(
        self, form: str
    ) -> Callable[[int | None, int | None, int], tuple[str, tuple[str, ...]]]:
        """Return a function (season, episode, item_id) -> (guid, ext guids) for one show."""
        rng = self._rng
        tvdb_show = rng.randint(70_000, 450_000)
        tmdb_show = rng.randint(1000, 250_000)
        anidb = rng.randint(1, 18_000)

        def make(
            season: int | None, episode: int | None, item_id: int
        ) -> tuple[str, tuple[str, ...]]:
            path = "".join(f"/{n}" for n in (season, episode) if n is not None)
            if form == "plex":
                kind = "show" if season is None else "season" if episode is None else "episode"
                ext: tuple[str, ...] = (f"tvdb://{rng.randint(100_000, 9_000_000)}",)
                if kind != "season":
                    ext = (
                        f"imdb://tt{rng.randint(100_000, 9_999_999):07d}",
                        f"tmdb://{rng.randint(10, 2_000_000)}",
                        *ext,
                    )
                return f"plex://{kind}/{self._hex24()}", ext
            if form == "thetvdb":
                return f"com.plexapp.agents.thetvdb://{tvdb_show}{path}?lang=en", ()
            if form == "themoviedb":
                return f"com.plexapp.agents.themoviedb://{tmdb_show}{path}?lang=en", ()
            if form == "hama":
                return f"com.plexapp.agents.hama://anidb-{anidb}{path}?lang=en", ()
            if form == "hama-tvdb":
                return f"com.plexapp.agents.hama://tvdb-{tvdb_show}{path}?lang=en", ()
            return f"local://{item_id}", ()

        return make

    def _generate_shows(self, section: Section) -> None:
        cfg = self.config
        rng = self._rng
        taken: set[str] = set()
        roots = section.locations
        for n in range(cfg.shows):
            if n < len(names.SPECIAL_SHOWS):
                title, year = names.SPECIAL_SHOWS[n]
                taken.add(title)
            else:
                title, year = self._title(taken), rng.randint(1970, 2025)
            make_guid = self._show_guids(_SHOW_GUID_FORMS[n % len(_SHOW_GUID_FORMS)])
            show_id = self._new_id()
            show_guid, show_ext = make_guid(None, None, show_id)
            added, updated = self._dates()
            folder = join_path(roots[n % len(roots)], safe_filename(f"{title} ({year})"))
            episode_minutes = rng.choice((22, 30, 45, 55))
            resolution = _RES_CHOICES[rng.randrange(len(_RES_CHOICES))]
            show = Item(
                id=show_id,
                type="show",
                section_id=section.id,
                title=title,
                year=year,
                index=1,
                added_at=added,
                updated_at=updated,
                guid=show_guid,
                ext_guids=show_ext,
                duration=episode_minutes * 60_000,
                originally_available_at=f"{year}-09-{rng.randint(1, 28):02d}",
                summary=_SUMMARIES[n % len(_SUMMARIES)].format(title=title),
                studio=names.NETWORKS[rng.randrange(len(names.NETWORKS))],
                content_rating=names.CONTENT_RATINGS_TV[
                    rng.randrange(len(names.CONTENT_RATINGS_TV))
                ],
                rating=round(rng.uniform(5.0, 9.5), 1),
                audience_rating=round(rng.uniform(5.0, 9.5), 1),
                genres=self._pick_tags(names.GENRES_VIDEO, 1, 2),
                roles=self._people(4),
                location=folder,
            )
            self._index(show, sorted_insert=False)
            for s in range(1, cfg.seasons_per_show + 1):
                season_id = self._new_id()
                season_guid, season_ext = make_guid(s, None, season_id)
                season = Item(
                    id=season_id,
                    type="season",
                    section_id=section.id,
                    title=f"Season {s}",
                    index=s,
                    parent=show,
                    year=year + s - 1,
                    added_at=added,
                    updated_at=updated,
                    guid=season_guid,
                    ext_guids=season_ext,
                    summary="",
                )
                self._index(season, sorted_insert=False)
                for e in range(1, cfg.episodes_per_season + 1):
                    ep_id = self._new_id()
                    ep_guid, ep_ext = make_guid(s, e, ep_id)
                    ep_added = added + (s - 1) * 365 * 86400 // 2 + e * 7 * 86400
                    ep_added = min(ep_added, cfg.base_time - 60)
                    ep_title = (
                        "Pilot"
                        if s == 1 and e == 1
                        else f"{names.ADJECTIVES[rng.randrange(len(names.ADJECTIVES))]} "
                        f"{names.NOUNS[rng.randrange(len(names.NOUNS))]}"
                    )
                    duration = episode_minutes * 60_000 + rng.randint(-90_000, 90_000)
                    file = join_path(
                        folder,
                        f"Season {s:02d}",
                        safe_filename(f"{title} - S{s:02d}E{e:02d} - {ep_title}")
                        + f".{_CONTAINERS[e % 2]}",
                    )
                    episode = Item(
                        id=ep_id,
                        type="episode",
                        section_id=section.id,
                        title=ep_title,
                        index=e,
                        parent=season,
                        year=year + s - 1,
                        added_at=ep_added,
                        updated_at=min(ep_added + rng.randint(0, 86400 * 30), cfg.base_time),
                        guid=ep_guid,
                        ext_guids=ep_ext,
                        duration=duration,
                        originally_available_at=(
                            f"{year + s - 1}-{1 + (e * 12 // (cfg.episodes_per_season + 1)):02d}"
                            f"-{rng.randint(1, 28):02d}"
                        ),
                        summary=f"{title}, season {s}, episode {e}.",
                        content_rating=show.content_rating,
                        rating=round(rng.uniform(5.0, 9.5), 1),
                        audience_rating=round(rng.uniform(5.0, 9.5), 1),
                        directors=self._people(1),
                        writers=self._people(1),
                    )
                    episode.media = self._video_media(duration, file, resolution=resolution)
                    self._watch_state(episode)
                    self._index(episode, sorted_insert=False)

    def _music_guids(self, form: str, kind: str, item_id: int) -> str:
        rng = self._rng
        if form == "plex":
            return f"plex://{kind}/{self._hex24()}"
        if form == "gracenote":
            hex16 = f"{rng.getrandbits(64):016X}"
            hex32 = f"{rng.getrandbits(128):032X}"
            num = rng.randint(1_000_000, 999_999_999)
            suffix = {
                "artist": hex16,
                "album": f"{hex16}/{num}-{hex32}",
                "track": f"{num}-{hex32}/{num + 1}-{hex32[::-1]}",
            }[kind]
            return f"com.plexapp.agents.plexmusic://gracenote/{kind}/{suffix}?lang=en"
        return f"local://{item_id}"

    def _generate_music(self, section: Section) -> None:
        cfg = self.config
        rng = self._rng
        taken: set[str] = set()
        roots = section.locations
        for n in range(cfg.artists):
            if n < len(names.SPECIAL_ARTISTS):
                artist_name = names.SPECIAL_ARTISTS[n]
            elif n % 2:
                artist_name = f"{self._people(1)[0]}"
            else:
                adjective = names.ADJECTIVES[rng.randrange(len(names.ADJECTIVES))]
                noun = names.NOUNS[rng.randrange(len(names.NOUNS))]
                artist_name = f"The {adjective} {noun}s"
            if artist_name in taken:
                artist_name = f"{artist_name} {n}"
            taken.add(artist_name)
            form = _MUSIC_GUID_FORMS[n % len(_MUSIC_GUID_FORMS)]
            artist_id = self._new_id()
            added, updated = self._dates()
            folder = join_path(roots[n % len(roots)], safe_filename(artist_name))
            artist = Item(
                id=artist_id,
                type="artist",
                section_id=section.id,
                title=artist_name,
                index=1,
                added_at=added,
                updated_at=updated,
                guid=self._music_guids(form, "artist", artist_id),
                summary=f"{artist_name} make records.",
                genres=self._pick_tags(names.GENRES_MUSIC, 1, 2),
                countries=self._pick_tags(names.COUNTRIES, 1, 1),
                location=folder,
            )
            self._index(artist, sorted_insert=False)
            for a in range(1, cfg.albums_per_artist + 1):
                album_id = self._new_id()
                year = rng.randint(1965, 2025)
                album_title = (
                    f"{names.ADJECTIVES[rng.randrange(len(names.ADJECTIVES))]} "
                    f"{names.NOUNS[rng.randrange(len(names.NOUNS))]}"
                )
                album = Item(
                    id=album_id,
                    type="album",
                    section_id=section.id,
                    title=album_title,
                    index=a,
                    parent=artist,
                    year=year,
                    added_at=added,
                    updated_at=updated,
                    guid=self._music_guids(form, "album", album_id),
                    originally_available_at=f"{year}-{rng.randint(1, 12):02d}-01",
                    studio=names.LABELS[rng.randrange(len(names.LABELS))],
                    genres=artist.genres,
                )
                self._index(album, sorted_insert=False)
                container, codec, lo, hi = _AUDIO_FORMATS[(n + a) % len(_AUDIO_FORMATS)]
                for t in range(1, cfg.tracks_per_album + 1):
                    track_id = self._new_id()
                    track_title = (
                        f"{names.ADJECTIVES[rng.randrange(len(names.ADJECTIVES))]} "
                        f"{names.NOUNS[rng.randrange(len(names.NOUNS))]}"
                    )
                    duration = rng.randint(120_000, 420_000)
                    bitrate = rng.randint(lo, hi)
                    media_id, part_id = self._new_media_ids()
                    file = join_path(
                        folder,
                        safe_filename(f"{album_title} ({year})"),
                        f"{t:02d} - {safe_filename(track_title)}.{container}",
                    )
                    track = Item(
                        id=track_id,
                        type="track",
                        section_id=section.id,
                        title=track_title,
                        index=t,
                        parent=album,
                        year=year,
                        added_at=added,
                        updated_at=updated,
                        guid=self._music_guids(form, "track", track_id),
                        duration=duration,
                        media=MediaInfo(
                            id=media_id,
                            part_id=part_id,
                            container=container,
                            duration=duration,
                            bitrate=bitrate,
                            file=file,
                            size=bitrate * 125 * (duration // 1000),
                            audio_codec=codec,
                            audio_channels=2,
                        ),
                    )
                    self._watch_state(track)
                    track.view_offset = 0
                    self._index(track, sorted_insert=False)

    def _generate_playlists(self) -> None:
        movies = self.movies()
        episodes = self.episodes()
        tracks = self.tracks()
        base = self.config.base_time
        specs: list[tuple[str, list[Item], Literal["video", "audio"]]] = []
        if movies:
            specs.append(("Movie Night", movies[: min(5, len(movies))], "video"))
        if episodes:
            specs.append(("Binge List", episodes[: min(6, len(episodes))], "video"))
        if tracks:
            specs.append(("Road Trip", tracks[:: max(1, len(tracks) // 12)][:12], "audio"))
        for n, (title, chosen, kind) in enumerate(specs):
            playlist = Playlist(
                id=self._new_id(),
                title=title,
                playlist_type=kind,
                items=[it.id for it in chosen],
                guid=f"com.plexapp.agents.none://{uuid_mod.UUID(int=self._rng.getrandbits(128))}",
                added_at=base - (n + 10) * 86400,
                updated_at=base - n * 86400,
                summary="",
                view_count=n + 1,
                last_viewed_at=base - n * 3600,
            )
            self.playlists[playlist.rating_key] = playlist

    def _generate_collections(self) -> None:
        base = self.config.base_time
        groups: dict[str, list[Item]] = {}
        for movie in self.movies():
            groups.setdefault(movie.title, []).append(movie)
        chosen = [
            (f"{title} Collection", items) for title, items in groups.items() if len(items) > 1
        ]
        movies = self.movies()
        if len(movies) >= 6:
            chosen.append(("Staff Picks", movies[1 :: max(1, len(movies) // 6)][:6]))
        shows = self.shows()
        if len(shows) >= 2:
            chosen.append(("Comfort TV", shows[:3]))
        for n, (title, items) in enumerate(chosen):
            collection = Collection(
                id=self._new_id(),
                section_id=items[0].section_id,
                title=title,
                subtype=items[0].type,
                items=[it.id for it in sorted(items, key=lambda it: (it.year or 0, it.id))],
                guid=f"collection://{uuid_mod.UUID(int=self._rng.getrandbits(128), version=4)}",
                added_at=base - (n + 30) * 86400,
                updated_at=base - (n + 1) * 86400,
                content_rating=items[0].content_rating,
            )
            self.collections[collection.rating_key] = collection


_AGENTS: Final[dict[str, tuple[str, str]]] = {
    "movie": ("tv.plex.agents.movie", "Plex Movie"),
    "show": ("tv.plex.agents.series", "Plex TV Series"),
    "artist": ("tv.plex.agents.music", "Plex Music"),
}
_RESOLUTIONS: Final[dict[str, tuple[int, int, int, int]]] = {
    "sd": (720, 480, 1_200, 3_000),
    "720": (1280, 720, 3_000, 6_000),
    "1080": (1920, 1080, 6_000, 15_000),
    "4k": (3840, 2160, 20_000, 60_000),
}
_RES_CHOICES: Final = ("1080", "1080", "1080", "720", "4k", "sd", "1080", "720")
_CONTAINERS: Final = ("mkv", "mp4", "mkv")
_AUDIO: Final = (("aac", 2), ("ac3", 6), ("eac3", 6), ("dca", 6), ("truehd", 8), ("aac", 2))
_AUDIO_FORMATS: Final = (
    ("flac", "flac", 700, 1_100),
    ("mp3", "mp3", 192, 320),
    ("m4a", "aac", 128, 256),
)
_MOVIE_GUID_FORMS: Final = (
    "plex",
    "imdb",
    "plex",
    "tmdb",
    "plex2",
    "local",
    "plex",
    "imdb",
    "none",
    "plex",
)
_SHOW_GUID_FORMS: Final = ("plex", "thetvdb", "plex", "hama", "themoviedb", "local", "hama-tvdb")
_MUSIC_GUID_FORMS: Final = ("plex", "gracenote", "plex", "local")
_SUMMARIES: Final = (
    "{title} follows an unlikely crew through one long night.",
    "In {title}, nothing is what it seems.",
    "A story of friendship, betrayal & second chances.",
    '{title}: the definitive edition, with "extra" <scenes>.',
)
