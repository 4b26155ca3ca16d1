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


def _activity(event: str, kind: str, section: str = "1") -> dict[str, object]:
    activity = {
        "uuid": "0c9c1ff0-4d83-4a5d-9bd6-1b2c3d4e5f60",
        "type": kind,
        "cancellable": False,
        "userID": 1,
        "title": "Generating thumbnails",
        "subtitle": "Movie 1",
        "progress": 100 if event == "ended" else 40,
        "Context": {"librarySectionID": section},
    }
    return {
        "NotificationContainer": {
            "type": "activity",
            "size": 1,
            "ActivityNotification": [
                {"event": event, "uuid": activity["uuid"], "Activity": activity}
            ],
        }
    }


async def test_only_library_activities_read_the_server_again(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Thumbnail generation and butler tasks (activities a real server reports for hours during
    its maintenance) read nothing; a library scan that ends reads the server again. Before, every
    activity event refreshed the coordinator and each one that ended re-read the library counts."""
    coordinator = loaded.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected)
    await hass.async_block_till_done()
    caplog.set_level(logging.DEBUG, logger="custom_components.plexus")
    caplog.clear()
    simulator.requests.clear()

    def fetches() -> int:
        return sum("Finished fetching" in r.getMessage() for r in caplog.records)

    seen = coordinator.notifications
    for kind in ("media.generate.bif", "media.generate.intros", "butler.optimize.database"):
        for event in ("started", "updated", "ended"):
            await simulator.notify(_activity(event, kind))
    await wait_until(lambda: coordinator.notifications >= seen + 9)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fetches() == 0
    assert not [r for r in simulator.requests if r[1].startswith("/library/sections/")]

    await simulator.notify(_activity("ended", "library.update.section"))
    await wait_until(lambda: fetches() >= 1)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [r for r in simulator.requests if r[1] == "/library/sections/1/all"]
