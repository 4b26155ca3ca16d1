"""Importer: streaming parse of recorded responses, full/incremental imports, failures, coalescing.

The HTTP side is a small in-test Plex stand-in (paging, ``updatedAt>=`` filtering, error
injection) serving the recorded ha-core responses or generated items; both database backends run
every import test.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
import threading
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

from aiohttp import ClientSession, web
import pytest

from custom_components.plexus.catalog import importer as importer_module
from custom_components.plexus.catalog.db import Catalog
from custom_components.plexus.catalog.importer import CatalogImporter, ImportProgress
from custom_components.plexus.catalog.models import ItemRecord
from custom_components.plexus.catalog.xmlstream import (
    ItemStreamParser,
    KeyStreamParser,
    parse_sections,
)
from custom_components.plexus.plex.errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexResponseError,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

FIXTURES = Path(__file__).parent / "fixtures" / "ha-core"
TOKEN = "test-token"


# --- streaming parser on recorded responses ---------------------------------------------------


def parse_file(name: str, chunk: int) -> list[Any]:
    data = (FIXTURES / name).read_bytes()
    parser = ItemStreamParser()
    items = []
    for start in range(0, len(data), chunk):
        items.extend(parser.feed(data[start : start + chunk]))
    items.extend(parser.close())
    return items


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**7])
def test_stream_parse_movies(chunk: int) -> None:
    items = parse_file("library_movies_all.xml", chunk)
    assert [i.rating_key for i in items] == ["1", "2", "3", "4", "5"]
    movie = items[0]
    assert (movie.type, movie.title, movie.year, movie.duration) == (
        "movie",
        "Movie 1",
        2000,
        9000000,
    )
    assert (movie.added_at, movie.updated_at) == (1377829261, 1590245989)
    assert [(g.provider, g.id, g.legacy) for g in movie.guids] == [("imdb", "tt0123456", True)]
    assert movie.media == []


def test_stream_parse_episodes_and_parts() -> None:
    items = parse_file("children_20.xml", 100)
    assert len(items) == 10
    first = items[0]
    assert (first.type, first.season_number, first.episode_number) == ("episode", 1, 1)
    assert (first.parent_rating_key, first.grandparent_rating_key, first.grandparent_title) == (
        "20",
        "30",
        "TV Show",
    )
    assert [(g.provider, g.id, g.season, g.episode) for g in first.guids] == [
        ("tvdb", "12345", 1, 10)
    ]
    assert len(first.media) == 1
    part = first.media[0]
    assert (part.plex_path, part.size, part.container, part.video_codec, part.video_resolution) == (
        "/storage/videos/video.mkv",
        8500000000,
        "mkv",
        "h264",
        "720",
    )
    assert (part.audio_codec, part.width, part.height, part.part_id) == ("dca", 1280, 544, "4631")


def test_stream_parse_shows_tracks_and_guid_children() -> None:
    shows = parse_file("library_tvshows_all.xml", 50)
    assert [(s.type, s.rating_key, s.title) for s in shows] == [("show", "30", "TV Show")]
    tracks = parse_file("grandchildren_300.xml", 333)
    assert len(tracks) == 10
    assert (tracks[1].type, tracks[1].season_number, tracks[1].episode_number) == ("track", 1, 2)
    assert tracks[0].guids[0].provider == "plex"
    assert tracks[0].media[0].plex_path.endswith("Track Name.mp3")
    sessions = parse_file("session_base.xml", 64)  # Video items with <Guid> children
    guids = {(g.provider, g.id) for item in sessions for g in item.guids}
    assert {("tmdb", "12345"), ("tvdb", "67890")} <= guids


def test_stream_parse_sizes_and_keys() -> None:
    parser = ItemStreamParser()
    assert parser.feed((FIXTURES / "library_movies_size.xml").read_bytes()) == []
    parser.close()
    assert parser.total_size is not None
    keys = KeyStreamParser()
    keys.feed((FIXTURES / "library_movies_all.xml").read_bytes())
    keys.close()
    assert keys.keys == ["1", "2", "3", "4", "5"]


def test_parse_sections_fixture() -> None:
    sections = parse_sections((FIXTURES / "library_sections.xml").read_bytes())
    assert [(s.key, s.type, s.title, s.locations) for s in sections] == [
        ("1", "movie", "Movies", ["/storage/movies"]),
        ("2", "show", "TV Shows", ["/storage/tvshows"]),
        ("3", "artist", "Music", ["/storage/music"]),
    ]


def test_stream_parse_malformed() -> None:
    parser = ItemStreamParser()
    parser.feed(b"<MediaContainer><Video ratingKey='1' type='movie' title='x'>")
    with pytest.raises(ET.ParseError):
        parser.close()


# --- a small Plex stand-in ------------------------------------------------------------------------


@dataclass
class FakeItem:
    attrs: dict[str, str]
    guids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    raw: bytes | None = None  # a recorded element, served as is

    def xml(self) -> bytes:
        if self.raw is not None:
            return self.raw
        tag = "Video" if self.attrs["type"] in ("movie", "episode") else "Directory"
        attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in self.attrs.items())
        inner = "".join(f"<Guid id={quoteattr(g)}/>" for g in self.guids)
        inner += "".join(
            '<Media container="mkv" videoCodec="hevc" videoResolution="1080">'
            f'<Part id="{n}" file={quoteattr(f)} size="100"/></Media>'
            for n, f in enumerate(self.files)
        )
        return f"<{tag} {attrs}>{inner}</{tag}>".encode()


TYPE_NUMBERS = {
    "movie": 1,
    "show": 2,
    "season": 3,
    "episode": 4,
    "artist": 8,
    "album": 9,
    "track": 10,
}


class FakePlex:
    """Serves /library/sections and paged /library/sections/<key>/all like PMS does."""

    def __init__(self, machine_identifier: str = "fake-1") -> None:
        self.machine_identifier = machine_identifier
        self.sections_xml = b""
        self.items: dict[tuple[str, int], list[FakeItem]] = {}
        self.requests: list[web.Request] = []
        self.fail: Callable[[web.Request], int | bytes | None] = lambda request: None
        self.delay = 0.0
        self.clock = 1_700_000_000
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/library/sections", self._sections)
        app.router.add_get("/library/sections/{key}/all", self._all)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _response(self, body: bytes) -> web.Response:
        # The server's clock: item timestamps and the Date header agree, as on a real server.
        headers = {"Date": formatdate(self.clock, usegmt=True)}
        return web.Response(body=body, content_type="application/xml", headers=headers)

    async def _check(self, request: web.Request) -> web.Response | None:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.headers.get("X-Plex-Token") != TOKEN:
            return web.Response(status=401)
        failure = self.fail(request)
        if isinstance(failure, int):
            return web.Response(status=failure)
        if isinstance(failure, bytes):
            return web.Response(body=failure, content_type="application/xml")
        return None

    async def _sections(self, request: web.Request) -> web.Response:
        if (error := await self._check(request)) is not None:
            return error
        return self._response(self.sections_xml)

    async def _all(self, request: web.Request) -> web.Response:
        if (error := await self._check(request)) is not None:
            return error
        q = request.query
        items = self.items.get((request.match_info["key"], int(q.get("type", "1"))), [])
        if "updatedAt>" in q:
            # `updatedAt>=N` splits at the "=": the key `updatedAt>`, strictly greater than N.
            since = int(q["updatedAt>"])
            items = [i for i in items if int(i.attrs.get("updatedAt", "0")) > since]
        start = int(q.get("X-Plex-Container-Start", "0"))
        size = int(q.get("X-Plex-Container-Size", "100000"))
        page = items[start : start + size]
        body = (
            f'<MediaContainer size="{len(page)}" totalSize="{len(items)}">'.encode()
            + b"".join(i.xml() for i in page)
            + b"</MediaContainer>"
        )
        return self._response(body)

    # generated libraries

    def set_sections(self, sections: list[tuple[str, str, str, str]]) -> None:
        rows = "".join(
            f'<Directory key="{k}" type="{t}" title="{title}" agent="tv.plex.agents.movie">'
            f'<Location id="{k}" path="{loc}"/></Directory>'
            for k, t, title, loc in sections
        )
        self.sections_xml = (
            f'<MediaContainer size="{len(sections)}">{rows}</MediaContainer>'.encode()
        )

    def add(self, section: str, item_type: str, key: str, title: str, **attrs: str) -> FakeItem:
        self.clock += 1
        item = FakeItem(
            {
                "ratingKey": key,
                "type": item_type,
                "title": title,
                "addedAt": str(self.clock),
                "updatedAt": str(self.clock),
                **attrs,
            }
        )
        self.items.setdefault((section, TYPE_NUMBERS[item_type]), []).append(item)
        return item

    def find(self, key: str) -> tuple[list[FakeItem], FakeItem]:
        for items in self.items.values():
            for item in items:
                if item.attrs["ratingKey"] == key:
                    return items, item
        raise KeyError(key)

    def update(self, key: str, *, touch: bool = True, **attrs: str) -> None:
        _, item = self.find(key)
        item.attrs.update(attrs)
        if touch:
            self.clock += 1
            item.attrs["updatedAt"] = str(self.clock)

    def delete(self, key: str) -> None:
        items, item = self.find(key)
        items.remove(item)

    def item_requests(self) -> list[web.Request]:
        return [
            r
            for r in self.requests
            if r.path.endswith("/all") and r.query.get("includeGuids") == "1"
        ]


def generated(
    plex: FakePlex, movies: int = 23, shows: int = 2, seasons: int = 2, episodes: int = 4
) -> None:
    plex.set_sections(
        [
            ("1", "movie", "Movies", "/data/movies"),
            ("2", "show", "TV Shows", "/data/tv"),
            ("5", "photo", "Photos", "/data/photos"),
        ]
    )
    for n in range(movies):
        item = plex.add(
            "1",
            "movie",
            f"m{n}",
            f"Movie Number {n}",
            year=str(1990 + n % 30),
            guid=f"plex://movie/{n:024x}",
        )
        item.guids = [f"imdb://tt{n:07d}", f"tmdb://{n + 1}"]
        item.files = [f"/data/movies/Movie {n}/movie.mkv"]
    for s in range(shows):
        plex.add(
            "2",
            "show",
            f"s{s}",
            f"Show {s}",
            guid=f"com.plexapp.agents.thetvdb://{s + 100}?lang=en",
        )
        for se in range(1, seasons + 1):
            plex.add(
                "2", "season", f"s{s}se{se}", f"Season {se}", index=str(se), parentRatingKey=f"s{s}"
            )
            for e in range(1, episodes + 1):
                item = plex.add(
                    "2",
                    "episode",
                    f"s{s}e{se}x{e}",
                    f"Episode {e}",
                    index=str(e),
                    parentIndex=str(se),
                    parentRatingKey=f"s{s}se{se}",
                    grandparentRatingKey=f"s{s}",
                    grandparentTitle=f"Show {s}",
                    guid=f"com.plexapp.agents.thetvdb://{s + 100}/{se}/{e}?lang=en",
                )
                item.files = [f"/data/tv/Show {s}/Season {se}/e{e}.mkv"]


def ha_core(plex: FakePlex) -> None:
    plex.sections_xml = (FIXTURES / "library_sections.xml").read_bytes()

    def recorded(name: str) -> list[FakeItem]:
        root = ET.fromstring((FIXTURES / name).read_bytes())  # noqa: S314
        return [FakeItem(dict(child.attrib), raw=ET.tostring(child)) for child in root]

    plex.items = {
        ("1", 1): recorded("library_movies_all.xml"),
        ("2", 2): recorded("library_tvshows_all.xml"),
        ("2", 4): recorded("children_20.xml"),
        ("3", 9): recorded("children_300.xml"),
        ("3", 10): recorded("grandchildren_300.xml"),
    }


@pytest.fixture
async def plex() -> AsyncIterator[FakePlex]:
    server = FakePlex()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def importer(
    catalog: Catalog, session: ClientSession, plex: FakePlex, **kwargs: Any
) -> CatalogImporter:
    return CatalogImporter(catalog, session, plex.url, TOKEN, plex.machine_identifier, **kwargs)


# --- imports ---------------------------------------------------------------------------------


async def test_import_recorded_ha_core(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    ha_core(plex)
    result = await importer(catalog, session, plex).run("full")
    assert result.libraries == ("Movies", "TV Shows", "Music")
    assert catalog.counts(plex.machine_identifier) == {
        "movie": 5,
        "show": 1,
        "episode": 10,
        "album": 1,
        "track": 1,
    }
    assert result.counts.added == 18
    assert result.counts.unknown_guids == 0
    movies = catalog.find_by_guid("imdb", "tt0123456")
    assert sorted(m.rating_key for m in movies) == ["1", "2", "3", "4", "5"]
    episode = catalog.find_by_guid("tvdb", "12345", season=1, episode=14)
    assert [(e.rating_key, e.title, e.season_number, e.episode_number) for e in episode] == [
        ("14", "Episode 5", 1, 5)
    ]
    show = catalog.get_item(plex.machine_identifier, "30")
    assert show is not None
    assert show.guids[0].provider == "tvdb"
    assert show.guids[0].season is None
    assert [lib.locations for lib in catalog.libraries(plex.machine_identifier)] == [
        ("/storage/movies",),
        ("/storage/tvshows",),
        ("/storage/music",),
    ]
    ep = catalog.get_item(plex.machine_identifier, "10")
    assert ep is not None
    assert ep.files[0].plex_path == "/storage/videos/video.mkv"
    assert not ep.files[0].mapped
    # Episodes are read flat per section; nothing is fetched per show.
    paths = {r.path for r in plex.requests}
    assert all(p == "/library/sections" or p.endswith("/all") for p in paths)
    assert any(
        r.query.get("type") == "4" and r.path == "/library/sections/2/all"
        for r in plex.item_requests()
    )


async def test_full_import_paged_with_progress(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex)
    catalog.set_path_mappings(plex.machine_identifier, [("/data", "/mnt/nas")])
    updates: list[ImportProgress] = []
    imp = importer(catalog, session, plex, page_size=5, batch_size=3, on_progress=updates.append)
    result = await imp.run("full")
    assert catalog.counts(plex.machine_identifier) == {
        "movie": 23,
        "show": 2,
        "season": 4,
        "episode": 16,
    }
    assert (result.counts.added, result.counts.updated, result.counts.removed) == (45, 0, 0)
    assert result.libraries == ("Movies", "TV Shows")  # photo libraries are not imported
    requests = plex.item_requests()
    assert all(int(r.query["X-Plex-Container-Size"]) == 5 for r in requests)
    assert {r.query["X-Plex-Container-Start"] for r in requests if r.query["type"] == "1"} == {
        "0",
        "5",
        "10",
        "15",
        "20",
    }
    percents = [u.percent for u in updates]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert updates[-1].items_done == 45
    assert imp.progress is None
    movie = catalog.get_item(plex.machine_identifier, "m7")
    assert movie is not None
    assert movie.local_path == "/mnt/nas/movies/Movie 7/movie.mkv"
    assert {(g.provider, g.id) for g in movie.guids} == {
        ("plex", f"movie/{7:024x}"),
        ("imdb", "tt0000007"),
        ("tmdb", "8"),
    }
    run = catalog.last_import(plex.machine_identifier)
    assert run is not None
    assert run.status == "success"
    assert run.mode == "full"
    # The same again: nothing to write.
    again = await imp.run("full")
    assert (again.counts.added, again.counts.updated, again.counts.removed, again.counts.seen) == (
        0,
        0,
        0,
        45,
    )


async def test_incremental_after_changes(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex)
    imp = importer(catalog, session, plex, page_size=4)
    await imp.run("full")
    plex.requests.clear()
    nothing = await imp.run("incremental")
    assert (nothing.counts.added, nothing.counts.updated, nothing.counts.removed) == (0, 0, 0)
    # Only items at the marker second come back (updatedAt >= marker): a handful, not everything.
    assert nothing.counts.seen <= 4
    assert all("updatedAt>" in r.query for r in plex.item_requests())
    # Counts match, so no key listing was needed.
    assert not [r for r in plex.requests if "includeFields" in r.query]

    plex.add("1", "movie", "m-new", "A Brand New Film", year="2024")
    plex.update("m3", title="Movie Three (Director's Cut)")
    plex.delete("s1e2x3")
    plex.delete("m5")
    result = await imp.run("incremental")
    assert (result.counts.added, result.counts.updated, result.counts.removed) == (1, 1, 2)
    assert [r for r in plex.requests if "includeFields" in r.query]
    assert result.mode == "incremental"
    assert catalog.get_item(plex.machine_identifier, "m-new") is not None
    m3 = catalog.get_item(plex.machine_identifier, "m3")
    assert m3 is not None
    assert m3.title == "Movie Three (Director's Cut)"
    assert catalog.get_item(plex.machine_identifier, "s1e2x3") is None
    assert catalog.get_item(plex.machine_identifier, "m5") is None
    assert catalog.counts(plex.machine_identifier) == {
        "movie": 23,
        "show": 2,
        "season": 4,
        "episode": 15,
    }
    assert catalog.search("brand new flim")[0].item.rating_key == "m-new"


async def test_change_without_timestamp_needs_full_run(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=5, shows=0)
    imp = importer(catalog, session, plex)
    await imp.run("full")
    plex.update("m1", touch=False, title="Silently Renamed")
    await imp.run("incremental")
    item = catalog.get_item(plex.machine_identifier, "m1")
    assert item is not None
    assert item.title == "Movie Number 1"  # documented: incremental relies on updatedAt
    result = await imp.run("full")
    assert result.counts.updated == 1
    item = catalog.get_item(plex.machine_identifier, "m1")
    assert item is not None
    assert item.title == "Silently Renamed"


@pytest.mark.parametrize("failure", [500, b"<MediaContainer><Video ", "disconnect"])
async def test_failure_mid_import_leaves_catalog_unchanged(
    catalog: Catalog, session: ClientSession, plex: FakePlex, failure: int | bytes | str
) -> None:
    generated(plex)
    imp = importer(catalog, session, plex, page_size=5, batch_size=2)
    await imp.run("full")
    before = {
        key: catalog.get_item(plex.machine_identifier, key)
        for key in catalog.rating_keys(plex.machine_identifier)
    }
    plex.add("1", "movie", "m-new", "New")
    plex.update("m1", title="Changed")
    plex.delete("m2")
    for n in range(10):
        plex.add("2", "episode", f"extra{n}", f"Extra {n}", grandparentTitle="Show 0")

    calls = 0

    def fail_late(request: web.Request) -> int | bytes | None:
        nonlocal calls
        if request.query.get("includeGuids") != "1":
            return None
        calls += 1
        if calls < 6:
            return None
        if failure == "disconnect":
            request.transport.close()  # type: ignore[union-attr]
            return None
        return failure  # type: ignore[return-value]

    plex.fail = fail_late
    with pytest.raises((PlexConnectionError, PlexResponseError)):
        await imp.run("full")
    after = {
        key: catalog.get_item(plex.machine_identifier, key)
        for key in catalog.rating_keys(plex.machine_identifier)
    }
    assert after == before
    run = catalog.last_import(plex.machine_identifier)
    assert run is not None
    assert run.status == "failed"
    assert run.error
    assert run.finished_at is not None
    # The next run, with the server healthy again, goes through.
    plex.fail = lambda request: None
    result = await imp.run("full")
    assert (result.counts.added, result.counts.updated, result.counts.removed) == (11, 1, 1)


async def test_auth_failure(catalog: Catalog, session: ClientSession, plex: FakePlex) -> None:
    generated(plex, movies=2, shows=0)
    imp = CatalogImporter(catalog, session, plex.url, "wrong", plex.machine_identifier)
    with pytest.raises(PlexAuthError):
        await imp.run("full")
    assert catalog.counts() == {}


async def test_server_offline(catalog: Catalog, session: ClientSession) -> None:
    imp = CatalogImporter(catalog, session, "http://127.0.0.1:9", TOKEN, "gone")
    with pytest.raises(PlexConnectionError):
        await imp.run("full")


async def test_cancel_leaves_catalog_unchanged(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=10, shows=1)
    imp = importer(catalog, session, plex, page_size=3)
    await imp.run("full")
    plex.update("m1", title="Changed")
    plex.delay = 0.05
    task = asyncio.create_task(imp.run("full"))
    while len(plex.item_requests()) < 10 + 3:  # a few pages into the second run
        await asyncio.sleep(0.01)
    await imp.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    item = catalog.get_item(plex.machine_identifier, "m1")
    assert item is not None
    assert item.title == "Movie Number 1"
    run = catalog.last_import(plex.machine_identifier)
    assert run is not None
    assert run.status == "failed"
    assert not imp.running


async def test_two_servers_kept_apart(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    other = FakePlex("fake-2")
    await other.start()
    try:
        generated(plex, movies=4, shows=1)
        generated(other, movies=6, shows=0)  # same rating keys m0..m3 on both
        other.update("m0", title="Other Server's Film")
        await asyncio.gather(
            importer(catalog, session, plex).run("full"),
            importer(catalog, session, other).run("full"),
        )
        assert catalog.counts("fake-1") == {"movie": 4, "show": 1, "season": 2, "episode": 8}
        assert catalog.counts("fake-2") == {"movie": 6}
        one = catalog.get_item("fake-1", "m0")
        two = catalog.get_item("fake-2", "m0")
        assert one is not None
        assert two is not None
        assert (one.title, two.title) == ("Movie Number 0", "Other Server's Film")
        # A full import of one server never touches the other.
        other.delete("m1")
        await importer(catalog, session, other).run("full")
        assert catalog.get_item("fake-1", "m1") is not None
        assert catalog.get_item("fake-2", "m1") is None
        assert {i.server_id for i in catalog.find_by_guid("imdb", "tt0000000")} == {
            "fake-1",
            "fake-2",
        }
    finally:
        await other.stop()


async def test_requests_while_running_are_coalesced(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=6, shows=1)
    imp = importer(catalog, session, plex, page_size=2)
    plex.delay = 0.02
    first = asyncio.create_task(imp.run("incremental"))
    await asyncio.sleep(0.05)
    assert imp.running
    others = [asyncio.create_task(imp.run(mode)) for mode in ("incremental", "full", "incremental")]
    results = await asyncio.gather(first, *others)
    assert imp.runs_started == 2
    assert results[1] is results[2] is results[3]
    assert results[1].mode == "full"  # full wins when merged
    assert results[0].counts.added == 6 + 1 + 2 + 8
    assert not imp.running


async def test_library_selection(catalog: Catalog, session: ClientSession, plex: FakePlex) -> None:
    generated(plex, movies=3, shows=1)
    result = await importer(catalog, session, plex).run("full", libraries=["Movies"])
    assert result.libraries == ("Movies",)
    assert catalog.counts(plex.machine_identifier) == {"movie": 3}
    result = await importer(catalog, session, plex).run("incremental", libraries=["2"])
    assert result.libraries == ("TV Shows",)
    assert catalog.counts(plex.machine_identifier) == {
        "movie": 3,
        "show": 1,
        "season": 2,
        "episode": 8,
    }


async def test_unknown_guids_are_counted(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=2, shows=0)
    plex.update("m0", guid="com.plexapp.agents.youtube://abc?lang=en")
    _, item = plex.find("m1")
    item.guids.append("imdb://image.rating")
    result = await importer(catalog, session, plex).run("full")
    assert result.counts.unknown_guids == 1
    m0 = catalog.get_item(plex.machine_identifier, "m0")
    assert m0 is not None
    assert ("unknown", "com.plexapp.agents.youtube://abc?lang=en") in {
        (g.provider, g.id) for g in m0.guids
    }
    m1 = catalog.get_item(plex.machine_identifier, "m1")
    assert m1 is not None
    assert len(m1.guids) == 3


async def test_custom_executor_is_used(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=3, shows=0)
    calls: list[str] = []

    async def run_sync(func: Callable[..., Any], *args: Any) -> Any:
        calls.append(getattr(getattr(func, "func", func), "__name__", "?"))
        return await asyncio.to_thread(func, *args)

    await importer(catalog, session, plex, run_sync=run_sync).run("full")
    assert {
        "begin_import",
        "sync_libraries",
        "start_library",
        "write_batch",
        "finish_library",
        "commit",
    } <= set(calls)


async def test_xml_is_parsed_off_the_event_loop(
    catalog: Catalog, session: ClientSession, plex: FakePlex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of items and of keys are parsed in the executor, not on the event loop (a page of a
    large library held the loop for 200-300 ms when parsed there), and big pages in several
    pieces, each one job after the other."""
    generated(plex, movies=60, shows=2)
    monkeypatch.setattr(importer_module, "_PARSE_CHUNK", 2048)  # several pieces per page
    loop_thread = threading.get_ident()
    fed: dict[str, list[int]] = {"items": [], "keys": []}
    real_items, real_keys = ItemStreamParser.feed, KeyStreamParser.feed

    def items_feed(self: ItemStreamParser, data: bytes) -> list[ItemRecord]:
        fed["items"].append(threading.get_ident())
        return real_items(self, data)

    def keys_feed(self: KeyStreamParser, data: bytes) -> None:
        fed["keys"].append(threading.get_ident())
        real_keys(self, data)

    monkeypatch.setattr(ItemStreamParser, "feed", items_feed)
    monkeypatch.setattr(KeyStreamParser, "feed", keys_feed)
    imp = importer(catalog, session, plex, page_size=50)
    await imp.run("full")
    await imp.run("incremental")  # reads the keys to find removals
    assert catalog.counts(plex.machine_identifier)["movie"] == 60
    assert len(fed["items"]) > 4
    assert fed["keys"]
    assert loop_thread not in fed["items"] + fed["keys"]


def test_http_date() -> None:
    from custom_components.plexus.catalog.importer import _http_date

    assert _http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert _http_date(None) is None
    assert _http_date("not a date") is None


async def test_unreachable_sections_recorded_as_failed(
    catalog: Catalog, session: ClientSession, plex: FakePlex
) -> None:
    generated(plex, movies=2, shows=0)
    plex.fail = lambda request: 503
    with pytest.raises(PlexConnectionError):
        await importer(catalog, session, plex).run("incremental")
    run = catalog.last_import(plex.machine_identifier)
    assert run is not None
    assert (run.status, run.mode) == ("failed", "incremental")
    assert run.error is not None
    assert "503" in run.error
