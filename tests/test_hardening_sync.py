"""Issue 15, point 9 (glue): the sync-play engine hears about MQTT reconnects; diagnostics show
each group's drop and failure counters."""

from typing import Any

from homeassistant.components.mqtt.const import MQTT_CONNECTION_STATE
from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator
from tests.sync_group import MEMBERS, group_entry, setup_group


@pytest.mark.parametrize("expected_lingering_timers", [True])  # MQTT's own periodic timer
async def test_mqtt_reconnect_runs_the_rejoin_handshake(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    mqtt_mock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HA's MQTT client connecting again makes the group announce itself (hello) at once;
    a status repeated while connected does nothing."""
    entry = group_entry(simulator, topic="home/sync/rejoin", follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))
    assert group.uses_mqtt
    calls: list[str] = []
    original = group.engine.reconnected

    async def reconnected() -> None:
        calls.append("reconnected")
        await original()

    monkeypatch.setattr(group.engine, "reconnected", reconnected)

    def hellos() -> int:
        return sum(
            1
            for call in mqtt_mock.async_publish.call_args_list
            if call.args[0].startswith("home/sync/rejoin/") and b'"hello"' in bytes(call.args[1])
        )

    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)  # still connected: nothing
    await hass.async_block_till_done()
    assert calls == []
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    await hass.async_block_till_done()
    before = hellos()
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    assert calls == ["reconnected"]
    await wait_until(lambda: hellos() > before)
    assert await hass.config_entries.async_unload(entry.entry_id)
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, False)
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, True)
    await hass.async_block_till_done()
    assert calls == ["reconnected"]  # unloaded: no longer listening


async def test_diagnostics_show_each_groups_drop_stats(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: PlexSimulator,
) -> None:
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    [group] = diag["sync_groups"]
    assert group["name"] == "Movie Night"
    assert group["uses_mqtt"] is False
    assert group["members"] == sorted(MEMBERS)
    stats = group["drop_stats"]
    assert "accepted" in stats
    assert "task_failures" in stats
    assert "loop_restarts" in stats
    assert "s" * 32 not in str(diag)  # the group secret never shows
    assert await hass.config_entries.async_unload(entry.entry_id)
