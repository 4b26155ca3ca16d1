"""Plex libraries in HA's Media panel: browse through the websocket, resolve, thumbnails."""

from typing import Any

from aiohttp import web
from homeassistant.components import media_source
from homeassistant.components.media_player import BrowseError, MediaClass
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator
from yarl import URL

from custom_components.plexus.const import DOMAIN
from tests.plex_simulator import PlexSimulator, handlers

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture(autouse=True)
def photo_transcoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teach the simulator `/photo/:/transcode` (it does not serve images)."""

    async def transcode(ctx: handlers.Ctx) -> web.StreamResponse:
        return web.Response(body=PNG, content_type="image/png")

    route = handlers._route("GET", r"/photo/:/transcode", transcode)
    monkeypatch.setattr(handlers, "ROUTES", (route, *handlers.ROUTES))


@pytest.fixture
async def loaded(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """media_source and the simulator entry, loaded."""
    assert await async_setup_component(hass, "media_source", {})
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    # Load the platform (and register its view) before a test client freezes the router; HA's
    # own server never freezes it, so in production the platform may load at any time.
    await media_source.async_browse_media(hass, "media-source://plexus")
    return config_entry


async def ws_browse(ws_client: Any, media_id: str) -> dict[str, Any]:
    """Browse through the `media_source/browse_media` websocket command."""
    await ws_client.send_json_auto_id(
        {"type": "media_source/browse_media", "media_content_id": media_id}
    )
    msg = await ws_client.receive_json()
    assert msg["success"], msg
    result: dict[str, Any] = msg["result"]
    return result


def titled(node: dict[str, Any], title: str) -> dict[str, Any]:
    """The child with this title."""
    return next(c for c in node["children"] if c["title"] == title)


async def test_browse_from_the_media_panel(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Media sources → Plexus → server → library → show → season → episodes."""
    sid = simulator.machine_identifier
    client = await hass_ws_client(hass)

    sources = await ws_browse(client, "")
    plexus = next(
        c for c in sources["children"] if c["media_content_id"] == "media-source://plexus"
    )
    assert plexus["title"] == "Plex (Plexus)"

    root = await ws_browse(client, "media-source://plexus")
    assert [c["title"] for c in root["children"]] == ["Plexus Simulator"]
    assert root["children"][0]["media_content_id"] == f"media-source://plexus/{sid}"

    server = await ws_browse(client, f"media-source://plexus/{sid}")
    assert [c["title"] for c in server["children"]] == [
        "On Deck",
        "Recently Added",
        "Movies",
        "TV Shows",
        "Music",
        "Playlists",
    ]
    shows = await ws_browse(client, titled(server, "TV Shows")["media_content_id"])
    show = shows["children"][0]
    assert show["media_content_id"].startswith(f"media-source://plexus/{sid}/item/")
    # On other players only single files play: containers expand but do not play.
    assert (show["can_play"], show["can_expand"]) == (False, True)
    seasons = await ws_browse(client, show["media_content_id"])
    episodes = await ws_browse(client, seasons["children"][0]["media_content_id"])
    episode = episodes["children"][0]
    assert episode["media_class"] == MediaClass.EPISODE
    assert (episode["can_play"], episode["can_expand"]) == (True, False)
    # Thumbnails point at our authenticated view and never carry the Plex token.
    assert episode["thumbnail"].startswith(f"/api/plexus/thumb/{sid}/library/metadata/")
    assert simulator.token not in str(episodes)

    playlists = await ws_browse(client, f"media-source://plexus/{sid}/playlists")
    movie_night = await ws_browse(client, titled(playlists, "Movie Night")["media_content_id"])
    assert [c["media_class"] for c in movie_night["children"]] == [MediaClass.MOVIE] * 5


async def test_browse_errors(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Malformed ids and unknown servers raise translated BrowseErrors."""
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, "media-source://plexus/x/nonsense/1")
    assert err.value.translation_key == "invalid_media_id"
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, "media-source://plexus/0000/library/1")
    assert err.value.translation_key == "server_not_loaded"


async def test_root_without_loaded_servers(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """An unloaded server disappears from the source's root."""
    assert await hass.config_entries.async_unload(loaded.entry_id)
    root = await media_source.async_browse_media(hass, "media-source://plexus")
    assert root.children == []


async def test_resolve_movie_episode_track(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Playable items resolve to their first file on the server, with a transient token."""
    sid = simulator.machine_identifier
    lib = simulator.library
    for item, mime_prefix in (
        (lib.movies()[0], "video/"),
        (lib.episodes()[0], "video/"),
        (lib.tracks()[0], "audio/"),
    ):
        assert item.media is not None
        resolved = await media_source.async_resolve_media(
            hass, f"media-source://plexus/{sid}/item/{item.rating_key}", None
        )
        url = URL(resolved.url)
        assert str(url.with_query(None)).startswith(f"{simulator.url}/library/parts/")
        assert url.path.startswith(f"/library/parts/{item.media.part_id}/")
        assert resolved.mime_type.startswith(mime_prefix)
        token = url.query["X-Plex-Token"]
        assert token != simulator.token  # a transient token, not the account's
        assert simulator.token_valid(token)
    movie = lib.movies()[0]
    assert movie.media is not None
    resolved = await media_source.async_resolve_media(
        hass, f"media-source://plexus/{sid}/item/{movie.rating_key}", None
    )
    expected = {"mkv": "video/x-matroska", "mp4": "video/mp4"}
    assert resolved.mime_type == expected.get(movie.media.container, resolved.mime_type)


@pytest.mark.parametrize(
    ("suffix", "translation_key"),
    [
        ("/library/1", "not_playable"),
        ("/on_deck", "not_playable"),
        ("/item/99999", "media_not_found"),
        ("/item/x", "invalid_media_id"),
    ],
)
async def test_resolve_refuses_folders_and_unknown_items(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    suffix: str,
    translation_key: str,
) -> None:
    """Folders, unknown items and bad ids are Unresolvable with a translation key."""
    media_id = f"media-source://plexus/{simulator.machine_identifier}{suffix}"
    with pytest.raises(media_source.Unresolvable) as err:
        await media_source.async_resolve_media(hass, media_id, None)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == translation_key


async def test_resolve_containers_are_not_playable(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A show or a playlist has no single file to hand to a player."""
    sid = simulator.machine_identifier
    for suffix in (f"/item/{simulator.library.shows()[0].rating_key}", "/playlist/951"):
        with pytest.raises(media_source.Unresolvable) as err:
            await media_source.async_resolve_media(
                hass, f"media-source://plexus/{sid}{suffix}", None
            )
        assert err.value.translation_key == "not_playable"


async def test_resolve_without_a_stream_token_fails_without_the_account_token(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that refuses a transient token (403) or answers without one: a clear error, and
    the account token never goes into a URL."""
    answer: dict[str, web.Response] = {}

    async def refuse(ctx: handlers.Ctx) -> web.StreamResponse:
        return answer["response"]

    route = handlers._route("GET", r"/security/token", refuse)
    monkeypatch.setattr(handlers, "ROUTES", (route, *handlers.ROUTES))
    movie = simulator.library.movies()[0]
    media_id = f"media-source://plexus/{simulator.machine_identifier}/item/{movie.rating_key}"
    for response in (
        web.Response(status=403),
        web.Response(body=b'<MediaContainer size="0"/>', content_type="text/xml"),
    ):
        answer["response"] = response
        with pytest.raises(media_source.Unresolvable) as err:
            await media_source.async_resolve_media(hass, media_id, None)
        assert err.value.translation_key == "no_stream_token"
        assert simulator.token not in str(err.value)


async def test_thumbnail_view(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The thumbnail view serves the server's image to HA users only, 404 for anything else."""
    sid = simulator.machine_identifier
    movie = simulator.library.movies()[0]
    path = f"/api/plexus/thumb/{sid}/library/metadata/{movie.id}/thumb/{movie.updated_at}"

    client = await hass_client()
    resp = await client.get(path)
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert await resp.read() == PNG

    for bad in (
        f"/api/plexus/thumb/{sid}/etc/passwd",
        f"/api/plexus/thumb/other-server/library/metadata/{movie.id}/thumb/1",
    ):
        assert (await client.get(bad)).status == 404, bad
    simulator.set_error(500)
    assert (await client.get(path)).status == 404
    simulator.set_error(None)

    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(path)).status == 401


async def test_resolve_a_movie_without_a_file(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A movie the server lists without any media part (its file is gone): not playable."""
    movie = simulator.library.add_movie("Lost Reel", year=1927)
    movie.media = None
    with pytest.raises(media_source.Unresolvable) as err:
        await media_source.async_resolve_media(
            hass,
            f"media-source://plexus/{simulator.machine_identifier}/item/{movie.rating_key}",
            None,
        )
    assert err.value.translation_key == "not_playable"
    assert not any(p == "/security/token" for _m, p, _q in simulator.requests)


async def test_resolve_when_the_server_fails_between_reads(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The item is found, then the server fails while its file is read: media_not_found."""
    movie = simulator.library.movies()[0]
    reads = 0

    async def second_read_fails(ctx: handlers.Ctx) -> web.StreamResponse:
        nonlocal reads
        reads += 1
        if reads > 1:
            return handlers.error_response(500)
        return await handlers.h_metadata(ctx)

    route = handlers._route(
        "GET", rf"/library/metadata/(?P<keys>{movie.rating_key})", second_read_fails
    )
    monkeypatch.setattr(handlers, "ROUTES", (route, *handlers.ROUTES))
    with pytest.raises(media_source.Unresolvable) as err:
        await media_source.async_resolve_media(
            hass,
            f"media-source://plexus/{simulator.machine_identifier}/item/{movie.rating_key}",
            None,
        )
    assert err.value.translation_key == "media_not_found"
    assert reads == 2
    assert simulator.token not in str(err.value)


async def test_thumbnail_that_is_not_an_image(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A proxy's HTML page instead of the image: 404, the page is not passed on."""
    movie = simulator.library.movies()[0]
    path = (
        f"/api/plexus/thumb/{simulator.machine_identifier}"
        f"/library/metadata/{movie.id}/thumb/{movie.updated_at}"
    )
    simulator.set_answer("/photo/:/transcode", b"<html><body>Sign in</body></html>")
    client = await hass_client()
    resp = await client.get(path)
    assert resp.status == 404
    assert b"Sign in" not in await resp.read()
