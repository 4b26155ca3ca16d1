"""Plain data the Plex access layer returns."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a Plex Media Server says about itself (`/`)."""

    machine_identifier: str
    friendly_name: str
    version: str
    platform: str = ""
    platform_version: str = ""
    my_plex_username: str = ""


@dataclass(frozen=True, slots=True)
class PlexClientInfo:
    """A Plex client (player) the server knows."""

    machine_identifier: str
    name: str
    product: str = ""
    platform: str = ""
    device_class: str = ""
    address: str = ""
    port: int | None = None
    version: str = ""
    protocol_capabilities: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class PlexSession:
    """One active playback session (`/status/sessions`)."""

    session_key: str
    rating_key: str
    media_type: str
    title: str
    player_identifier: str
    player_title: str
    player_product: str = ""
    player_platform: str = ""
    player_address: str = ""
    state: str = ""
    user: str = ""
    user_id: str = ""
    view_offset_ms: int = 0
    duration_ms: int = 0
    grandparent_title: str = ""
    parent_title: str = ""
    season: int | None = None
    episode: int | None = None
    year: int | None = None
    thumb: str = ""
    art: str = ""
    library_section_id: str = ""
    decision: str = "directplay"
    # Per stream (transcode / copy / directplay; None when the server does not say).
    video_decision: str | None = None
    audio_decision: str | None = None
    bandwidth_kbps: int = 0
    location: str = ""
    video_resolution: str = ""
    # What the server converts: "video", "audio", "subtitles", "container" (empty: direct play).
    transcode_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LibrarySection:
    """A library section (`/library/sections`)."""

    key: str
    type: str
    title: str
    agent: str = ""
    uuid: str = ""
    locations: tuple[str, ...] = ()
    updated_at: int = 0
    scanned_at: int = 0


@dataclass(frozen=True, slots=True)
class ServerConnection:
    """One way to reach a server listed by plex.tv."""

    uri: str
    local: bool
    relay: bool


@dataclass(frozen=True, slots=True)
class ServerResource:
    """A Plex Media Server that a plex.tv account can use."""

    name: str
    client_identifier: str
    access_token: str
    owned: bool
    connections: tuple[ServerConnection, ...]
