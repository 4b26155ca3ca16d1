"""Plex libraries in Home Assistant's Media panel, playable on any media player.

Identifiers are the node paths of `browse_media` (``media-source://plexus/<server_id>/…``); the
source's root lists every loaded server. A movie, episode or track resolves to the stream URL of
its first file on the server. That URL carries a transient token the server issues for it, goes
to the player and is never logged. When the server issues none, resolving fails with a clear
error: the account token never goes into a URL (it would end up in players' logs and history).
Thumbnails go through `PlexusThumbView`, which needs Home Assistant auth.
"""

from __future__ import annotations

from typing import Final, override

from aiohttp import web
from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView
from yarl import URL

from .browse_media import (
    THUMB_VIEW_PATH,
    BrowsePath,
    Node,
    build_tree,
    coordinator_for,
    parse_path,
    resolve_media_id,
)
from .const import DOMAIN
from .plex import PlexError
from .plex.browse_reads import first_part, is_image_path, thumbnail, transient_token
from .runtime import PlexusConfigEntry

SOURCE_NAME: Final = "Plex (Plexus)"
PLAYABLE_TYPES: Final = frozenset({"movie", "episode", "track", "clip"})


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """Set up the Plexus media source and its thumbnail view."""
    hass.http.register_view(PlexusThumbView(hass))
    return PlexusMediaSource(hass)


def _source_node(node: Node, children: list[BrowseMediaSource] | None) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=str(node.path),
        media_class=node.media_class,
        media_content_type=node.media_content_type,
        title=node.title,
        can_play=node.can_play,
        can_expand=node.can_expand,
        children=children,
        children_media_class=node.children_media_class,
        thumbnail=node.thumbnail,
    )


def _thumb_url(content_type: str, path: BrowsePath, image_path: str) -> str:
    return f"{THUMB_VIEW_PATH}/{path.server_id}{image_path}"


def _unresolvable(key: str, identifier: str) -> Unresolvable:
    return Unresolvable(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"media_id": f"media-source://{DOMAIN}/{identifier}"},
    )


def _no_stream_token(identifier: str) -> Unresolvable:
    return Unresolvable(
        translation_domain=DOMAIN,
        translation_key="no_stream_token",
        translation_placeholders={"media_id": f"media-source://{DOMAIN}/{identifier}"},
    )


class PlexusMediaSource(MediaSource):
    """Every loaded Plex server as a media source."""

    name = SOURCE_NAME

    def __init__(self, hass: HomeAssistant) -> None:
        """Remember hass; servers are looked up on every call."""
        super().__init__(DOMAIN)
        self.hass = hass

    @override
    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Browse the servers, or one node of a server."""
        if not item.identifier:
            entries: list[PlexusConfigEntry] = self.hass.config_entries.async_loaded_entries(DOMAIN)
            servers = [
                _source_node(
                    Node(
                        path=BrowsePath(entry.runtime_data.coordinator.server_identifier),
                        title=entry.title,
                        media_class=MediaClass.DIRECTORY,
                        media_content_type="server",
                        can_play=False,
                        can_expand=True,
                        children_media_class=MediaClass.DIRECTORY,
                    ),
                    None,
                )
                for entry in entries
            ]
            return BrowseMediaSource(
                domain=DOMAIN,
                identifier=None,
                media_class=MediaClass.APP,
                media_content_type=MediaType.APPS,
                title=SOURCE_NAME,
                can_play=False,
                can_expand=True,
                children=servers,
                children_media_class=MediaClass.DIRECTORY,
            )
        path = parse_path(item.identifier, item.media_source_id)
        coordinator = coordinator_for(self.hass, path.server_id)
        return await build_tree(
            self.hass, coordinator, path, _source_node, _thumb_url, containers_playable=False
        )

    @override
    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """Resolve a movie, episode or track to the stream URL of its first file."""
        identifier = item.identifier
        try:
            path = parse_path(identifier)
            coordinator = coordinator_for(self.hass, path.server_id)
            media = await resolve_media_id(self.hass, coordinator, item.media_source_id)
        except BrowseError as err:
            raise Unresolvable(
                translation_domain=err.translation_domain,
                translation_key=err.translation_key,
                translation_placeholders=err.translation_placeholders,
            ) from err
        if media is None or media.type not in PLAYABLE_TYPES:
            raise _unresolvable("not_playable", identifier)
        api = coordinator.api
        try:
            part = await first_part(api, media.rating_key)
        except PlexError as err:
            raise _unresolvable("media_not_found", identifier) from err
        if part is None:
            raise _unresolvable("not_playable", identifier)
        # The URL goes to a player (or a browser): only a transient token may go into it.
        try:
            token = await transient_token(api)
        except PlexError as err:
            raise _no_stream_token(identifier) from err
        if not token:
            raise _no_stream_token(identifier)
        url = URL(f"{api.url}{part.key}").update_query({"X-Plex-Token": token})
        return PlayMedia(str(url), part.mime_type)


class PlexusThumbView(HomeAssistantView):
    """Thumbnails for the Media panel, fetched from the server (needs HA auth)."""

    url = f"{THUMB_VIEW_PATH}/{{server_id}}/{{image_path:.+}}"
    name = f"api:{DOMAIN}:thumb"

    def __init__(self, hass: HomeAssistant) -> None:
        """Serve the servers of this hass."""
        self.hass = hass

    async def get(self, request: web.Request, server_id: str, image_path: str) -> web.Response:
        """Return the scaled image, 404 when there is none."""
        image_path = f"/{image_path}"
        if not is_image_path(image_path):
            raise web.HTTPNotFound
        try:
            coordinator = coordinator_for(self.hass, server_id)
            image = await thumbnail(coordinator.api, image_path)
        except (BrowseError, PlexError) as err:
            raise web.HTTPNotFound from err
        if image is None:
            raise web.HTTPNotFound
        data, content_type = image
        return web.Response(
            body=data, content_type=content_type, headers={"Cache-Control": "max-age=3600"}
        )
