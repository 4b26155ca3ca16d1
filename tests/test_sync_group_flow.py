"""The sync-play group subentry flow: add (secret generated and shown once), errors, reconfigure."""

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import (
    CONF_GROUP_NAME,
    CONF_MEMBERS,
    CONF_SECRET,
    CONF_TOPIC,
    SUBENTRY_SYNC_GROUP,
)
from tests.plex_simulator import PlexSimulator


async def _start(hass: HomeAssistant, entry: MockConfigEntry) -> dict:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_SYNC_GROUP), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return result


async def test_add_group_generates_and_shows_secret(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "Movie Night", CONF_MEMBERS: ["media_player.living_room_tv"]},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "secret"
    shown = result["description_placeholders"]["secret"]
    assert len(shown) >= 32
    assert result["description_placeholders"]["topic"] == "plexus/sync/movie_night"
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(iter(loaded.subentries.values()))
    assert subentry.subentry_type == SUBENTRY_SYNC_GROUP
    assert subentry.title == "Movie Night"
    assert subentry.unique_id == "plexus/sync/movie_night"
    assert subentry.data[CONF_SECRET] == shown
    assert subentry.data[CONF_MEMBERS] == ["media_player.living_room_tv"]
    # Defaults of the issue: 400 ms drift threshold, wait for buffering, follow off.
    assert subentry.data["drift_threshold_ms"] == 400
    assert subentry.data["wait_for_buffering"] is True
    assert subentry.data["follow"] is False


async def test_errors_then_recovery_and_duplicate(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "  ", CONF_TOPIC: "bad/+/topic", CONF_SECRET: "short"},
    )
    assert result["errors"] == {
        CONF_GROUP_NAME: "invalid_name",
        CONF_TOPIC: "invalid_topic",
        CONF_SECRET: "secret_too_short",
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "Family", CONF_TOPIC: "home/sync/family/", CONF_SECRET: "x" * 20},
    )
    assert result["step_id"] == "secret"
    assert result["description_placeholders"]["secret"] == "x" * 20
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert next(iter(loaded.subentries.values())).data[CONF_TOPIC] == "home/sync/family"

    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Other", CONF_TOPIC: "home/sync/family"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "group_exists"


async def test_reconfigure_keeps_or_changes_secret(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Movie Night", CONF_SECRET: "s" * 24}
    )
    await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    subentry = next(iter(loaded.subentries.values()))
    result = await loaded.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "Movie Night", CONF_MEMBERS: ["media_player.office_htpc"]},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = loaded.subentries[subentry.subentry_id]
    assert subentry.data[CONF_SECRET] == "s" * 24
    assert subentry.data[CONF_MEMBERS] == ["media_player.office_htpc"]
    result = await loaded.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Movie Night", CONF_SECRET: "n" * 30}
    )
    assert loaded.subentries[subentry.subentry_id].data[CONF_SECRET] == "n" * 30
    result = await loaded.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Movie Night", CONF_TOPIC: "#"}
    )
    assert result["errors"] == {CONF_TOPIC: "invalid_topic"}
