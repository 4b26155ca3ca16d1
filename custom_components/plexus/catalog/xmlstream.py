"""Streaming parsers for Plex library XML: items come out one by one, memory stays flat.

Feed response chunks to :class:`ItemStreamParser` and collect finished items after each chunk;
each finished element is cleared at once, so a page of any size never builds a tree. A document
whose root is not a ``MediaContainer`` is refused with ``ParseError``, like malformed XML: an
answer that is not a library listing must never read as an empty one.
"""

from collections.abc import Iterator
from typing import Final, cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser, fromstring

from .guids import parse_item_guids
from .models import ItemRecord, LibraryRecord, MediaFileRecord

CONTAINER: Final = "MediaContainer"
ITEM_TAGS: Final = frozenset({"Video", "Directory", "Track", "Photo"})
ITEM_TYPES: Final = frozenset({"movie", "show", "season", "episode", "artist", "album", "track"})

__all__ = ["ItemStreamParser", "KeyStreamParser", "ParseError", "parse_sections"]


def _check_root(elem: Element) -> None:
    """Refuse a document that is not a ``MediaContainer`` (a proxy's login page, ``<html/>``)."""
    if elem.tag != CONTAINER:
        raise ParseError(f"expected <{CONTAINER}>, got <{elem.tag[:40]}>")


def _events(parser: XMLPullParser) -> Iterator[tuple[str, Element]]:
    return cast("Iterator[tuple[str, Element]]", parser.read_events())


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value)) if "." in value else int(value)
    except ValueError:
        return None


def _record(attrs: dict[str, str]) -> ItemRecord:
    item_type = attrs.get("type", "")
    index = _int(attrs.get("index"))
    parent_index = _int(attrs.get("parentIndex"))
    if item_type == "season":
        season, episode = index, None
    elif item_type in ("episode", "track"):
        season, episode = parent_index, index
    else:
        season = episode = None
    return ItemRecord(
        rating_key=attrs.get("ratingKey", ""),
        type=item_type,
        title=attrs.get("title", ""),
        sort_title=attrs.get("titleSort"),
        original_title=attrs.get("originalTitle"),
        year=_int(attrs.get("year")),
        parent_rating_key=attrs.get("parentRatingKey"),
        grandparent_rating_key=attrs.get("grandparentRatingKey"),
        parent_title=attrs.get("parentTitle"),
        grandparent_title=attrs.get("grandparentTitle"),
        season_number=season,
        episode_number=episode,
        duration=_int(attrs.get("duration")),
        added_at=_int(attrs.get("addedAt")),
        updated_at=_int(attrs.get("updatedAt")),
        guid=attrs.get("guid"),
    )


class ItemStreamParser:
    """Incremental parser of a ``MediaContainer`` listing items (``/library/sections/X/all``).

    ``Part`` elements attach to the item they appear in, whether nested in ``Media`` (as PMS
    sends them) or flattened beside it (as in some recorded fixtures); each takes the codec and
    resolution of the ``Media`` element before it.
    """

    def __init__(self) -> None:
        """Start a fresh document."""
        self._parser = XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._item: ItemRecord | None = None
        self._item_depth = 0
        self._guid_children: list[str] = []
        self._media: dict[str, str] = {}
        self._root: Element | None = None
        self.container: dict[str, str] = {}
        # Items yielded, and item elements listed (including skipped ones such as collections).
        self.count = 0
        self.listed = 0

    @property
    def total_size(self) -> int | None:
        """Return the container's ``totalSize`` (all matching items), when the server sent it."""
        return _int(self.container.get("totalSize"))

    def feed(self, data: bytes) -> list[ItemRecord]:
        """Feed bytes; return the items completed by them."""
        self._parser.feed(data)
        return list(self._events())

    def close(self) -> list[ItemRecord]:
        """End the document; return any last items (raises ParseError on malformed XML)."""
        self._parser.close()
        return list(self._events())

    def _events(self) -> Iterator[ItemRecord]:
        for event, elem in _events(self._parser):
            if event == "start":
                self._depth += 1
                self._start(elem)
                continue
            self._depth -= 1
            if self._item is not None and self._depth + 1 == self._item_depth:
                item = self._finish()
                if self._root is not None:
                    self._root.clear()
                if item is not None:
                    yield item
            elif self._depth >= 1 and self._item is None:
                # Anything outside an item: drop it as soon as it is complete.
                elem.clear()

    def _start(self, elem: Element) -> None:
        if self._depth == 1:
            _check_root(elem)
            self._root = elem
            self.container = dict(elem.attrib)
            return
        if self._item is None:
            if self._depth == 2 and elem.tag in ITEM_TAGS:
                self.listed += 1
                self._item = _record(dict(elem.attrib))
                self._item_depth = self._depth
                self._guid_children = []
                self._media = {}
            return
        tag = elem.tag
        if tag == "Guid":
            guid_id = elem.get("id")
            if guid_id:
                self._guid_children.append(guid_id)
        elif tag == "Media":
            self._media = dict(elem.attrib)
        elif tag == "Part":
            path = elem.get("file")
            if path:
                media = self._media
                self._item.media.append(
                    MediaFileRecord(
                        plex_path=path,
                        part_id=elem.get("id"),
                        size=_int(elem.get("size")),
                        container=elem.get("container") or media.get("container"),
                        video_codec=media.get("videoCodec"),
                        audio_codec=media.get("audioCodec"),
                        video_resolution=media.get("videoResolution"),
                        width=_int(media.get("width")),
                        height=_int(media.get("height")),
                        bitrate=_int(media.get("bitrate")),
                        duration=_int(elem.get("duration") or media.get("duration")),
                    )
                )

    def _finish(self) -> ItemRecord | None:
        item = self._item
        self._item = None
        if item is None or not item.rating_key or item.type not in ITEM_TYPES:
            return None
        item.guids, item.unknown_guids = parse_item_guids(item.guid, self._guid_children)
        self.count += 1
        return item


class KeyStreamParser:
    """Incremental parser that only collects the ``ratingKey`` of each listed item."""

    def __init__(self) -> None:
        """Start a fresh document."""
        self._parser = XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root: Element | None = None
        self.container: dict[str, str] = {}
        self.keys: list[str] = []
        self.count = 0

    def feed(self, data: bytes) -> None:
        """Feed bytes."""
        self._parser.feed(data)
        self._drain()

    def close(self) -> None:
        """End the document (raises ParseError on malformed XML)."""
        self._parser.close()
        self._drain()

    def _drain(self) -> None:
        for event, elem in _events(self._parser):
            if event == "start":
                self._depth += 1
                if self._depth == 1:
                    _check_root(elem)
                    self._root = elem
                    self.container = dict(elem.attrib)
                elif self._depth == 2 and elem.tag in ITEM_TAGS:
                    key = elem.get("ratingKey")
                    self.count += 1
                    if key and elem.get("type") in ITEM_TYPES:
                        self.keys.append(key)
            else:
                self._depth -= 1
                if self._depth == 1 and self._root is not None:
                    self._root.clear()


def parse_sections(body: bytes) -> list[LibraryRecord]:
    """Parse ``/library/sections`` (small: parsed whole).

    Raises ParseError for anything but a well-formed ``MediaContainer``.
    """
    root = fromstring(body)  # noqa: S314 - the body comes from the user's own server
    _check_root(root)
    sections: list[LibraryRecord] = []
    for directory in root.iter("Directory"):
        key = directory.get("key")
        if not key:
            continue
        sections.append(
            LibraryRecord(
                key=key,
                type=directory.get("type", ""),
                title=directory.get("title", ""),
                agent=directory.get("agent"),
                uuid=directory.get("uuid"),
                locations=[
                    loc.get("path", "") for loc in directory.iter("Location") if loc.get("path")
                ],
                updated_at=_int(directory.get("updatedAt")),
                scanned_at=_int(directory.get("scannedAt")),
            )
        )
    return sections
