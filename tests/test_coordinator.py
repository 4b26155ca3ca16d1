"""The server coordinator: plex.tv players, library figures that survive failed reads."""

import logging

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import CONF_PLEX_TV_TOKEN, DOMAIN
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import PlexSimulator, PlexTvSimulator


def plex_tv_entry(sim: PlexSimulator) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim, **{CONF_PLEX_TV_TOKEN: "plex-tv-token"}),
    )


async def test_plex_tv_players_get_a_player(
    hass: HomeAssistant, simulator: PlexSimulator, plex_tv: PlexTvSimulator
) -> None:
    """An online player of the account that the server does not list still gets an entity.

    The fake plex.tv answers with the recorded account: "Plex HTPC" is online, the iPhone and
    the SHIELD are not.
    """
    entry = plex_tv_entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    (request,) = [r for r in plex_tv.requests if r.path_qs.startswith("/api/v2/resources")]
    assert request.headers["X-Plex-Token"] == "plex-tv-token"
    assert request.headers["X-Plex-Client-Identifier"] == "test-client-id"
    known = entry.runtime_data.coordinator.state.known_clients
    assert "client_id" in known
    assert "12345678-0123-0123-0123-012345678901" not in known  # presence false
    entity_id = er.async_get(hass).async_get_entity_id(
        "media_player", DOMAIN, f"{simulator.machine_identifier}-player-client_id"
    )
    assert entity_id is not None
    assert hass.states.get(entity_id).name == "Plex HTPC"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("down", "plex.tv could not be reached (ClientConnectorError)"),
        ("503", "plex.tv answered HTTP 503"),
        ("401", "plex.tv rejected the token (HTTP 401)"),
        ("garbage", "plex.tv's answer is not JSON"),
    ],
)
async def test_plex_tv_outage_leaves_the_server_working(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    plex_tv: PlexTvSimulator,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    message: str,
) -> None:
    """plex.tv failing is a debug line; the server's own clients and sensors work."""
    if fault == "down":
        await plex_tv.stop()
    elif fault == "503":
        plex_tv.set_error(503)
    elif fault == "401":
        plex_tv.token = "another-token"
    else:
        plex_tv.set_answer("/api/v2/resources", b"<html>maintenance</html>")
    entry = plex_tv_entry(simulator)
    entry.add_to_hass(hass)
    caplog.set_level(logging.DEBUG, logger="custom_components.plexus")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    assert coordinator.last_update_success
    assert len(coordinator.data.clients) == 3
    assert f"plex.tv players not available: plex.tv GET /api/v2/resources: {message}" in (
        caplog.text
    )
    assert "plex-tv-token" not in caplog.text
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "plex.tv" in r.message
    ]


async def test_failed_library_reads_keep_the_last_figures(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """After a scan the counts are read again; a library whose reads fail keeps its last figures."""
    coordinator = loaded.runtime_data.coordinator
    before = coordinator.data.library_stats["1"]
    assert before.count == len(simulator.library.movies())
    assert before.last_added is not None
    tv = coordinator.data.library_stats["2"]
    # The movie library answers with something that is not a Plex document; TV only fails its
    # newest-item read.
    simulator.set_answer("/library/sections/1/all", b"<html/>")
    simulator.set_answer("/library/sections/1/recentlyAdded", b"<html/>")
    simulator.set_answer("/library/sections/2/recentlyAdded", b"<html/>")
    await wait_until(lambda: coordinator.listener.connected)
    refreshes = coordinator.notifications
    await simulator.scan(2)
    await wait_until(lambda: coordinator.notifications > refreshes)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert coordinator.last_update_success
    assert coordinator.data.library_stats["1"] == before
    assert coordinator.data.library_stats["2"].count == tv.count
    assert coordinator.data.library_stats["2"].last_added == tv.last_added
