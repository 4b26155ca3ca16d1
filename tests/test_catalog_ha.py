"""The catalog in Home Assistant: services, sensors, button, schedules, scan-triggered imports,
options and diagnostics — against the simulator, with the SQLite catalog in a temporary folder."""

from datetime import timedelta
import json
from pathlib import Path

from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.plexus.const import (
    CONF_DB_URL,
    CONF_PATH_MAPPINGS,
    DOMAIN,
)
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator

MOVIES = "sensor.plexus_simulator_catalog_movies"
EPISODES = "sensor.plexus_simulator_catalog_episodes"
LAST = "sensor.plexus_simulator_last_import"


@pytest.fixture
async def loaded(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_PATH_MAPPINGS: "/data/movies => /media/movies"}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


async def import_library(hass: HomeAssistant, **data: object) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, "import_library", data, blocking=True, return_response=True
    )
    assert response is not None
    return response


async def test_import_service_sensors_and_search(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A full import fills the catalog; counts, last import and search follow."""
    assert hass.states.get(MOVIES).state == "0"
    assert hass.states.get(LAST).state == "unknown"
    response = await import_library(hass, mode="full")
    assert response["mode"] == "full"
    counts = response["counts"]
    assert isinstance(counts, dict)
    assert counts["added"] > 0
    movies = simulator.library.movies()
    assert hass.states.get(MOVIES).state == str(len(movies))
    assert hass.states.get(EPISODES).state == str(len(simulator.library.episodes()))
    last = hass.states.get(LAST)
    assert last.state != "unknown"
    assert last.attributes["mode"] == "full"
    assert last.attributes["status"] == "success"
    assert last.attributes["added"] == counts["added"]

    movie = movies[0]
    typo = movie.title[:2] + movie.title[3:] if len(movie.title) > 6 else movie.title
    result = await hass.services.async_call(
        DOMAIN, "search", {"query": typo, "type": ["movie"]}, blocking=True, return_response=True
    )
    hits = result["results"]
    assert any(h["rating_key"] == str(movie.id) for h in hits)
    hit = next(h for h in hits if h["rating_key"] == str(movie.id))
    assert hit["type"] == "movie"
    assert hit["guids"]
    assert hit["local_path"].startswith("/media/movies/")  # mapped from /data/movies

    # Nothing changed: an incremental import adds nothing.
    again = await import_library(hass)
    assert again["mode"] == "incremental"
    assert again["counts"]["added"] == 0


async def test_import_now_button(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    await hass.services.async_call(
        "button", "press", {ATTR_ENTITY_ID: "button.plexus_simulator_import_now"}, blocking=True
    )
    assert hass.states.get(MOVIES).state == str(len(simulator.library.movies()))


async def test_import_of_named_library_and_unknown_name(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    response = await import_library(hass, mode="full", libraries=["Movies"])
    assert response["libraries"] == ["Movies"] or response["libraries"] == ["1"]
    assert hass.states.get(EPISODES).state == "0"
    with pytest.raises(ServiceValidationError) as err:
        await import_library(hass, libraries=["Cartoons"])
    assert err.value.translation_key == "unknown_library"


async def test_failed_import_is_reported_and_recorded(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A server error mid-import raises a translated error, records the failure, keeps data."""
    await import_library(hass, mode="full")
    before = hass.states.get(MOVIES).state
    simulator.set_error(500)
    with pytest.raises(HomeAssistantError) as err:
        await import_library(hass, mode="full")
    assert err.value.translation_key == "import_failed"
    assert simulator.token not in str(err.value)
    assert hass.states.get(LAST).attributes["status"] == "failed"
    assert hass.states.get(MOVIES).state == before


async def test_scan_finished_starts_import(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server reporting a finished scan imports the new item within seconds."""
    await import_library(hass, mode="full")
    coordinator = loaded.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected)
    count = len(simulator.library.movies())
    simulator.library.add_movie("Freshly Scanned", year=2026)
    simulator.library.finish_scan(1)
    await wait_until(lambda: coordinator.notifications > 0)
    # The import is scheduled SCAN_IMPORT_DELAY (3 s) later; move HA's clock past it.
    for _ in range(50):
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=4))
        await hass.async_block_till_done(wait_background_tasks=True)
        if hass.states.get(MOVIES).state == str(count + 1):
            break
    assert hass.states.get(MOVIES).state == str(count + 1)


async def test_scheduled_imports(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """The first import runs by itself shortly after setup (then hourly/daily)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(MOVIES).state == str(len(simulator.library.movies()))


async def test_no_import_while_server_down(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    await simulator.go_offline()
    await loaded.runtime_data.coordinator.async_refresh()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded.runtime_data.catalog is not None
    assert loaded.runtime_data.catalog.last_run is None  # not tried, so nothing recorded


async def test_options_validate_catalog_settings(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry, tmp_path: Path
) -> None:
    """Bad mappings and an unusable database URL are refused; good ones are saved and used."""
    result = await hass.config_entries.options.async_init(loaded.entry_id)
    assert "/data" in result["description_placeholders"]["suggestions"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_PATH_MAPPINGS: "no arrow here"}
    )
    assert result["errors"] == {CONF_PATH_MAPPINGS: "invalid_path_mappings"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DB_URL: "notadialect://nowhere"}
    )
    assert result["errors"] == {CONF_DB_URL: "invalid_db_url"}
    url = f"sqlite:///{tmp_path / 'other.db'}"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DB_URL: url, CONF_PATH_MAPPINGS: "/data/tv => /media/tv"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded.options[CONF_DB_URL] == url
    await import_library(hass, mode="full")
    assert (tmp_path / "other.db").exists()


async def test_diagnostics_include_catalog_stats(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
) -> None:
    await import_library(hass, mode="full")
    diag = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    stats = diag["catalog"]
    assert stats["counts"]["movie"] == len(simulator.library.movies())
    assert stats["last_import"]["status"] == "success"
    text = json.dumps(diag)
    assert simulator.token not in text
    assert "/media/movies" not in text  # no local paths beyond the library roots


async def test_player_search_uses_the_catalog(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Once imported, search_media answers from the catalog (no library reads from the server),
    still exact-title-first, article- and year-aware."""
    simulator.library.add_movie("Dune", year=1984)
    simulator.library.add_movie("Dune", year=2021)
    await import_library(hass, mode="full")
    entity_id = "media_player.living_room_tv"

    def library_reads() -> int:
        return sum(1 for _m, path, _q in simulator.requests if path.endswith("/all"))

    reads_before = library_reads()

    async def search(query: str) -> list[str]:
        response = await hass.services.async_call(
            "media_player",
            "search_media",
            {ATTR_ENTITY_ID: entity_id, "search_query": query},
            blocking=True,
            return_response=True,
        )
        return [item.title for item in response[entity_id].result]

    assert (await search("Dune 2021"))[0] == "Dune (2021)"
    assert (await search("dune (1984)"))[0] == "Dune (1984)"
    movie = next(m for m in simulator.library.movies() if m.title.startswith("The "))
    assert (await search(movie.title[4:]))[0].startswith(movie.title)
    assert not hasattr(loaded.runtime_data.coordinator, "async_search_index")  # one search path
    assert library_reads() == reads_before


async def test_find_by_guids_for_sync_play(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Sync-play finds another home's item in this catalog by any of its GUIDs."""
    manager = loaded.runtime_data.catalog
    assert manager is not None
    movie = simulator.library.movies()[0]
    imdb = next(g for g in movie.ext_guids if g.startswith("imdb://"))
    # Nothing imported yet: nothing found (the caller then asks the server).
    assert await manager.async_find_by_guids([movie.guid]) is None
    await import_library(hass, mode="full")
    assert await manager.async_find_by_guids([movie.guid]) == movie.rating_key
    # Another server's own plex:// id is unknown here; the IMDb id still matches.
    assert await manager.async_find_by_guids(["plex://movie/0000000000", imdb]) == movie.rating_key
    assert await manager.async_find_by_guids([imdb], "episode") is None  # wrong type
    # Server-local and unrecognised ids name nothing on another server.
    assert await manager.async_find_by_guids(["local://1", "no guid at all"]) is None
