"""Turn Plex XML responses into the models of this package.

Every function takes the raw response body, never trusts it to be complete (missing attributes get
defaults) and raises PlexResponseError when the body is not a Plex document at all.
"""

from collections.abc import Iterable
from xml.etree import ElementTree as ET

from .errors import PlexResponseError
from .models import (
    LibrarySection,
    PlexClientInfo,
    PlexSession,
    ServerInfo,
)

SESSION_ITEM_TAGS = ("Video", "Track", "Photo", "Episode", "Movie")


def parse_xml(body: bytes | str, root_tag: str = "MediaContainer") -> ET.Element:
    """Parse a response body and check its root element."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - the body comes from the user's own server
    except ET.ParseError as err:
        raise PlexResponseError(f"not an XML document: {err}") from err
    if root.tag != root_tag:
        raise PlexResponseError(f"expected <{root_tag}>, got <{root.tag}>")
    return root


def to_int(value: str | None) -> int | None:
    """Return an int for a numeric attribute, None when missing or not a number."""
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_server_info(body: bytes | str) -> ServerInfo:
    """Parse the server root (`/`) or `/identity`."""
    root = parse_xml(body)
    machine_identifier = root.get("machineIdentifier")
    if not machine_identifier:
        raise PlexResponseError("the response names no machineIdentifier")
    return ServerInfo(
        machine_identifier=machine_identifier,
        friendly_name=root.get("friendlyName") or machine_identifier,
        version=root.get("version", ""),
        platform=root.get("platform", ""),
        platform_version=root.get("platformVersion", ""),
        my_plex_username=root.get("myPlexUsername", ""),
    )


def _capabilities(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


def parse_clients(body: bytes | str) -> list[PlexClientInfo]:
    """Parse `/clients`."""
    return [
        PlexClientInfo(
            machine_identifier=elem.get("machineIdentifier", ""),
            name=elem.get("name") or elem.get("title") or elem.get("machineIdentifier") or "",
            product=elem.get("product", ""),
            platform=elem.get("platform", ""),
            device_class=elem.get("deviceClass", ""),
            address=elem.get("address") or elem.get("host") or "",
            port=to_int(elem.get("port")),
            version=elem.get("version", ""),
            protocol_capabilities=_capabilities(elem.get("protocolCapabilities")),
        )
        for elem in parse_xml(body).iter("Server")
        if elem.get("machineIdentifier")
    ]


_DECISIONS = ("transcode", "copy", "directplay")


def _stream_decisions(item: ET.Element) -> tuple[str | None, str | None]:
    """The video and audio decisions (transcode, copy, directplay) of a session item.

    From its TranscodeSession where the server sends one; real servers omit it in some cases,
    and then the selected Part's Streams carry their own `decision` (streamType 1 video, 2 audio).
    """
    transcode = item.find("TranscodeSession")
    if transcode is not None:
        video, audio = transcode.get("videoDecision"), transcode.get("audioDecision")
        return (
            video if video in _DECISIONS else None,
            audio if audio in _DECISIONS else None,
        )
    found: dict[str, str] = {}
    for stream in item.iter("Stream"):
        decision = stream.get("decision")
        kind = {"1": "video", "2": "audio"}.get(stream.get("streamType", ""))
        if kind and decision in _DECISIONS and kind not in found:
            found[kind] = decision
    return found.get("video"), found.get("audio")


def _session_decision(item: ET.Element) -> str:
    """Return directplay, copy (direct stream) or transcode for a session item."""
    video, audio = _stream_decisions(item)
    if "transcode" in (video, audio):
        return "transcode"
    if item.find("TranscodeSession") is not None:
        return "copy"
    for part in item.iter("Part"):
        decision = part.get("decision")
        if decision in _DECISIONS:
            return decision
    if "copy" in (video, audio):
        return "copy"
    return "directplay"


def _subtitle_decision(item: ET.Element) -> str | None:
    transcode = item.find("TranscodeSession")
    if transcode is not None and transcode.get("subtitleDecision"):
        return transcode.get("subtitleDecision")
    return next(
        (s.get("decision") for s in item.iter("Stream") if s.get("streamType") == "3"), None
    )


def _transcode_reasons(item: ET.Element) -> tuple[str, ...]:
    """What the server converts: from the TranscodeSession decisions, else the Streams' own."""
    decision = _session_decision(item)
    if decision == "directplay":
        return ()
    video, audio = _stream_decisions(item)
    reasons = [kind for kind, said in (("video", video), ("audio", audio)) if said == "transcode"]
    if _subtitle_decision(item) in ("transcode", "burn"):
        reasons.append("subtitles")
    if not reasons and decision == "copy":
        reasons.append("container")  # streams copied: remuxed into another container
    return tuple(reasons)


def resolution_label(raw: str) -> str:
    """One spelling for a video resolution: `sd`, `480`, `576`, `720`, `1080`, `2k`, `4k`, `8k`.

    Servers and versions differ: "720" and "720p", "SD" and "sd", "4k" and "2160" all occur.
    """
    value = raw.strip().lower()
    if value.endswith("p") and value[:-1].isdigit():
        value = value[:-1]
    return {"2160": "4k", "4320": "8k"}.get(value, value)


def media_resolution(item: ET.Element) -> str:
    """The video resolution of an item's (first) `<Media>` ("" when it has none).

    In a transcoding session it is what the viewer receives (a 4K film sent as 720p says 720);
    in the item's own metadata it is what the file is.
    """
    media = item.find("Media")
    return resolution_label(media.get("videoResolution", "")) if media is not None else ""


def _session_items(root: ET.Element) -> Iterable[ET.Element]:
    return (child for child in root if child.tag in SESSION_ITEM_TAGS)


def parse_sessions(body: bytes | str) -> list[PlexSession]:
    """Parse `/status/sessions`."""
    sessions: list[PlexSession] = []
    for item in _session_items(parse_xml(body)):
        player = item.find("Player")
        if player is None or not player.get("machineIdentifier"):
            continue
        user = item.find("User")
        session = item.find("Session")
        media_type = item.get("type", "")
        is_episode = media_type == "episode"
        sessions.append(
            PlexSession(
                session_key=item.get("sessionKey", ""),
                rating_key=item.get("ratingKey", ""),
                media_type=media_type,
                title=item.get("title", ""),
                player_identifier=player.get("machineIdentifier", ""),
                player_title=player.get("title") or player.get("device") or "",
                player_product=player.get("product", ""),
                player_platform=player.get("platform", ""),
                player_address=player.get("address", ""),
                state=player.get("state", ""),
                user=user.get("title", "") if user is not None else "",
                user_id=user.get("id", "") if user is not None else "",
                view_offset_ms=to_int(item.get("viewOffset")) or 0,
                duration_ms=to_int(item.get("duration")) or 0,
                grandparent_title=item.get("grandparentTitle", ""),
                parent_title=item.get("parentTitle", ""),
                season=to_int(item.get("parentIndex")) if is_episode else None,
                episode=to_int(item.get("index")) if is_episode else None,
                year=to_int(item.get("year")),
                thumb=item.get("thumb", ""),
                art=item.get("art", ""),
                library_section_id=item.get("librarySectionID", ""),
                decision=_session_decision(item),
                video_decision=_stream_decisions(item)[0],
                audio_decision=_stream_decisions(item)[1],
                bandwidth_kbps=(
                    to_int(session.get("bandwidth")) or 0 if session is not None else 0
                ),
                location=session.get("location", "") if session is not None else "",
                video_resolution=media_resolution(item),
                transcode_reasons=_transcode_reasons(item),
            )
        )
    return sessions


def parse_sections(body: bytes | str) -> list[LibrarySection]:
    """Parse `/library/sections`."""
    return [
        LibrarySection(
            key=elem.get("key", ""),
            type=elem.get("type", ""),
            title=elem.get("title", ""),
            agent=elem.get("agent", ""),
            uuid=elem.get("uuid", ""),
            locations=tuple(loc.get("path", "") for loc in elem.iter("Location")),
            updated_at=to_int(elem.get("updatedAt")) or 0,
            scanned_at=to_int(elem.get("scannedAt")) or 0,
        )
        for elem in parse_xml(body).iter("Directory")
        if elem.get("key")
    ]


def parse_accounts(body: bytes | str) -> list[str]:
    """Parse `/accounts` into account names (the server's own "id 0" account has none)."""
    return [
        name for elem in parse_xml(body).iter("Account") if (name := elem.get("name", "").strip())
    ]
