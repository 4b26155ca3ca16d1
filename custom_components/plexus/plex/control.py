"""Remote control of Plex clients through their server.

Commands go to the server with `X-Plex-Target-Client-Identifier`; the server relays them to the
client (this is how Plex Web and the mobile apps control players on the LAN and remotely).
"""

from itertools import count
from urllib.parse import quote

from .api import PlexServerAPI
from .errors import PlexResponseError
from .parse import parse_xml, to_int

MEDIA_KIND = {"track": "music", "album": "music", "artist": "music", "photo": "photo"}


class PlayerControl:
    """Send playback commands to one server's clients."""

    def __init__(self, api: PlexServerAPI, server_identifier: str) -> None:
        """Control the clients of the server behind `api`."""
        self._api = api
        self._server_identifier = server_identifier
        self._command_ids = count(1)

    async def command(
        self, client_id: str, command: str, params: dict[str, str | int] | None = None
    ) -> None:
        """Send `/player/playback/<command>` to a client."""
        all_params: dict[str, str | int] = {"commandID": next(self._command_ids)}
        if params:
            all_params.update(params)
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

    async def create_play_queue(self, rating_key: str, item_type: str, *, shuffle: bool) -> str:
        """Create a play queue for an item (a show or album queues all its leaves)."""
        uri = (
            f"server://{self._server_identifier}/com.plexapp.plugins.library"
            f"/library/metadata/{rating_key}"
        )
        body = await self._api.request(
            "/playQueues",
            method="POST",
            params={
                "uri": uri,
                "type": "audio" if MEDIA_KIND.get(item_type) == "music" else "video",
                "shuffle": int(shuffle),
                "repeat": 0,
                "continuous": 0,
                "own": 1,
            },
        )
        queue_id = parse_xml(body).get("playQueueID")
        if not queue_id:
            raise PlexResponseError("the server created no play queue")
        return queue_id

    async def play_media(
        self,
        client_id: str,
        rating_key: str,
        item_type: str,
        *,
        offset_ms: int = 0,
        shuffle: bool = False,
    ) -> None:
        """Start an item (movie, episode, show, season, album, playlist …) on a client."""
        queue_id = await self.create_play_queue(rating_key, item_type, shuffle=shuffle)
        server = self._api.url.split("://", 1)
        host_port = server[1].split("/", 1)[0] if len(server) == 2 else ""
        host, _, port = host_port.rpartition(":")
        await self.command(
            client_id,
            "playMedia",
            {
                "key": f"/library/metadata/{rating_key}",
                "offset": max(0, int(offset_ms)),
                "machineIdentifier": self._server_identifier,
                "address": host or host_port,
                "port": to_int(port) or 32400,
                "protocol": server[0] if len(server) == 2 else "http",
                "containerKey": f"/playQueues/{quote(queue_id)}?own=1&window=200",
                "type": MEDIA_KIND.get(item_type, "video"),
            },
        )
