"""Importer against the Plex simulator: full, incremental, failures, two servers; both backends."""

from collections.abc import AsyncIterator

from aiohttp import ClientSession
import pytest

from custom_components.plexus.catalog.db import Catalog
from custom_components.plexus.catalog.guids import parse_item_guids
from custom_components.plexus.catalog.importer import CatalogImporter, ImportProgress
from custom_components.plexus.plex.errors import PlexConnectionError
from tests.plex_simulator import LibraryConfig, PlexSimulator

pytestmark = pytest.mark.usefixtures("socket_enabled")

TOKEN = "catalog-token"
SMALL = LibraryConfig(
    movies=40,
    shows=3,
    seasons_per_show=2,
    episodes_per_season=5,
    artists=2,
    albums_per_artist=1,
    tracks_per_album=3,
)


@pytest.fixture
async def sim() -> AsyncIterator[PlexSimulator]:
    server = PlexSimulator(token=TOKEN, library=SMALL, clients=0, seed=11)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_importer(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator, **kwargs: object
) -> CatalogImporter:
    return CatalogImporter(catalog, session, sim.url, TOKEN, sim.machine_identifier, **kwargs)  # type: ignore[arg-type]


def expected_counts(sim: PlexSimulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in sim.library.items.values():
        counts[item.type] = counts.get(item.type, 0) + 1
    return counts


async def test_full_import_matches_the_server(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    result = await make_importer(catalog, session, sim, page_size=16).run("full")
    assert catalog.counts(sim.machine_identifier) == expected_counts(sim)
    assert result.counts.added == len(sim.library)
    for item in list(sim.library.items.values())[::7]:
        stored = catalog.get_item(sim.machine_identifier, item.rating_key)
        assert stored is not None
        assert (stored.title, stored.type, stored.year) == (item.title, item.type, item.year)
        parsed, _ = parse_item_guids(item.guid, item.ext_guids)
        assert {(g.provider, g.id, g.season, g.episode) for g in stored.guids} == {
            (g.provider, g.id, g.season, g.episode) for g in parsed
        }
        if item.media is not None:
            assert [f.plex_path for f in stored.files] == [item.media.file]
            assert stored.files[0].size == item.media.size
        if item.type == "episode":
            assert item.parent is not None
            assert stored.season_number == item.parent.index
            assert stored.episode_number == item.index
    # Episodes were read flat; no request per show or season.
    paths = {path for _, path, _ in sim.requests}
    assert not [p for p in paths if "/children" in p or "/allLeaves" in p]
    assert any(q.get("type") == "4" and q.get("includeGuids") == "1" for _, _, q in sim.requests)


async def test_incremental_after_adds_changes_deletes(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    importer = make_importer(catalog, session, sim)
    await importer.run("full")
    unchanged = await importer.run("incremental")
    assert (unchanged.counts.added, unchanged.counts.updated, unchanged.counts.removed) == (0, 0, 0)

    lib = sim.library
    new_movie = lib.add_movie("Zebra Crossing", year=2024)
    movie = lib.movies()[3]
    lib.update_item(movie.rating_key, title="A Completely New Title")
    gone = lib.movies()[5]
    lib.delete_item(gone.rating_key)
    episode = lib.episodes()[0]
    lib.delete_item(episode.rating_key)
    result = await importer.run("incremental")
    assert result.counts.added == 1
    assert result.counts.updated >= 1
    assert result.counts.removed == 2
    assert catalog.counts(sim.machine_identifier) == expected_counts(sim)
    assert catalog.get_item(sim.machine_identifier, new_movie.rating_key) is not None
    changed = catalog.get_item(sim.machine_identifier, movie.rating_key)
    assert changed is not None
    assert changed.title == "A Completely New Title"
    assert catalog.get_item(sim.machine_identifier, gone.rating_key) is None
    assert catalog.get_item(sim.machine_identifier, episode.rating_key) is None
    assert catalog.search("zebra crosing")[0].item.rating_key == new_movie.rating_key


@pytest.mark.parametrize("fault", ["error", "offline"])
async def test_failure_mid_import_keeps_previous_state(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator, fault: str
) -> None:
    await make_importer(catalog, session, sim).run("full")
    before = {
        k: catalog.get_item(sim.machine_identifier, k)
        for k in catalog.rating_keys(sim.machine_identifier)
    }
    sim.library.add_movie("Late Arrival", year=2025)
    sim.library.update_item(sim.library.movies()[0].rating_key, title="Renamed")
    sim.library.delete_item(sim.library.movies()[1].rating_key)
    tripped = False

    def trip(progress: ImportProgress) -> None:
        nonlocal tripped
        if progress.items_done >= 10 and not tripped:
            tripped = True
            if fault == "error":
                sim.set_error(500)
            else:
                sim._spawn(sim.go_offline(), "offline")

    importer = make_importer(catalog, session, sim, page_size=8, on_progress=trip)
    with pytest.raises(PlexConnectionError):
        await importer.run("full")
    assert tripped
    after = {
        k: catalog.get_item(sim.machine_identifier, k)
        for k in catalog.rating_keys(sim.machine_identifier)
    }
    assert after == before
    run = catalog.last_import(sim.machine_identifier)
    assert run is not None
    assert run.status == "failed"
    assert run.error

    sim.set_error(None)
    await sim.go_online()
    importer.on_progress = None
    result = await importer.run("incremental")
    assert result.counts.added == 1
    assert result.counts.removed == 1
    assert catalog.counts(sim.machine_identifier) == expected_counts(sim)


async def test_two_simulated_servers_kept_apart(
    catalog: Catalog, session: ClientSession, sim: PlexSimulator
) -> None:
    other = PlexSimulator(
        token=TOKEN, library=LibraryConfig(movies=7, shows=1, artists=0, seed=5), clients=0, seed=5
    )
    await other.start()
    try:
        await make_importer(catalog, session, sim).run("full")
        await make_importer(catalog, session, other).run("full")
        assert catalog.counts(sim.machine_identifier) == expected_counts(sim)
        assert catalog.counts(other.machine_identifier) == expected_counts(other)
        other.library.delete_item(other.library.movies()[0].rating_key)
        await make_importer(catalog, session, other).run("incremental")
        assert catalog.counts(sim.machine_identifier) == expected_counts(sim)
        assert catalog.counts(other.machine_identifier) == expected_counts(other)
    finally:
        await other.stop()
