"""The catalog coordinator's glue: background import failures, lookups, path mapping text."""

import logging

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy.exc import OperationalError

from custom_components.plexus.catalog import PathMapping
from custom_components.plexus.catalog.errors import _MAX_CAUSE
from custom_components.plexus.catalog_manager import (
    _describe,
    format_path_mappings,
    parse_path_mappings,
)
from tests.plex_simulator import PlexSimulator

LOGGER = "custom_components.plexus.catalog_manager"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_background_import_failure_logged_once_and_recovery_once(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Scheduled imports that fail warn once; the first one that works again says so once."""
    catalog = loaded.runtime_data.catalog
    simulator.set_answer("/library/sections", b"<html/>")  # a proxy's page, not Plex
    for _ in range(2):
        catalog.request_import("incremental")
        await hass.async_block_till_done(wait_background_tasks=True)
    warnings = messages(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Catalog import of Plexus Simulator failed:")
    assert catalog.last_run is not None
    assert catalog.last_run.status != "success"

    simulator.set_answer("/library/sections", None)
    for _ in range(2):
        catalog.request_import("incremental")
        await hass.async_block_till_done(wait_background_tasks=True)
    assert messages(caplog, logging.INFO) == ["Catalog import of Plexus Simulator works again"]
    assert len(messages(caplog, logging.WARNING)) == 1
    assert catalog.counts["movie"] == len(simulator.library.movies())


async def test_search_media_imports_a_fresh_catalog_first(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A never-imported catalog imports before the first player search; a bare year: nothing."""
    catalog = loaded.runtime_data.catalog
    assert catalog.last_run is None
    movie = simulator.library.movies()[3]
    found = await catalog.async_search_media(f"{movie.title} {movie.year}", {"movie"}, 5)
    assert catalog.last_run is not None
    assert found
    assert found[0].rating_key == str(movie.id)
    assert await catalog.async_search_media("1999", None, 5) == []


async def test_guid_lookup_ignores_ids_that_name_nothing_elsewhere(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Server-local and unknown GUIDs are not looked up (another server has no such item)."""
    catalog = loaded.runtime_data.catalog
    await catalog.async_import("full")
    assert await catalog.async_find_by_guids(["local://123", "com.example.agent://x"]) is None
    assert await catalog.async_find_by_guids([]) is None


async def test_closed_catalog_answers_none_or_says_why(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """After the catalog stopped: stats and GUID lookups say nothing, imports and searches raise."""
    catalog = loaded.runtime_data.catalog
    await catalog.async_stop()
    catalog.catalog = None  # what a database that never opened looks like
    assert await catalog.async_stats() is None
    assert await catalog.async_find_by_guids(["imdb://tt0133093"]) is None
    with pytest.raises(HomeAssistantError) as err:
        await catalog.async_import("incremental")
    assert err.value.translation_key == "catalog_not_open"
    with pytest.raises(HomeAssistantError) as err:
        await catalog.async_search("matrix", types=None, year=None, limit=5)
    assert err.value.translation_key == "catalog_not_open"
    catalog.request_import("full")  # skipped quietly, nothing to run
    await hass.async_block_till_done(wait_background_tasks=True)


def test_path_mapping_text_round_trip() -> None:
    """Blank lines and comments are skipped; a line without `=>` is named by its number."""
    text = "# NAS\n\n/data/movies => /media/movies\n  /data/tv=>/media/tv  \n"
    mappings = parse_path_mappings(text)
    assert mappings == [
        PathMapping("/data/movies", "/media/movies"),
        PathMapping("/data/tv", "/media/tv"),
    ]
    assert parse_path_mappings(format_path_mappings(mappings)) == mappings
    with pytest.raises(ValueError, match="line 2: expected 'plex path => local path'"):
        parse_path_mappings("/a => /b\n/c -> /d")
    with pytest.raises(ValueError, match="line 1"):
        parse_path_mappings(" => /media")


def test_describe_keeps_the_driver_cause_short() -> None:
    """A SQLAlchemy error is described by its driver's first line (with the driver error's type),
    without SQL; empty by type; long ones cut."""
    err = OperationalError("SELECT 1", {}, Exception("could not connect\nDETAIL: refused"))
    assert _describe(err) == "Exception: could not connect"
    assert _describe(OSError()) == "OSError"
    assert len(_describe(ValueError("x" * 1000))) == _MAX_CAUSE
