"""Catalog hardening (issue 15): bad answers, empty listings, database errors, the marker second.

Each test is named after what it tries. Both backends unless the test says otherwise; the
PostgreSQL restart runs once, against the real server (it takes a second or two).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
import gc
from pathlib import Path
import shutil
import subprocess
import time
from typing import Any

from aiohttp import ClientSession
import pytest
from sqlalchemy.exc import SQLAlchemyError

from custom_components.plexus.catalog import (
    Catalog,
    CatalogError,
    CatalogUnavailableError,
    sqlite_url,
)
from custom_components.plexus.catalog.errors import short_cause
from custom_components.plexus.catalog.importer import CatalogImporter
from custom_components.plexus.catalog.models import ItemRecord, LibraryRecord
from custom_components.plexus.catalog.writer import import_transaction
from custom_components.plexus.plex.errors import PlexResponseError
from tests.conftest import PG_URL, make_catalog
from tests.plex_simulator import LibraryConfig, PlexSimulator

pytestmark = pytest.mark.usefixtures("socket_enabled")

TOKEN = "hardening-token"
SMALL = LibraryConfig(
    movies=30,
    shows=2,
    seasons_per_show=2,
    episodes_per_season=4,
    artists=1,
    albums_per_artist=1,
    tracks_per_album=3,
)
SECTIONS = "/library/sections"


@pytest.fixture
async def sim() -> AsyncIterator[PlexSimulator]:
    server = PlexSimulator(token=TOKEN, library=SMALL, clients=0, seed=3)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_importer(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator, **kwargs: Any
) -> CatalogImporter:
    return CatalogImporter(catalog, session, sim.url, TOKEN, sim.machine_identifier, **kwargs)


def expected_counts(sim: PlexSimulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in sim.library.items.values():
        counts[item.type] = counts.get(item.type, 0) + 1
    return counts


def snapshot(catalog: Catalog, sim: PlexSimulator) -> dict[str, Any]:
    server = sim.machine_identifier
    return {key: catalog.get_item(server, key) for key in catalog.rating_keys(server)}


def reopen(catalog: Catalog) -> Catalog:
    """The same database opened again (as after a Home Assistant restart)."""
    return Catalog(catalog.url, schema=catalog.schema)


# --- 1. answers that are not a library list ------------------------------------------------------

NOT_A_LIBRARY_LIST = {
    "login_page": (
        b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
        b'<body><form action="/login"><input name="user"/></form></body></html>'
    ),
    "html_element": b"<html/>",
    "xml_without_media_container": b'<?xml version="1.0"?><Response code="200" status="OK"/>',
    "empty_body": b"",
}


@pytest.mark.parametrize("path", [SECTIONS, "/library/sections/1/all"])
@pytest.mark.parametrize("answer", list(NOT_A_LIBRARY_LIST))
async def test_full_import_given_200_non_library_answer_fails_and_keeps_catalog(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator, answer: str, path: str
) -> None:
    await make_importer(catalog, session, sim).run("full")
    before = snapshot(catalog, sim)
    assert len(before) == len(sim.library)
    sim.set_answer(path, NOT_A_LIBRARY_LIST[answer])
    with pytest.raises(PlexResponseError, match=r"MediaContainer|no element found"):
        await make_importer(catalog, session, sim).run("full")
    assert snapshot(catalog, sim) == before
    run = catalog.last_import(sim.machine_identifier)
    assert run is not None
    assert run.status == "failed"
    assert run.error is not None
    assert "PlexResponseError" in run.error
    assert run.counts.removed == 0


async def test_empty_library_list_removes_libraries_only_on_second_run(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    server = sim.machine_identifier
    await make_importer(catalog, session, sim).run("full")
    before = snapshot(catalog, sim)
    sim.set_answer(SECTIONS, b'<MediaContainer size="0" title1="Plex Library"/>', "text/xml")

    first = await make_importer(catalog, session, sim).run("full")
    assert (first.counts.removed, first.libraries) == (0, ())
    assert snapshot(catalog, sim) == before
    run = catalog.last_import(server)
    assert run is not None
    assert (run.status, run.libraries_listed, run.counts.removed) == ("success", 0, 0)

    # What the first run saw survives a restart: the second empty listing removes everything.
    again = reopen(catalog)
    try:
        second = await make_importer(again, session, sim).run("full")
        assert second.counts.removed == len(before)
        assert again.counts(server) == {}
        assert again.libraries(server) == []
        run = again.last_import(server)
        assert run is not None
        assert (run.status, run.counts.removed) == ("success", len(before))

        sim.set_answer(SECTIONS, None)
        back = await make_importer(again, session, sim).run("full")
        assert back.counts.added == len(before)
        assert again.counts(server) == expected_counts(sim)
    finally:
        again.close()


async def test_empty_listing_between_full_listings_removes_nothing(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    # Empty, then libraries again, then empty: never two empty runs in a row.
    importer = make_importer(catalog, session, sim)
    await importer.run("full")
    before = snapshot(catalog, sim)
    for answer in (b'<MediaContainer size="0"/>', None, b'<MediaContainer size="0"/>'):
        sim.set_answer(SECTIONS, answer, "text/xml")
        result = await importer.run("full")
        assert result.counts.removed == 0
    assert snapshot(catalog, sim) == before


def test_library_dropped_from_listing_counts_its_items_as_removed(catalog: Catalog) -> None:
    sections = [
        LibraryRecord(key="1", type="movie", title="Movies"),
        LibraryRecord(key="2", type="movie", title="More Movies"),
    ]
    with import_transaction(catalog, "srv1", "full") as writer:
        writer.sync_libraries(sections)
        for key in ("1", "2"):
            writer.start_library(key)
            writer.write_batch(
                [
                    ItemRecord(rating_key=f"{key}-{n}", type="movie", title=f"M {n}")
                    for n in range(3)
                ]
            )
            writer.finish_library()
    with import_transaction(catalog, "srv1", "full") as writer:
        writer.sync_libraries(sections[:1])
        counts = writer.counts
    assert counts.removed == 3
    run = catalog.last_import("srv1")
    assert run is not None
    assert run.counts.removed == 3
    assert catalog.counts("srv1") == {"movie": 3}


# --- 13. the incremental marker's own second -----------------------------------------------------


async def test_simulator_updated_at_filter_is_strictly_greater(
    sim: PlexSimulator, session: ClientSession
) -> None:
    lib = sim.library
    marker = lib.config.base_time + 5000
    lib.clock = lambda: float(marker)
    key = lib.movies()[2].rating_key
    lib.update_item(key, title="Touched")
    url = f"{sim.url}/library/sections/1/all?type=1&updatedAt>={{}}"
    headers = {"X-Plex-Token": TOKEN}
    for since, expected in ((marker, 0), (marker - 1, 1)):
        async with session.get(url.format(since), headers=headers) as resp:
            body = await resp.text()
        assert body.count("<Video ") == expected, since


async def test_item_updated_in_marker_second_is_imported(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    server = sim.machine_identifier
    importer = make_importer(catalog, session, sim)
    await importer.run("full")
    movies = next(lib for lib in catalog.libraries(server) if lib.type == "movie")
    marker = movies.updated_marker
    assert marker is not None
    # The server's clock still reads the marker's second when an item changes.
    sim.library.clock = lambda: float(marker)
    key = sim.library.movies()[4].rating_key
    sim.library.update_item(key, title="Changed In The Same Second")
    assert sim.library[key].updated_at == marker
    result = await importer.run("incremental")
    assert result.counts.updated == 1
    stored = catalog.get_item(server, key)
    assert stored is not None
    assert stored.title == "Changed In The Same Second"
    sent = [q for _, path, q in sim.requests if path == "/library/sections/1/all"]
    assert {q.get("updatedAt>") for q in sent if "updatedAt>" in q} == {str(marker - 1)}


# --- 3. database errors become the catalog's own -------------------------------------------------


def _directory_at_path(tmp_path: Path) -> str:
    (tmp_path / "catalog.db").mkdir()
    return sqlite_url(tmp_path / "catalog.db")


def _corrupt_file(tmp_path: Path) -> str:
    (tmp_path / "catalog.db").write_bytes(b"certainly not a database " * 200)
    return sqlite_url(tmp_path / "catalog.db")


def _postgres_down(_tmp_path: Path) -> str:
    return "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:1/test"  # nothing listens on 1


def _malformed_url(_tmp_path: Path) -> str:
    return "this is no database url"


def _missing_driver(_tmp_path: Path) -> str:
    return "mysql://user@127.0.0.1/plexus"


OPEN_FAILURES: dict[str, tuple[Callable[[Path], str], str]] = {
    "directory_at_path": (_directory_at_path, "path"),
    "corrupt_file": (_corrupt_file, "corrupt"),
    "postgres_down": (_postgres_down, "unreachable"),
    "malformed_url": (_malformed_url, "error"),
    "missing_driver": (_missing_driver, "error"),
}


@pytest.mark.parametrize("case", list(OPEN_FAILURES))
def test_open_with_unusable_database_raises_catalog_unavailable(tmp_path: Path, case: str) -> None:
    make_url, kind = OPEN_FAILURES[case]
    with pytest.raises(CatalogUnavailableError) as caught:
        Catalog(make_url(tmp_path))
    assert caught.value.kind == kind
    assert not isinstance(caught.value, SQLAlchemyError)
    assert "s3cret-pw" not in str(caught.value)
    assert "\n" not in caught.value.cause


def test_import_into_read_only_file_raises_catalog_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    Catalog(sqlite_url(path)).close()
    read_only = Catalog(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert read_only.servers() == []
        with pytest.raises(CatalogUnavailableError) as caught:
            read_only.begin_import("srv1", "full")
        assert caught.value.kind == "read_only"
    finally:
        read_only.close()


def test_short_cause_hides_passwords_and_statements() -> None:
    err = SQLAlchemyError(
        "connection to postgresql://plex:hunter2@db:5432/x failed password=hunter2\n"
        "[SQL: INSERT INTO t VALUES (?)]"
    )
    cause = short_cause(err)
    assert "hunter2" not in cause
    assert "INSERT" not in cause
    assert cause.startswith("SQLAlchemyError: connection to postgresql://plex:***@db")


def test_search_with_database_gone_says_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(sqlite_url(path))
    try:
        with import_transaction(cat, "srv1", "full") as writer:
            writer.sync_libraries([LibraryRecord(key="1", type="movie", title="Movies")])
            writer.start_library("1")
            writer.write_batch([ItemRecord(rating_key="1", type="movie", title="Alien")])
            writer.finish_library()
        assert [h.item.title for h in cat.search("alien")] == ["Alien"]
        # The database goes away under the running catalog (its connections dropped).
        cat.engine.dispose()
        moved = tmp_path / "elsewhere.db"
        path.rename(moved)
        path.mkdir()
        with pytest.raises(CatalogUnavailableError) as caught:
            cat.search("alien")
        assert caught.value.kind == "path"
        with pytest.raises(CatalogUnavailableError):
            cat.counts("srv1")
        # Back again: the same Catalog answers, nothing reopened by hand.
        path.rmdir()
        moved.rename(path)
        assert [h.item.title for h in cat.search("alien")] == ["Alien"]
    finally:
        cat.close()


def _restart_postgres() -> None:
    lsclusters, ctlcluster = shutil.which("pg_lsclusters"), shutil.which("pg_ctlcluster")
    assert lsclusters is not None
    assert ctlcluster is not None
    listing = subprocess.run(  # noqa: S603 - fixed local tools, no outside input
        [lsclusters, "--no-header"], check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    version, cluster = listing[0], listing[1]
    subprocess.run(  # noqa: S603
        [ctlcluster, "--skip-systemctl-redirect", version, cluster, "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs a local PostgreSQL")
async def test_postgres_restart_mid_import_raises_catalog_error_and_recovers(
    tmp_path: Path, session: ClientSession, sim: PlexSimulator
) -> None:
    assert PG_URL.startswith("postgresql")
    catalog = make_catalog("postgresql", tmp_path)
    server = sim.machine_identifier
    try:
        await make_importer(catalog, session, sim).run("full")
        before = snapshot(catalog, sim)
        sim.library.add_movie("Late Arrival", year=2025)
        sim.library.update_item(sim.library.movies()[0].rating_key, title="Renamed")
        restarted = False

        def restart_before_first_write(func: Callable[..., Any], *args: Any) -> Any:
            nonlocal restarted
            if not restarted and getattr(func, "__name__", "") == "write_batch":
                restarted = True
                _restart_postgres()  # the run's connection dies; the server comes back
            return func(*args)

        async def run_sync(func: Callable[..., Any], *args: Any) -> Any:
            return await asyncio.to_thread(restart_before_first_write, func, *args)

        importer = make_importer(catalog, session, sim, run_sync=run_sync, batch_size=8)
        with pytest.raises(CatalogError) as caught:
            await importer.run("full")
        assert restarted
        assert isinstance(caught.value, CatalogUnavailableError)
        assert not isinstance(caught.value, SQLAlchemyError)
        # The same Catalog reads again (dead pooled connections replaced), and nothing changed.
        assert snapshot(catalog, sim) == before
        run = catalog.last_import(server)
        assert run is not None
        assert run.status == "failed"
        assert run.error is not None
        assert run.error.startswith("CatalogUnavailableError")
        result = await make_importer(catalog, session, sim).run("incremental")
        assert (result.counts.added, result.counts.updated) == (1, 1)
        assert catalog.counts(server) == expected_counts(sim)
    finally:
        catalog.drop_all()
        catalog.close()


# --- a page that fails while the previous batch is still being written ---------------------------


async def test_bad_page_while_a_failing_write_is_pending_leaves_no_unretrieved_error(
    catalog: Catalog,
    session: ClientSession,
    sim: PlexSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second page of a library is garbage (PlexResponseError) while the first page's batch
    is still being written in the executor, and that write then fails too (the connection gone).
    Before: the write's error sat in a future nobody awaited, and asyncio logged "Future exception
    was never retrieved" with a traceback, outside the import's own report. Now: the import fails
    with the page's error, the catalog is unchanged, and nothing is left unretrieved."""
    await make_importer(catalog, session, sim).run("full")
    before = snapshot(catalog, sim)
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))

    async def run_sync(func: Callable[..., Any], *args: Any) -> Any:
        if getattr(func, "__name__", "") == "write_batch":

            def slow_failure() -> None:
                time.sleep(0.2)
                raise CatalogError("connection gone")

            return await asyncio.to_thread(slow_failure)
        return await asyncio.to_thread(func, *args)

    real_fetch = CatalogImporter._fetch_items
    pages = 0

    async def fetch(self: CatalogImporter, *args: Any) -> Any:
        nonlocal pages
        pages += 1
        if pages == 2:
            raise PlexResponseError("page 2: not a MediaContainer (truncated)")
        return await real_fetch(self, *args)

    monkeypatch.setattr(CatalogImporter, "_fetch_items", fetch)
    importer = make_importer(catalog, session, sim, run_sync=run_sync, page_size=5, batch_size=5)
    failure = ""
    try:
        await importer.run("full")
    except PlexResponseError as err:  # not pytest.raises: its traceback would keep the future
        failure = str(err)
    assert "page 2" in failure
    monkeypatch.undo()
    await asyncio.sleep(0.5)  # the pending write ends (and fails) meanwhile
    del importer  # as when the next run replaces the failed one
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert unretrieved == []
    assert snapshot(catalog, sim) == before
    run = catalog.last_import(sim.machine_identifier)
    assert run is not None
    assert run.status == "failed"
