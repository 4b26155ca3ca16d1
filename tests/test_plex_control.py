"""Reading the server's `/playQueues` answer: which leaf a player is told to play."""

from collections.abc import Mapping
from pathlib import Path
from typing import cast

import pytest

from custom_components.plexus.plex.api import PlexServerAPI
from custom_components.plexus.plex.control import PlayerControl, parse_play_queue
from custom_components.plexus.plex.errors import PlexResponseError

FIXTURES = Path(__file__).parent / "fixtures" / "ha-core"


def test_recorded_play_queue() -> None:
    queue = parse_play_queue((FIXTURES / "playqueue_1234.xml").read_bytes())
    assert (queue.id, queue.selected_key, queue.keys) == ("1234", "100", ("100",))


def test_older_server_names_the_selected_queue_item_only() -> None:
    """Without playQueueSelectedMetadataItemID the selected queue item gives the leaf."""
    body = (
        '<MediaContainer playQueueID="7" playQueueSelectedItemID="502">'
        '<Video ratingKey="11" playQueueItemID="501"/>'
        '<Video ratingKey="12" playQueueItemID="502"/>'
        '<Video ratingKey="13" playQueueItemID="503"/></MediaContainer>'
    )
    queue = parse_play_queue(body)
    assert queue.selected_key == "12"
    assert queue.keys == ("11", "12", "13")


def test_no_selection_starts_at_the_first_leaf() -> None:
    body = (
        '<MediaContainer playQueueID="7"><Track ratingKey="21"/><Track ratingKey="22"/>'
        "</MediaContainer>"
    )
    assert parse_play_queue(body).selected_key == "21"


@pytest.mark.parametrize(
    "body",
    [
        '<MediaContainer size="0"/>',  # a queue of nothing (an empty season)
        '<MediaContainer playQueueID="7" size="0"/>',
        '<MediaContainer><Video ratingKey="1"/></MediaContainer>',  # no queue id
    ],
)
def test_answer_without_a_queue_or_leaf_is_an_error(body: str) -> None:
    with pytest.raises(PlexResponseError, match="nothing to play"):
        parse_play_queue(body)


class _RecordingServer:
    """Stands in for PlexServerAPI: answers /playQueues, records every command."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.commands: list[dict[str, str | int]] = []

    async def request(
        self,
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        if path == "/playQueues":
            return b'<MediaContainer playQueueID="7"><Video ratingKey="11"/></MediaContainer>'
        self.commands.append(dict(params or {}))
        return b'<Response code="200" status="OK"/>'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://192.168.1.5:32400", ("http", "192.168.1.5", 32400)),
        ("https://1-2-3-4.abc.plex.direct:8443", ("https", "1-2-3-4.abc.plex.direct", 8443)),
        # Behind a reverse proxy: no port in the URL is the scheme's own, never 32400.
        ("https://plex.example.com", ("https", "plex.example.com", 443)),
        ("http://plex.example.com/", ("http", "plex.example.com", 80)),
        ("http://[fd00::5]:32400", ("http", "[fd00::5]", 32400)),
    ],
)
async def test_play_media_tells_the_client_where_the_server_is(
    url: str, expected: tuple[str, str, int]
) -> None:
    """The client fetches the queue from protocol://address:port; a URL without a port was
    announced as port 32400 (where a server behind an https reverse proxy does not listen)."""
    server = _RecordingServer(url)
    control = PlayerControl(cast("PlexServerAPI", server), "srv")
    await control.play_media("client", "11", "movie")
    (command,) = server.commands
    assert (command["protocol"], command["address"], command["port"]) == expected


async def test_commands_name_the_kind_of_media() -> None:
    """Every command carries `type`: the session's kind, else what Plexus last started on the
    client, else video (a command without it is ignored by some players, Plex for Roku)."""
    server = _RecordingServer("http://192.168.1.5:32400")
    playing: dict[str, str] = {"photo-frame": "photo", "tv": "episode"}
    control = PlayerControl(cast("PlexServerAPI", server), "srv", playing.get)
    await control.pause("photo-frame")
    await control.seek("tv", 1000)
    await control.play("unknown")
    await control.play_media("speaker", "11", "album")
    await control.pause("speaker")
    assert [c["type"] for c in server.commands] == ["photo", "video", "video", "music", "music"]
