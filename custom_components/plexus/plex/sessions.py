"""Stream control: end a session, list and switch the audio and subtitle streams of what plays.

- Ending a stream is the server's `/status/sessions/terminate?sessionId=<Session id>&reason=<text>`
  (the `id` of the session's `<Session>` element, not its `sessionKey`); the viewer sees the
  reason. Plex allows it only to the server owner with Plex Pass: other tokens get 401 or 403.
  A session listed without a `<Session id>` (some players, Plexamp among them) cannot be ended:
  the server takes no other key for it.
- A session lists only the streams it plays; the choices come from the item's own metadata
  (`/library/metadata/<key>`: every `<Stream>` of the played part, streamType 2 audio, 3
  subtitles). A client is told to switch with `/player/playback/setStreams?audioStreamID=…` or
  `subtitleStreamID=…` (0 turns subtitles off), relayed by the server like any player command.
"""

from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

from .api import PlexServerAPI
from .control import PlayerControl
from .errors import PlexError, PlexNotFoundError
from .parse import SESSION_ITEM_TAGS, parse_xml, to_int

AUDIO: Final = "2"
SUBTITLES: Final = "3"
SUBTITLES_OFF: Final = 0


class SessionWithoutIdError(PlexError):
    """The server lists the player's session without a `<Session id>`, so it cannot end it."""


@dataclass(frozen=True, slots=True)
class MediaStream:
    """One audio or subtitle stream of a part."""

    id: int
    title: str
    language: str = ""
    selected: bool = False


@dataclass(frozen=True, slots=True)
class ItemStreams:
    """The audio and subtitle streams an item offers (its first part)."""

    rating_key: str
    audio: tuple[MediaStream, ...] = ()
    subtitles: tuple[MediaStream, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveSession:
    """What `/status/sessions` says of one player's session beyond the common model."""

    session_id: str
    rating_key: str
    audio_stream_id: int | None
    subtitle_stream_id: int | None


def _streams(part: ET.Element, stream_type: str) -> tuple[MediaStream, ...]:
    out: list[MediaStream] = []
    for elem in part.iter("Stream"):
        stream_id = to_int(elem.get("id"))
        if elem.get("streamType") != stream_type or stream_id is None:
            continue
        title = (
            elem.get("extendedDisplayTitle")
            or elem.get("displayTitle")
            or elem.get("title")
            or elem.get("language")
            or f"#{stream_id}"
        )
        out.append(
            MediaStream(
                id=stream_id,
                title=title,
                language=elem.get("languageCode") or elem.get("language") or "",
                selected=elem.get("selected") == "1",
            )
        )
    return tuple(out)


def _first_part(item: ET.Element) -> ET.Element | None:
    media = item.find("Media[@selected='1']")
    if media is None:
        media = item.find("Media")
    return media.find("Part") if media is not None else None


def parse_item_streams(body: bytes | str, rating_key: str) -> ItemStreams:
    """Parse `/library/metadata/<key>` into the streams of its (selected or first) part."""
    root = parse_xml(body)
    item = next((child for child in root if child.get("ratingKey") == rating_key), None)
    if item is None:
        item = next(iter(root), None)
    part = _first_part(item) if item is not None else None
    if part is None:
        return ItemStreams(rating_key=rating_key)
    return ItemStreams(
        rating_key=rating_key,
        audio=_streams(part, AUDIO),
        subtitles=_streams(part, SUBTITLES),
    )


def parse_live_session(body: bytes | str, player_id: str) -> LiveSession | None:
    """Find a player's session in `/status/sessions` (None when it plays nothing)."""
    for item in parse_xml(body):
        if item.tag not in SESSION_ITEM_TAGS:
            continue
        player = item.find("Player")
        if player is None or player.get("machineIdentifier") != player_id:
            continue
        session = item.find("Session")
        part = _first_part(item)
        audio = _streams(part, AUDIO) if part is not None else ()
        subtitles = _streams(part, SUBTITLES) if part is not None else ()
        chosen_audio = next((s for s in audio if s.selected), audio[0] if audio else None)
        return LiveSession(
            # Only the <Session id> ends a stream (`/status/sessions/terminate` takes no key).
            session_id=session.get("id", "") if session is not None else "",
            rating_key=item.get("ratingKey", ""),
            audio_stream_id=chosen_audio.id if chosen_audio else None,
            # A session lists a subtitle stream only while one is shown.
            subtitle_stream_id=subtitles[0].id if subtitles else SUBTITLES_OFF,
        )
    return None


async def live_session(api: PlexServerAPI, player_id: str) -> LiveSession | None:
    """Read the sessions and return the player's."""
    return parse_live_session(await api.request("/status/sessions"), player_id)


async def item_streams(api: PlexServerAPI, rating_key: str) -> ItemStreams:
    """Read an item's audio and subtitle streams."""
    return parse_item_streams(await api.request(f"/library/metadata/{rating_key}"), rating_key)


async def terminate_session(api: PlexServerAPI, session_id: str, reason: str) -> None:
    """End a session; the viewer sees `reason`. PlexNotFoundError: no such session (any more)."""
    if not session_id:
        raise PlexNotFoundError("the session has no id")
    await api.request(
        "/status/sessions/terminate", params={"sessionId": session_id, "reason": reason}
    )


async def terminate_player_session(api: PlexServerAPI, player_id: str, reason: str) -> str:
    """End whatever a player plays; return the session id.

    PlexNotFoundError: it plays nothing; SessionWithoutIdError: the server gives its session no id.
    """
    session = await live_session(api, player_id)
    if session is None:
        raise PlexNotFoundError("the player has no session")
    if not session.session_id:
        raise SessionWithoutIdError("the server lists this player's session without a session id")
    await terminate_session(api, session.session_id, reason)
    return session.session_id


async def set_audio_stream(control: PlayerControl, client_id: str, stream_id: int) -> None:
    """Tell a client to switch to an audio stream."""
    await control.command(client_id, "setStreams", {"audioStreamID": stream_id})


async def set_subtitle_stream(control: PlayerControl, client_id: str, stream_id: int) -> None:
    """Tell a client to show a subtitle stream (0: none)."""
    await control.command(client_id, "setStreams", {"subtitleStreamID": stream_id})
