"""HTTP handlers of the simulator: one route table, small handlers, shared helpers.

Every request goes through `dispatch`: log, artificial delay, forced error, route lookup,
token check, handler. Handlers get a `Ctx` and return an aiohttp response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
import contextlib
from dataclasses import dataclass
from http import HTTPStatus
import re
import secrets
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web

from . import images, render
from .library import SEARCH_TYPES, TYPE_BY_NUMBER, Item, Section
from .query import apply_filters, apply_sort, filters_key, parse_filters
from .render import AttrValue, container, element, item_element
from .server import PlexSimulator

type Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]

SIM_KEY: Final = web.AppKey("plex_simulator", PlexSimulator)
DEFAULT_LIST_LIMIT: Final = 50
# The playlist type an item belongs in (anything else is video).
_PLAYLIST_KINDS: Final = {"track": "audio", "album": "audio", "artist": "audio", "photo": "photo"}
TIMELINE_POLL_MAX_WAIT: Final = 20.0
_TYPE_TITLES: Final = {
    "movie": "Movies",
    "show": "Shows",
    "season": "Seasons",
    "episode": "Episodes",
    "artist": "Artists",
    "album": "Albums",
    "track": "Tracks",
}
_SERVER_DIRECTORIES: Final = (
    "activities",
    "butler",
    "channels",
    "clients",
    "devices",
    "diagnostics",
    "hubs",
    "library",
    "livetv",
    "media",
    "metadata",
    "neighborhood",
    "playQueues",
    "player",
    "playlists",
    "resources",
    "search",
    "server",
    "servers",
    "statistics",
    "system",
    "transcode",
    "updater",
    "user",
)


@dataclass(slots=True)
class Ctx:
    """What a handler gets: the simulator, the request, the parsed query and path groups."""

    sim: PlexSimulator
    request: web.Request
    query: dict[str, str]
    pairs: list[tuple[str, str]]
    match: re.Match[str]

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, falling back to the header of the same name."""
        if name in self.query:
            return self.query[name]
        return self.request.headers.get(name, default)

    def flag(self, name: str) -> bool:
        """True for `name=1`."""
        return self.query.get(name, "0") not in ("0", "", "false")

    def paging(self) -> tuple[int, int | None, bool]:
        """(start, size or None, whether paging was asked for) from query or headers."""
        start = self.param("X-Plex-Container-Start")
        size = self.param("X-Plex-Container-Size")
        return (
            int(start) if start and start.isdigit() else 0,
            int(size) if size and size.isdigit() else None,
            start is not None or size is not None,
        )


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of the route table."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True


# ---------------------------------------------------------------------------------- responses

XML_HEADERS: Final = {"Content-Type": "text/xml;charset=utf-8"}


def xml(body: str, status: int = 200) -> web.Response:
    """An XML response the way PMS sends it."""
    return web.Response(body=body.encode(), status=status, headers=XML_HEADERS)


def error_response(status: int) -> web.Response:
    """The small HTML page PMS answers errors with."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = (
        f"<html><head><title>{phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html")


def ok_response() -> web.Response:
    """What a player answers to a successful command."""
    return xml(f'{render.XML_DECL}<Response code="200" status="OK" />\n')


def empty_ok() -> web.Response:
    """A 200 with no body (scrobble, refresh...)."""
    return web.Response(status=200)


def paged[T](
    ctx: Ctx, items: Sequence[T], *, default_limit: int | None = None
) -> tuple[Sequence[T], list[tuple[str, AttrValue]]]:
    """Apply X-Plex-Container-Start/Size; return the page and its size/totalSize/offset attrs."""
    start, size, asked = ctx.paging()
    if size is None and default_limit is not None and not asked:
        size = default_limit
    page = items[start : start + size] if size is not None else items[start:]
    attrs: list[tuple[str, AttrValue]] = [("size", len(page))]
    if asked:
        attrs += [("totalSize", len(items)), ("offset", start)]
    return page, attrs


def _wanted_type(ctx: Ctx, section: Section) -> str | None:
    raw = ctx.query.get("type")
    if raw is None:
        return section.item_types[0]
    kind = TYPE_BY_NUMBER.get(int(raw)) if raw.isdigit() else raw
    return kind if kind in section.item_types else None


def _section_root(section: Section, item_type: str) -> list[tuple[str, AttrValue]]:
    return [
        ("allowSync", True),
        ("art", f"/:/resources/{section.type}-fanart.jpg"),
        ("identifier", render.IDENTIFIER),
        ("librarySectionID", section.id),
        ("librarySectionTitle", section.title),
        ("librarySectionUUID", section.uuid),
        ("mediaTagPrefix", render.MEDIA_TAG_PREFIX),
        ("mediaTagVersion", render.MEDIA_TAG_VERSION),
        ("nocache", True),
        ("sortAsc", True),
        ("thumb", f"/:/resources/{section.type}.png"),
        ("title", section.title),
        ("title1", section.title),
        ("title2", f"All {_TYPE_TITLES.get(item_type, item_type)}"),
        ("viewGroup", item_type),
        ("viewMode", 131122 if item_type in ("movie", "show", "episode") else 65592),
    ]


def _csv(value: str | None) -> frozenset[str]:
    return frozenset(v for v in (value or "").split(",") if v)


def _items_xml(ctx: Ctx, items: Sequence[Item], *, streams: bool = False) -> list[str]:
    """List-view elements honouring includeGuids, includeFields and excludeElements."""
    lib = ctx.sim.library
    guids = ctx.flag("includeGuids")
    fields = _csv(ctx.query.get("includeFields")) or None
    exclude = _csv(ctx.query.get("excludeElements"))
    return [
        item_element(item, lib, guids=guids, streams=streams, fields=fields, exclude=exclude)
        for item in items
    ]


# ---------------------------------------------------------------------------------- server


async def h_root(ctx: Ctx) -> web.StreamResponse:
    """`/`: the server's capabilities and identity."""
    sim = ctx.sim
    active_transcodes = sum(1 for c in sim.active_clients() if c.stream_decision == "transcode")
    pairs: list[tuple[str, AttrValue]] = [
        ("size", len(_SERVER_DIRECTORIES)),
        ("allowCameraUpload", True),
        ("allowChannelAccess", True),
        ("allowMediaDeletion", True),
        ("allowSharing", True),
        ("allowSync", True),
        ("allowTuners", True),
        ("backgroundProcessing", True),
        ("certificate", True),
        ("companionProxy", True),
        ("countryCode", "usa"),
        ("diagnostics", "logs,databases,streaminglogs"),
        ("eventStream", True),
        ("friendlyName", sim.friendly_name),
        ("hubSearch", True),
        ("itemClusters", True),
        ("livetv", 7),
        ("machineIdentifier", sim.machine_identifier),
        ("mediaProviders", True),
        ("multiuser", True),
        ("musicAnalysis", 2),
        ("myPlex", True),
        ("myPlexMappingState", "mapped"),
        ("myPlexSigninState", "ok"),
        ("myPlexSubscription", True),
        ("myPlexUsername", sim.my_plex_username),
        ("offlineTranscode", True),
        (
            "ownerFeatures",
            (
                "collections,content_filter,hwtranscode,livetv,lyrics,music_videos,"
                "pass,photo_autotags,premium_music_metadata,session_bandwidth_restrictions,"
                "session_kick,sync,trailers,webhooks"
            ),
        ),
        ("photoAutoTag", True),
        ("platform", sim.platform),
        ("platformVersion", sim.platform_version),
        ("pluginHost", True),
        ("pushNotifications", False),
        ("readOnlyLibraries", False),
        ("requestParametersInCookie", True),
        ("streamingBrainABRVersion", 3),
        ("streamingBrainVersion", 2),
        ("sync", True),
        ("transcoderActiveVideoSessions", active_transcodes),
        ("transcoderAudio", True),
        ("transcoderLyrics", True),
        ("transcoderPhoto", True),
        ("transcoderSubtitles", True),
        ("transcoderVideo", True),
        ("transcoderVideoBitrates", "64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000"),
        ("transcoderVideoQualities", "0,1,2,3,4,5,6,7,8,9,10,11,12"),
        ("transcoderVideoResolutions", "128,128,160,240,320,480,768,720,720,1080,1080,1080,1080"),
        ("updatedAt", sim.started_at),
        ("updater", True),
        ("version", sim.version),
        ("voiceSearch", True),
    ]
    children = [
        element("Directory", [("count", 1), ("key", key), ("title", key)])
        for key in _SERVER_DIRECTORIES
    ]
    return xml(container(pairs, children))


async def h_identity(ctx: Ctx) -> web.StreamResponse:
    """`/identity` (no token needed, as on a real server)."""
    sim = ctx.sim
    return xml(
        container(
            [
                ("size", 0),
                ("apiVersion", "1.1.1"),
                ("claimed", True),
                ("machineIdentifier", sim.machine_identifier),
                ("version", sim.version),
            ]
        )
    )


async def h_clients(ctx: Ctx) -> web.StreamResponse:
    """`/clients`: online players."""
    online = [c for c in ctx.sim.clients.values() if c.online]
    return xml(container([("size", len(online))], map(render.client_server_element, online)))


async def h_accounts(ctx: Ctx) -> web.StreamResponse:
    """`/accounts` (and `/accounts/<id>`)."""
    wanted = ctx.match.groupdict().get("id")
    accounts = [a for a in ctx.sim.accounts if wanted is None or str(a[0]) == wanted]
    children = [
        element(
            "Account",
            [
                ("id", account_id),
                ("key", f"/accounts/{account_id}"),
                ("name", name),
                ("defaultAudioLanguage", "en"),
                ("autoSelectAudio", True),
                ("defaultSubtitleLanguage", "en"),
                ("subtitleMode", 1),
                ("thumb", f"https://plex.tv/users/{account_id:016x}/avatar" if account_id else ""),
            ],
        )
        for account_id, name in accounts
    ]
    return xml(
        container(
            [("size", len(children)), ("identifier", "com.plexapp.system.accounts")], children
        )
    )


async def h_security_token(ctx: Ctx) -> web.StreamResponse:
    """`/security/token`: a transient token valid until the main token changes."""
    token = f"transient-{secrets.token_hex(16)}"
    ctx.sim.transient_tokens.add(token)
    return xml(container([("size", 0), ("token", token)]))


async def h_statistics_resources(ctx: Ctx) -> web.StreamResponse:
    """`/statistics/resources`: CPU and memory samples."""
    now = int(asyncio.get_running_loop().time()) + ctx.sim.started_at
    children = [
        element(
            "StatisticsResources",
            [
                ("timespan", 6),
                ("at", now - 6 * n),
                ("hostCpuUtilization", f"{5.0 + n:.3f}"),
                ("processCpuUtilization", f"{1.0 + n / 2:.3f}"),
                ("hostMemoryUtilization", "42.000"),
                ("processMemoryUtilization", "3.500"),
            ],
        )
        for n in range(3)
    ]
    return xml(container([("size", len(children))], children))


async def h_updater_status(ctx: Ctx) -> web.StreamResponse:
    """`/updater/status`: the releases the server knows (`sim.update`: None, "new" or
    "new_not_installable", like the three recorded answers of real servers)."""
    sim = ctx.sim
    newer = sim.update is not None
    release = element(
        "Release",
        [
            ("key", f"https://plex.tv/updater/releases/{9999 if newer else 1}"),
            ("version", "1.50.0" if newer else sim.version),
            ("added", "" if not newer else "Faster library scans"),
            ("fixed", "" if not newer else "Summary of\nrelease notes"),
            ("downloadURL", ""),
            ("state", "notify"),
        ],
    )
    return xml(
        container(
            [
                ("size", 1),
                ("canInstall", sim.update == "new"),
                ("checkedAt", sim.started_at),
                ("downloadURL", "https://plex.tv/downloads/latest/5?channel=0"),
                ("status", 0),
            ],
            [release],
        )
    )


async def h_updater_apply(ctx: Ctx) -> web.StreamResponse:
    """`PUT /updater/apply`: installs the release where the server can (else HTTP 500)."""
    sim = ctx.sim
    if sim.update != "new":
        return web.Response(status=500)
    sim.version, sim.update = "1.50.0", None
    return web.Response(status=200)


async def h_updater_check(ctx: Ctx) -> web.StreamResponse:
    """`PUT /updater/check`."""
    return empty_ok()


# ---------------------------------------------------------------------------------- library


async def h_library(ctx: Ctx) -> web.StreamResponse:
    """`/library`."""
    children = [
        element("Directory", [("key", "sections"), ("title", "Library Sections")]),
        element("Directory", [("key", "recentlyAdded"), ("title", "Recently Added Content")]),
        element("Directory", [("key", "onDeck"), ("title", "On Deck Content")]),
    ]
    return xml(
        container(
            [
                ("size", 3),
                ("allowSync", False),
                ("art", "/:/resources/library-art.jpg"),
                ("content", ""),
                ("identifier", render.IDENTIFIER),
                ("mediaTagPrefix", render.MEDIA_TAG_PREFIX),
                ("mediaTagVersion", render.MEDIA_TAG_VERSION),
                ("title1", "Plex Library"),
                ("title2", ""),
            ],
            children,
        )
    )


async def h_sections(ctx: Ctx) -> web.StreamResponse:
    """`/library/sections`."""
    sections = list(ctx.sim.library.sections.values())
    return xml(
        container(
            [
                ("size", len(sections)),
                ("allowSync", False),
                ("identifier", render.IDENTIFIER),
                ("mediaTagPrefix", render.MEDIA_TAG_PREFIX),
                ("mediaTagVersion", render.MEDIA_TAG_VERSION),
                ("title1", "Plex Library"),
            ],
            map(render.section_element, sections),
        )
    )


def _section(ctx: Ctx) -> Section | None:
    return ctx.sim.library.sections.get(ctx.match["section"])


def _query_items(ctx: Ctx, section: Section, item_type: str) -> list[Item]:
    lib = ctx.sim.library
    items = lib.items_of_type(section.id, item_type)
    filters = parse_filters(ctx.pairs)
    sort = ctx.query.get("sort", "")
    if not filters and not sort:
        return items
    now = lib.clock()

    def build() -> list[Item]:
        result = apply_filters(items, filters, now) if filters else list(items)
        return apply_sort(result, sort, item_type) if sort else result

    if any(f.relative for f in filters):
        return build()
    return lib.cached(("all", section.id, item_type, sort, filters_key(filters)), build)


async def h_section_all(ctx: Ctx) -> web.StreamResponse:
    """`/library/sections/<id>/all`: type, filters, sort, limit, paging, includeGuids/Meta."""
    section = _section(ctx)
    if section is None:
        return error_response(404)
    item_type = _wanted_type(ctx, section)
    items: Sequence[Item] = _query_items(ctx, section, item_type) if item_type else []
    limit = ctx.query.get("limit")
    if limit and limit.isdigit():
        items = items[: int(limit)]
    page, page_attrs = paged(ctx, items)
    children = _items_xml(ctx, page)
    if ctx.flag("includeMeta"):
        children.insert(
            0, render.meta_element(section, section.item_types, item_type or section.item_types[0])
        )
    return xml(container(page_attrs + _section_root(section, item_type or "unknown"), children))


async def h_section_collections(ctx: Ctx) -> web.StreamResponse:
    """`/library/sections/<id>/collections`: no collections (Meta when asked)."""
    section = _section(ctx)
    if section is None:
        return error_response(404)
    lib = ctx.sim.library
    collections = [c for c in lib.collections.values() if c.section_id == section.id]
    page, page_attrs = paged(ctx, collections)
    root = [(k, v) for k, v in _section_root(section, section.item_types[0]) if k != "nocache"]
    children = [render.collection_element(c, lib) for c in page]
    if ctx.flag("includeMeta"):
        children.insert(0, render.meta_element(section, ("collection",), "collection"))
    return xml(container(page_attrs + root, children))


async def h_collection(ctx: Ctx) -> web.StreamResponse:
    """`/library/collections/<id>` and `/library/collections/<id>/children`."""
    lib = ctx.sim.library
    collection = lib.collections.get(ctx.match["id"])
    if collection is None:
        return error_response(404)
    section = lib.sections.get(str(collection.section_id))
    if ctx.match["children"]:
        items = [lib.items[str(i)] for i in collection.items if str(i) in lib.items]
        page, page_attrs = paged(ctx, items)
        return xml(
            container(page_attrs + render.library_container_attrs(section), _items_xml(ctx, page))
        )
    return xml(
        container(
            [("size", 1), *render.library_container_attrs(section)],
            [render.collection_element(collection, lib)],
        )
    )


async def h_section_sorts(ctx: Ctx) -> web.StreamResponse:
    """`/library/sections/<id>/sorts`."""
    section = _section(ctx)
    if section is None:
        return error_response(404)
    item_type = _wanted_type(ctx, section) or section.item_types[0]
    body = render.sort_elements(section, item_type, tag="Directory", active=False)
    return xml(
        container(
            [
                ("size", body.count("<Directory")),
                ("allowSync", False),
                ("art", f"/:/resources/{section.type}-fanart.jpg"),
                ("content", "secondary"),
                ("identifier", render.IDENTIFIER),
                ("mediaTagPrefix", render.MEDIA_TAG_PREFIX),
                ("mediaTagVersion", render.MEDIA_TAG_VERSION),
                ("nocache", True),
                ("thumb", "/:/resources/video.png"),
                ("title1", section.title),
                ("viewGroup", "secondary"),
                ("viewMode", 65592),
            ],
            [body],
        )
    )


async def h_section_refresh(ctx: Ctx) -> web.StreamResponse:
    """`/library/sections/<id|all>/refresh`: start a simulated scan (activity notifications)."""
    lib = ctx.sim.library
    wanted = ctx.match["section"]
    if wanted == "all":
        targets = list(lib.sections)
    elif wanted in lib.sections:
        targets = [wanted]
    else:
        return error_response(404)
    for section_id in targets:
        ctx.sim.start_scan(section_id)
    return empty_ok()


def _recent(ctx: Ctx, section: Section | None) -> list[Item]:
    lib = ctx.sim.library

    def build() -> list[Item]:
        kinds: tuple[str, ...] = ("movie", "episode", "album")
        if section is not None:
            kinds = {"movie": ("movie",), "show": ("episode",), "artist": ("album",)}[section.type]
        candidates: list[Item] = []
        for (section_id, kind), items in lib._lists.items():
            if kind in kinds and (section is None or section_id == section.id):
                candidates.extend(items)
        candidates.sort(key=lambda it: (it.added_at, it.id), reverse=True)
        return candidates

    return lib.cached(("recent", section.id if section else None), build)


def _library_list_root(section: Section | None) -> list[tuple[str, AttrValue]]:
    return render.library_container_attrs(section)


async def h_recently_added(ctx: Ctx) -> web.StreamResponse:
    """`/library/recentlyAdded` and `/library/sections/<id>/recentlyAdded`."""
    section = None
    if "section" in ctx.match.groupdict():
        section = _section(ctx)
        if section is None:
            return error_response(404)
    page, page_attrs = paged(ctx, _recent(ctx, section), default_limit=DEFAULT_LIST_LIMIT)
    return xml(container(page_attrs + _library_list_root(section), _items_xml(ctx, page)))


def _on_deck(ctx: Ctx, section: Section | None) -> list[Item]:
    lib = ctx.sim.library

    def build() -> list[Item]:
        found = [
            it
            for it in lib.items.values()
            if it.view_offset > 0
            and it.type in ("movie", "episode")
            and (section is None or it.section_id == section.id)
        ]
        found.sort(key=lambda it: (it.last_viewed_at or 0, it.id), reverse=True)
        return found

    return lib.cached(("ondeck", section.id if section else None), build)


async def h_on_deck(ctx: Ctx) -> web.StreamResponse:
    """`/library/onDeck` (in-progress movies and episodes, latest first)."""
    section = None
    if "section" in ctx.match.groupdict():
        section = _section(ctx)
        if section is None:
            return error_response(404)
    page, page_attrs = paged(ctx, _on_deck(ctx, section), default_limit=DEFAULT_LIST_LIMIT)
    return xml(container(page_attrs + _library_list_root(section), _items_xml(ctx, page)))


async def h_metadata(ctx: Ctx) -> web.StreamResponse:
    """`/library/metadata/<key>[,<key>...]`: full items (Guid, Media/Part/Stream, all tags)."""
    lib = ctx.sim.library
    items = [it for key in ctx.match["keys"].split(",") if (it := lib.get(key)) is not None]
    if not items and (playlist := lib.playlists.get(ctx.match["keys"])) is not None:
        # Playlists are metadata items too: PMS answers their rating key here.
        return xml(container([("size", 1)], [render.playlist_element(playlist, lib)]))
    if not items:
        return error_response(404)
    section = lib.sections.get(str(items[0].section_id))
    children = [item_element(it, lib, full=True) for it in items]
    return xml(
        container([("size", len(items)), *render.library_container_attrs(section)], children)
    )


async def h_metadata_delete(ctx: Ctx) -> web.StreamResponse:
    """`DELETE /library/metadata/<key>`."""
    key = ctx.match["keys"]
    if key not in ctx.sim.library:
        return error_response(404)
    ctx.sim.library.delete_item(key)
    return empty_ok()


def _parent_root(
    item: Item, section: Section | None, view_group: str
) -> list[tuple[str, AttrValue]]:
    attrs = render.library_container_attrs(section)
    parent = item.parent
    attrs = [(k, v) for k, v in attrs if k != "art"]
    attrs += [
        ("art", f"/library/metadata/{(parent or item).id}/art/{(parent or item).updated_at}"),
        ("key", item.id),
        ("nocache", True),
        ("parentIndex", item.index),
        ("parentTitle", item.title),
        ("parentYear", item.year),
        ("summary", item.summary),
        ("thumb", f"/library/metadata/{item.id}/thumb/{item.updated_at}"),
        ("title1", section.title if section else ""),
        ("title2", item.title),
        ("viewGroup", view_group),
        ("viewMode", 65592),
    ]
    if parent is not None:
        attrs += [
            ("grandparentRatingKey", parent.id),
            ("grandparentTitle", parent.title),
            ("grandparentThumb", f"/library/metadata/{parent.id}/thumb/{parent.updated_at}"),
        ]
    return attrs


async def h_children(ctx: Ctx) -> web.StreamResponse:
    """`/library/metadata/<key>/children`: seasons, episodes, albums or tracks."""
    lib = ctx.sim.library
    item = lib.get(ctx.match["key"])
    if item is None:
        return error_response(404)
    page, page_attrs = paged(ctx, item.children)
    section = lib.sections.get(str(item.section_id))
    view_group = item.children[0].type if item.children else "secondary"
    leaves_listed = view_group in ("episode", "track")
    children = _items_xml(ctx, page, streams=leaves_listed)
    return xml(container(page_attrs + _parent_root(item, section, view_group), children))


async def h_all_leaves(ctx: Ctx) -> web.StreamResponse:
    """`/library/metadata/<key>/allLeaves`: every episode of a show, every track of an artist."""
    lib = ctx.sim.library
    item = lib.get(ctx.match["key"])
    if item is None:
        return error_response(404)
    leaves = item.leaves() if item.type not in ("movie", "episode", "track") else []
    page, page_attrs = paged(ctx, leaves)
    section = lib.sections.get(str(item.section_id))
    view_group = leaves[0].type if leaves else "secondary"
    root = [*page_attrs, *_parent_root(item, section, view_group), ("mixedParents", True)]
    return xml(container(root, _items_xml(ctx, page)))


# ---------------------------------------------------------------------------------- hubs


def _hub(
    hub_type: str,
    title: str,
    identifier: str,
    items: Sequence[Item],
    more: bool,
    *,
    key: str | None = None,
    context: str = "",
    style: str = "shelf",
    promoted: bool | None = None,
    lib_xml: list[str],
) -> str:
    pairs: list[tuple[str, AttrValue]] = [
        (
            "hubKey",
            "/library/metadata/" + ",".join(it.rating_key for it in items) if items else None,
        ),
        ("key", key),
        ("title", title),
        ("type", hub_type),
        ("hubIdentifier", identifier),
        ("context", context),
        ("size", len(items)),
        ("more", more),
        ("style", style),
        ("promoted", promoted),
    ]
    return element("Hub", pairs, lib_xml)


async def h_hub_search(ctx: Ctx) -> web.StreamResponse:
    """`/hubs/search?query=...&limit=...&sectionId=...`: one Hub per type with matches."""
    from .library import fold

    lib = ctx.sim.library
    needle = fold(ctx.query.get("query", "").strip())
    limit_raw = ctx.query.get("limit", "")
    limit = int(limit_raw) if limit_raw.isdigit() and int(limit_raw) > 0 else 10
    section_id = ctx.query.get("sectionId")
    hubs: list[str] = []
    for kind in ("movie", "show", "season", "episode", "artist", "album", "track"):
        found: list[Item] = []
        more = False
        for (sid, list_kind), items in lib._lists.items():
            if list_kind != kind or (section_id and str(sid) != section_id):
                continue
            for item in items:
                if needle and needle in item.title_lc:
                    if len(found) >= limit:
                        more = True
                        break
                    found.append(item)
        if found:
            hubs.append(
                _hub(
                    kind,
                    _TYPE_TITLES[kind],
                    kind,
                    found,
                    more,
                    context=f"hub.{kind}",
                    lib_xml=_items_xml(ctx, found),
                )
            )
    playlists = [p for p in lib.playlists.values() if needle and needle in fold(p.title)]
    if playlists and not section_id:
        hubs.append(
            element(
                "Hub",
                [
                    ("title", "Playlists"),
                    ("type", "playlist"),
                    ("hubIdentifier", "playlist"),
                    ("context", ""),
                    ("size", len(playlists)),
                    ("more", False),
                    ("style", "shelf"),
                ],
                [render.playlist_element(p, lib) for p in playlists[:limit]],
            )
        )
    return xml(container([("size", len(hubs))], hubs))


async def h_hubs_home(ctx: Ctx) -> web.StreamResponse:
    """`/hubs`: the home screen hubs (continue watching, recently added, playlists)."""
    lib = ctx.sim.library
    count = int(ctx.query.get("count", "12") or 12)
    hubs: list[str] = []
    deck = _on_deck(ctx, None)
    hubs.append(
        _hub(
            "mixed",
            "Continue Watching",
            "home.continue",
            deck[:count],
            len(deck) > count,
            key="/hubs/home/continueWatching",
            context="hub.home.continue",
            style="hero",
            promoted=True,
            lib_xml=_items_xml(ctx, deck[:count], streams=True),
        )
    )
    for section_type, hub_type, title, ident in (
        ("movie", "movie", "Recently Added Movies", "home.movies.recent"),
        ("show", "episode", "Recently Added TV", "home.television.recent"),
        ("artist", "album", "Recently Added Music", "home.music.recent"),
    ):
        section = lib.section_of_type(section_type)
        recent = _recent(ctx, section) if section else []
        hubs.append(
            _hub(
                hub_type,
                title,
                ident,
                recent[:count],
                len(recent) > count,
                key=f"/hubs/home/recentlyAdded?type={SEARCH_TYPES[hub_type]}",
                context=f"hub.{ident}",
                promoted=True,
                lib_xml=_items_xml(ctx, recent[:count], streams=True),
            )
        )
    playlists = list(lib.playlists.values())[:count]
    hubs.append(
        element(
            "Hub",
            [
                ("hubKey", "/library/metadata/" + ",".join(p.rating_key for p in playlists)),
                ("key", "/playlists/all?type=15&sort=lastViewedAt:desc&playlistType=video,audio"),
                ("title", "Recent Playlists"),
                ("type", "playlist"),
                ("hubIdentifier", "home.playlists"),
                ("context", "hub.home.playlists"),
                ("size", len(playlists)),
                ("more", False),
                ("style", "shelf"),
                ("promoted", True),
            ],
            [render.playlist_element(p, lib) for p in playlists],
        )
    )
    return xml(
        container(
            [("size", len(hubs)), ("allowSync", True), ("identifier", render.IDENTIFIER)], hubs
        )
    )


# ---------------------------------------------------------------------------------- playlists


async def h_playlists(ctx: Ctx) -> web.StreamResponse:
    """`/playlists` (optionally `playlistType=video|audio`)."""
    lib = ctx.sim.library
    wanted = set((ctx.query.get("playlistType") or "").split(",")) - {""}
    playlists = [p for p in lib.playlists.values() if not wanted or p.playlist_type in wanted]
    return xml(
        container([("size", len(playlists))], [render.playlist_element(p, lib) for p in playlists])
    )


async def h_playlist(ctx: Ctx) -> web.StreamResponse:
    """`/playlists/<id>`."""
    lib = ctx.sim.library
    playlist = lib.playlists.get(ctx.match["id"])
    if playlist is None:
        return error_response(404)
    return xml(container([("size", 1)], [render.playlist_element(playlist, lib)]))


async def h_playlist_items(ctx: Ctx) -> web.StreamResponse:
    """`/playlists/<id>/items`."""
    lib = ctx.sim.library
    playlist = lib.playlists.get(ctx.match["id"])
    if playlist is None:
        return error_response(404)
    entries = [(entry, lib.items[str(i)]) for entry, i in playlist.entries() if str(i) in lib.items]
    items = [it for _entry, it in entries]
    page, page_attrs = paged(ctx, entries)
    children = [
        item_element(it, lib, guids=ctx.flag("includeGuids"), extra=(("playlistItemID", entry),))
        for entry, it in page
    ]
    root: list[tuple[str, AttrValue]] = [
        *page_attrs,
        ("composite", f"/playlists/{playlist.id}/composite/{playlist.updated_at}"),
        ("duration", sum(it.duration or 0 for it in items) // 1000),
        ("leafCount", len(items)),
        ("playlistType", playlist.playlist_type),
        ("ratingKey", playlist.id),
        ("smart", playlist.smart),
        ("title", playlist.title),
    ]
    return xml(container(root, children))


def _playlist_answer(ctx: Ctx, playlist_id: str, *extra: tuple[str, AttrValue]) -> web.Response:
    lib = ctx.sim.library
    playlist = lib.playlists[playlist_id]
    return xml(container([("size", 1), *extra], [render.playlist_element(playlist, lib)]))


def _fits(ctx: Ctx, playlist_type: str, keys: Sequence[str]) -> bool:
    """True when every item is of the playlist's kind (PMS refuses to mix audio and video)."""
    items = ctx.sim.library.items
    return all(_PLAYLIST_KINDS.get(items[key].type, "video") == playlist_type for key in keys)


async def h_create_playlist(ctx: Ctx) -> web.StreamResponse:
    """`POST /playlists?uri=server://<id>/…/library/metadata/<k1,k2>&title=…&type=…&smart=0`.

    HTTP 400 for no title, no items, or an item not of the playlist's type (a track in a
    video playlist, a movie in an audio one): a real server does not mix them.
    """
    title = (ctx.query.get("title") or "").strip()
    playlist_type = ctx.query.get("type", "")
    keys = ctx.sim.keys_for_uri(ctx.query.get("uri", ""))
    if not title or playlist_type not in ("video", "audio", "photo") or not keys:
        return error_response(400)
    if not _fits(ctx, playlist_type, keys):
        return error_response(400)
    playlist = ctx.sim.library.add_playlist(title, keys, playlist_type=playlist_type)
    return _playlist_answer(ctx, playlist.rating_key)


async def h_playlist_add(ctx: Ctx) -> web.StreamResponse:
    """`PUT /playlists/<id>/items?uri=…`: append the items the uri names.

    HTTP 400 for a smart playlist (its items come from its filter) and for items not of the
    playlist's type.
    """
    playlist = ctx.sim.library.playlists.get(playlist_id := ctx.match["id"])
    if playlist is None:
        return error_response(404)
    keys = ctx.sim.keys_for_uri(ctx.query.get("uri", ""))
    if not keys or playlist.smart or not _fits(ctx, playlist.playlist_type, keys):
        return error_response(400)
    ctx.sim.library.add_to_playlist(playlist_id, keys)
    return _playlist_answer(
        ctx, playlist_id, ("leafCountAdded", len(keys)), ("leafCountRequested", len(keys))
    )


async def h_playlist_remove(ctx: Ctx) -> web.StreamResponse:
    """`DELETE /playlists/<id>/items/<playlistItemID>` (HTTP 400 for a smart playlist)."""
    playlist = ctx.sim.library.playlists.get(playlist_id := ctx.match["id"])
    if playlist is not None and playlist.smart:
        return error_response(400)
    if not ctx.sim.library.remove_playlist_entry(playlist_id, int(ctx.match["entry"])):
        return error_response(404)
    return _playlist_answer(ctx, playlist_id)


# ---------------------------------------------------------------------------------- play queues


async def h_create_play_queue(ctx: Ctx) -> web.StreamResponse:
    """`POST /playQueues?uri=server://<id>/com.plexapp.plugins.library/library/metadata/<key>`.

    As a real server: `playlistID=<id>` makes the queue from a playlist; `uri=` expands a show,
    season, artist or album into its leaves; a `uri=` naming a playlist (or nothing) is HTTP 400.
    `key=` selects the item to start at.
    """
    sim = ctx.sim
    shuffle = ctx.flag("shuffle")
    start_key = ctx.query.get("key")
    playlist_id = ctx.query.get("playlistID")
    queue = None
    if playlist_id:
        playlist = sim.library.playlists.get(playlist_id)
        if playlist is not None and playlist.items:
            keys = [str(i) for i in playlist.items]
            queue = sim.create_play_queue(
                keys, source_uri=f"/playlists/{playlist_id}", start_key=start_key, shuffle=shuffle
            )
    else:
        queue = sim.play_queue_from_uri(
            ctx.query.get("uri", ""), start_key=start_key, shuffle=shuffle
        )
    if queue is None:
        return error_response(400)
    return xml(render.play_queue_document(queue, sim.library))


async def h_get_play_queue(ctx: Ctx) -> web.StreamResponse:
    """`GET /playQueues/<id>[?window=N]`."""
    queue = ctx.sim.play_queue(int(ctx.match["id"]))
    if queue is None:
        return error_response(404)
    window = ctx.query.get("window", "")
    return xml(
        render.play_queue_document(
            queue, ctx.sim.library, window=int(window) if window.isdigit() else None
        )
    )


# ---------------------------------------------------------------------------------- sessions


async def h_sessions(ctx: Ctx) -> web.StreamResponse:
    """`/status/sessions`: one item per active player with User/Player/Session."""
    lib = ctx.sim.library
    children = []
    for client in ctx.sim.active_clients():
        item = client.item
        if item is not None:
            children.append(render.session_item_element(client, item, lib))
    return xml(container([("size", len(children))], children))


async def h_history(ctx: Ctx) -> web.StreamResponse:
    """`/status/sessions/history/all`: what was watched, newest first, paged like a real server.

    One entry per watched movie/episode/track (at its last view; the simulator keeps no older
    views), as the owner (accountID 1). Filters: `viewedAt>=`, `accountID`, `librarySectionID`.
    """
    lib = ctx.sim.library
    since = ctx.query.get("viewedAt>")
    since_ge = ctx.query.get("viewedAt>=")
    account = ctx.query.get("accountID")
    section = ctx.query.get("librarySectionID")
    watched = [
        item
        for kind in ("movie", "episode", "track")
        for item in lib.all_of_type(kind)
        if item.view_count > 0 and item.last_viewed_at is not None
    ]
    if since and since.lstrip("-").isdigit():
        watched = [i for i in watched if (i.last_viewed_at or 0) > int(since)]
    if since_ge and since_ge.lstrip("-").isdigit():
        watched = [i for i in watched if (i.last_viewed_at or 0) >= int(since_ge)]
    if account is not None and account != "1":
        watched = []
    if section:
        watched = [i for i in watched if str(i.section_id) == section]
    watched.sort(key=lambda i: (i.last_viewed_at or 0, i.id), reverse=True)
    page, page_attrs = paged(ctx, watched)
    children = [render.history_element(item) for item in page]
    return xml(container(page_attrs, children))


async def h_terminate(ctx: Ctx) -> web.StreamResponse:
    """`/status/sessions/terminate?sessionId=...&reason=...`: stop that stream.

    The stream is named by its `<Session id>`; a session key names nothing here (404), and a
    request without `sessionId` is HTTP 400, as on a real server.
    """
    session_id = ctx.query.get("sessionId", "")
    if not ctx.sim.plex_pass:
        return error_response(403)  # stream control is a Plex Pass feature of the owner
    if not session_id:
        return error_response(400)
    for client in ctx.sim.active_clients():
        if session_id == client.session_id:
            client.commands.append(("terminate", {"reason": ctx.query.get("reason", "")}))
            client._stop("terminate")
            return empty_ok()
    return error_response(404)


async def h_transcode_sessions(ctx: Ctx) -> web.StreamResponse:
    """`/transcode/sessions`."""
    children = [
        render.transcode_session_element(client, item)
        for client in ctx.sim.active_clients()
        if client.stream_decision != "directplay" and (item := client.item) is not None
    ]
    return xml(container([("size", len(children))], children))


async def h_timeline_report(ctx: Ctx) -> web.StreamResponse:
    """`/:/timeline?ratingKey=..&state=..&time=..`: store the resume point like PMS does."""
    lib = ctx.sim.library
    key = ctx.query.get("ratingKey", "")
    position = ctx.query.get("time", "")
    item = lib.get(key)
    if item is not None and position.isdigit():
        if item.duration and int(position) >= item.duration * 0.9:
            lib.mark_watched(key)
        else:
            lib.set_progress(key, int(position))
    return xml(container([("size", 0)]))


async def h_scrobble(ctx: Ctx) -> web.StreamResponse:
    """`/:/scrobble?key=<ratingKey>&identifier=com.plexapp.plugins.library`."""
    key = ctx.query.get("key", "")
    if key not in ctx.sim.library:
        return error_response(404)
    ctx.sim.library.mark_watched(key)
    return empty_ok()


async def h_unscrobble(ctx: Ctx) -> web.StreamResponse:
    """`/:/unscrobble?key=<ratingKey>`."""
    key = ctx.query.get("key", "")
    if key not in ctx.sim.library:
        return error_response(404)
    ctx.sim.library.mark_unwatched(key)
    return empty_ok()


# ---------------------------------------------------------------------------------- players


async def h_player(ctx: Ctx) -> web.StreamResponse:
    """`/player/<controller>/<command>`, proxied to the X-Plex-Target-Client-Identifier player."""
    sim = ctx.sim
    target = ctx.param("X-Plex-Target-Client-Identifier") or ""
    client = sim.clients.get(target)
    if client is None or not client.online:
        return error_response(404)
    if not client.accepts_control:
        await asyncio.sleep(sim.command_delay(fast=True))
        return error_response(500)
    controller, command = ctx.match["controller"], ctx.match["command"]
    if controller == "timeline":
        if command == "poll":
            if ctx.query.get("wait") == "1":
                with contextlib.suppress(TimeoutError):
                    await client.wait_for_change(TIMELINE_POLL_MAX_WAIT)
            commanded = ctx.query.get("commandID", "")
            if commanded.isdigit():
                client.last_command_id = int(commanded)
            server = (sim.machine_identifier, sim.host, sim.port)
            return xml(render.timeline_document(client, sim.library, server))
        return ok_response()
    if controller == "playback":
        client.submit(command, ctx.query)
    else:
        client.commands.append((f"{controller}/{command}", dict(ctx.query)))
    return ok_response()


async def h_websocket(ctx: Ctx) -> web.StreamResponse:
    """`/:/websockets/notifications`: the notification stream."""
    sim = ctx.sim
    token = ctx.param("X-Plex-Token") or ""
    ws = web.WebSocketResponse(timeout=1.0, heartbeat=None, autoping=True)
    await ws.prepare(ctx.request)
    sim.add_websocket(ws, token)
    try:
        async for _message in ws:
            pass  # PMS ignores what clients send
    finally:
        sim.remove_websocket(ws)
    return ws


# ---------------------------------------------------------------------------------- images

_IMAGE_PATH: Final = re.compile(
    r"^/(?:library/metadata/(?P<item>\d+)/(?:thumb|art|banner)"
    r"|library/collections/(?P<collection>\d+)/composite"
    r"|playlists/(?P<playlist>\d+)/composite"
    r"|library/sections/(?P<section>\d+)/composite"
    r"|:/resources/[\w.-]+\.(?:png|jpg))(?:/\d+)?$"
)


def _image_exists(ctx: Ctx, path: str) -> bool:
    match = _IMAGE_PATH.match(path)
    if match is None:
        return False
    lib = ctx.sim.library
    if match["item"]:
        return match["item"] in lib.items
    if match["collection"]:
        return match["collection"] in lib.collections
    if match["playlist"]:
        return match["playlist"] in lib.playlists
    if match["section"]:
        return match["section"] in lib.sections
    return True


def _png(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="image/png")


def _dimension(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and int(value) > 0 else None


async def h_image(ctx: Ctx) -> web.StreamResponse:
    """Artwork paths (`/library/metadata/1/thumb/<ts>`...): a placeholder PNG."""
    path = ctx.request.path
    if not _image_exists(ctx, path):
        return error_response(404)
    return _png(images.image_for(path))


async def h_photo_transcode(ctx: Ctx) -> web.StreamResponse:
    """`/photo/:/transcode?url=<local image path>&width=&height=` (local paths only)."""
    url = ctx.query.get("url", "")
    if not url.startswith("/") or url.startswith("//") or not _image_exists(ctx, url.split("?")[0]):
        return error_response(404)
    width, height = _dimension(ctx.query.get("width")), _dimension(ctx.query.get("height"))
    return _png(images.image_for(url, width, height))


# ---------------------------------------------------------------------------------- routing


def _route(methods: str, path: str, handler: Handler, *, auth: bool = True) -> Route:
    return Route(frozenset(methods.split("|")), re.compile(f"^{path}$"), handler, auth)


ROUTES: Final[tuple[Route, ...]] = (
    _route("GET", r"/", h_root),
    _route("GET", r"/identity", h_identity, auth=False),
    _route("GET", r"/clients", h_clients),
    _route("GET", r"/accounts", h_accounts),
    _route("GET", r"/accounts/(?P<id>\d+)", h_accounts),
    _route("GET", r"/security/token", h_security_token),
    _route("GET", r"/statistics/resources", h_statistics_resources),
    _route("GET", r"/updater/status", h_updater_status),
    _route("PUT", r"/updater/apply", h_updater_apply),
    _route("PUT|POST", r"/updater/check", h_updater_check),
    _route("GET", r"/library", h_library),
    _route("GET", r"/library/sections", h_sections),
    _route("GET", r"/library/sections/(?P<section>\d+)/all", h_section_all),
    _route("GET", r"/library/sections/(?P<section>\d+)/collections", h_section_collections),
    _route("GET", r"/library/sections/(?P<section>\d+)/sorts", h_section_sorts),
    _route("GET|POST|PUT", r"/library/sections/(?P<section>\d+|all)/refresh", h_section_refresh),
    _route("GET", r"/library/sections/(?P<section>\d+)/recentlyAdded", h_recently_added),
    _route("GET", r"/library/sections/(?P<section>\d+)/onDeck", h_on_deck),
    _route("GET", r"/library/recentlyAdded", h_recently_added),
    _route("GET", r"/library/onDeck", h_on_deck),
    _route("GET", r"/hubs/continueWatching/items", h_on_deck),
    _route("GET", r"/library/collections/(?P<id>\d+)(?P<children>/children)?", h_collection),
    _route("GET", r"/library/metadata/(?P<keys>\d+(?:,\d+)*)", h_metadata),
    _route("DELETE", r"/library/metadata/(?P<keys>\d+)", h_metadata_delete),
    _route("GET", r"/library/metadata/(?P<key>\d+)/children", h_children),
    _route("GET", r"/library/metadata/(?P<key>\d+)/allLeaves", h_all_leaves),
    _route("GET", r"/hubs", h_hubs_home),
    _route("GET", r"/hubs/search", h_hub_search),
    _route("GET", r"/playlists(?:/all)?", h_playlists),
    _route("GET", r"/playlists/(?P<id>\d+)", h_playlist),
    _route("GET", r"/playlists/(?P<id>\d+)/items", h_playlist_items),
    _route("POST", r"/playlists", h_create_playlist),
    _route("PUT", r"/playlists/(?P<id>\d+)/items", h_playlist_add),
    _route("DELETE", r"/playlists/(?P<id>\d+)/items/(?P<entry>\d+)", h_playlist_remove),
    _route("POST", r"/playQueues", h_create_play_queue),
    _route("GET", r"/playQueues/(?P<id>\d+)", h_get_play_queue),
    _route("GET", r"/status/sessions", h_sessions),
    _route("GET", r"/status/sessions/history/all", h_history),
    _route("GET", r"/status/sessions/terminate(?:/player)?", h_terminate),
    _route("GET", r"/transcode/sessions", h_transcode_sessions),
    _route("GET|POST|PUT", r"/:/timeline", h_timeline_report),
    _route("GET|PUT", r"/:/scrobble", h_scrobble),
    _route("GET|PUT", r"/:/unscrobble", h_unscrobble),
    _route("GET|POST|PUT", r"/player/(?P<controller>\w+)/(?P<command>\w+)", h_player),
    _route("GET", r"/:/websockets/notifications", h_websocket),
    _route("GET", r"/photo/:/transcode", h_photo_transcode),
    _route("GET", _IMAGE_PATH.pattern[1:-1], h_image),
)


def find_route(method: str, path: str) -> tuple[Route, re.Match[str]] | None:
    """The first route matching method and path (HEAD counts as GET)."""
    method = "GET" if method == "HEAD" else method
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is not None and method in route.methods:
            return route, match
    return None


def _token(request: web.Request, query: dict[str, str]) -> str | None:
    return query.get("X-Plex-Token") or request.headers.get("X-Plex-Token")


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Entry point for every request."""
    sim = request.app[SIM_KEY]
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    query = dict(pairs)
    path = request.path
    if len(path) > 1:
        path = path.rstrip("/")
    sim.log_request(request.method, path, query)
    if sim.slow_delay:
        await asyncio.sleep(sim.slow_delay)
    if sim.forced_error is not None:
        return error_response(sim.forced_error)
    if (answer := sim.forced_answer(path)) is not None:
        return web.Response(body=answer[0], content_type=answer[1])
    found = find_route(request.method, path)
    if found is None:
        return error_response(404)
    route, match = found
    if route.auth and not sim.token_valid(_token(request, query)):
        return error_response(401)
    return await route.handler(Ctx(sim, request, query, pairs, match))


def build_app(sim: PlexSimulator) -> web.Application:
    """The aiohttp application: one catch-all route into `dispatch`."""
    app = web.Application(client_max_size=1024**2)
    app[SIM_KEY] = sim
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
