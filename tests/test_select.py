"""Audio track and subtitles selects of each player, against the simulator's players."""

from homeassistant.components.select import DOMAIN as SELECT_DOMAIN, SERVICE_SELECT_OPTION
from homeassistant.const import ATTR_ENTITY_ID, ATTR_OPTION, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.plex.sessions import live_session
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator, SimulatedClient
from tests.plex_simulator.library import Item


def select_id(hass: HomeAssistant, sim: PlexSimulator, client: SimulatedClient, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"{sim.machine_identifier}-{client.machine_identifier}-{key}"
    )
    assert entity_id is not None
    return entity_id


def multilingual(sim: PlexSimulator) -> Item:
    """A movie with two audio tracks and two subtitle streams (the simulator's rule: id % 12)."""
    return next(m for m in sim.library.movies() if m.id % 12 == 0 and m.media.video_codec)


async def choose(hass: HomeAssistant, entity_id: str, option: str) -> None:
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: entity_id, ATTR_OPTION: option},
        blocking=True,
    )


async def start(hass: HomeAssistant, entry: MockConfigEntry, client: SimulatedClient, item: Item):
    await client.local_start(item.rating_key)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_streams_of_what_plays_and_switching(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    client = next(iter(simulator.clients.values()))
    audio = select_id(hass, simulator, client, "audio_track")
    subtitles = select_id(hass, simulator, client, "subtitles")
    assert hass.states.get(audio).state == STATE_UNAVAILABLE  # nothing plays
    assert hass.states.get(subtitles).state == STATE_UNAVAILABLE

    await start(hass, loaded, client, multilingual(simulator))
    await wait_until(lambda: hass.states.get(audio).state != STATE_UNAVAILABLE)
    await wait_until(lambda: hass.states.get(subtitles).state != STATE_UNAVAILABLE)
    state = hass.states.get(audio)
    assert len(state.attributes["options"]) == 2
    english, german = state.attributes["options"]
    assert english.startswith("English")
    assert german.startswith("Deutsch")
    assert state.state == english
    state = hass.states.get(subtitles)
    assert state.attributes["options"][0] == "off"
    assert [o.split(" ")[0] for o in state.attributes["options"][1:]] == ["English", "Français"]
    assert state.state == "off"

    await choose(hass, audio, german)
    await wait_until(lambda: client.audio_stream_id is not None)
    command = next(p for c, p in reversed(client.commands) if c == "setStreams")
    assert command["audioStreamID"] == str(client.audio_stream_id)
    assert hass.states.get(audio).state == german
    # The server's session now lists the German track as the one played.
    session = await live_session(loaded.runtime_data.coordinator.api, client.machine_identifier)
    assert session is not None
    assert session.audio_stream_id == client.audio_stream_id

    french = hass.states.get(subtitles).attributes["options"][2]
    await choose(hass, subtitles, french)
    await wait_until(lambda: client.subtitle_stream_id is not None)
    assert hass.states.get(subtitles).state == french
    await choose(hass, subtitles, "off")
    await wait_until(lambda: client.subtitle_stream_id is None)
    command = next(p for c, p in reversed(client.commands) if c == "setStreams")
    assert command["subtitleStreamID"] == "0"

    await client.local_stop()
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(audio).state == STATE_UNAVAILABLE


async def test_a_client_without_remote_control_has_no_choice(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    cast = simulator.add_client("Cast target", capabilities="timeline,mirror")
    await start(hass, loaded, cast, multilingual(simulator))
    audio = select_id(hass, simulator, cast, "audio_track")
    await wait_until(
        lambda: loaded.runtime_data.coordinator.data.session_for(cast.machine_identifier)
    )
    await hass.async_block_till_done()
    assert hass.states.get(audio).state == STATE_UNAVAILABLE


async def test_unknown_option_and_refusing_client(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    client = next(iter(simulator.clients.values()))
    audio = select_id(hass, simulator, client, "audio_track")
    await start(hass, loaded, client, multilingual(simulator))
    await wait_until(lambda: hass.states.get(audio).state != STATE_UNAVAILABLE)
    with pytest.raises(ServiceValidationError):
        await choose(hass, audio, "Klingon")
    client.accepts_control = False
    german = hass.states.get(audio).attributes["options"][1]
    with pytest.raises(HomeAssistantError) as err:
        await choose(hass, audio, german)
    assert err.value.translation_key == "command_failed"
    assert client.name in err.value.translation_placeholders["client"]
    assert hass.states.get(audio).state != german


async def test_streams_unreadable_leave_the_selects_unavailable_until_readable(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server answers the item's streams with a proxy page: no choice is offered (and
    nothing is guessed); once it answers again, the choices appear on the next update."""
    client = next(iter(simulator.clients.values()))
    audio = select_id(hass, simulator, client, "audio_track")
    movie = multilingual(simulator)
    caplog.set_level("DEBUG", logger="custom_components.plexus")
    simulator.set_answer(f"/library/metadata/{movie.rating_key}", b"<html>Sign in</html>")
    await start(hass, loaded, client, movie)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded.runtime_data.coordinator.data.session_for(client.machine_identifier)
    assert hass.states.get(audio).state == STATE_UNAVAILABLE
    assert f"Cannot read the streams of {movie.rating_key}" in caplog.text
    assert simulator.token not in caplog.text

    simulator.set_answer(f"/library/metadata/{movie.rating_key}", None)
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: hass.states.get(audio).state != STATE_UNAVAILABLE)
    assert hass.states.get(audio).state.startswith("English")
