"""Diagnostics never contain the token or URL credentials."""

import json

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.diagnostics import redact_url
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import PlexSimulator


async def test_diagnostics_redacts_token(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, simulator: PlexSimulator
) -> None:
    """The token appears nowhere, even when the URL itself carries credentials."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # A URL a user typed with credentials and a token in it (no reload: only what is stored).
    url = simulator.url.replace("http://", "http://admin:hunter2@") + "/?X-Plex-Token=sim-token"
    hass.config_entries.async_update_entry(entry, data=entry_data(simulator, **{CONF_URL: url}))
    client = next(iter(simulator.clients.values()))
    await client.local_start(next(iter(simulator.library.movies())).rating_key)
    await entry.runtime_data.coordinator.async_refresh()

    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diag)
    assert simulator.token not in text
    assert "hunter2" not in text
    assert "admin" not in text
    assert diag["entry"]["data"]["token"] == "**REDACTED**"
    assert diag["server"]["machine_identifier"] == simulator.machine_identifier
    assert len(diag["clients"]) == 3
    assert len(diag["sessions"]) == 1
    assert diag["coordinator"]["last_update_success"] is True


def test_redact_url_forms() -> None:
    """User info and query are dropped; scheme, host, port and path stay."""
    assert redact_url("https://u:p@plex.example:32400/x?X-Plex-Token=t") == (
        "https://plex.example:32400/x"
    )
    assert redact_url("http://10.0.0.2") == "http://10.0.0.2"


async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The whole download of an idle server (what changes from run to run left out)."""
    await wait_until(lambda: loaded.runtime_data.coordinator.listener.connected)
    diag = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    assert simulator.token not in json.dumps(diag)
    assert diag == snapshot(exclude=props("url", "websocket_messages"))
