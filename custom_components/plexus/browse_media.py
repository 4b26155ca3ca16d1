"""Browsing a Plex server: the tree, its media ids, thumbnails (thin glue over PlexLibrary).

Media ids
---------
Every node of the tree has a *path* ``<server_id>/<kind>[/<key>][?page=N]``, used in two forms:

- media player content id: ``plexus://<path>`` (what `async_browse_media` hands out);
- media-source id: ``media-source://plexus/<path>`` (what `media_source.py` hands out).

``<server_id>`` is the server's machine identifier. Kinds:

==================  ==========================================================  ===========
path                node                                                        playable
==================  ==========================================================  ===========
``<sid>``           the server: On Deck, Recently Added, libraries, Playlists   no
``<sid>/library/K`` library section K (movies, shows or artists), paged        no
``<sid>/item/R``    the item with rating key R; containers list children       yes
``<sid>/playlist/P`` playlist P and its items, paged                           yes
``<sid>/on_deck``   On Deck                                                     no
``<sid>/recently_added``  Recently Added                                        no
``<sid>/playlists`` all playlists                                               no
==================  ==========================================================  ===========

``page`` is 1-based; a page holds `PAGE_SIZE` children and, when more follow, a last child
"Next page" whose id is the same path with ``?page=N+1``. `resolve_media_id` turns the ids of
playable nodes into a `MediaItem`; anything else of ours raises `BrowseError` with a
translation key, ids that are not ours give None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
import re
from typing import Final

from homeassistant.components.media_player.browse_media import BrowseMedia
from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN
from .coordinator import PlexusCoordinator
from .plex import PlexError
from .plex.browse_reads import (
    is_image_path,
    is_not_found,
    playlist as read_playlist,
    thumbnail,
)
from .plex.library import MediaItem
from .runtime import PlexusConfigEntry

PAGE_SIZE: Final = 200
SCHEME: Final = "plexus://"
MEDIA_SOURCE_PREFIX: Final = f"media-source://{DOMAIN}"
THUMB_VIEW_PATH: Final = f"/api/{DOMAIN}/thumb"

KIND_SERVER: Final = ""
KIND_LIBRARY: Final = "library"
KIND_ITEM: Final = "item"
KIND_PLAYLIST: Final = "playlist"
KIND_ON_DECK: Final = "on_deck"
KIND_RECENTLY_ADDED: Final = "recently_added"
KIND_PLAYLISTS: Final = "playlists"
_KEYED_KINDS: Final = frozenset({KIND_LIBRARY, KIND_ITEM, KIND_PLAYLIST})
_FOLDER_KINDS: Final = frozenset({KIND_ON_DECK, KIND_RECENTLY_ADDED, KIND_PLAYLISTS})
_PATH: Final = re.compile(
    r"^(?P<server>[\w.-]+)(?:/(?P<kind>[a-z_]+)(?:/(?P<key>\d+))?)?/?(?:\?page=(?P<page>[1-9]\d{0,6}))?$"
)

# Plex type -> media class, media content type, class of its children.
ITEM_CLASSES: Final[dict[str, tuple[MediaClass, MediaType, MediaClass | None]]] = {
    "movie": (MediaClass.MOVIE, MediaType.MOVIE, None),
    "show": (MediaClass.TV_SHOW, MediaType.TVSHOW, MediaClass.SEASON),
    "season": (MediaClass.SEASON, MediaType.SEASON, MediaClass.EPISODE),
    "episode": (MediaClass.EPISODE, MediaType.EPISODE, None),
    "artist": (MediaClass.ARTIST, MediaType.ARTIST, MediaClass.ALBUM),
    "album": (MediaClass.ALBUM, MediaType.ALBUM, MediaClass.TRACK),
    "track": (MediaClass.TRACK, MediaType.TRACK, None),
    "clip": (MediaClass.VIDEO, MediaType.VIDEO, None),
    "playlist": (MediaClass.PLAYLIST, MediaType.PLAYLIST, MediaClass.DIRECTORY),
}
PLAYLIST_CHILDREN: Final[dict[str, MediaClass]] = {
    "audio": MediaClass.TRACK,
    "video": MediaClass.VIDEO,
}
SECTION_CHILDREN: Final[dict[str, MediaClass]] = {
    "movie": MediaClass.MOVIE,
    "show": MediaClass.TV_SHOW,
    "artist": MediaClass.ARTIST,
}
# On Deck and Recently Added hold movies, episodes, shows and albums: a poster grid with a film
# icon for both (the frontend shows a folder's children class as its icon).
FOLDER_CHILDREN: Final = MediaClass.MOVIE
# Folder titles; the user's language comes from `common` in translations/<lang>.json.
DEFAULT_TITLES: Final[dict[str, str]] = {
    "on_deck": "On Deck",
    "recently_added": "Recently Added",
    "playlists": "Playlists",
    "next_page": "Next page ({first}-{last} of {total})",
}


@dataclass(frozen=True, slots=True)
class BrowsePath:
    """A parsed node path (see the module docstring)."""

    server_id: str
    kind: str = KIND_SERVER
    key: str = ""
    page: int = 1

    def __str__(self) -> str:
        """Return the path in its text form."""
        text = self.server_id
        if self.kind:
            text += f"/{self.kind}"
        if self.key:
            text += f"/{self.key}"
        if self.page > 1:
            text += f"?page={self.page}"
        return text

    def with_page(self, page: int) -> BrowsePath:
        """Return the same node at another page."""
        return BrowsePath(self.server_id, self.kind, self.key, page)


@dataclass(frozen=True, slots=True)
class Node:
    """What a tree node shows; `make` turns it into a BrowseMedia of the caller's kind."""

    path: BrowsePath
    title: str
    media_class: MediaClass
    media_content_type: str
    can_play: bool
    can_expand: bool
    children_media_class: MediaClass | None = None
    thumbnail: str | None = None


# (node, children or None for a child entry) -> BrowseMedia (or a subclass).
type NodeFactory[T: BrowseMedia] = Callable[[Node, list[T] | None], T]
# (media content type, node path, server image path) -> thumbnail URL for the browser.
type ThumbUrl = Callable[[str, BrowsePath, str], str | None]
# HA's MediaPlayerEntity.get_browse_image_url.
type BrowseImageUrl = Callable[[str, str, str | None], str]


def invalid_id(media_id: str) -> BrowseError:
    """Return the error for an id of ours that does not name a node."""
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="invalid_media_id",
        translation_placeholders={"media_id": media_id},
    )


def parse_path(path: str, media_id: str | None = None) -> BrowsePath:
    """Parse a node path; raise BrowseError for anything malformed."""
    match = _PATH.match(path)
    if match is None:
        raise invalid_id(media_id or path)
    kind = match["kind"] or KIND_SERVER
    key = match["key"] or ""
    keyed = kind in _KEYED_KINDS
    if (keyed and not key) or (not keyed and (key or kind not in _FOLDER_KINDS | {KIND_SERVER})):
        raise invalid_id(media_id or path)
    return BrowsePath(match["server"], kind, key, int(match["page"] or 1))


def split_media_id(media_id: str) -> str | None:
    """Return the path inside one of our ids, "" for the media-source root, None if not ours."""
    if media_id.startswith(SCHEME):
        return media_id.removeprefix(SCHEME)
    if media_id == MEDIA_SOURCE_PREFIX:
        return ""
    if media_id.startswith(f"{MEDIA_SOURCE_PREFIX}/"):
        return media_id.removeprefix(f"{MEDIA_SOURCE_PREFIX}/")
    return None


def media_id(path: BrowsePath) -> str:
    """Return the media player content id of a node."""
    return f"{SCHEME}{path}"


@callback
def coordinator_for(hass: HomeAssistant, server_id: str) -> PlexusCoordinator:
    """Return the coordinator of the loaded entry for a server; BrowseError when there is none."""
    entries: list[PlexusConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
        if entry.runtime_data.coordinator.server_identifier == server_id:
            return entry.runtime_data.coordinator
    raise BrowseError(
        translation_domain=DOMAIN,
        translation_key="server_not_loaded",
        translation_placeholders={"server_id": server_id},
    )


def _check_server(coordinator: PlexusCoordinator, path: BrowsePath) -> None:
    if path.server_id != coordinator.server_identifier:
        raise BrowseError(
            translation_domain=DOMAIN,
            translation_key="server_not_loaded",
            translation_placeholders={"server_id": path.server_id},
        )


def _browse_failed(coordinator: PlexusCoordinator, err: PlexError) -> BrowseError:
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="browse_failed",
        translation_placeholders={"server": coordinator.config_entry.title, "error": str(err)},
    )


def _not_found(path: BrowsePath) -> BrowseError:
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="media_not_found",
        translation_placeholders={"media_id": media_id(path)},
    )


async def browse_titles(hass: HomeAssistant) -> dict[str, str]:
    """Return the folder titles in the user's language (English defaults)."""
    strings = await async_get_translations(hass, hass.config.language, "common", [DOMAIN])
    prefix = f"component.{DOMAIN}.common."
    return {key: strings.get(prefix + key, default) for key, default in DEFAULT_TITLES.items()}


def item_title(item: MediaItem, *, in_parent: bool) -> str:
    """Title of an item; inside its parent short, elsewhere with the show/artist it belongs to."""
    if item.type in ("episode", "track"):
        number = f"{item.index}. " if item.index is not None else ""
        if in_parent:
            return f"{number}{item.title}"
        if item.type == "episode" and item.parent_index is not None and item.index is not None:
            return (
                f"{item.grandparent_title} · "
                f"S{item.parent_index:02d}E{item.index:02d} · {item.title}"
            )
        return f"{item.grandparent_title} - {item.title}" if item.grandparent_title else item.title
    if item.type in ("season", "album") and not in_parent and item.parent_title:
        return f"{item.parent_title} - {item.title}"
    if item.type == "movie" and item.year:
        return f"{item.title} ({item.year})"
    return item.title


class _Tree[T: BrowseMedia]:
    """Builds the nodes of one server for one kind of caller (media player or media source)."""

    def __init__(
        self,
        coordinator: PlexusCoordinator,
        make: NodeFactory[T],
        thumb_url: ThumbUrl,
        titles: dict[str, str],
        *,
        containers_playable: bool,
    ) -> None:
        self.coordinator = coordinator
        self.server_id = coordinator.server_identifier
        self.library = coordinator.library
        self.make = make
        self.thumb_url = thumb_url
        self.titles = titles
        self.containers_playable = containers_playable

    def _path(self, kind: str, key: str = "") -> BrowsePath:
        return BrowsePath(self.server_id, kind, key)

    def _folder(self, kind: str, title: str, children_class: MediaClass) -> Node:
        return Node(
            path=self._path(kind),
            title=title,
            media_class=MediaClass.DIRECTORY,
            media_content_type=kind,
            can_play=False,
            can_expand=True,
            children_media_class=children_class,
        )

    def item_node(self, item: MediaItem, *, in_parent: bool = False) -> Node | None:
        """Return the node of an item, None for types the browser does not show."""
        if item.type not in ITEM_CLASSES:
            return None
        media_class, content_type, children_class = ITEM_CLASSES[item.type]
        if item.type == "playlist":
            path = self._path(KIND_PLAYLIST, item.rating_key)
            children_class = PLAYLIST_CHILDREN.get(item.playlist_type, MediaClass.DIRECTORY)
        else:
            path = self._path(KIND_ITEM, item.rating_key)
        expandable = item.is_container
        thumb = (
            self.thumb_url(content_type, path, item.thumb) if is_image_path(item.thumb) else None
        )
        return Node(
            path=path,
            title=item_title(item, in_parent=in_parent),
            media_class=media_class,
            media_content_type=content_type,
            can_play=self.containers_playable or not expandable,
            can_expand=expandable,
            children_media_class=children_class,
            thumbnail=thumb,
        )

    def _children(self, items: Sequence[MediaItem], *, in_parent: bool) -> list[T]:
        return [
            self.make(node, None)
            for item in items
            if (node := self.item_node(item, in_parent=in_parent)) is not None
        ]

    def _page(
        self, node: Node, items: Sequence[MediaItem], total: int, *, in_parent: bool = True
    ) -> T:
        """Node with one page of children (`items` is that page) and a next-page entry."""
        page = node.path.page
        first = (page - 1) * PAGE_SIZE
        children = self._children(items, in_parent=in_parent)
        if first + len(items) < total:
            following = min(total, first + len(items) + PAGE_SIZE)
            next_node = Node(
                path=node.path.with_page(page + 1),
                title=self.titles["next_page"].format(
                    first=first + len(items) + 1, last=following, total=total
                ),
                media_class=MediaClass.DIRECTORY,
                media_content_type=node.media_content_type,
                can_play=False,
                can_expand=True,
                children_media_class=node.children_media_class,
            )
            children.append(self.make(next_node, None))
        return self.make(node, children)

    def _sliced(self, node: Node, items: Sequence[MediaItem]) -> T:
        """Page through a list the server returned whole."""
        first = (node.path.page - 1) * PAGE_SIZE
        return self._page(node, items[first : first + PAGE_SIZE], len(items))

    def root_node(self) -> Node:
        """Return the server node."""
        return Node(
            path=self._path(KIND_SERVER),
            title=self.coordinator.data.info.friendly_name,
            media_class=MediaClass.DIRECTORY,
            media_content_type="server",
            can_play=False,
            can_expand=True,
            children_media_class=MediaClass.DIRECTORY,
            thumbnail=f"/api/brands/integration/{DOMAIN}/logo.png",
        )

    def _section_node(self, key: str) -> Node | None:
        for section in self.coordinator.data.sections:
            if section.key == key and section.type in SECTION_CHILDREN:
                return Node(
                    path=self._path(KIND_LIBRARY, key),
                    title=section.title,
                    media_class=MediaClass.DIRECTORY,
                    media_content_type=KIND_LIBRARY,
                    can_play=False,
                    can_expand=True,
                    children_media_class=SECTION_CHILDREN[section.type],
                )
        return None

    async def build(self, path: BrowsePath) -> T:
        """Return the node at path with its children."""
        try:
            return await self._build(path)
        except PlexError as err:
            if is_not_found(err):
                raise _not_found(path) from err
            raise _browse_failed(self.coordinator, err) from err

    async def _listing[R](self, node: Node, read: Awaitable[R]) -> R:
        """Read a node's children: a failure says the listing failed, not that it is gone."""
        try:
            return await read
        except PlexError as err:
            raise BrowseError(
                translation_domain=DOMAIN,
                translation_key="listing_failed",
                translation_placeholders={
                    "title": node.title,
                    "server": self.coordinator.config_entry.title,
                    "error": str(err),
                },
            ) from err

    async def _build(self, path: BrowsePath) -> T:
        titles = self.titles
        if path.kind == KIND_SERVER:
            folders = [
                self._folder(KIND_ON_DECK, titles["on_deck"], FOLDER_CHILDREN),
                self._folder(KIND_RECENTLY_ADDED, titles["recently_added"], FOLDER_CHILDREN),
            ]
            folders += [
                node
                for section in self.coordinator.data.sections
                if (node := self._section_node(section.key)) is not None
            ]
            folders.append(self._folder(KIND_PLAYLISTS, titles["playlists"], MediaClass.PLAYLIST))
            return self.make(self.root_node(), [self.make(f, None) for f in folders])
        if path.kind == KIND_LIBRARY:
            if (section := self._section_node(path.key)) is None:
                raise _not_found(path)
            start = (path.page - 1) * PAGE_SIZE
            items, total = await self._listing(
                section, self.library.section_items(path.key, start=start, size=PAGE_SIZE)
            )
            return self._page(_at(section, path), items, total)
        if path.kind == KIND_ON_DECK:
            node = self._folder(KIND_ON_DECK, titles["on_deck"], FOLDER_CHILDREN)
            items = await self._listing(node, self.library.on_deck())
            return self.make(node, self._children(items, in_parent=False))
        if path.kind == KIND_RECENTLY_ADDED:
            node = self._folder(KIND_RECENTLY_ADDED, titles["recently_added"], FOLDER_CHILDREN)
            items = await self._listing(node, self.library.recently_added())
            return self.make(node, self._children(items, in_parent=False))
        if path.kind == KIND_PLAYLISTS:
            node = self._folder(KIND_PLAYLISTS, titles["playlists"], MediaClass.PLAYLIST)
            items = await self._listing(node, self.library.playlists())
            return self.make(node, self._children(items, in_parent=False))
        if path.kind == KIND_PLAYLIST:
            playlist = await read_playlist(self.coordinator.api, path.key)
            if playlist is None or (node := self.item_node(playlist)) is None:
                raise _not_found(path)
            items = await self._listing(node, self.library.playlist_items(path.key))
            return self._sliced(_at(node, path), [i for i in items if i.type in ITEM_CLASSES])
        # KIND_ITEM
        item = await self.library.metadata(path.key)
        if item is None or (node := self.item_node(item)) is None:
            raise _not_found(path)
        if not node.can_expand:
            return self.make(node, None)
        if item.type == "playlist":  # a playlist's rating key used as an item id
            return await self._build(BrowsePath(path.server_id, KIND_PLAYLIST, path.key, path.page))
        children = await self._listing(node, self.library.children(path.key))
        return self._sliced(_at(node, path), children)


def _at(node: Node, path: BrowsePath) -> Node:
    """The node at the requested page."""
    return Node(
        path=path,
        title=node.title,
        media_class=node.media_class,
        media_content_type=node.media_content_type,
        can_play=node.can_play,
        can_expand=node.can_expand,
        children_media_class=node.children_media_class,
        thumbnail=node.thumbnail,
    )


async def build_tree[T: BrowseMedia](
    hass: HomeAssistant,
    coordinator: PlexusCoordinator,
    path: BrowsePath,
    make: NodeFactory[T],
    thumb_url: ThumbUrl,
    *,
    containers_playable: bool,
) -> T:
    """Return the node at path (for media_source.py and the player)."""
    _check_server(coordinator, path)
    tree = _Tree(
        coordinator,
        make,
        thumb_url,
        await browse_titles(hass),
        containers_playable=containers_playable,
    )
    return await tree.build(path)


def _player_node(node: Node, children: list[BrowseMedia] | None) -> BrowseMedia:
    return BrowseMedia(
        media_class=node.media_class,
        media_content_id=media_id(node.path),
        media_content_type=node.media_content_type,
        title=node.title,
        can_play=node.can_play,
        can_expand=node.can_expand,
        children=children,
        children_media_class=node.children_media_class,
        thumbnail=node.thumbnail,
    )


async def async_browse_media(
    hass: HomeAssistant,
    coordinator: PlexusCoordinator,
    media_content_type: str | None,
    media_content_id: str | None,
    get_browse_image_url: BrowseImageUrl,
) -> BrowseMedia:
    """Browse the server of a Plex client entity (no id: the server's root)."""
    if not media_content_id:
        path = BrowsePath(coordinator.server_identifier)
    elif (inner := split_media_id(media_content_id)) is None:
        raise invalid_id(media_content_id)
    else:
        path = (
            parse_path(inner, media_content_id)
            if inner
            else BrowsePath(coordinator.server_identifier)
        )

    def thumb_url(content_type: str, node: BrowsePath, image_path: str) -> str:
        return get_browse_image_url(content_type, media_id(node), image_path)

    return await build_tree(
        hass, coordinator, path, _player_node, thumb_url, containers_playable=True
    )


async def async_get_browse_image(
    hass: HomeAssistant,
    coordinator: PlexusCoordinator,
    media_content_id: str,
    media_image_id: str | None = None,
) -> tuple[bytes | None, str | None]:
    """Return a browser thumbnail (bytes, content type), or (None, None) when there is none."""
    image_path = media_image_id if media_image_id and is_image_path(media_image_id) else None
    try:
        if image_path is None:
            item = await resolve_media_id(hass, coordinator, media_content_id)
            if item is None or not is_image_path(item.thumb):
                return None, None
            image_path = item.thumb
        image = await thumbnail(coordinator.api, image_path)
    except BrowseError, PlexError:
        return None, None
    return image if image is not None else (None, None)


async def resolve_media_id(
    hass: HomeAssistant, coordinator: PlexusCoordinator, media_content_id: str
) -> MediaItem | None:
    """Return the item a browser id names; None for ids that are not ours.

    Raises BrowseError for ids of ours that are malformed, name a folder rather than something
    to play, belong to another server or name an item the server does not have.
    """
    if (inner := split_media_id(media_content_id)) is None:
        return None
    path = parse_path(inner, media_content_id)
    _check_server(coordinator, path)
    if path.kind not in (KIND_ITEM, KIND_PLAYLIST):
        raise BrowseError(
            translation_domain=DOMAIN,
            translation_key="not_playable",
            translation_placeholders={"media_id": media_content_id},
        )
    try:
        if path.kind == KIND_PLAYLIST:
            item = await read_playlist(coordinator.api, path.key)
        else:
            item = await coordinator.library.metadata(path.key)
    except PlexError as err:
        if is_not_found(err):
            raise _not_found(path) from err
        raise _browse_failed(coordinator, err) from err
    if item is None:
        raise _not_found(path)
    return item
