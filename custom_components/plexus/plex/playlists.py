"""Playlists on a Plex server: find, create, add items, remove items.

The server's own endpoints (what Plex Web and python-plexapi use):
- `POST /playlists?uri=<items uri>&title=<name>&type=video|audio|photo&smart=0` creates one;
- `PUT /playlists/<id>/items?uri=<items uri>` appends items;
- `DELETE /playlists/<id>/items/<playlistItemID>` removes one entry (an item may be in a playlist
  several times; each entry has its own `playlistItemID`).
The items uri is `server://<machine id>/com.plexapp.plugins.library/library/metadata/<k1>,<k2>…`.
A playlist holds one kind of media: the server refuses (HTTP 400) audio in a video playlist and the
other way round, and refuses to edit a smart playlist (its items come from its filter).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

from .api import PlexServerAPI
from .errors import PlexNotFoundError, PlexResponseError
from .parse import parse_xml, to_int

PLAYLIST_TYPES: Final = {"track": "audio", "album": "audio", "artist": "audio", "photo": "photo"}


class PlaylistNotFoundError(PlexNotFoundError):
    """No playlist has that name or id."""


@dataclass(frozen=True, slots=True)
class PlaylistInfo:
    """A playlist as the server lists it."""

    id: str
    title: str
    playlist_type: str
    smart: bool
    leaf_count: int


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    """One entry of a playlist."""

    playlist_item_id: str
    rating_key: str
    title: str


def playlist_kind(item_type: str) -> str:
    """The playlist type an item of this type belongs in (music: audio; photos: photo)."""
    return PLAYLIST_TYPES.get(item_type, "video")


def playlist_type_for(item_types: Iterable[str]) -> str:
    """The playlist type for items of these types: the first item's (Plex does not mix them)."""
    return next((playlist_kind(t) for t in item_types), "video")


def items_uri(server_identifier: str, rating_keys: Sequence[str]) -> str:
    """The uri naming library items on a server."""
    return (
        f"server://{server_identifier}/com.plexapp.plugins.library"
        f"/library/metadata/{','.join(rating_keys)}"
    )


def _info(elem: ET.Element) -> PlaylistInfo:
    return PlaylistInfo(
        id=elem.get("ratingKey", ""),
        title=elem.get("title", ""),
        playlist_type=elem.get("playlistType", ""),
        smart=elem.get("smart") == "1",
        leaf_count=to_int(elem.get("leafCount")) or 0,
    )


def parse_playlists(body: bytes | str) -> list[PlaylistInfo]:
    """Parse `/playlists` (or the answer to a create / add)."""
    return [_info(elem) for elem in parse_xml(body).iter("Playlist") if elem.get("ratingKey")]


def parse_entries(body: bytes | str) -> list[PlaylistEntry]:
    """Parse `/playlists/<id>/items`."""
    return [
        PlaylistEntry(
            playlist_item_id=elem.get("playlistItemID", ""),
            rating_key=elem.get("ratingKey", ""),
            title=elem.get("title", ""),
        )
        for elem in parse_xml(body)
        if elem.get("playlistItemID")
    ]


class PlaylistAPI:
    """Playlists of one server."""

    def __init__(self, api: PlexServerAPI, server_identifier: str) -> None:
        """Work on the server behind `api`."""
        self._api = api
        self._server_identifier = server_identifier

    async def playlists(self) -> list[PlaylistInfo]:
        """Every playlist the token's user has."""
        return parse_playlists(await self._api.request("/playlists"))

    async def find(self, name_or_id: str) -> PlaylistInfo:
        """A playlist by id, else by name (case-insensitive); PlaylistNotFoundError if none."""
        playlists = await self.playlists()
        wanted = name_or_id.strip()
        for playlist in playlists:
            if playlist.id == wanted:
                return playlist
        for playlist in playlists:
            if playlist.title.casefold() == wanted.casefold():
                return playlist
        names = ", ".join(p.title for p in playlists) or "-"
        raise PlaylistNotFoundError(f"no playlist named {wanted!r} (there are: {names})")

    async def create(
        self, title: str, rating_keys: Sequence[str], playlist_type: str
    ) -> PlaylistInfo:
        """Create a playlist holding the items."""
        body = await self._api.request(
            "/playlists",
            method="POST",
            params={
                "uri": items_uri(self._server_identifier, rating_keys),
                "title": title,
                "type": playlist_type,
                "smart": 0,
            },
        )
        created = parse_playlists(body)
        if not created:
            raise PlexResponseError("the server created no playlist")
        return created[0]

    async def add(self, playlist_id: str, rating_keys: Sequence[str]) -> None:
        """Append items to a playlist."""
        await self._api.request(
            f"/playlists/{playlist_id}/items",
            method="PUT",
            params={"uri": items_uri(self._server_identifier, rating_keys)},
        )

    async def entries(self, playlist_id: str) -> list[PlaylistEntry]:
        """The entries of a playlist, in order."""
        return parse_entries(await self._api.request(f"/playlists/{playlist_id}/items"))

    async def remove(self, playlist_id: str, rating_keys: Iterable[str]) -> list[PlaylistEntry]:
        """Remove every entry of these items; return the entries removed."""
        wanted = set(rating_keys)
        removed: list[PlaylistEntry] = []
        for entry in await self.entries(playlist_id):
            if entry.rating_key in wanted:
                await self._api.request(
                    f"/playlists/{playlist_id}/items/{entry.playlist_item_id}", method="DELETE"
                )
                removed.append(entry)
        return removed
