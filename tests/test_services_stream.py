"""plexus.terminate_session, and the session attributes video_resolution / transcode_reasons."""

from pathlib import Path
import re

from homeassistant.components.media_player import DOMAIN as MP_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.plex.library import MediaItem
from custom_components.plexus.plex.parse import parse_sessions, resolution_label
from custom_components.plexus.plex.sessions import parse_item_streams, parse_live_session
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator, SimulatedClient

FIXTURES = Path("/work/shared/plex-fixtures/ha-core")


def player(hass: HomeAssistant, sim: PlexSimulator, client: SimulatedClient) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        MP_DOMAIN, DOMAIN, f"{sim.machine_identifier}-player-{client.machine_identifier}"
    )
    assert entity_id is not None
    return entity_id


async def playing(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry, client: SimulatedClient
) -> str:
    await client.local_start(sim.library.movies()[0].rating_key)
    await entry.runtime_data.coordinator.async_refresh()
    entity_id = player(hass, sim, client)
    await wait_until(lambda: hass.states.get(entity_id).state == "playing")
    return entity_id


async def terminate(hass: HomeAssistant, **data: object) -> None:
    await hass.services.async_call(DOMAIN, "terminate_session", data, blocking=True)


async def test_terminate_a_players_stream_with_a_message(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    client = next(iter(simulator.clients.values()))
    entity_id = await playing(hass, simulator, loaded, client)
    await terminate(hass, entity_id=entity_id, message="Time for bed")
    assert client.state == "stopped"
    assert ("terminate", {"reason": "Time for bed"}) in client.commands
    # Plex identifies the stream by its Session id, not the session key.
    query = next(q for _m, p, q in simulator.requests if p == "/status/sessions/terminate")
    assert query["sessionId"] not in ("", client.session_key)
    await wait_until(lambda: hass.states.get(entity_id).state != "playing")


async def test_terminate_by_session_id(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    client = next(iter(simulator.clients.values()))
    await playing(hass, simulator, loaded, client)
    await terminate(hass, session_id=client.session_id)
    assert client.state == "stopped"
    reason = next(params for cmd, params in client.commands if cmd == "terminate")["reason"]
    assert reason  # the default message


async def test_server_without_plex_pass_refuses(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """HTTP 403: a translated error that says why; the stream goes on."""
    client = next(iter(simulator.clients.values()))
    entity_id = await playing(hass, simulator, loaded, client)
    simulator.plex_pass = False
    with pytest.raises(HomeAssistantError) as err:
        await terminate(hass, entity_id=entity_id)
    assert err.value.translation_key == "terminate_refused"
    assert "403" in err.value.translation_placeholders["error"]
    assert simulator.token not in str(err.value.translation_placeholders)
    assert client.state == "playing"


async def test_a_session_key_is_not_a_session_id(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """The stream's session key given as its id: a real server ends nothing (404), so "no
    session", and the stream plays on."""
    client = next(iter(simulator.clients.values()))
    await playing(hass, simulator, loaded, client)
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, session_id=client.session_key)
    assert err.value.translation_key == "no_session"
    assert client.state == "playing"


async def test_a_session_listed_without_id_cannot_be_ended(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A server that lists a player's session without a <Session id> (as for Plexamp): a
    translated error that says why, and no terminate request by any other key."""
    client = next(iter(simulator.clients.values()))
    entity_id = await playing(hass, simulator, loaded, client)
    body = await loaded.runtime_data.coordinator.api.request("/status/sessions")
    without_id = re.sub(rb"<Session [^>]*/>", b"", body)
    assert without_id != body
    simulator.set_answer("/status/sessions", without_id, "text/xml")
    try:
        with pytest.raises(HomeAssistantError) as err:
            await terminate(hass, entity_id=entity_id)
    finally:
        simulator.set_answer("/status/sessions", None)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "session_without_id"
    assert err.value.translation_placeholders == {"server": loaded.title, "target": entity_id}
    assert not any(p == "/status/sessions/terminate" for _m, p, _q in simulator.requests)
    assert client.state == "playing"


async def test_bad_targets(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Nothing playing, a session that ended, an entity that is no player, no target at all."""
    client = next(iter(simulator.clients.values()))
    entity_id = player(hass, simulator, client)
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, entity_id=entity_id)
    assert err.value.translation_key == "no_session"
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, session_id="gone0000000000000000")
    assert err.value.translation_key == "no_session"
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, entity_id="sensor.plexus_simulator_active_streams")
    assert err.value.translation_key == "not_a_player"
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, message="nobody")
    assert err.value.translation_key == "terminate_target_required"


async def test_transcode_reasons_and_resolution_attributes(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A transcoding player says what is converted; a direct stream only remuxes the container."""
    transcoding = simulator.add_client("Remote phone", stream_decision="transcode", location="wan")
    remuxing = simulator.add_client("Old TV", stream_decision="copy")
    movies = [m for m in simulator.library.movies() if m.media and m.media.video_codec]
    await transcoding.local_start(movies[0].rating_key)
    await remuxing.local_start(movies[1].rating_key)
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    attrs = hass.states.get(player(hass, simulator, transcoding)).attributes
    assert attrs["transcode_reasons"] == ["video", "audio"]
    assert attrs["video_resolution"] == "720"  # what the viewer gets, as the session says
    assert movies[0].media is not None
    assert attrs["source_video_resolution"] == movies[0].media.video_resolution  # the file's
    attrs = hass.states.get(player(hass, simulator, remuxing)).attributes
    assert attrs["transcode_reasons"] == ["container"]
    assert movies[1].media is not None
    assert attrs["source_video_resolution"] == movies[1].media.video_resolution


async def test_source_resolution_is_read_once_per_item_and_a_failure_is_tried_again(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Tried: the item's metadata answered with a proxy's HTML page while it transcodes: the
    attribute is empty, the player works; the next poll reads it; later polls do not ask again."""
    phone = simulator.add_client("Remote phone", stream_decision="transcode", location="wan")
    movie = next(m for m in simulator.library.movies() if m.media and m.media.video_codec)
    assert movie.media is not None
    await phone.local_start(movie.rating_key)
    coordinator = loaded.runtime_data.coordinator
    path = f"/library/metadata/{movie.rating_key}"
    simulator.set_answer(path, b"<html><body>Proxy login</body></html>")
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    entity = player(hass, simulator, phone)
    assert hass.states.get(entity).state == "playing"
    assert hass.states.get(entity).attributes["source_video_resolution"] is None
    simulator.set_answer(path, None)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    attrs = hass.states.get(entity).attributes
    assert attrs["source_video_resolution"] == movie.media.video_resolution
    asked: list[str] = []
    read = coordinator.library.metadata

    async def counted(rating_key: str) -> MediaItem | None:
        asked.append(rating_key)
        return await read(rating_key)

    coordinator.library.metadata = counted  # type: ignore[method-assign]
    await coordinator.async_refresh()
    await coordinator.async_refresh()
    assert asked == []  # remembered
    assert hass.states.get(entity).attributes["source_video_resolution"] == (
        movie.media.video_resolution
    )


def recorded_session(extra: str = "") -> str:
    """ha-core's recorded session (a transcode: Part decision="transcode"), plus `extra`."""
    base = (FIXTURES / "session_base.xml").read_text().replace("{user_id}", "1")
    return base.replace("</Video>", f"{extra}</Video>")


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("720p", "720"),
        ("720", "720"),
        ("SD", "sd"),
        ("1080p", "1080"),
        ("4k", "4k"),
        ("2160", "4k"),
        ("2160p", "4k"),
        (" 4K ", "4k"),
        ("", ""),
        ("weird", "weird"),
    ],
)
def test_resolution_has_one_spelling(raw: str, label: str) -> None:
    """What servers write in videoResolution (recorded: "720", "720p", "SD", "1080")."""
    assert resolution_label(raw) == label


def test_parse_reasons_from_recorded_sessions() -> None:
    """The reasons come from the TranscodeSession decisions, where Plex reports them."""
    (session,) = parse_sessions(recorded_session())
    # No TranscodeSession element: the Streams' own decisions say what is converted (the audio).
    assert (session.video_decision, session.audio_decision) == ("copy", "transcode")
    assert session.transcode_reasons == ("audio",)
    assert session.video_resolution == "720"  # recorded as "720p": one spelling for automations
    direct = recorded_session().replace('decision="transcode"', 'decision="directplay"')
    direct = direct.replace('decision="copy"', 'decision="directplay"')
    assert parse_sessions(direct)[0].transcode_reasons == ()
    cases = {
        'videoDecision="copy" audioDecision="transcode" subtitleDecision="burn"': (
            "audio",
            "subtitles",
        ),
        'videoDecision="transcode" audioDecision="copy"': ("video",),
        'videoDecision="copy" audioDecision="copy"': ("container",),
    }
    for decisions, reasons in cases.items():
        body = recorded_session(f"<TranscodeSession {decisions} />")
        assert parse_sessions(body)[0].transcode_reasons == reasons, decisions


def test_parse_streams_from_recorded_responses() -> None:
    """Streams of a recorded live-TV item, and the selected audio of a recorded session."""
    item = (FIXTURES / "livetv_sessions.xml").read_bytes()
    streams = parse_item_streams(item, "203216")
    assert [s.id for s in streams.audio] == [770098, 770099]
    assert [s.selected for s in streams.audio] == [True, False]
    assert [s.title for s in streams.subtitles] == ["Unknown (Closed Captions)"]
    body = recorded_session()
    player_id = parse_sessions(body)[0].player_identifier
    session = parse_live_session(body, player_id)
    assert session is not None
    assert session.session_id == "session_id_1"  # the <Session id>, what terminate needs
    assert session.audio_stream_id == 21429
    assert session.subtitle_stream_id == 0  # no subtitle stream listed: none shown
    assert parse_live_session(body, "someone-else") is None
    # Without a <Session id> there is nothing to end it by (its sessionKey is no substitute).
    no_id = parse_live_session(re.sub(r"<Session [^>]*/>", "", body), player_id)
    assert no_id is not None
    assert no_id.session_id == ""
    empty = parse_item_streams("<MediaContainer size='0'/>", "1")
    assert empty.audio == ()
    assert empty.subtitles == ()


async def test_players_service_target_must_be_loaded(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    entity_id = player(hass, simulator, next(iter(simulator.clients.values())))
    await hass.config_entries.async_unload(loaded.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "terminate_session", {ATTR_ENTITY_ID: entity_id}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_server_error_while_terminating_by_session_id(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """HTTP 500 from the server: "could not stop", not "refused" or "no session"; it plays on."""
    client = next(iter(simulator.clients.values()))
    await playing(hass, simulator, loaded, client)
    simulator.set_error(500)
    try:
        with pytest.raises(HomeAssistantError) as err:
            await terminate(hass, session_id=client.session_id)
    finally:
        simulator.set_error(None)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "terminate_failed"
    assert err.value.translation_placeholders["target"] == client.session_id
    assert err.value.translation_placeholders["server"] == loaded.title
    assert simulator.token not in str(err.value.translation_placeholders)
    assert client.state == "playing"


async def test_leftover_player_entity_of_another_form_is_not_a_player(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A Plexus media player registry entry whose unique id names no client of this server
    (left from another server identity): refused by name, nothing sent to the server."""
    leftover = er.async_get(hass).async_get_or_create(
        MP_DOMAIN, DOMAIN, "other-server-player-abc", config_entry=loaded
    )
    before = len(simulator.requests)
    with pytest.raises(ServiceValidationError) as err:
        await terminate(hass, entity_id=leftover.entity_id)
    assert err.value.translation_key == "not_a_player"
    assert err.value.translation_placeholders == {"entity_id": leftover.entity_id}
    assert not any(p == "/status/sessions/terminate" for _m, p, _q in simulator.requests[before:])
