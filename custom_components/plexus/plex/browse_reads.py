"""Reads the media browser needs beyond `PlexLibrary`: one playlist, an item's file, thumbnails."""

from dataclasses import dataclass
import mimetypes
import re
from typing import Final
from xml.etree import ElementTree as ET

from .api import PlexServerAPI
from .errors import PlexError, PlexNotFoundError
from .library import MediaItem, parse_items
from .parse import parse_xml

THUMB_SIZE: Final = 300
# Server-relative image paths we accept (what Plex puts in `thumb`/`composite`): no scheme, no
# host, no `..`, so a crafted id cannot make the server's transcoder fetch another URL.
_IMAGE_PATH: Final = re.compile(r"^/(?:library|playlists|:/resources)/[\w/.:-]*$")
_IMAGE_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)
_CONTAINER_MIME: Final[dict[str, str]] = {
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "avi": "video/x-msvideo",
    "ts": "video/mp2t",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
}
AUDIO_TYPES: Final = frozenset({"track"})


@dataclass(frozen=True, slots=True)
class MediaPart:
    """The first file (Media/Part) of a playable item."""

    key: str
    container: str
    mime_type: str


def is_image_path(path: str) -> bool:
    """True for a server-relative image path this module will ask the transcoder for."""
    return bool(_IMAGE_PATH.match(path)) and ".." not in path


def sniff_image_type(data: bytes) -> str | None:
    """Return the image MIME type from the first bytes, None when it is not an image we know."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def mime_type_for(item_type: str, container: str) -> str:
    """Guess a stream's MIME type from its container, falling back on the item type."""
    container = container.lower()
    if container in _CONTAINER_MIME:
        return _CONTAINER_MIME[container]
    guessed, _ = mimetypes.guess_type(f"file.{container}") if container else (None, None)
    if guessed and guessed.startswith(("audio/", "video/")):
        return guessed
    return "audio/mpeg" if item_type in AUDIO_TYPES else "video/mp4"


def is_not_found(err: PlexError) -> bool:
    """True when the server answered 404."""
    return isinstance(err, PlexNotFoundError)


def parse_first_part(body: bytes | str) -> MediaPart | None:
    """Return the first Media/Part of the first item in a metadata response."""
    root = parse_xml(body)
    item: ET.Element | None = next(iter(root), None)
    if item is None:
        return None
    # PMS nests Part in Media; some answers list Part beside Media (the catalog accepts both).
    part = item.find("./Media/Part")
    if part is None:
        part = item.find("./Part")
    if part is None or not (key := part.get("key", "")).startswith("/"):
        return None
    media = item.find("./Media")
    container = part.get("container") or (media.get("container") if media is not None else None)
    container = container or ""
    return MediaPart(
        key=key, container=container, mime_type=mime_type_for(item.get("type", ""), container)
    )


async def playlist(api: PlexServerAPI, playlist_id: str) -> MediaItem | None:
    """Return one playlist (`/playlists/<id>`), None when the server does not know it."""
    items, _ = parse_items(await api.request(f"/playlists/{playlist_id}"))
    return items[0] if items else None


async def first_part(api: PlexServerAPI, rating_key: str) -> MediaPart | None:
    """Return the first file of an item, None when it has none (a show, an album …)."""
    return parse_first_part(await api.request(f"/library/metadata/{rating_key}"))


async def thumbnail(
    api: PlexServerAPI, image_path: str, size: int = THUMB_SIZE
) -> tuple[bytes, str] | None:
    """Fetch a scaled image through the server's photo transcoder (the token in a header).

    Returns None for a path that is not a server image path or an answer that is not an image.
    """
    if not is_image_path(image_path):
        return None
    data = await api.request(
        "/photo/:/transcode",
        params={"url": image_path, "width": size, "height": size, "minSize": 1},
        headers={"Accept": "image/jpeg,image/png,image/webp,image/*"},
    )
    mime = sniff_image_type(data)
    return (data, mime) if mime else None


async def transient_token(api: PlexServerAPI) -> str | None:
    """Ask the server for a transient (delegation) token to put in a URL given away.

    Plex keeps such a token valid for about 48 hours or until it restarts; None when the server
    will not issue one (some shared users may not).
    """
    root = parse_xml(
        await api.request("/security/token", params={"type": "delegation", "scope": "all"})
    )
    return root.get("token") or None
