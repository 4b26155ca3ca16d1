"""Catalog database: schema, versioning, upserts, atomic imports, search — SQLite and PostgreSQL."""

from datetime import UTC, datetime
from pathlib import Path
import threading
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, inspect, text

from custom_components.plexus.catalog import (
    Catalog,
    CatalogError,
    CatalogSchemaError,
    schema as s,
    sqlite_url,
)
from custom_components.plexus.catalog.guids import parse_item_guids
from custom_components.plexus.catalog.models import ItemRecord, LibraryRecord, MediaFileRecord
from custom_components.plexus.catalog.paths import PathMapping
from custom_components.plexus.catalog.writer import import_transaction
from tests.conftest import make_catalog


def movie(
    key: str,
    title: str,
    *,
    updated: int = 100,
    year: int = 2000,
    path: str | None = None,
    guids: tuple[str, ...] = (),
) -> ItemRecord:
    parsed, unknown = parse_item_guids(guids[0] if guids else None, guids[1:])
    return ItemRecord(
        rating_key=key,
        type="movie",
        title=title,
        year=year,
        added_at=updated,
        updated_at=updated,
        guid=guids[0] if guids else None,
        guids=parsed,
        unknown_guids=unknown,
        media=[
            MediaFileRecord(plex_path=path or f"/data/movies/{title}.mkv", size=10, container="mkv")
        ],
    )


SECTIONS = [
    LibraryRecord(key="1", type="movie", title="Movies", locations=["/data/movies"]),
    LibraryRecord(key="2", type="show", title="TV", locations=["/data/tv"]),
]


def load(catalog: Catalog, server: str, items: list[ItemRecord], *, mode: str = "full") -> None:
    with import_transaction(catalog, server, mode) as writer:  # type: ignore[arg-type]
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch(items)
        if mode == "full":
            writer.remove_items(writer.known_keys() - {i.rating_key for i in items})
        writer.finish_library()


def test_schema_created_and_versioned(catalog: Catalog) -> None:
    assert catalog.schema_version == s.SCHEMA_VERSION
    # Opening again is a no-op.
    assert catalog.ensure_schema() == s.SCHEMA_VERSION


def test_upsert_counts_and_reads(catalog: Catalog) -> None:
    catalog.set_path_mappings("srv1", [("/data", "/mnt/nas")])
    items = [
        movie(
            "1",
            "The Matrix",
            year=1999,
            guids=("plex://movie/5d776b59ad5437001f79c6f8", "imdb://tt0133093", "tmdb://603"),
        ),
        movie(
            "2",
            "Heat",
            year=1995,
            guids=("com.plexapp.agents.imdb://tt0113277?lang=en",),
            path="/other/heat.mkv",
        ),
        movie("3", "Odd", guids=("weird-guid",)),
    ]
    load(catalog, "srv1", items)
    run = catalog.last_import("srv1")
    assert run is not None
    assert run.status == "success"
    assert (run.counts.added, run.counts.updated, run.counts.removed, run.counts.unknown_guids) == (
        3,
        0,
        0,
        1,
    )
    assert catalog.counts("srv1") == {"movie": 3}
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.title == "The Matrix"
    assert item.year == 1999
    assert {(g.provider, g.id) for g in item.guids} == {
        ("plex", "movie/5d776b59ad5437001f79c6f8"),
        ("imdb", "tt0133093"),
        ("tmdb", "603"),
    }
    assert item.local_path == "/mnt/nas/movies/The Matrix.mkv"
    heat = catalog.get_item("srv1", "2")
    assert heat is not None
    assert heat.files[0].mapped is False
    assert heat.local_path == "/other/heat.mkv"
    assert [i.rating_key for i in catalog.find_by_guid("imdb", "tt0113277")] == ["2"]
    assert catalog.get_item("srv1", "404") is None
    assert [lib.item_count for lib in catalog.libraries("srv1")] == [3, 0]

    # Same data again: nothing rewritten. Then one change, one deletion.
    load(catalog, "srv1", items)
    run = catalog.last_import("srv1")
    assert run is not None
    assert (run.counts.added, run.counts.updated, run.counts.removed) == (0, 0, 0)
    items[0] = movie("1", "The Matrix Reloaded", year=2003, updated=200)
    load(catalog, "srv1", items[:2])
    run = catalog.last_import("srv1")
    assert run is not None
    assert (run.counts.added, run.counts.updated, run.counts.removed) == (0, 1, 1)
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.title == "The Matrix Reloaded"
    assert item.guids == ()
    assert catalog.counts() == {"movie": 2}
    assert catalog.libraries("srv1")[0].updated_marker == 200


def test_failed_import_changes_nothing(catalog: Catalog) -> None:
    load(catalog, "srv1", [movie("1", "Alien"), movie("2", "Aliens")])
    before = catalog.get_item("srv1", "1")

    def failing_import() -> None:
        with import_transaction(catalog, "srv1", "full") as writer:
            writer.sync_libraries(SECTIONS[:1])
            writer.start_library("1")
            writer.write_batch([movie("1", "Changed", updated=500), movie("9", "New")])
            writer.remove_items(["2"])
            raise RuntimeError("network went away")

    with pytest.raises(RuntimeError):
        failing_import()
    assert catalog.get_item("srv1", "1") == before
    assert catalog.get_item("srv1", "9") is None
    assert catalog.rating_keys("srv1") == {"1", "2"}
    assert len(catalog.libraries("srv1")) == 2
    run = catalog.last_import("srv1")
    assert run is not None
    assert run.status == "failed"
    assert run.error == "RuntimeError: network went away"
    ok = catalog.last_import("srv1", successful=True)
    assert ok is not None
    assert ok.status == "success"
    assert len(catalog.import_runs("srv1")) == 2


def test_servers_kept_apart(catalog: Catalog) -> None:
    load(catalog, "srv1", [movie("1", "Alien", guids=("imdb://tt0078748",))])
    load(catalog, "srv2", [movie("1", "Alien", guids=("imdb://tt0078748",)), movie("2", "Brazil")])
    assert catalog.counts("srv1") == {"movie": 1}
    assert catalog.counts("srv2") == {"movie": 2}
    assert sorted(i.server_id for i in catalog.find_by_guid("imdb", "tt0078748")) == [
        "srv1",
        "srv2",
    ]
    assert [
        i.server_id for i in catalog.find_by_guid("imdb", "tt0078748", machine_identifier="srv2")
    ] == ["srv2"]
    load(catalog, "srv1", [], mode="full")
    assert catalog.counts("srv1") == {}
    assert catalog.counts("srv2") == {"movie": 2}
    assert sorted(catalog.servers()) == ["srv1", "srv2"]
    catalog.remove_server("srv2")
    assert catalog.servers() == ["srv1"]
    assert catalog.counts() == {}


def test_library_removed_from_server(catalog: Catalog) -> None:
    load(catalog, "srv1", [movie("1", "Alien")])
    with import_transaction(catalog, "srv1", "full") as writer:
        writer.sync_libraries(SECTIONS[1:])
    assert [lib.key for lib in catalog.libraries("srv1")] == ["2"]
    assert catalog.counts("srv1") == {}


def test_path_mappings_remap_stored_files(catalog: Catalog) -> None:
    load(catalog, "srv1", [movie("1", "Alien", path="D:\\Movies\\Alien.mkv")])
    assert catalog.set_path_mappings("srv1", [PathMapping("d:/movies", "/mnt/m")]) == 1
    assert catalog.path_mappings("srv1") == [PathMapping("d:/movies", "/mnt/m")]
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.local_path == "/mnt/m/Alien.mkv"
    assert catalog.set_path_mappings("srv1", []) == 0
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.local_path == "D:\\Movies\\Alien.mkv"
    assert item.files[0].mapped is False


def test_search_with_typos(catalog: Catalog) -> None:
    titles = [
        "The Matrix",
        "The Matrix Reloaded",
        "Heat",
        "Amélie",
        "Lord of the Rings",
        "Ringu",
        "Alien",
    ]
    load(catalog, "srv1", [movie(str(n), t, year=1990 + n) for n, t in enumerate(titles)])
    assert [h.item.title for h in catalog.search("matrix", limit=2)] == [
        "The Matrix",
        "The Matrix Reloaded",
    ]
    assert catalog.search("teh matrx")[0].item.title == "The Matrix"
    assert catalog.search("amelie")[0].item.title == "Amélie"
    assert catalog.search("lrod of the rigns")[0].item.title == "Lord of the Rings"
    assert catalog.search("aliens")[0].item.title == "Alien"
    assert catalog.search("zzzzqqq") == []
    assert catalog.search("") == []
    assert [h.item.title for h in catalog.search("matrix", year=1991)] == ["The Matrix Reloaded"]
    assert catalog.search("matrix", types=["show"]) == []
    # The index follows later imports.
    load(catalog, "srv1", [movie("1", "Heat")], mode="full")
    assert [h.item.title for h in catalog.search("matrix")] == []
    assert catalog.search("heat", machine_identifier="srv1")[0].item.rating_key == "1"
    hit = catalog.search("heat")[0]
    assert 0 < hit.score <= 1


def test_stats(catalog: Catalog) -> None:
    catalog.set_path_mappings("srv1", [("/data/movies", "/m")])
    load(catalog, "srv1", [movie("1", "Alien"), movie("2", "Heat", path="/x/heat.mkv")])
    stats = catalog.stats("srv1")
    assert stats["counts"] == {"movie": 2}
    assert stats["media_files"] == 2
    assert stats["unmapped_files"] == 1
    assert stats["last_import"]["status"] == "success"
    assert stats["libraries"][0]["locations"] == ["/data/movies"]


def test_writer_misuse(catalog: Catalog) -> None:
    writer = catalog.begin_import("srv1", "full")
    with pytest.raises(CatalogError):
        writer.write_batch([movie("1", "x")])
    with pytest.raises(CatalogError):
        writer.start_library("nope")
    writer.commit()
    with pytest.raises(CatalogError):
        writer.commit()
    writer.fail("ignored")  # already finished: no-op


def test_cancelled_import_cleans_up_after_its_running_step(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unload cancels an import while a batch is being written in an executor thread: the
    clean-up (``fail``, started from another thread) waits for that batch instead of using the
    one connection at the same time (which crashed the interpreter in the SQLite driver), and a
    step that starts after the run ended is refused, not run on a closed connection."""
    load(catalog, "srv1", [movie("1", "Alien")])
    writer = catalog.begin_import("srv1", "full")
    writer.sync_libraries(SECTIONS)
    writer.start_library("1")
    in_batch, release = threading.Event(), threading.Event()
    real_existing = writer._existing

    def slow_existing(keys: Any) -> Any:
        in_batch.set()
        assert release.wait(10)
        return real_existing(keys)

    monkeypatch.setattr(writer, "_existing", slow_existing)
    order: list[str] = []

    def write() -> None:
        writer.write_batch([movie("2", "Aliens")])
        order.append("batch written")

    def clean_up() -> None:
        writer.fail("cancelled")
        order.append("failed")

    batch_thread = threading.Thread(target=write)
    batch_thread.start()
    assert in_batch.wait(10)
    fail_thread = threading.Thread(target=clean_up)
    fail_thread.start()
    fail_thread.join(0.3)
    assert fail_thread.is_alive(), "fail() ran while the batch still used the connection"
    release.set()
    batch_thread.join(10)
    fail_thread.join(10)
    assert order == ["batch written", "failed"]
    with pytest.raises(CatalogError, match="already finished"):
        writer.write_batch([movie("3", "Alien 3")])
    assert catalog.get_item("srv1", "2") is None  # rolled back
    assert catalog.get_item("srv1", "1") is not None
    run = catalog.last_import("srv1")
    assert run is not None
    assert run.status == "failed"


def test_migrations_forward_and_refuse_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path / "m.db")
    Catalog(url).close()
    current = s.SCHEMA_VERSION
    applied: list[int] = []

    def next_step(conn: object) -> None:
        applied.append(current)
        conn.execute(text("ALTER TABLE plexus_items ADD COLUMN extra TEXT"))  # type: ignore[attr-defined]

    monkeypatch.setattr(s, "MIGRATIONS", {**s.MIGRATIONS, current: next_step})
    monkeypatch.setattr(s, "SCHEMA_VERSION", current + 1)
    cat = Catalog(url)
    assert cat.schema_version == current + 1
    cat.close()
    Catalog(url).close()
    assert applied == [current]  # applied once
    monkeypatch.setattr(s, "SCHEMA_VERSION", current + 2)
    with pytest.raises(CatalogSchemaError, match="no migration"):
        Catalog(url)
    monkeypatch.setattr(s, "SCHEMA_VERSION", current)
    with pytest.raises(CatalogSchemaError, match="newer"):
        Catalog(url)


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    cat = Catalog(sqlite_url(tmp_path / "sub" / "c.db"))
    with cat.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    cat.close()
    with pytest.raises(CatalogError):
        Catalog(sqlite_url(tmp_path / "x.db"), schema="nope")


def v1_database(url: str) -> None:
    """Create a database as the first release left it (tables + version row 1)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        s.metadata.create_all(conn)
        conn.execute(text("ALTER TABLE plexus_import_runs DROP COLUMN libraries_listed"))
        conn.execute(text("DROP INDEX ix_plexus_items_show"))  # added by version 3
        conn.execute(insert(s.schema_version).values(version=1, applied_at=datetime.now(UTC)))
        conn.execute(insert(s.servers).values(id=1, machine_identifier="srv1", name="Old"))
        conn.execute(
            text(
                "INSERT INTO plexus_import_runs (server_id, mode, status, started_at, libraries,"
                " seen, added, updated, removed, unknown_guids) VALUES"
                " (1, 'full', 'success', '2025-01-01 00:00:00', 1, 2, 2, 0, 0, 0)"
            )
        )
    engine.dispose()


def test_existing_v1_database_opens(tmp_path: Path) -> None:
    # A database created by the first release is migrated forward, keeping what it holds.
    url = sqlite_url(tmp_path / "v1.db")
    v1_database(url)
    cat = Catalog(url)
    assert cat.schema_version == s.SCHEMA_VERSION == 3
    with cat.engine.connect() as conn:
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("plexus_items")}
    assert "ix_plexus_items_show" in indexes
    run = cat.last_import("srv1")
    assert run is not None
    assert (run.status, run.counts.added, run.libraries_listed) == ("success", 2, None)
    load(cat, "srv1", [movie("1", "Alien")])
    assert cat.last_import("srv1").libraries_listed == len(SECTIONS)  # type: ignore[union-attr]
    cat.close()


def test_interrupted_run_is_marked_failed(catalog: Catalog) -> None:
    crashed = catalog.begin_import("srv1", "full")
    crashed._tx.rollback()  # the process died: nothing committed, the run row says "running"
    crashed._conn.close()
    run = catalog.last_import("srv1")
    assert run is not None
    assert run.status == "running"
    load(catalog, "srv1", [movie("1", "Alien")])
    first, second = sorted(catalog.import_runs("srv1"), key=lambda r: r.id)
    assert (first.status, first.error) == ("failed", "interrupted")
    assert second.status == "success"


def test_search_titles_follows_renames_and_removals(catalog: Catalog) -> None:
    """The light title search keeps rows it read, and drops them when an import changes them:
    a renamed item shows its new title, a removed one is gone, another server's items never show."""
    load(catalog, "srv1", [movie("1", "The Matrix", year=1999), movie("2", "Heat", year=1995)])
    load(catalog, "srv2", [movie("9", "The Matrix", year=1999)])
    hits = catalog.search_titles("matrix", machine_identifier="srv1")
    assert [(h.rating_key, h.title, h.year) for h, _score in hits] == [("1", "The Matrix", 1999)]
    load(catalog, "srv1", [movie("1", "The Matrix Reloaded", year=2003, updated=200)], mode="full")
    hits = catalog.search_titles("matrix", machine_identifier="srv1")
    assert [(h.rating_key, h.title, h.year) for h, _score in hits] == [
        ("1", "The Matrix Reloaded", 2003)
    ]
    assert catalog.search_titles("heat", machine_identifier="srv1") == []
    assert [
        h.rating_key for h, _ in catalog.search_titles("matrix", machine_identifier="srv2")
    ] == ["9"]


def test_rating_keys_per_library_and_removing_an_unknown_server(catalog: Catalog) -> None:
    with import_transaction(catalog, "srv1", "full") as writer:  # type: ignore[arg-type]
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch([movie("1", "Alien"), movie("2", "Heat")])
        writer.start_library("2")
        writer.write_batch([ItemRecord(rating_key="3", type="show", title="Lost")])
    assert catalog.rating_keys("srv1") == {"1", "2", "3"}
    assert catalog.rating_keys("srv1", "1") == {"1", "2"}
    assert catalog.rating_keys("srv1", "2") == {"3"}
    assert catalog.rating_keys("srv1", "9") == set()
    catalog.remove_server("never-imported")  # nothing to remove: no error, nothing lost
    assert catalog.rating_keys("srv1") == {"1", "2", "3"}
    assert catalog.servers() == ["srv1"]


def test_search_during_an_import_that_did_not_follow_the_index(catalog: Catalog) -> None:
    """The search index is built by a search made while an import runs that started before it
    existed: after the import the index is rebuilt, so the new titles are found."""
    load(catalog, "srv1", [movie("1", "Alien")])
    assert not catalog.search_index_loaded
    writer = catalog.begin_import("srv1", "incremental")
    writer.sync_libraries(SECTIONS)
    writer.start_library("1")
    assert [h.item.title for h in catalog.search("alien")] == ["Alien"]  # builds the index
    writer.write_batch([movie("2", "Zebra Crossing")])
    writer.commit()
    assert [h.item.title for h in catalog.search("zebra crossing")] == ["Zebra Crossing"]
    assert [h.item.title for h in catalog.search("alien")] == ["Alien"]


def test_stats_of_a_server_never_imported(catalog: Catalog) -> None:
    load(catalog, "srv1", [movie("1", "Alien")])
    stats = catalog.stats("srv2")
    assert stats["counts"] == {}
    assert stats["media_files"] == 0
    assert stats["unmapped_files"] == 0
    assert stats["last_import"] is None


def test_drop_all_and_open_without_creating(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    catalog = Catalog(url)
    load(catalog, "srv1", [movie("1", "Alien")])
    assert catalog.search("alien")
    catalog.drop_all()
    assert not catalog.search_index_loaded
    catalog.close()
    # Opened without creating: the tables stay gone until the schema is ensured.
    reopened = Catalog(url, create=False)
    try:
        with pytest.raises(CatalogError):
            reopened.counts()
        assert reopened.ensure_schema() == s.SCHEMA_VERSION
        assert reopened.counts() == {}
    finally:
        reopened.close()


def test_writer_steps_out_of_order(catalog: Catalog) -> None:
    """Removing before a library is started is refused; finishing none is harmless."""
    load(catalog, "srv1", [movie("1", "Alien")])
    writer = catalog.begin_import("srv1", "incremental")
    with pytest.raises(CatalogError, match="start_library"):
        writer.remove_items(["1"])
    writer.finish_library()  # no library started: nothing to record
    writer.commit()
    assert catalog.rating_keys("srv1") == {"1"}


def test_item_listed_twice_in_one_page_is_stored_once(catalog: Catalog) -> None:
    """A page that repeats an item (the server's listing shifted while it was paged through)
    does not break the import: the item is stored once, as first listed."""
    with import_transaction(catalog, "srv1", "full") as writer:  # type: ignore[arg-type]
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch([movie("1", "Alien"), movie("2", "Heat"), movie("1", "Alien II")])
        counts = writer.counts
    assert (counts.seen, counts.added) == (3, 2)
    assert catalog.counts("srv1") == {"movie": 2}
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.title == "Alien"
    # The same within an update: the changed item is rewritten once.
    with import_transaction(catalog, "srv1", "full") as writer:  # type: ignore[arg-type]
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch(
            [
                movie("1", "Alien (1979)", updated=200),
                movie("1", "x", updated=300),
                movie("2", "Heat"),
            ]
        )
        counts = writer.counts
    assert (counts.updated, counts.added) == (1, 0)
    item = catalog.get_item("srv1", "1")
    assert item is not None
    assert item.title == "Alien (1979)"


def test_commit_on_a_lost_connection_is_recorded_as_failed(
    socket_enabled: None, tmp_path: Path
) -> None:
    """PostgreSQL drops the import's connection just before the commit: the import fails with
    a catalog error, nothing of it is stored, and the run is recorded as failed."""
    catalog = make_catalog("postgresql", tmp_path)
    try:
        load(catalog, "srv1", [movie("1", "Alien")])
        writer = catalog.begin_import("srv1", "full")
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch([movie("2", "Heat")])
        pid = writer._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with catalog.engine.begin() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(CatalogError):
            writer.commit()
        assert catalog.rating_keys("srv1") == {"1"}
        last = catalog.last_import("srv1")
        assert last is not None
        assert last.status == "failed"
        assert last.error
        assert "postgres@" not in last.error  # the short cause, no URL
    finally:
        catalog.drop_all()
        catalog.close()


def test_failing_an_import_whose_connection_is_gone(
    socket_enabled: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The import's connection is dropped, then the import fails for its own reason: the
    rollback cannot run (logged at debug, not raised) and the run is recorded with the reason."""
    catalog = make_catalog("postgresql", tmp_path)
    caplog.set_level("DEBUG", logger="custom_components.plexus.catalog.writer")
    try:
        load(catalog, "srv1", [movie("1", "Alien")])
        writer = catalog.begin_import("srv1", "full")
        writer.sync_libraries(SECTIONS)
        writer.start_library("1")
        writer.write_batch([movie("2", "Heat")])
        pid = writer._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with catalog.engine.begin() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        writer.fail("the server stopped answering")
        assert "Rollback of the import failed" in caplog.text
        last = catalog.last_import("srv1")
        assert last is not None
        assert (last.status, last.error) == ("failed", "the server stopped answering")
        assert catalog.rating_keys("srv1") == {"1"}
    finally:
        catalog.drop_all()
        catalog.close()
