"""The sync-play group subentry flow: add (secret shown at creation and on reconfigure), errors."""

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


def _suggested(result: dict) -> dict:
    """The values a form comes pre-filled with (what the user typed, after an error)."""
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


async def test_add_group_generates_and_shows_secret(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """The first submit creates the group; its finish dialog shows the generated secret."""
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "Movie Night", CONF_MEMBERS: ["media_player.living_room_tv"]},
    )
    # Nothing more to press: the group exists before the user reads (or closes) the dialog.
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # let the scheduled reload finish
    assert result["description"] == "created"  # config_subentries.sync_group.create_entry.created
    shown = result["description_placeholders"]["secret"]
    assert len(shown) >= 32
    assert result["description_placeholders"]["topic"] == "plexus/sync/movie_night"
    assert result["description_placeholders"]["name"] == "Movie Night"
    assert not hass.config_entries.subentries.async_progress()
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


async def test_secret_stays_visible_in_reconfigure(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A closed finish dialog loses nothing: the group's reconfigure form shows topic and secret."""
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Quiz"}
    )
    secret = result["description_placeholders"]["secret"]
    subentry = next(iter(loaded.subentries.values()))
    result = await loaded.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["description_placeholders"] == {"topic": "plexus/sync/quiz", "secret": secret}
    # The secret itself is not pre-filled: an empty field keeps it.
    assert all(
        "suggested_value" not in (key.description or {})
        for key in result["data_schema"].schema
        if str(key) == CONF_SECRET
    )


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
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # let the scheduled reload finish
    assert result["description_placeholders"]["secret"] == "x" * 20
    assert next(iter(loaded.subentries.values())).data[CONF_TOPIC] == "home/sync/family"

    # A topic another group uses is a form error that keeps what was typed, not an abort.
    result = await _start(hass, loaded)
    typed = {CONF_GROUP_NAME: "Other", CONF_TOPIC: "home/sync/family", CONF_SECRET: "y" * 20}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], typed)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOPIC: "group_exists"}
    assert typed.items() <= _suggested(result).items()
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], typed | {CONF_TOPIC: "home/sync/other"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # let the scheduled reload finish
    assert len(loaded.subentries) == 2


async def test_reconfigure_to_another_groups_topic_is_a_form_error(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Bad input tried: moving a group onto the topic of another group of the same server.

    HA itself would abort the flow with an untranslated "already_configured"; the form says
    what is wrong instead, keeps the group as it was, and accepts a free topic.
    """
    for name in ("Family", "Friends"):
        result = await _start(hass, loaded)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_GROUP_NAME: name}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
    friends = next(s for s in loaded.subentries.values() if s.title == "Friends")
    result = await loaded.start_subentry_reconfigure_flow(hass, friends.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Friends", CONF_TOPIC: "plexus/sync/family"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOPIC: "group_exists"}
    assert loaded.subentries[friends.subentry_id].data[CONF_TOPIC] == "plexus/sync/friends"
    # Its own topic is not "taken".
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Friends", CONF_TOPIC: "plexus/sync/friends"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()


async def test_reconfigure_keeps_or_changes_secret(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    result = await _start(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_GROUP_NAME: "Movie Night", CONF_SECRET: "s" * 24}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # let the scheduled reload finish
    subentry = next(iter(loaded.subentries.values()))
    result = await loaded.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_GROUP_NAME: "Movie Night", CONF_MEMBERS: ["media_player.office_htpc"]},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()  # let the scheduled reload finish
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
    await hass.async_block_till_done()  # let the scheduled reload finish
