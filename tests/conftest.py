"""Shared fixtures for the Plexus tests."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import os
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch
import uuid

from aiohttp import ClientSession
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.plexus.catalog.db import Catalog, sqlite_url
from custom_components.plexus.const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_SERVER_IDENTIFIER,
    CONF_SERVER_NAME,
    DOMAIN,  # imported early; see ENVIRONMENT-NOTES
)
from tests.plex_simulator import LibraryConfig, PlexSimulator, PlexTvSimulator


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load custom_components/plexus in every test."""


@pytest.fixture(autouse=True)
def catalog_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's catalog is a fresh SQLite file (HA's test config folder is shared)."""
    path = tmp_path / "plexus_catalog.db"
    monkeypatch.setattr("custom_components.plexus.catalog_manager.CATALOG_FILE", str(path))
    return path


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Syrupy with HA's serializer (registry entries and states without ids and times)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, also those disabled by default (as HA core's fixture)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    """A running Plex simulator on 127.0.0.1 with a small library and three clients."""
    sim = PlexSimulator(token="sim-token", clients=3, seed=7)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def group_sim(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    """A simulator for a sync-play group's entities: three clients with 20 to 60 ms latency."""
    simulator = PlexSimulator(
        token="sim-token", clients=3, seed=7, latency_ms=(20, 60), library=LibraryConfig(movies=10)
    )
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def entry_data(sim: PlexSimulator, **overrides: Any) -> dict[str, Any]:
    """Config entry data for the simulator."""
    return {
        CONF_URL: sim.url,
        CONF_TOKEN: sim.token,
        CONF_VERIFY_SSL: True,
        CONF_SERVER_IDENTIFIER: sim.machine_identifier,
        CONF_SERVER_NAME: "Plexus Simulator",
        CONF_CLIENT_IDENTIFIER: "test-client-id",
    } | overrides


@pytest.fixture
def config_entry(simulator: PlexSimulator) -> MockConfigEntry:
    """A config entry for the simulator (not added to HA yet)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
    )


@pytest.fixture
async def loaded(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The simulator's entry, set up."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (real time) until check() is true; fail after timeout."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


# --- catalog engine tests: both backends, and a plain HTTP session ----------------------------

PG_URL = os.environ.get("PLEXUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def make_catalog(backend: str, tmp_path: Path) -> Catalog:
    """A fresh catalog: a SQLite file, or a PostgreSQL schema unique to this test."""
    if backend == "sqlite":
        return Catalog(sqlite_url(tmp_path / "catalog.db"))
    return Catalog(PG_URL, schema=f"plexus_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "postgresql":
        request.getfixturevalue("socket_enabled")
    cat = make_catalog(request.param, tmp_path)
    try:
        yield cat
    finally:
        if request.param == "postgresql":
            cat.drop_all()
        cat.close()


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    """A plain aiohttp session (engine tests without Home Assistant)."""
    async with ClientSession() as client:
        yield client


@pytest.fixture
async def plex_tv(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PlexTvSimulator]:
    """A fake plex.tv on 127.0.0.1 that Plexus talks to instead of https://plex.tv.

    Its resources are the recorded account (one unreachable server, three players); tests add
    their own servers (`add_server`, e.g. the simulator) and approve PINs (`approve`).
    """
    fake = PlexTvSimulator(token="plex-tv-token")
    await fake.start()
    monkeypatch.setattr("custom_components.plexus.plex.plextv.PLEX_TV_URL", fake.url)
    try:
        yield fake
    finally:
        await fake.stop()
