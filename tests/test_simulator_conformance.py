"""Conformance of the simulator with recorded real Plex Media Server responses (tests/fixtures).

For every recorded response whose endpoint the simulator serves, the simulator answers the
equivalent request and the two documents are compared:

1. Structure (XML): the fixture root's attributes must all be on the simulator's root; elements
   are grouped by tag (and by `type` for Video/Directory/Track); for every group in the fixture,
   the attributes that matter (`MATTERS[tag]`, intersected with the attributes *every* fixture
   element of the group has) must be on every simulator element of that group, and the
   conditional ones (`OPTIONAL`, e.g. viewOffset, viewCount) on at least one; every element kind
   of the fixture that matters (`KINDS`) must occur in the simulator's answer.
2. PlexAPI: both documents are served over HTTP (the fixture from a tiny aiohttp app, the answer
   by the simulator) and turned into PlexAPI objects the same way; every Python attribute listed
   in `PY_FIELDS` (followed into nested objects: Media -> Part -> Stream, Player, Session...)
   that is non-empty for the fixture must be non-empty for the simulator.
3. A marked place for Plexus's own parser (custom_components/plexus/plex/parse.py).

Fixtures for endpoints the simulator does not serve are listed in `NOT_SERVED` with the reason;
`test_every_fixture_is_accounted_for` keeps that list honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
import dataclasses
from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Final
import xml.etree.ElementTree as ET

import aiohttp
from aiohttp import web
from plexapi.base import MediaContainer, PlexObject
from plexapi.client import PlexClient
from plexapi.library import (
    FilteringFieldType,
    FilteringType,
    LibrarySection,
    MovieSection,
    MusicSection,
    ShowSection,
)
from plexapi.playqueue import PlayQueue
from plexapi.server import PlexServer, SystemAccount
import pytest
import requests

from custom_components.plexus.plex import library as plexus_library, parse as plexus_parse
from tests.plex_simulator import LibraryConfig, PlexSimulator

pytestmark = [pytest.mark.enable_socket, pytest.mark.usefixtures("socket_enabled")]

FIXTURES: Final = Path(__file__).parent / "fixtures"
TEMPLATE_VALUES: Final[dict[str, dict[str, str]]] = {
    # The values the Home Assistant tests fill in (see tests/fixtures/README.md).
    "ha-core/plex_server_base.xml": {
        "name": "Plex Server 1",
        "machine_identifier": "unique_id_123",
    },
    "ha-core/session_base.xml": {"user_id": "1"},
    "ha-core/plextv_resources_base.xml": {
        "first_server_enabled": "1",
        "second_server_enabled": "0",
    },
}

# ---------------------------------------------------------------------------------- what matters

_ITEM: Final = frozenset(
    {
        "ratingKey",
        "key",
        "guid",
        "type",
        "title",
        "titleSort",
        "originalTitle",
        "year",
        "index",
        "parentIndex",
        "parentRatingKey",
        "grandparentRatingKey",
        "grandparentTitle",
        "parentTitle",
        "duration",
        "addedAt",
        "updatedAt",
        "thumb",
        "art",
        "viewOffset",
        "librarySectionID",
        "librarySectionTitle",
        "librarySectionKey",
        "parentKey",
        "grandparentKey",
        "parentGuid",
        "grandparentGuid",
        "summary",
        "contentRating",
        "originallyAvailableAt",
        "sessionKey",
        "viewCount",
        "lastViewedAt",
        "studio",
        "rating",
        "audienceRating",
        "tagline",
        "parentThumb",
        "grandparentThumb",
        "grandparentArt",
        "grandparentTheme",
        "leafCount",
        "viewedLeafCount",
        "childCount",
        "banner",
        "theme",
    }
)
_TAG: Final = frozenset({"tag", "id", "filter", "role", "thumb"})
MATTERS: Final[dict[str, frozenset[str]]] = {
    "Video": _ITEM,
    "Track": _ITEM,
    "Directory": _ITEM
    | {
        # library sections
        "agent",
        "scanner",
        "language",
        "uuid",
        "refreshing",
        "createdAt",
        "scannedAt",
        "allowSync",
        "composite",
        "filters",
        "content",
        "directory",
        "contentChangedAt",
        "hidden",
        # server root
        "count",
        # /sorts
        "defaultDirection",
        "descKey",
        "default",
        "firstCharacterKey",
        # collections
        "subtype",
        "minYear",
        "maxYear",
    },
    "Media": frozenset(
        {
            "id",
            "videoResolution",
            "videoCodec",
            "container",
            "duration",
            "bitrate",
            "width",
            "height",
            "audioCodec",
            "audioChannels",
            "aspectRatio",
            "videoFrameRate",
            "videoProfile",
            "selected",
            "protocol",
        }
    ),
    "Part": frozenset(
        {"id", "key", "file", "size", "container", "duration", "decision", "selected"}
    ),
    "Stream": frozenset(
        {
            "id",
            "streamType",
            "codec",
            "index",
            "language",
            "languageCode",
            "displayTitle",
            "extendedDisplayTitle",
            "default",
            "selected",
            "decision",
            "channels",
            "bitrate",
        }
    ),
    "Guid": frozenset({"id"}),
    "Genre": _TAG,
    "Director": _TAG,
    "Writer": _TAG,
    "Producer": _TAG,
    "Country": _TAG,
    "Role": _TAG,
    "Location": frozenset({"id", "path"}),
    "User": frozenset({"id", "title", "thumb"}),
    "Player": frozenset(
        {
            "address",
            "device",
            "deviceClass",
            "local",
            "machineIdentifier",
            "model",
            "platform",
            "platformVersion",
            "product",
            "profile",
            "protocolVersion",
            "relayed",
            "remotePublicAddress",
            "secure",
            "state",
            "title",
            "userID",
            "vendor",
            "version",
        }
    ),
    "Session": frozenset({"id", "bandwidth", "location"}),
    "TranscodeSession": frozenset(
        {
            "key",
            "throttled",
            "complete",
            "progress",
            "size",
            "speed",
            "duration",
            "remaining",
            "context",
            "sourceVideoCodec",
            "sourceAudioCodec",
            "videoDecision",
            "audioDecision",
            "protocol",
            "container",
            "videoCodec",
            "audioCodec",
            "audioChannels",
            "transcodeHwRequested",
            "timeStamp",
            "maxOffsetAvailable",
            "minOffsetAvailable",
            "height",
            "width",
        }
    ),
    "Server": frozenset(
        {
            "name",
            "host",
            "address",
            "port",
            "machineIdentifier",
            "version",
            "protocol",
            "product",
            "deviceClass",
            "protocolVersion",
            "protocolCapabilities",
        }
    ),
    "Account": frozenset(
        {
            "id",
            "key",
            "name",
            "thumb",
            "defaultAudioLanguage",
            "autoSelectAudio",
            "defaultSubtitleLanguage",
            "subtitleMode",
        }
    ),
    "Playlist": frozenset(
        {
            "ratingKey",
            "key",
            "guid",
            "type",
            "title",
            "summary",
            "smart",
            "playlistType",
            "composite",
            "viewCount",
            "lastViewedAt",
            "duration",
            "leafCount",
            "addedAt",
            "updatedAt",
        }
    ),
    "Hub": frozenset(
        {
            "hubKey",
            "key",
            "title",
            "type",
            "hubIdentifier",
            "context",
            "size",
            "more",
            "style",
            "promoted",
        }
    ),
    "Meta": frozenset(),
    "Type": frozenset({"key", "type", "title", "active"}),
    "Filter": frozenset({"filter", "filterType", "key", "title", "type"}),
    "Sort": frozenset(
        {
            "active",
            "activeDirection",
            "default",
            "defaultDirection",
            "descKey",
            "firstCharacterKey",
            "key",
            "title",
        }
    ),
    "Field": frozenset({"key", "title", "type", "subType"}),
    "FieldType": frozenset({"type"}),
    "Operator": frozenset({"key", "title"}),
    "StatisticsResources": frozenset(
        {
            "timespan",
            "at",
            "hostCpuUtilization",
            "processCpuUtilization",
            "hostMemoryUtilization",
            "processMemoryUtilization",
        }
    ),
    "Release": frozenset({"key", "version", "added", "fixed", "downloadURL", "state"}),
}
# Present on some elements only, in real answers too (watched state, sort titles, the active
# sort...): required on at least one simulator element of the group, not on every one.
OPTIONAL: Final = frozenset(
    {
        "viewOffset",
        "viewCount",
        "lastViewedAt",
        "titleSort",
        "originalTitle",
        "active",
        "activeDirection",
        "default",
        "firstCharacterKey",
        "subType",
        "hubKey",
        "selected",
    }
)
KINDS: Final = frozenset(MATTERS)
SPLIT_BY_TYPE: Final = frozenset({"Video", "Directory", "Track"})

# ---------------------------------------------------------------------------------- PlexAPI fields

PY_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "MediaContainer": (
        "size",
        "totalSize",
        "offset",
        "identifier",
        "librarySectionID",
        "librarySectionTitle",
        "librarySectionUUID",
        "mediaTagPrefix",
        "mediaTagVersion",
        "allowSync",
    ),
    "PlexServer": (
        "friendlyName",
        "machineIdentifier",
        "version",
        "platform",
        "platformVersion",
        "myPlexUsername",
        "myPlex",
        "multiuser",
        "allowSync",
        "transcoderActiveVideoSessions",
        "updatedAt",
    ),
    "LibrarySection": (
        "key",
        "title",
        "type",
        "agent",
        "scanner",
        "uuid",
        "language",
        "locations",
        "updatedAt",
        "createdAt",
        "refreshing",
    ),
    "PlexClient": (
        "title",
        "machineIdentifier",
        "product",
        "platform",
        "platformVersion",
        "deviceClass",
        "protocolCapabilities",
        "version",
        "address",
        "state",
        "local",
        "device",
    ),
    "SystemAccount": ("id", "name", "key", "thumb"),
    "Video": (
        "ratingKey",
        "key",
        "guid",
        "title",
        "type",
        "addedAt",
        "updatedAt",
        "thumb",
        "art",
        "librarySectionID",
        "librarySectionTitle",
        "summary",
        "viewCount",
        "lastViewedAt",
        "guids",
    ),
    "Movie": (
        "viewOffset",
        "duration",
        "year",
        "originallyAvailableAt",
        "contentRating",
        "studio",
        "titleSort",
        "originalTitle",
        "tagline",
        "rating",
        "audienceRating",
        "media",
        "genres",
        "directors",
        "writers",
        "producers",
        "countries",
        "roles",
    ),
    "Episode": (
        "viewOffset",
        "duration",
        "year",
        "originallyAvailableAt",
        "contentRating",
        "index",
        "parentIndex",
        "grandparentTitle",
        "grandparentKey",
        "grandparentRatingKey",
        "grandparentGuid",
        "grandparentThumb",
        "parentTitle",
        "parentKey",
        "parentRatingKey",
        "parentGuid",
        "parentThumb",
        "media",
        "directors",
        "writers",
    ),
    "Show": (
        "leafCount",
        "viewedLeafCount",
        "childCount",
        "year",
        "index",
        "studio",
        "contentRating",
        "rating",
        "duration",
        "originallyAvailableAt",
        "genres",
        "roles",
        "banner",
        "theme",
    ),
    "Season": (
        "index",
        "parentTitle",
        "parentRatingKey",
        "parentKey",
        "leafCount",
        "viewedLeafCount",
    ),
    "Audio": (
        "ratingKey",
        "key",
        "guid",
        "title",
        "type",
        "addedAt",
        "updatedAt",
        "thumb",
        "art",
        "librarySectionID",
        "summary",
        "viewCount",
        "lastViewedAt",
        "index",
    ),
    "Artist": ("genres", "countries"),
    "Album": (
        "parentTitle",
        "parentRatingKey",
        "parentKey",
        "year",
        "leafCount",
        "viewedLeafCount",
        "studio",
        "originallyAvailableAt",
    ),
    "Track": (
        "grandparentTitle",
        "grandparentKey",
        "grandparentRatingKey",
        "parentTitle",
        "parentKey",
        "parentRatingKey",
        "parentIndex",
        "duration",
        "media",
    ),
    "Media": (
        "id",
        "videoResolution",
        "videoCodec",
        "container",
        "duration",
        "bitrate",
        "width",
        "height",
        "audioCodec",
        "audioChannels",
        "aspectRatio",
        "parts",
        "selected",
        "protocol",
    ),
    "MediaPart": (
        "id",
        "key",
        "file",
        "size",
        "container",
        "duration",
        "decision",
        "selected",
        "streams",
    ),
    "MediaPartStream": (
        "id",
        "codec",
        "streamType",
        "displayTitle",
        "languageCode",
        "language",
        "default",
        "selected",
        "index",
    ),
    "VideoStream": ("height", "width", "bitrate"),
    "AudioStream": ("channels",),
    "Guid": ("id",),
    "MediaTag": ("tag",),
    "Playlist": (
        "ratingKey",
        "key",
        "guid",
        "title",
        "playlistType",
        "smart",
        "leafCount",
        "duration",
        "addedAt",
        "updatedAt",
        "composite",
        "viewCount",
        "lastViewedAt",
    ),
    "PlayQueue": (
        "playQueueID",
        "playQueueSelectedItemID",
        "playQueueSelectedItemOffset",
        "playQueueSelectedMetadataItemID",
        "playQueueSourceURI",
        "playQueueTotalCount",
        "playQueueVersion",
        "identifier",
        "items",
        "selectedItem",
    ),
    "Collection": (
        "ratingKey",
        "key",
        "guid",
        "title",
        "subtype",
        "childCount",
        "minYear",
        "maxYear",
        "addedAt",
        "updatedAt",
        "thumb",
        "summary",
        "contentRating",
        "index",
    ),
    "Hub": (
        "title",
        "type",
        "hubIdentifier",
        "size",
        "key",
        "more",
        "style",
        "context",
        "_partialItems",
    ),
    "PlexSession": ("sessionKey", "player", "session", "transcodeSession", "usernames"),
    "Session": ("id", "bandwidth", "location"),
    "TranscodeSession": (
        "key",
        "videoDecision",
        "audioDecision",
        "progress",
        "speed",
        "duration",
        "container",
        "protocol",
        "sourceVideoCodec",
        "sourceAudioCodec",
        "videoCodec",
        "audioCodec",
        "audioChannels",
        "throttled",
        "complete",
        "context",
        "width",
        "height",
    ),
    "StatisticsResources": (
        "at",
        "timespan",
        "hostCpuUtilization",
        "processCpuUtilization",
        "hostMemoryUtilization",
        "processMemoryUtilization",
    ),
    "Release": ("version", "key", "state"),
    "FilteringType": ("key", "type", "title", "active", "fields", "filters", "sorts"),
    "FilteringFilter": ("filter", "filterType", "key", "title", "type"),
    "FilteringSort": ("key", "title", "defaultDirection", "descKey"),
    "FilteringField": ("key", "title", "type"),
    "FilteringFieldType": ("type", "operators"),
    "FilteringOperator": ("key", "title"),
}

# ---------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One recorded response and the equivalent simulator request."""

    fixture: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    setup: str | None = None
    build: str = "items"  # how PlexAPI turns the document into objects (see BUILDERS)


SIZE_ONLY: Final = {"X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0"}
META_ONLY: Final = {"includeMeta": "1", "includeAdvanced": "1"}
META: Final = {**META_ONLY, **SIZE_ONLY}
# The HA recordings of /collections carry a collection although they were asked for size 0;
# the simulator is asked for a real first page to compare the collection's structure.
FIRST_PAGE: Final = {"X-Plex-Container-Start": "0", "X-Plex-Container-Size": "50"}

CASES: Final[tuple[Case, ...]] = (
    Case("ha-core/plex_server_base.xml", "/", build="server"),
    Case("ha-core/plex_server_clients.xml", "/clients", build="clients"),
    Case("ha-core/plex_server_accounts.xml", "/accounts", build="accounts"),
    Case("ha-core/library_sections.xml", "/library/sections", build="sections"),
    Case("ha-core/library_movies_all.xml", "/library/sections/{movie_section}/all"),
    Case("ha-core/library_tvshows_all.xml", "/library/sections/{tv_section}/all"),
    Case(
        "ha-core/library_movies_size.xml",
        "/library/sections/{movie_section}/all",
        {"includeCollections": "0"},
        SIZE_ONLY,
    ),
    Case(
        "ha-core/library_music_size.xml",
        "/library/sections/{music_section}/all",
        {"includeCollections": "0"},
        SIZE_ONLY,
    ),
    Case(
        "ha-core/library_tvshows_size_episodes.xml",
        "/library/sections/{tv_section}/all",
        {"includeCollections": "0", "type": "4"},
        SIZE_ONLY,
    ),
    Case(
        "ha-core/library_movies_metadata.xml",
        "/library/sections/{movie_section}/all",
        META,
        build="meta",
    ),
    Case(
        "ha-core/library_tvshows_metadata.xml",
        "/library/sections/{tv_section}/all",
        META,
        build="meta",
    ),
    Case(
        "ha-core/library_music_metadata.xml",
        "/library/sections/{music_section}/all",
        META,
        build="meta",
    ),
    Case(
        "ha-core/library_movies_collections.xml",
        "/library/sections/{movie_section}/collections",
        META_ONLY,
        FIRST_PAGE,
        build="collections",
    ),
    Case(
        "ha-core/library_tvshows_collections.xml",
        "/library/sections/{tv_section}/collections",
        META_ONLY,
        FIRST_PAGE,
        build="collections",
    ),
    Case(
        "ha-core/library_music_collections.xml",
        "/library/sections/{music_section}/collections",
        META_ONLY,
        FIRST_PAGE,
        build="collections",
    ),
    Case(
        "ha-core/library_movies_filtertypes.xml",
        "/library/sections/{movie_section}/all",
        {"includeMeta": "1"},
        SIZE_ONLY,
        build="meta",
    ),
    Case(
        "ha-core/library_movies_sort.xml", "/library/sections/{movie_section}/sorts", build="none"
    ),
    Case("ha-core/library_tvshows_sort.xml", "/library/sections/{tv_section}/sorts", build="none"),
    Case("ha-core/library_music_sort.xml", "/library/sections/{music_section}/sorts", build="none"),
    Case("ha-core/media_1.xml", "/library/metadata/{movie}"),
    Case("ha-core/media_100.xml", "/library/metadata/{track}"),
    Case("ha-core/album.xml", "/library/metadata/{album}"),
    Case("ha-core/children_20.xml", "/library/metadata/{season}/children"),
    Case("ha-core/children_300.xml", "/library/metadata/{artist}/children"),
    Case("ha-core/grandchildren_300.xml", "/library/metadata/{artist}/allLeaves"),
    Case("ha-core/playlists.xml", "/playlists"),
    Case("ha-core/playqueue_1234.xml", "/playQueues/{queue}", setup="queue", build="playqueue"),
    Case(
        "ha-core/security_token.xml",
        "/security/token",
        {"type": "delegation", "scope": "all"},
        build="none",
    ),
    Case("ha-core/session_base.xml", "/status/sessions", setup="session"),
    Case("ha-core/hubs.xml", "/hubs"),
    Case("ha-core/empty_library.xml", "/library/onDeck"),
    Case("ha-core/release_nochange.xml", "/updater/status"),
    Case("plexapi/transcode_sessions.xml", "/transcode/sessions", setup="session"),
    Case("plexapi/statistics_resources.xml", "/statistics/resources"),
)

NOT_SERVED: Final[dict[str, str]] = {
    "ha-core/session_transient.xml": "a cinema-trailer pre-roll clip session (no clips simulated)",
    "ha-core/session_unknown.xml": "a clip with an invalid guid (no clips simulated)",
    "ha-core/livetv_sessions.xml": "Live TV / DVR is not simulated",
    "ha-core/hubs_library_section.xml": "music radio stations hub is not simulated",
    "ha-core/library_tvshows_most_recent.xml": "no known endpoint (README: inferred only)",
    "ha-core/player_plexweb_resources.xml": "a player's own /resources endpoint",
    "ha-core/player_plexhtpc_resources.xml": "a player's own /resources endpoint",
    "ha-core/release_new.xml": "the simulator always reports no update",
    "ha-core/release_new_not_updatable.xml": "the simulator always reports no update",
    "ha-core/empty_payload.xml": "plex.tv answer",
    "ha-core/plextv_account.xml": "plex.tv answer",
    "ha-core/plextv_shared_users.xml": "plex.tv answer",
    "ha-core/plextv_resources_one_server.xml": "plex.tv answer",
    "ha-core/plextv_resources_two_servers.xml": "plex.tv answer",
    "ha-core/plextv_resources_base.xml": "plex.tv answer",
    "plexapi/plextv_api_v2_user.xml": "plex.tv answer",
    "plexapi/plextv_invites.xml": "plex.tv answer",
    "plexapi/sonos_resources.xml": "sonos.plex.tv answer",
}


def load_fixture(name: str) -> str:
    """A fixture's text with its template placeholders filled like the HA tests do."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    values = TEMPLATE_VALUES.get(name)
    return text.format(**values) if values else text


def parse(text: str | bytes) -> ET.Element:
    """Parse a recorded or simulated document (both trusted)."""
    return ET.fromstring(text)  # noqa: S314


# ---------------------------------------------------------------------------------- structure


def _group(elem: ET.Element) -> str:
    kind = elem.get("type")
    return f"{elem.tag}:{kind}" if elem.tag in SPLIT_BY_TYPE and kind else elem.tag


def _groups(root: ET.Element) -> dict[str, list[ET.Element]]:
    out: dict[str, list[ET.Element]] = {}
    for elem in root.iter():
        if elem is not root:
            out.setdefault(_group(elem), []).append(elem)
    return out


def structure_problems(fixture: ET.Element, answer: ET.Element) -> list[str]:
    """Every way the simulator's answer falls short of the recorded structure."""
    problems: list[str] = []
    missing_root = set(fixture.attrib) - set(answer.attrib)
    if missing_root:
        problems.append(f"root lacks {sorted(missing_root)}")
    fixture_kinds = {e.tag for e in fixture.iter() if e is not fixture} & KINDS
    answer_kinds = {e.tag for e in answer.iter() if e is not answer}
    if fixture_kinds - answer_kinds:
        problems.append(f"no {sorted(fixture_kinds - answer_kinds)} elements")
    answer_groups = _groups(answer)
    for group, elems in _groups(fixture).items():
        tag = group.split(":", 1)[0]
        if tag not in MATTERS:
            continue
        required = set.intersection(*(set(e.attrib) for e in elems)) & MATTERS[tag]
        found = answer_groups.get(group)
        if not found:
            problems.append(f"no <{group}>")
            continue
        for elem in found:
            missing = required - OPTIONAL - set(elem.attrib)
            if missing:
                problems.append(f"<{group} {elem.get('key') or ''}> lacks {sorted(missing)}")
                break
        seen = set().union(*(e.attrib for e in found))
        if (required & OPTIONAL) - seen:
            problems.append(f"no <{group}> has {sorted((required & OPTIONAL) - seen)}")
    return problems


# ---------------------------------------------------------------------------------- PlexAPI


def _empty(value: Any) -> bool:
    if value is None or value in ("", []):
        return True
    return isinstance(value, float) and math.isnan(value)


def _fields_of(obj: object) -> list[str]:
    names: list[str] = []
    for cls in type(obj).__mro__:
        names.extend(PY_FIELDS.get(cls.__name__, ()))
    return names


def nonempty_fields(objects: Iterable[object], prefix: str = "", depth: int = 0) -> set[str]:
    """`Class.field` paths (through nested PlexAPI objects) that hold a value."""
    out: set[str] = set()
    for obj in objects:
        name = type(obj).__name__
        for attr in _fields_of(obj):
            value = getattr(obj, attr, None)
            if _empty(value):
                continue
            out.add(f"{prefix}{name}.{attr}")
            nested: list[object] = []
            if isinstance(value, PlexObject):
                nested = [value]
            elif isinstance(value, list):
                nested = [v for v in value if isinstance(v, PlexObject)]
            if nested and depth < 4:
                out |= nonempty_fields(nested, f"{prefix}{name}.{attr}>", depth + 1)
    return out


def _build_items(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return list(server.findItems(data, initpath=path))


def _build_sections(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    classes: dict[str | None, type[LibrarySection]] = {
        "movie": MovieSection,
        "show": ShowSection,
        "artist": MusicSection,
    }
    return [classes.get(e.get("type"), LibrarySection)(server, e, initpath=path) for e in data]


def _build_clients(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return [PlexClient(server=server, data=elem, initpath=path) for elem in data]


def _build_accounts(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return list(server.findItems(data, SystemAccount, initpath=path))


def _build_meta(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    types = server.findItems(data, FilteringType, rtag="Meta")
    field_types = server.findItems(data, FilteringFieldType, rtag="Meta")
    return [*types, *field_types]


def _build_collections(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return [*_build_meta(server, path, data), *server.findItems(data, initpath=path)]


def _build_playqueue(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return [PlayQueue(server, data, initpath=path)]


def _build_server(server: PlexServer, path: str, data: ET.Element) -> list[object]:
    return [server]


BUILDERS: Final[dict[str, Callable[[PlexServer, str, ET.Element], list[object]] | None]] = {
    "items": _build_items,
    "sections": _build_sections,
    "clients": _build_clients,
    "accounts": _build_accounts,
    "meta": _build_meta,
    "collections": _build_collections,
    "playqueue": _build_playqueue,
    "server": _build_server,
    "none": None,  # the MediaContainer only
}


def plexapi_fields(base_url: str, token: str, path: str, case: Case) -> set[str]:
    """Fetch path through PlexAPI from base_url and return the non-empty field paths."""
    builder = BUILDERS[case.build]
    params, headers = case.params, case.headers
    with requests.Session() as session:
        server = PlexServer(base_url, token, session=session, timeout=10)
        key = path
        if params:
            key += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        data = server.query(key, headers=headers)
        objects: list[object] = [MediaContainer(server, data, initpath=path)]
        if builder is not None:
            objects += builder(server, path, data)
        return nonempty_fields(objects)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PlexSimulator]:
    """A simulator with a library that has every kind of item the fixtures show."""
    monkeypatch.setenv("PLEXAPI_PLEXAPI_AUTORELOAD", "false")  # parse only, never re-fetch
    simulator = PlexSimulator(
        token="tok", library=LibraryConfig(seed=1), clients=3, seed=1, latency_ms=(5, 20)
    )
    lib = simulator.library
    movie = next(m for m in lib.movies() if m.guid.startswith("plex://movie/"))
    lib.set_progress(movie.rating_key, 555_000)  # media_1.xml: an in-progress, once-seen movie
    movie.view_count = 1
    lib.set_progress(lib.episodes()[0].rating_key, 60_000)  # hubs.xml continues an episode
    lib.mark_watched(lib.albums()[0].leaves()[0].rating_key)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def fixture_server() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A tiny HTTP server answering `/` with the server root and anything else with `body`."""
    state = {"body": ""}
    root = load_fixture("ha-core/plex_server_base.xml")

    async def answer(request: web.Request) -> web.Response:
        text = root if request.path == "/" else state["body"]
        return web.Response(text=text, content_type="text/xml")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", state
    finally:
        await runner.cleanup()


async def _refs(sim: PlexSimulator, case: Case, http: aiohttp.ClientSession) -> dict[str, str]:
    lib = sim.library
    movie = next(m for m in lib.movies() if m.view_offset and m.guid.startswith("plex://"))
    artist = lib.artists()[0]
    album = artist.children[0]
    refs = {
        "movie_section": str(lib.section_of_type("movie").id),  # type: ignore[union-attr]
        "tv_section": str(lib.section_of_type("show").id),  # type: ignore[union-attr]
        "music_section": str(lib.section_of_type("artist").id),  # type: ignore[union-attr]
        "movie": movie.rating_key,
        "season": lib.shows()[0].children[0].rating_key,
        "artist": artist.rating_key,
        "album": album.rating_key,
        "track": album.children[0].rating_key,
    }
    if case.setup == "session":
        transcoding = next(c for c in sim.clients.values() if c.stream_decision == "transcode")
        await transcoding.local_start(movie.rating_key, offset_ms=60_000)
    if case.setup == "queue":
        uri = f"server://{sim.machine_identifier}/com.plexapp.plugins.library/library/metadata/"
        async with http.post(
            sim.url + "/playQueues",
            params={"uri": uri + refs["track"], "type": "audio"},
            headers={"X-Plex-Token": sim.token},
        ) as resp:
            refs["queue"] = parse(await resp.read()).get("playQueueID") or ""
    return refs


# ---------------------------------------------------------------------------------- tests


def test_every_fixture_is_accounted_for() -> None:
    recorded = {
        str(p.relative_to(FIXTURES))
        for folder in ("ha-core", "plexapi")
        for p in (FIXTURES / folder).glob("*.xml")
    }
    compared = {case.fixture for case in CASES}
    assert compared.isdisjoint(NOT_SERVED)
    assert recorded == compared | set(NOT_SERVED)


def test_fixtures_are_byte_exact_copies() -> None:
    shared = Path("/work/shared/plex-fixtures")
    if not shared.is_dir():
        pytest.skip("the shared fixture collection is not on this machine")
    for source in shared.rglob("*"):
        if source.is_file():
            copy = FIXTURES / source.relative_to(shared)
            assert copy.read_bytes() == source.read_bytes(), copy


@pytest.mark.parametrize("case", CASES, ids=[c.fixture for c in CASES])
async def test_structure_matches_recording(
    case: Case,
    sim: PlexSimulator,
    fixture_server: tuple[str, dict[str, str]],
) -> None:
    async with aiohttp.ClientSession() as http:
        refs = await _refs(sim, case, http)
        path = case.path.format(**refs)
        async with http.get(
            sim.url + path,
            params=case.params,
            headers={"X-Plex-Token": sim.token, **case.headers},
        ) as resp:
            assert resp.status == 200
            body = await resp.read()
    recorded = load_fixture(case.fixture)
    assert structure_problems(parse(recorded), parse(body)) == []

    base_url, state = fixture_server
    state["body"] = recorded
    from_fixture = await asyncio.to_thread(plexapi_fields, base_url, "x", path, case)
    from_sim = await asyncio.to_thread(plexapi_fields, sim.url, sim.token, path, case)
    assert from_fixture, "PlexAPI read nothing from the fixture"
    assert sorted(from_fixture - from_sim) == []


def test_structure_check_catches_a_missing_attribute() -> None:
    """The comparison itself works: an answer without Part `file` and Genre elements fails."""
    recorded = parse(load_fixture("ha-core/media_1.xml"))
    broken = parse(load_fixture("ha-core/media_1.xml"))
    for part in broken.iter("Part"):
        del part.attrib["file"]
    video = next(iter(broken.iter("Video")))
    for genre in video.findall("Genre"):
        video.remove(genre)
    problems = structure_problems(recorded, broken)
    assert any("Part" in p and "file" in p for p in problems)
    assert any("Genre" in p for p in problems)


# ================================================================================================
# PLEXUS PARSER CONFORMANCE — place for custom_components/plexus/plex/parse.py
#
# Add cases as (fixture, simulator path, parser, extract) tuples: `parser` is a function of
# custom_components.plexus.plex.parse taking the response body; `extract` turns its result into
# a comparable set (e.g. the model fields that are non-empty). The test below parses the
# fixture and the simulator's answer for the same endpoint and requires every field the parser
# fills from the fixture to be filled from the simulator too. Example:
#
#     from custom_components.plexus.plex import parse as plexus_parse
#     PLEXUS_PARSER_CASES = [
#         ("ha-core/session_base.xml", "/status/sessions", plexus_parse.parse_sessions,
#          nonempty_dataclass_fields),
#     ]
# ================================================================================================


def _nonempty_fields(result: Any) -> set[str]:
    """Names of the model fields filled (non-empty) in any parsed object."""
    items = result if isinstance(result, list) else [result]
    filled: set[str] = set()
    for item in items:
        if isinstance(item, str):
            filled.add("name" if item else "")
            continue
        for fld in dataclasses.fields(item):
            if getattr(item, fld.name) not in (None, "", 0, (), frozenset()):
                filled.add(fld.name)
    filled.discard("")
    return filled


def _library_items(body: bytes) -> Any:
    return plexus_library.parse_items(body)[0]


PLEXUS_PARSER_CASES: list[tuple[str, str, Callable[[bytes], Any], Callable[[Any], set[str]]]] = [
    ("ha-core/plex_server_base.xml", "/", plexus_parse.parse_server_info, _nonempty_fields),
    ("ha-core/plex_server_clients.xml", "/clients", plexus_parse.parse_clients, _nonempty_fields),
    (
        "ha-core/plex_server_accounts.xml",
        "/accounts",
        plexus_parse.parse_accounts,
        _nonempty_fields,
    ),
    (
        "ha-core/library_sections.xml",
        "/library/sections",
        plexus_parse.parse_sections,
        _nonempty_fields,
    ),
    ("ha-core/session_base.xml", "/status/sessions", plexus_parse.parse_sessions, _nonempty_fields),
    (
        "ha-core/library_movies_all.xml",
        "/library/sections/{movie_section}/all",
        _library_items,
        _nonempty_fields,
    ),
    ("ha-core/media_1.xml", "/library/metadata/{movie}", _library_items, _nonempty_fields),
]


@pytest.mark.parametrize(
    ("fixture", "path", "parser", "extract"),
    PLEXUS_PARSER_CASES,
    ids=[c[0] for c in PLEXUS_PARSER_CASES],
)
async def test_plexus_parser_matches_recording(
    fixture: str,
    path: str,
    parser: Callable[[bytes], Any],
    extract: Callable[[Any], set[str]],
    sim: PlexSimulator,
) -> None:
    async with aiohttp.ClientSession() as http:
        refs = await _refs(sim, Case(fixture, path, setup="session"), http)
        async with http.get(
            sim.url + path.format(**refs), headers={"X-Plex-Token": sim.token}
        ) as resp:
            body = await resp.read()
    from_fixture = extract(parser(load_fixture(fixture).encode()))
    from_sim = extract(parser(body))
    assert from_fixture
    assert sorted(from_fixture - from_sim) == []
