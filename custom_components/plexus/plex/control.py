"""Remote control of Plex clients through their server.

Commands go to the server with `X-Plex-Target-Client-Identifier`; the server relays them to the
client (this is how Plex Web and the mobile apps control players on the LAN and remotely).

Everything is played through a server-side play queue, as Plex's own apps do: a playlist's queue
is made from the playlist (`playlistID=`; a real server answers a `uri=` naming a playlist with
HTTP 400), anything else from its library URI (`uri=server://…/library/metadata/<key>`), which the
server expands into the leaves of a show, season, artist or album. The client is then told to
play the queue's selected leaf, never the container itself (which a client cannot play).
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from urllib.parse import quote, urlsplit

from .api import PlexServerAPI
from .errors import PlexResponseError
from .parse import parse_xml

MEDIA_KIND = {"track": "music", "album": "music", "artist": "music", "photo": "photo"}
# A playlist's playlistType -> the play queue's type and the playMedia command's type.
PLAYLIST_KINDS = {"audio": ("audio", "music"), "photo": ("photo", "photo")}


@dataclass(frozen=True, slots=True)
class PlayQueue:
    """A play queue the server created: its id, its selected leaf and the leaves it lists."""

    id: str
    selected_key: str
    keys: tuple[str, ...]


def queue_kinds(item_type: str, playlist_type: str = "") -> tuple[str, str]:
    """The play queue `type` and the playMedia `type` of an item."""
    if item_type == "playlist":
        return PLAYLIST_KINDS.get(playlist_type, ("video", "video"))
    kind = MEDIA_KIND.get(item_type, "video")
    return ("audio" if kind == "music" else kind, kind)


def parse_play_queue(body: bytes | str) -> PlayQueue:
    """Read a `/playQueues` answer; an answer without a queue or a selected item is an error."""
    root = parse_xml(body)
    queue_id = root.get("playQueueID")
    keys = tuple(key for elem in root if (key := elem.get("ratingKey")))
    selected = root.get("playQueueSelectedMetadataItemID")
    if not selected:
        selected_item = root.get("playQueueSelectedItemID")
        selected = next(
            (e.get("ratingKey") for e in root if e.get("playQueueItemID") == selected_item),
            keys[0] if keys else None,
        )
    if not queue_id or not selected:
        raise PlexResponseError("the server created no play queue (nothing to play)")
    return PlayQueue(queue_id, selected, keys)


def server_address(url: str) -> tuple[str, str, int]:
    """The protocol, host and port a client is told to fetch the media from.

    A URL without a port means the scheme's own (443 for https, 80 for http), as it does for
    the client: a server behind a reverse proxy (`https://plex.example.com`) is not on 32400.
    """
    parts = urlsplit(url)
    protocol = parts.scheme or "http"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if protocol == "https" else 80
    host = parts.hostname or ""
    # An IPv6 literal keeps its brackets: the client builds protocol://address:port from it.
    return protocol, f"[{host}]" if ":" in host else host, port


class PlayerControl:
    """Send playback commands to one server's clients.

    Every command names the kind of media it acts on (`type`: video, music or photo), as Plex's
    own controllers do: a client plays each kind in its own player, and some (Plex for Roku)
    ignore a command without it. The kind is that of the client's session (`media_type`, a
    callable returning the Plex type of what the client plays), else of what Plexus last
    started there, else video.
    """

    def __init__(
        self,
        api: PlexServerAPI,
        server_identifier: str,
        media_type: Callable[[str], str | None] | None = None,
    ) -> None:
        """Control the clients of the server behind `api`."""
        self._api = api
        self._server_identifier = server_identifier
        self._command_ids = count(1)
        self._media_type = media_type
        self._started: dict[str, str] = {}

    def _kind(self, client_id: str) -> str:
        playing = self._media_type(client_id) if self._media_type is not None else None
        if playing:
            return MEDIA_KIND.get(playing, "video")
        return self._started.get(client_id, "video")

    async def command(
        self, client_id: str, command: str, params: dict[str, str | int] | None = None
    ) -> None:
        """Send `/player/playback/<command>` to a client."""
        all_params: dict[str, str | int] = {"commandID": next(self._command_ids)}
        if params:
            all_params.update(params)
        all_params.setdefault("type", self._kind(client_id))
        await self._api.request(
            f"/player/playback/{command}",
            params=all_params,
            headers={"X-Plex-Target-Client-Identifier": client_id},
        )

    async def play(self, client_id: str) -> None:
        """Resume playback."""
        await self.command(client_id, "play")

    async def pause(self, client_id: str) -> None:
        """Pause playback."""
        await self.command(client_id, "pause")

    async def stop(self, client_id: str) -> None:
        """Stop playback."""
        await self.command(client_id, "stop")

    async def seek(self, client_id: str, position_ms: int) -> None:
        """Seek to a position."""
        await self.command(client_id, "seekTo", {"offset": max(0, int(position_ms))})

    async def skip_next(self, client_id: str) -> None:
        """Next item of the play queue."""
        await self.command(client_id, "skipNext")

    async def skip_previous(self, client_id: str) -> None:
        """Previous item of the play queue."""
        await self.command(client_id, "skipPrevious")

    async def set_volume(self, client_id: str, volume: int) -> None:
        """Set the volume, 0-100."""
        await self.command(client_id, "setParameters", {"volume": max(0, min(100, volume))})

    async def create_play_queue(
        self,
        rating_key: str,
        item_type: str,
        *,
        shuffle: bool,
        start_key: str | None = None,
        playlist_type: str = "",
    ) -> PlayQueue:
        """Create a play queue for an item (a container queues all its leaves).

        `start_key` selects the leaf to start at (a show's On Deck episode).
        """
        params: dict[str, str | int] = {
            "type": queue_kinds(item_type, playlist_type)[0],
            "shuffle": int(shuffle),
            "repeat": 0,
            "continuous": 0,
            "own": 1,
        }
        if item_type == "playlist":
            params["playlistID"] = rating_key
        else:
            params["uri"] = (
                f"server://{self._server_identifier}/com.plexapp.plugins.library"
                f"/library/metadata/{rating_key}"
            )
        if start_key:
            params["key"] = f"/library/metadata/{start_key}"
        body = await self._api.request("/playQueues", method="POST", params=params)
        return parse_play_queue(body)

    async def play_media(
        self,
        client_id: str,
        rating_key: str,
        item_type: str,
        *,
        offset_ms: int = 0,
        shuffle: bool = False,
        start_key: str | None = None,
        playlist_type: str = "",
    ) -> PlayQueue:
        """Start an item (movie, episode, show, season, album, playlist …) on a client.

        Returns the play queue; the client was told to play its selected leaf.
        """
        queue = await self.create_play_queue(
            rating_key,
            item_type,
            shuffle=shuffle,
            start_key=start_key,
            playlist_type=playlist_type,
        )
        protocol, host, port = server_address(self._api.url)
        kind = queue_kinds(item_type, playlist_type)[1]
        self._started[client_id] = kind
        await self.command(
            client_id,
            "playMedia",
            {
                "key": f"/library/metadata/{queue.selected_key}",
                "offset": max(0, int(offset_ms)),
                "machineIdentifier": self._server_identifier,
                "address": host,
                "port": port,
                "protocol": protocol,
                "containerKey": f"/playQueues/{quote(queue.id)}?own=1&window=200",
                "type": kind,
            },
        )
        return queue
