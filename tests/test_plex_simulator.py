"""The Plex simulator, driven through the real client libraries (PlexAPI, plexwebsocket, aiohttp).

PlexAPI is blocking, so it runs in a worker thread (`asyncio.to_thread`) while the simulator
serves on the test's event loop. Timing is never asserted as a duration: tests wait for effects
(`wait_for_state`, `wait_until`) and assert order and content.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import json
from pathlib import Path
import re
import subprocess
import sys
import time
from typing import Any
import xml.etree.ElementTree as ET

import aiohttp
from plexapi.exceptions import BadRequest, NotFound, Unauthorized
from plexapi.server import PlexServer
import plexwebsocket
import pytest
import requests

from tests.plex_simulator import Library, LibraryConfig, PlexSimulator, SimulatedClient
from tests.plex_simulator.__main__ import parse_args

pytestmark = [pytest.mark.enable_socket, pytest.mark.usefixtures("socket_enabled")]

SMALL = LibraryConfig(
    movies=30, shows=4, seasons_per_show=2, episodes_per_season=4, artists=3, seed=3
)


@pytest.fixture
async def sim() -> AsyncIterator[PlexSimulator]:
    """A fast simulator: short player latency, frequent timeline updates, quick scans."""
    simulator = PlexSimulator(
        token="tok",
        library=SMALL,
        clients=3,
        seed=3,
        latency_ms=(10, 40),
        timeline_interval_s=0.05,
        scan_duration_s=0.05,
    )
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.contextmanager
def plex(sim: PlexSimulator, token: str | None = None) -> Iterator[PlexServer]:
    """A PlexAPI server object on its own requests session (call inside a worker thread)."""
    session = requests.Session()
    try:
        yield PlexServer(sim.url, token or sim.token, session=session, timeout=10)
    finally:
        session.close()


def parse_xml(body: bytes | str) -> ET.Element:
    """Parse a simulator response (our own server: trusted)."""
    return ET.fromstring(body)  # noqa: S314


async def in_thread[T](func: Callable[[], T]) -> T:
    """Run blocking PlexAPI code off the event loop."""
    return await asyncio.to_thread(func)


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll (real time) until check() holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def get_xml(
    http: aiohttp.ClientSession,
    sim: PlexSimulator,
    path: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> ET.Element:
    """GET path with the token and parse the XML answer."""
    async with http.get(
        sim.url + path, params=params, headers={"X-Plex-Token": sim.token, **(headers or {})}
    ) as resp:
        assert resp.status == 200, (path, resp.status)
        assert resp.headers["Content-Type"].startswith("text/xml")
        return parse_xml(await resp.read())


class Notifications:
    """Collects every websocket notification of one connection."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.closed = False

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [
            m["NotificationContainer"]
            for m in self.messages
            if m["NotificationContainer"]["type"] == kind
        ]


@contextlib.asynccontextmanager
async def notifications(
    http: aiohttp.ClientSession, sim: PlexSimulator
) -> AsyncIterator[Notifications]:
    """Listen to the notification websocket for the duration of the block."""
    box = Notifications()
    ws = await http.ws_connect(
        sim.url.replace("http", "ws", 1) + "/:/websockets/notifications",
        params={"X-Plex-Token": sim.token},
    )

    async def reader() -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                box.messages.append(json.loads(message.data))
        box.closed = True

    task = asyncio.get_running_loop().create_task(reader())
    try:
        yield box
    finally:
        await ws.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def first_client(sim: PlexSimulator) -> SimulatedClient:
    return next(iter(sim.clients.values()))


# ---------------------------------------------------------------------------------- server


async def test_plexapi_connects_and_reads_identity(sim: PlexSimulator) -> None:
    def check() -> tuple[str, str, str, str]:
        with plex(sim) as server:
            identity = server.identity()
            return (
                server.friendlyName,
                server.machineIdentifier,
                server.version,
                identity.machineIdentifier,
            )

    name, machine_id, version, identity_id = await in_thread(check)
    assert name == "Plexus Simulator"
    assert machine_id == identity_id == sim.machine_identifier
    assert re.fullmatch(r"[0-9a-f]{40}", machine_id)
    assert version == "1.41.3.9314-a0bfb8370"
    assert ("GET", "/", {}) in sim.requests


async def test_machine_identifier_is_deterministic() -> None:
    first = PlexSimulator(seed=5, library=LibraryConfig(movies=1, shows=0, artists=0))
    second = PlexSimulator(seed=5, library=LibraryConfig(movies=1, shows=0, artists=0))
    other = PlexSimulator(seed=6, library=LibraryConfig(movies=1, shows=0, artists=0))
    assert first.machine_identifier == second.machine_identifier != other.machine_identifier
    assert list(first.clients) == list(second.clients)


async def test_wrong_token_is_unauthorized(sim: PlexSimulator, http: aiohttp.ClientSession) -> None:
    def connect_with_wrong_token() -> None:
        with plex(sim, token="wrong"):
            pass

    with pytest.raises(Unauthorized):
        await in_thread(connect_with_wrong_token)
    async with http.get(sim.url + "/library/sections") as resp:  # no token at all
        assert resp.status == 401
        assert resp.content_type == "text/html"
        assert "401 Unauthorized" in await resp.text()
    async with http.get(sim.url + "/identity") as resp:  # open, as on a real server
        assert resp.status == 200
    async with http.get(sim.url + "/", headers={"X-Plex-Token": "tok"}) as resp:  # header form
        assert resp.status == 200
    async with http.get(sim.url + "/no/such/endpoint", params={"X-Plex-Token": "tok"}) as resp:
        assert resp.status == 404


# ---------------------------------------------------------------------------------- library


async def test_sections_and_listings_through_plexapi(sim: PlexSimulator) -> None:
    lib = sim.library

    def read() -> dict[str, Any]:
        with plex(sim) as server:
            sections = server.library.sections()
            movies_section = next(s for s in sections if s.type == "movie")
            shows_section = next(s for s in sections if s.type == "show")
            movies = movies_section.all()
            episodes = shows_section.search(libtype="episode")
            return {
                "sections": [(s.key, s.type, s.title, s.locations) for s in sections],
                "movies": [(m.ratingKey, m.title, m.year) for m in movies],
                "movie_files": [m.media[0].parts[0].file for m in movies],
                "episodes": [
                    (e.ratingKey, e.grandparentTitle, e.seasonNumber, e.index) for e in episodes
                ],
                "total": movies_section.totalSize,
                "episode_total": shows_section.totalViewSize(libtype="episode"),
            }

    got = await in_thread(read)
    assert got["sections"] == [
        (1, "movie", "Movies", ["/data/movies"]),
        (2, "show", "TV Shows", ["/data/tv"]),
        (3, "artist", "Music", ["/data/music"]),
    ]
    assert [m[0] for m in got["movies"]] == [m.id for m in lib.movies()]
    assert len(got["movies"]) == got["total"] == SMALL.movies
    assert all(f.startswith("/data/movies/") for f in got["movie_files"])
    assert len(got["episodes"]) == got["episode_total"] == 4 * 2 * 4
    assert {e[0] for e in got["episodes"]} == {e.id for e in lib.episodes()}
    dunes = [m for m in got["movies"] if m[1] == "Dune"]
    assert sorted(d[2] for d in dunes) == [1984, 2021]


async def test_fetch_item_has_guids_media_and_parts(sim: PlexSimulator) -> None:
    movie = next(m for m in sim.library.movies() if m.guid.startswith("plex://movie/"))
    episode = next(e for e in sim.library.episodes() if e.guid.startswith("plex://episode/"))

    def fetch() -> tuple[Any, ...]:
        with plex(sim) as server:
            m = server.fetchItem(movie.id)
            e = server.fetchItem(episode.id)
            return (
                m.title,
                m.guid,
                [g.id for g in m.guids],
                m.media[0].videoResolution,
                m.media[0].parts[0].file,
                m.media[0].parts[0].size,
                e.grandparentTitle,
                e.parentIndex,
                [g.id for g in e.guids],
                [s.languageCode for s in m.media[0].parts[0].streams],
            )

    (title, guid, guids, resolution, file, size, show, season, ep_guids, langs) = await in_thread(
        fetch
    )
    assert title == movie.title
    assert re.fullmatch(r"plex://movie/[0-9a-f]{24}", guid)
    assert guids == list(movie.ext_guids)
    assert any(g.startswith("imdb://tt") for g in guids)
    assert movie.media is not None
    assert episode.parent is not None
    assert episode.grandparent is not None
    assert resolution == movie.media.video_resolution
    assert file == movie.media.file
    assert size > 0
    assert show == episode.grandparent.title
    assert season == episode.parent.index
    assert ep_guids
    assert all(re.match(r"(imdb|tmdb|tvdb)://", g) for g in ep_guids)
    assert "eng" in langs


async def test_paging_header_and_query_forms_agree(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    path = "/library/sections/1/all"
    by_query = await get_xml(
        http, sim, path, {"X-Plex-Container-Start": "5", "X-Plex-Container-Size": "7"}
    )
    by_header = await get_xml(
        http, sim, path, headers={"X-Plex-Container-Start": "5", "X-Plex-Container-Size": "7"}
    )
    keys = [v.get("ratingKey") for v in by_query.iter("Video")]
    assert keys == [v.get("ratingKey") for v in by_header.iter("Video")]
    assert keys == [m.rating_key for m in sim.library.movies()[5:12]]
    for root in (by_query, by_header):
        assert (root.get("size"), root.get("totalSize"), root.get("offset")) == ("7", "30", "5")
    size_only = await get_xml(
        http, sim, path, {"type": "4", "X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0"}
    )
    assert size_only.get("size") == "0"
    assert len(list(size_only)) == 0
    last_page = await get_xml(
        http, sim, path, {"X-Plex-Container-Start": "28", "X-Plex-Container-Size": "7"}
    )
    assert (last_page.get("size"), last_page.get("totalSize")) == ("2", "30")
    unpaged = await get_xml(http, sim, path)
    assert unpaged.get("size") == "30"
    assert unpaged.get("totalSize") is None  # like PMS: only paged answers carry totalSize


async def test_shows_section_episode_count_via_size_only_query(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    root = await get_xml(
        http,
        sim,
        "/library/sections/2/all",
        {"type": "4", "X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0"},
    )
    assert root.get("totalSize") == str(len(sim.library.episodes())) == "32"


async def test_plexapi_pages_through_small_containers(sim: PlexSimulator) -> None:
    def read() -> list[int]:
        with plex(sim) as server:
            section = server.library.sectionByID(1)
            return [m.ratingKey for m in section.search(container_size=4)]

    keys = await in_thread(read)
    assert keys == [m.id for m in sim.library.movies()]


@pytest.mark.parametrize(
    ("raw_query", "params"),
    [
        # `?updatedAt>=T` on the wire is the key `updatedAt>` (strictly greater) with value T.
        ("type=1&updatedAt>={tm1}", None),
        (None, {"type": "1", "updatedAt>": "{tm1}"}),  # the same, built by a client library
        ("type=1&updatedAt%3E%3D={tm1}", None),  # key encoded as a whole
        ("type=1&updatedAt>>={tm1}", None),  # Plex's "is after" operator (strictly greater)
    ],
)
async def test_updated_at_filter_forms(
    sim: PlexSimulator,
    http: aiohttp.ClientSession,
    raw_query: str | None,
    params: dict[str, str] | None,
) -> None:
    lib = sim.library
    marker = lib.config.base_time + 1000
    lib.clock = lambda: float(marker)
    changed = [lib.movies()[3].rating_key, lib.movies()[17].rating_key]
    for key in changed:
        lib.update_item(key, summary="changed")  # bumps updatedAt to the clock
    assert all(lib[key].updated_at == marker for key in changed)
    path = "/library/sections/1/all"
    if raw_query is not None:
        query = raw_query.format(t=marker, tm1=marker - 1)
        async with http.get(f"{sim.url}{path}?{query}", headers={"X-Plex-Token": "tok"}) as resp:
            root = parse_xml(await resp.read())
    else:
        assert params is not None
        root = await get_xml(
            http, sim, path, {k: v.format(tm1=marker - 1) for k, v in params.items()}
        )
    assert sorted(v.get("ratingKey") or "" for v in root.iter("Video")) == sorted(changed)


async def test_added_at_and_title_filters_and_sort(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    lib = sim.library
    movies = lib.movies()
    threshold = sorted(m.added_at for m in movies)[-5]
    root = await get_xml(
        http,
        sim,
        "/library/sections/1/all",
        {"addedAt>": str(threshold - 1), "sort": "addedAt:desc"},  # strictly greater
    )
    added = [int(v.get("addedAt") or 0) for v in root.iter("Video")]
    assert len(added) == 5
    assert added == sorted(added, reverse=True)
    assert min(added) >= threshold
    root = await get_xml(http, sim, "/library/sections/1/all", {"title": "dUNe"})
    assert sorted(v.get("year") or "" for v in root.iter("Video")) == ["1984", "2021"]
    root = await get_xml(http, sim, "/library/sections/1/all", {"sort": "titleSort:desc"})
    keys = [v.get("ratingKey") for v in root.iter("Video")]
    by_title_desc = sorted(movies, key=lambda m: m.title_sort.lower(), reverse=True)  # stable
    assert keys == [m.rating_key for m in by_title_desc]


async def test_plexapi_sorted_search_uses_meta(sim: PlexSimulator) -> None:
    def read() -> list[int]:
        with plex(sim) as server:
            section = server.library.sectionByID(1)
            return [m.ratingKey for m in section.search(sort="addedAt:desc", maxresults=3)]

    keys = await in_thread(read)
    newest = sorted(sim.library.movies(), key=lambda m: m.added_at, reverse=True)[:3]
    assert keys == [m.id for m in newest]
    assert any("movie.addedAt:desc" in q.get("sort", "") for _, _, q in sim.requests)


async def test_runtime_add_update_delete(sim: PlexSimulator, http: aiohttp.ClientSession) -> None:
    lib = sim.library
    lib.clock = lambda: 2_000_000_000.0
    async with notifications(http, sim) as box:
        movie = lib.add_movie("Aardvark Adventures", year=2024)
        episode = lib.add_episode(lib.shows()[0].rating_key, season=9, episode=1, title="New")
        await wait_until(lambda: len(box.of_type("timeline")) >= 4)
        entries = [c["TimelineEntry"][0] for c in box.of_type("timeline")]
        assert {(e["itemID"], e["state"]) for e in entries} >= {
            (movie.rating_key, 0),
            (movie.rating_key, 5),
            (episode.rating_key, 0),
        }

        root = await get_xml(http, sim, "/library/sections/1/all")
        assert root[0].get("ratingKey") == movie.rating_key  # "Aardvark" sorts first
        assert root[0].get("addedAt") == root[0].get("updatedAt") == "2000000000"
        season = await get_xml(http, sim, f"/library/metadata/{episode.parent.id}/children")  # type: ignore[union-attr]
        assert [v.get("ratingKey") for v in season.iter("Video")] == [episode.rating_key]

        lib.clock = lambda: 2_000_000_100.0
        lib.update_item(movie.rating_key, title="Zebra Zone")
        meta = await get_xml(http, sim, f"/library/metadata/{movie.rating_key}")
        assert meta[0].get("title") == "Zebra Zone"
        assert meta[0].get("updatedAt") == "2000000100"
        root = await get_xml(http, sim, "/library/sections/1/all")
        assert root[len(root) - 1].get("ratingKey") == movie.rating_key  # re-sorted

        lib.update_item(movie.rating_key, updatedAt=1234, addedAt=1000)  # explicit values
        assert (lib[movie.rating_key].updated_at, lib[movie.rating_key].added_at) == (1234, 1000)

        lib.delete_item(movie.rating_key)
        await wait_until(
            lambda: any(c["TimelineEntry"][0]["state"] == 9 for c in box.of_type("timeline"))
        )
    async with http.get(
        f"{sim.url}/library/metadata/{movie.rating_key}", params={"X-Plex-Token": "tok"}
    ) as resp:
        assert resp.status == 404
    total = await get_xml(
        http,
        sim,
        "/library/sections/1/all",
        {"X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0"},
    )
    assert total.get("totalSize") == str(SMALL.movies)


async def test_children_all_leaves_and_multi_key_metadata(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    show = sim.library.shows()[0]
    seasons = await get_xml(http, sim, f"/library/metadata/{show.id}/children")
    assert [d.get("type") for d in seasons.iter("Directory")] == ["season", "season"]
    leaves = await get_xml(http, sim, f"/library/metadata/{show.id}/allLeaves")
    assert [v.get("ratingKey") for v in leaves.iter("Video")] == [
        e.rating_key for e in show.leaves()
    ]
    keys = [m.rating_key for m in sim.library.movies()[:3]]
    many = await get_xml(http, sim, "/library/metadata/" + ",".join(keys))
    assert [v.get("ratingKey") for v in many.iter("Video")] == keys


async def test_hub_search_on_deck_recently_added_playlists(sim: PlexSimulator) -> None:
    lib = sim.library
    in_progress = next(m for m in lib.movies() if m.view_offset == 0)
    lib.set_progress(in_progress.rating_key, 60_000)

    def read() -> dict[str, Any]:
        with plex(sim) as server:
            playlists = server.playlists()
            return {
                "dune": [(m.title, m.year) for m in server.search("dune", mediatype="movie")],
                "amelie": [m.title for m in server.search("amelie")],
                "deck": [i.ratingKey for i in server.library.onDeck()],
                "recent": [i.addedAt for i in server.library.recentlyAdded()],
                "playlists": [(p.title, len(p.items())) for p in playlists],
            }

    got = await in_thread(read)
    assert sorted(got["dune"]) == [("Dune", 1984), ("Dune", 2021)]
    assert got["amelie"] == ["Amélie"]
    assert got["deck"][0] == in_progress.id
    assert got["recent"] == sorted(got["recent"], reverse=True)
    assert [p[0] for p in got["playlists"]] == ["Movie Night", "Binge List", "Road Trip"]
    assert all(count > 0 for _, count in got["playlists"])


async def test_play_queue_and_scrobble(sim: PlexSimulator) -> None:
    show = sim.library.shows()[1]
    movie = sim.library.movies()[4]

    def run() -> tuple[int, int, int | None]:
        with plex(sim) as server:
            queue = server.createPlayQueue(server.fetchItem(show.id))
            again = type(queue).get(server, queue.playQueueID)
            item = server.fetchItem(movie.id)
            item.markPlayed()
            return queue.playQueueTotalCount, again.playQueueID, again.selectedItem.ratingKey

    before = movie.view_count
    total, queue_id, selected = await in_thread(run)
    assert total == len(show.leaves())
    assert queue_id in sim.play_queues
    assert selected == show.leaves()[0].id
    assert movie.view_count == before + 1


async def test_artwork_and_photo_transcoder(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    movie = sim.library.movies()[0]
    thumb = f"/library/metadata/{movie.id}/thumb/{movie.updated_at}"
    meta = await get_xml(http, sim, f"/library/metadata/{movie.id}")
    assert meta[0].get("thumb") == thumb
    token = {"X-Plex-Token": "tok"}

    async def fetch(path: str, **params: str) -> tuple[int, bytes]:
        async with http.get(sim.url + path, params=params, headers=token) as resp:
            return resp.status, await resp.read()

    status, body = await fetch(thumb)
    assert status == 200
    assert body.startswith(b"\x89PNG")
    status, body = await fetch("/photo/:/transcode", url=thumb, width="120", height="180")
    assert status == 200
    assert int.from_bytes(body[16:20]) == 120  # IHDR width
    assert int.from_bytes(body[20:24]) == 180
    assert (await fetch("/photo/:/transcode", url="http://elsewhere.example/x.jpg"))[0] == 404
    assert (await fetch("/library/metadata/999999/thumb/1"))[0] == 404
    async with http.get(sim.url + thumb) as resp:  # artwork needs the token too
        assert resp.status == 401


# ---------------------------------------------------------------------------------- players


async def test_clients_and_playback_through_plexapi(sim: PlexSimulator) -> None:
    movie = sim.library.movies()[2]
    target = first_client(sim)

    def list_and_play() -> tuple[list[tuple[str, str, str]], float]:
        with plex(sim) as server:
            clients = server.clients()
            listed = [(c.title, c.machineIdentifier, c.product) for c in clients]
            client = next(c for c in clients if c.machineIdentifier == target.machine_identifier)
            client.proxyThroughServer()
            sent = time.monotonic()
            client.playMedia(server.fetchItem(movie.id))
            return listed, sent

    listed, sent = await in_thread(list_and_play)
    assert listed == [(c.name, c.machine_identifier, c.product) for c in sim.clients.values()]
    playing = await target.wait_for_state("playing", timeout=5)
    assert [(r.state, r.command) for r in target.record] == [
        ("buffering", "playMedia"),
        ("playing", "playMedia"),
    ]
    assert playing.rating_key == movie.rating_key
    assert sent <= target.record[0].monotonic <= playing.monotonic
    assert target.record[0].wall_time <= playing.wall_time

    def sessions_then_pause() -> tuple[list[tuple[Any, ...]], float]:
        with plex(sim) as server:
            found = [
                (
                    s.ratingKey,
                    s.player.machineIdentifier,
                    s.player.state,
                    s.usernames,
                    s.session.location,
                    s.viewOffset,
                )
                for s in server.sessions()
            ]
            client = server.client(target.name)
            client.proxyThroughServer()
            sent = time.monotonic()
            client.pause()
            return found, sent

    found, pause_sent = await in_thread(sessions_then_pause)
    assert found[0][:5] == (movie.id, target.machine_identifier, "playing", ["plexowner"], "lan")
    paused = await target.wait_for_state("paused", timeout=5)
    assert paused.command == "pause"
    assert paused.monotonic >= pause_sent
    frozen = target.position_ms
    await asyncio.sleep(0.05)
    assert target.position_ms == frozen  # the clock stops while paused


async def test_timeline_poll_seek_volume_step_and_stop(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    client = first_client(sim)
    episode = sim.library.shows()[0].leaves()[0]
    headers = {"X-Plex-Token": "tok", "X-Plex-Target-Client-Identifier": client.machine_identifier}

    async def command(path: str, **params: str) -> None:
        async with http.get(sim.url + path, params=params, headers=headers) as resp:
            assert resp.status == 200
            assert "Response" in await resp.text()

    season = episode.parent
    assert season is not None
    uri = f"server://{sim.machine_identifier}/com.plexapp.plugins.library{season.key}"
    async with http.post(
        sim.url + "/playQueues", params={"uri": uri, "type": "video"}, headers=headers
    ) as resp:
        queue_id = parse_xml(await resp.read()).get("playQueueID")
    await command(
        "/player/playback/playMedia",
        key=f"/library/metadata/{episode.id}",
        offset="1000",
        containerKey=f"/playQueues/{queue_id}?window=100&own=1",
    )
    await client.wait_for_state("playing", rating_key=episode.rating_key)
    await command("/player/playback/seekTo", offset="600000")
    await client.wait_for(lambda: client.record[-1].command == "seekTo")
    assert 600_000 <= client.position_ms <= (episode.duration or 0)
    await command("/player/playback/setParameters", volume="35")
    await client.wait_for(lambda: client.volume == 35)
    await command("/player/playback/stepForward")
    await client.wait_for(lambda: client.record[-1].command == "stepForward")
    assert client.record[-1].position_ms >= 630_000

    async with http.get(
        sim.url + "/player/timeline/poll", params={"wait": "0"}, headers=headers
    ) as resp:
        root = parse_xml(await resp.read())
    video = next(t for t in root.iter("Timeline") if t.get("type") == "video")
    assert (video.get("state"), video.get("ratingKey"), video.get("volume")) == (
        "playing",
        episode.rating_key,
        "35",
    )
    assert video.get("machineIdentifier") == sim.machine_identifier

    await command("/player/playback/skipNext")
    await client.wait_for(lambda: client.rating_key == season.children[1].rating_key)
    assert client.play_queue is not None
    assert client.play_queue.id == int(queue_id or 0)
    await command("/player/playback/stop")
    stopped = await client.wait_for_state("stopped")
    assert stopped.command == "stop"
    assert client.rating_key is None
    assert [r.command for r in client.record] == [
        "playMedia",
        "playMedia",
        "seekTo",
        "setParameters",
        "stepForward",
        "skipNext",
        "stop",
    ]


async def test_terminate_takes_the_session_id_only(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    """python-plexapi's `stop(reason)` (by `<Session id>`) ends the stream; a request without
    `sessionId` is HTTP 400 and one naming the session key ends nothing (404), as on PMS."""
    client = first_client(sim)
    await client.local_start(sim.library.movies()[0].rating_key)
    path = sim.url + "/status/sessions/terminate"
    token = {"X-Plex-Token": sim.token}
    for params, status in (({"reason": "x"}, 400), ({"sessionId": client.session_key}, 404)):
        async with http.get(path, params=params, headers=token) as resp:
            assert resp.status == status, params
    assert client.state == "playing"

    def stop() -> None:
        with plex(sim) as server:
            server.sessions()[0].stop(reason="Bed time")

    await in_thread(stop)
    assert client.state == "stopped"
    assert ("terminate", {"reason": "Bed time"}) in client.commands


async def test_unknown_offline_and_uncontrollable_clients(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    clients = list(sim.clients.values())
    clients[1].online = False
    clients[2].accepts_control = False

    async def status(target: str) -> int:
        async with http.get(
            sim.url + "/player/playback/pause",
            headers={"X-Plex-Token": "tok", "X-Plex-Target-Client-Identifier": target},
        ) as resp:
            return resp.status

    assert await status("no-such-player") == 404
    assert await status(clients[1].machine_identifier) == 404
    assert await status(clients[2].machine_identifier) == 500
    listed = await get_xml(http, sim, "/clients")
    assert [s.get("machineIdentifier") for s in listed.iter("Server")] == [
        clients[0].machine_identifier,
        clients[2].machine_identifier,
    ]

    def pause_uncontrollable() -> None:
        with plex(sim) as server:
            client = server.client(clients[2].name)
            client.proxyThroughServer()
            client.pause()

    with pytest.raises(BadRequest):
        await in_thread(pause_uncontrollable)

    added = sim.add_client("Den TV", product="Plex for LG", platform="webOS")
    listed = await get_xml(http, sim, "/clients")
    assert added.machine_identifier in [s.get("machineIdentifier") for s in listed.iter("Server")]
    sim.remove_client(added.machine_identifier)
    listed = await get_xml(http, sim, "/clients")
    assert len(list(listed.iter("Server"))) == 2

    def pause_unknown() -> None:
        with plex(sim) as server:
            server.query(
                "/player/playback/pause", headers={"X-Plex-Target-Client-Identifier": "nobody"}
            )

    with pytest.raises(NotFound):
        await in_thread(pause_unknown)


async def test_sessions_show_stream_decisions(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    movies = sim.library.movies()
    for n, client in enumerate(sim.clients.values()):
        await client.local_start(movies[n].rating_key, offset_ms=5_000)
    root = await get_xml(http, sim, "/status/sessions")
    decisions = {}
    for video in root.iter("Video"):
        player = video.find("Player")
        assert player is not None
        part = video.find("Media/Part")
        assert part is not None
        transcode = video.find("TranscodeSession")
        decisions[player.get("machineIdentifier")] = (
            part.get("decision"),
            transcode.get("videoDecision") if transcode is not None else None,
        )
        assert video.find("User") is not None
        assert video.find("Session") is not None
        assert int(video.get("viewOffset") or 0) >= 5_000
    assert list(decisions.values()) == [
        ("directplay", None),
        ("transcode", "copy"),
        ("transcode", "transcode"),
    ]
    transcodes = await get_xml(http, sim, "/transcode/sessions")
    assert len(list(transcodes.iter("TranscodeSession"))) == 2
    assert root.get("size") == "3"


async def test_autoplay_starts_sessions(sim: PlexSimulator) -> None:
    started = await sim.autoplay(2, seed=1)
    assert len(started) == 2
    assert all(c.state == "playing" and c.rating_key for c in started)
    assert sim.active_clients() == started
    more = await sim.autoplay(5, seed=1)
    assert len(more) == 1  # only one idle player was left


async def test_local_actions_take_effect_at_once(sim: PlexSimulator) -> None:
    client = first_client(sim)
    movie = sim.library.movies()[0]
    started = await client.local_start(movie.rating_key, offset_ms=10_000)
    assert (client.state, client.rating_key, started.position_ms) == (
        "playing",
        movie.rating_key,
        10_000,
    )
    assert (await client.local_pause()) is not None
    assert client.state == "paused"
    assert (await client.local_pause()) is None  # already paused: nothing happens
    await client.local_seek(120_000)
    assert client.position_ms == 120_000
    await client.local_play()
    assert client.state == "playing"
    await client.local_stop()
    assert (client.state, client.rating_key) == ("stopped", None)
    assert [r.command for r in client.record] == [
        "local_start",
        "local_pause",
        "local_seek",
        "local_play",
        "local_stop",
    ]
    assert movie.view_offset >= 120_000  # a real server stores the resume point


# ---------------------------------------------------------------------------------- websocket


@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")
async def test_plexwebsocket_receives_playing(sim: PlexSimulator) -> None:
    received: list[tuple[str, Any]] = []

    def callback(msgtype: str, data: Any, error: str | None) -> None:
        received.append((msgtype, data))

    requests_session = requests.Session()
    server = await in_thread(lambda: PlexServer(sim.url, sim.token, session=requests_session))
    requests_session.close()
    async with aiohttp.ClientSession() as session:
        websocket = plexwebsocket.PlexWebsocket(server, callback, session=session)
        task = asyncio.get_running_loop().create_task(websocket.running())
        try:
            await wait_until(lambda: sim.websocket_count == 1)
            movie = sim.library.movies()[5]
            await first_client(sim).local_start(movie.rating_key)
            await wait_until(lambda: any(kind == "playing" for kind, _ in received))
        finally:
            websocket.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    playing = next(data for kind, data in received if kind == "playing")
    entry = playing["PlaySessionStateNotification"][0]
    assert entry["ratingKey"] == movie.rating_key
    assert entry["key"] == f"/library/metadata/{movie.id}"
    assert entry["state"] == "playing"
    assert entry["clientIdentifier"] == first_client(sim).machine_identifier
    assert ("plexwebsocket_state", "connected") in received


async def test_periodic_playing_notifications_advance(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    client = first_client(sim)
    async with notifications(http, sim) as box:
        await client.local_start(sim.library.movies()[1].rating_key, offset_ms=1_000)
        await wait_until(lambda: len(box.of_type("playing")) >= 4)
        await client.local_stop()
        await wait_until(
            lambda: (
                box.of_type("playing")[-1]["PlaySessionStateNotification"][0]["state"] == "stopped"
            )
        )
    entries = [c["PlaySessionStateNotification"][0] for c in box.of_type("playing")]
    offsets = [e["viewOffset"] for e in entries if e["state"] == "playing"]
    assert offsets == sorted(offsets)
    assert offsets[-1] > offsets[0] >= 1_000
    assert {e["sessionKey"] for e in entries} == {client.session_key}


async def test_scan_sends_activity_notifications(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    async with notifications(http, sim) as box:
        async with http.get(
            sim.url + "/library/sections/2/refresh", params={"X-Plex-Token": "tok"}
        ) as resp:
            assert resp.status == 200
        await wait_until(
            lambda: any(
                a["ActivityNotification"][0]["event"] == "ended" for a in box.of_type("activity")
            )
        )
        sim.library.start_scan(1)
        assert sim.library.section(1).refreshing
        sim.library.finish_scan(1)
        await wait_until(lambda: len(box.of_type("activity")) >= 5)
    events = [a["ActivityNotification"][0] for a in box.of_type("activity")]
    assert [e["event"] for e in events] == ["started", "updated", "ended", "started", "ended"]
    assert events[0]["Activity"]["type"] == "library.update.section"
    assert events[0]["Activity"]["Context"]["librarySectionID"] == "2"
    assert events[0]["uuid"] == events[2]["uuid"] != events[3]["uuid"]
    assert not sim.library.section(1).refreshing


# ---------------------------------------------------------------------------------- faults


async def test_go_offline_and_online(sim: PlexSimulator, http: aiohttp.ClientSession) -> None:
    url = sim.url
    async with notifications(http, sim) as box:
        await sim.go_offline()
        await wait_until(lambda: box.closed)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url + "/identity"):
            pass

    def offline_plexapi() -> None:
        with plex(sim):
            pass

    with pytest.raises(requests.exceptions.ConnectionError):
        await in_thread(offline_plexapi)
    await sim.go_online()
    assert sim.url == url
    root = await get_xml(http, sim, "/identity")
    assert root.get("machineIdentifier") == sim.machine_identifier
    async with notifications(http, sim):
        await wait_until(lambda: sim.websocket_count == 1)


async def test_forced_error_and_slow_responses(
    sim: PlexSimulator, http: aiohttp.ClientSession
) -> None:
    sim.set_error(500)

    def fetch_root() -> str:
        with plex(sim) as server:
            return str(server.friendlyName)

    with pytest.raises(BadRequest, match="500"):
        await in_thread(fetch_root)
    async with http.get(
        sim.url + "/:/websockets/notifications", params={"X-Plex-Token": "tok"}
    ) as resp:
        assert resp.status == 500
    sim.set_error(503)
    async with http.get(sim.url + "/identity") as resp:
        assert resp.status == 503
    sim.set_error(None)
    assert await in_thread(fetch_root) == "Plexus Simulator"

    sim.set_slow(0.2)
    started = time.monotonic()
    await get_xml(http, sim, "/identity")
    assert time.monotonic() - started >= 0.2
    sim.set_slow(0)


async def test_change_token(sim: PlexSimulator, http: aiohttp.ClientSession) -> None:
    async with notifications(http, sim) as box:
        sim.change_token("rotated")
        await wait_until(lambda: box.closed)  # websockets on the old token are dropped
    async with http.get(sim.url + "/", params={"X-Plex-Token": "tok"}) as resp:
        assert resp.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await http.ws_connect(sim.url + "/:/websockets/notifications?X-Plex-Token=tok")
    assert err.value.status == 401
    root = await get_xml(http, sim, "/")
    assert root.get("friendlyName") == "Plexus Simulator"

    def old_token() -> None:
        with plex(sim, token="tok"):
            pass

    with pytest.raises(Unauthorized):
        await in_thread(old_token)


# ---------------------------------------------------------------------------------- library data


def test_library_is_deterministic_and_covers_every_guid_form() -> None:
    first, second = Library(LibraryConfig(seed=9)), Library(LibraryConfig(seed=9))
    assert [(i.id, i.title, i.guid) for i in first.items.values()] == [
        (i.id, i.title, i.guid) for i in second.items.values()
    ]
    guids = [i.guid for i in first.items.values()]
    patterns = {
        "plex movie": r"plex://movie/[0-9a-f]{24}",
        "plex episode": r"plex://episode/[0-9a-f]{24}",
        "plex track": r"plex://track/[0-9a-f]{24}",
        "imdb legacy": r"com\.plexapp\.agents\.imdb://tt\d{7}\?lang=en",
        "themoviedb legacy": r"com\.plexapp\.agents\.themoviedb://\d+\?lang=en",
        "thetvdb episode": r"com\.plexapp\.agents\.thetvdb://\d+/\d+/\d+\?lang=en",
        "thetvdb season": r"com\.plexapp\.agents\.thetvdb://\d+/\d+\?lang=en",
        "hama anidb": r"com\.plexapp\.agents\.hama://anidb-\d+/\d+/\d+\?lang=en",
        "hama tvdb": r"com\.plexapp\.agents\.hama://tvdb-\d+(/\d+)*\?lang=en",
        "local": r"local://\d+",
        "none": r"com\.plexapp\.agents\.none://\d+\?lang=xn",
        "gracenote": r"com\.plexapp\.agents\.plexmusic://gracenote/track/.+\?lang=en",
    }
    for name, pattern in patterns.items():
        assert any(re.fullmatch(pattern, g) for g in guids), name
    ext = {g.split("://")[0] for i in first.items.values() for g in i.ext_guids}
    assert ext == {"imdb", "tmdb", "tvdb"}
    local = next(i for i in first.items.values() if i.guid.startswith("local://"))
    assert local.guid == f"local://{local.id}"
    titles = [m.title for m in first.movies()]
    assert titles.count("Little Women") == 2
    assert any(t.startswith("The ") for t in titles)
    assert any(":" in t for t in titles)
    assert any("&" in t for t in titles)
    the_matrix = next(m for m in first.movies() if m.title == "The Matrix")
    assert the_matrix.title_sort == "Matrix"


def test_windows_and_unc_roots() -> None:
    lib = Library(
        LibraryConfig(
            movies=4,
            shows=1,
            seasons_per_show=1,
            episodes_per_season=2,
            artists=0,
            movie_roots=("D:\\Media\\Movies", "E:\\Movies"),
            tv_roots="\\\\nas\\media\\tv",
        )
    )
    files = [m.media.file for m in lib.movies() if m.media]
    assert {f.split("\\")[0] for f in files} == {"D:", "E:"}
    assert all("/" not in f for f in files)
    episode_file = lib.episodes()[0].media.file if lib.episodes()[0].media else ""
    assert episode_file.startswith("\\\\nas\\media\\tv\\")
    assert "\\Season 01\\" in episode_file
    assert lib.section(1).locations == ("D:\\Media\\Movies", "E:\\Movies")
    assert "music" not in {s.type for s in lib.sections.values()}


async def test_large_library_scales(http: aiohttp.ClientSession) -> None:
    config = LibraryConfig(
        movies=47_000,
        shows=300,
        seasons_per_show=5,
        episodes_per_season=20,
        artists=400,
        albums_per_artist=4,
        tracks_per_album=12,
        seed=11,
    )
    lib = Library(config)
    assert len(lib) == config.item_count >= 100_000
    assert len({m.rating_key for m in lib.movies()}) == 47_000
    marker = sorted(e.updated_at for e in lib.episodes())[-100]
    expected = sum(1 for e in lib.episodes() if e.updated_at >= marker)
    async with PlexSimulator(library=lib, clients=50, latency_ms=(1, 5)) as big:
        page = await get_xml(
            http,
            big,
            "/library/sections/2/all",
            {
                "type": "4",
                "updatedAt>": str(marker - 1),  # strictly greater: from marker on
                "includeGuids": "1",
                "X-Plex-Container-Start": "0",
                "X-Plex-Container-Size": "1000",
            },
        )
        assert page.get("totalSize") == str(expected)
        middle = await get_xml(
            http,
            big,
            "/library/sections/1/all",
            {"X-Plex-Container-Start": "20000", "X-Plex-Container-Size": "50"},
        )
        assert [v.get("ratingKey") for v in middle.iter("Video")] == [
            m.rating_key for m in lib.movies()[20_000:20_050]
        ]
        clients = await get_xml(http, big, "/clients")
        assert clients.get("size") == "50"


# ---------------------------------------------------------------------------------- CLI


def test_cli_arguments() -> None:
    args = parse_args(
        [
            "--port",
            "0",
            "--token",
            "demo",
            "--latency-ms",
            "10,20",
            "--movie-root",
            "D:\\Movies",
            "--artists",
            "0",
        ]
    )
    assert (args.port, args.token, args.latency_ms, args.movie_root, args.artists) == (
        0,
        "demo",
        (10, 20),
        ["D:\\Movies"],
        0,
    )


def test_cli_serves_until_terminated() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.plex_simulator",
            "--port",
            "0",
            "--token",
            "demo-token",
            "--movies",
            "5",
            "--shows",
            "1",
            "--artists",
            "0",
            "--autoplay",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        url = next(line.split()[-1] for line in lines if "URL:" in line)
        assert "demo-token" in "".join(lines)
        with requests.Session() as session:
            resp = session.get(
                url + "/status/sessions", params={"X-Plex-Token": "demo-token"}, timeout=10
            )
        assert resp.status_code == 200
        assert parse_xml(resp.content).get("size") == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_player_latency_and_stall(sim: PlexSimulator, http: aiohttp.ClientSession) -> None:
    """A player's own latency range overrides the server's; a stall freezes the position."""
    slow = sim.add_client("Slow Player", latency_ms=(900, 960), machine_identifier="slow-1")
    movie = sim.library.movies()[0]
    await slow.local_start(movie.rating_key, offset_ms=5_000)
    await slow.local_pause()
    headers = {"X-Plex-Token": sim.token, "X-Plex-Target-Client-Identifier": "slow-1"}
    sent = time.monotonic()
    async with http.get(
        sim.url + "/player/playback/play", params={"commandID": "1"}, headers=headers
    ) as resp:
        assert resp.status == 200
    change = await slow.wait_for_state("playing", timeout=5)
    # "play" is a fast command: a third of the player's range, 300-320 ms (not the server's).
    assert 0.29 <= change.monotonic - sent <= 0.40

    before = slow.position_ms
    stall = asyncio.create_task(slow.local_stall(0.3))
    await slow.wait_for_state("buffering", timeout=1)
    await stall
    assert slow.state == "playing"
    assert slow.position_ms - before < 150  # it did not advance while buffering
    assert [r.state for r in slow.record[-2:]] == ["buffering", "playing"]
    await slow.local_pause()
    assert await slow.local_stall(0.1) is None  # only a playing player can stall
    assert slow.state == "paused"
