"""The Plex server's update entity, against the simulator's three recorded cases."""

from collections.abc import AsyncIterator
from pathlib import Path

from homeassistant.components.update import (
    ATTR_INSTALLED_VERSION,
    ATTR_LATEST_VERSION,
    DOMAIN as UPDATE_DOMAIN,
    SERVICE_INSTALL,
    UpdateEntityFeature,
)
from homeassistant.const import ATTR_ENTITY_ID, ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.plex.errors import PlexResponseError
from custom_components.plexus.plex.updater import parse_update_status
from tests.conftest import entry_data
from tests.plex_simulator import PlexSimulator

ENTITY = "update.plexus_simulator_plex_media_server"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    simulator = PlexSimulator(token="sim-token", clients=1, seed=7)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def setup(hass: HomeAssistant, sim: PlexSimulator) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=sim.machine_identifier,
        data=entry_data(sim),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def test_recorded_answers_of_real_servers() -> None:
    """The three recorded /updater/status answers: newer + installable, newer only, none."""
    new = parse_update_status((FIXTURES / "ha-core" / "release_new.xml").read_bytes())
    assert (new.latest_version, new.can_install) == ("1.50.0", True)
    assert new.release_notes is not None
    assert "Summary of\nrelease notes" in new.release_notes
    assert "X-Plex-Token" not in (new.release_notes or "")
    locked = parse_update_status(
        (FIXTURES / "ha-core" / "release_new_not_updatable.xml").read_bytes()
    )
    assert (locked.latest_version, locked.can_install) == ("1.50.0", False)
    same = parse_update_status((FIXTURES / "ha-core" / "release_nochange.xml").read_bytes())
    assert same.release_notes is None
    # A server that lists no release at all (update checks turned off) offers nothing.
    empty = parse_update_status(b'<MediaContainer size="0" canInstall="1"/>')
    assert (empty.latest_version, empty.release_notes, empty.can_install) == (None, None, False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>Sign in</body></html>", "not a MediaContainer"),  # a proxy's page
        (b"Service Unavailable", "not XML"),
        (b"<MediaContainer><Release", "not XML"),  # cut short
    ],
)
def test_answers_that_are_not_an_update_status(body: bytes, message: str) -> None:
    """Anything but a MediaContainer is refused with a clear error (never read as 'no update')."""
    with pytest.raises(PlexResponseError, match=message):
        parse_update_status(body)


async def test_no_update(hass: HomeAssistant, sim: PlexSimulator) -> None:
    await setup(hass, sim)
    state = hass.states.get(ENTITY)
    assert state is not None
    assert state.state == "off"
    assert state.attributes[ATTR_INSTALLED_VERSION] == state.attributes[ATTR_LATEST_VERSION]


async def test_update_with_release_notes_and_install(
    hass: HomeAssistant, sim: PlexSimulator, hass_ws_client: WebSocketGenerator
) -> None:
    sim.update = "new"
    await setup(hass, sim)
    state = hass.states.get(ENTITY)
    assert state is not None
    assert state.state == "on"
    assert state.attributes[ATTR_LATEST_VERSION] == "1.50.0"
    assert state.attributes[ATTR_SUPPORTED_FEATURES] & UpdateEntityFeature.INSTALL
    client = await hass_ws_client(hass)
    await client.send_json({"id": 1, "type": "update/release_notes", "entity_id": ENTITY})
    result = await client.receive_json()
    assert "release notes" in result["result"]
    await hass.services.async_call(
        UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: ENTITY}, blocking=True
    )
    await hass.async_block_till_done()
    assert sim.update is None
    assert hass.states.get(ENTITY).state == "off"


async def test_update_the_server_cannot_install(hass: HomeAssistant, sim: PlexSimulator) -> None:
    """A Linux/Docker server reports the release but cannot install it: no install button."""
    sim.update = "new_not_installable"
    await setup(hass, sim)
    state = hass.states.get(ENTITY)
    assert state is not None
    assert state.state == "on"
    assert not state.attributes[ATTR_SUPPORTED_FEATURES] & UpdateEntityFeature.INSTALL


async def test_install_refused_is_a_translated_error(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    sim.update = "new"
    await setup(hass, sim)
    sim.update = "new_not_installable"  # the server changed its mind: it answers HTTP 500
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            UPDATE_DOMAIN, SERVICE_INSTALL, {ATTR_ENTITY_ID: ENTITY}, blocking=True
        )
    assert err.value.translation_key == "update_failed"
    assert sim.token not in str(err.value)


async def test_unreadable_update_status_is_logged_once(
    hass: HomeAssistant, sim: PlexSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy's login page instead of /updater/status: no update shown, one log line per outage."""
    assert await async_setup_component(hass, "homeassistant", {})
    sim.update = "new"
    await setup(hass, sim)
    assert hass.states.get(ENTITY).state == "on"

    async def poll() -> None:
        await hass.services.async_call(
            "homeassistant", "update_entity", {ATTR_ENTITY_ID: ENTITY}, blocking=True
        )
        await hass.async_block_till_done()

    sim.set_answer("/updater/status", b"<html><body>Log in</body></html>")
    caplog.clear()
    await poll()
    await poll()
    lines = [r for r in caplog.records if "Update status of" in r.getMessage()]
    assert len(lines) == 1
    assert "not XML" in lines[0].getMessage() or "MediaContainer" in lines[0].getMessage()
    assert sim.token not in caplog.text
    # The last status read is kept: the release it announced is still there.
    state = hass.states.get(ENTITY)
    assert state.state == "on"
    assert state.attributes[ATTR_LATEST_VERSION] == "1.50.0"

    # The server answers again; a later outage is logged again.
    sim.set_answer("/updater/status", None)
    await poll()
    sim.set_answer("/updater/status", b"<html/>")
    caplog.clear()
    await poll()
    assert sum("Update status of" in r.getMessage() for r in caplog.records) == 1


async def test_update_status_unreadable_from_the_start(
    hass: HomeAssistant, sim: PlexSimulator
) -> None:
    """No status ever read: the installed version is the latest one, nothing to install."""
    sim.set_answer("/updater/status", b"<html/>")
    await setup(hass, sim)
    state = hass.states.get(ENTITY)
    assert state is not None
    assert state.state == "off"
    assert state.attributes[ATTR_LATEST_VERSION] == state.attributes[ATTR_INSTALLED_VERSION]
    assert not state.attributes[ATTR_SUPPORTED_FEATURES] & UpdateEntityFeature.INSTALL
