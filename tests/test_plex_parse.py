"""Our own parsing of Plex responses, checked against real recorded responses."""

from pathlib import Path

import pytest

from custom_components.plexus.plex.errors import PlexResponseError
from custom_components.plexus.plex.parse import (
    parse_accounts,
    parse_clients,
    parse_sections,
    parse_server_info,
    parse_sessions,
    to_int,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ha-core"


def fixture(file_name: str, **fill: str) -> str:
    text = (FIXTURES / file_name).read_text()
    return text.format(**fill) if fill else text


def test_server_root() -> None:
    info = parse_server_info(
        fixture("plex_server_base.xml", name="Plex Server 1", machine_identifier="unique_id_123")
    )
    assert info.machine_identifier == "unique_id_123"
    assert info.friendly_name == "Plex Server 1"
    assert info.version.startswith("1.")
    assert info.platform == "Linux"


def test_clients() -> None:
    clients = parse_clients(fixture("plex_server_clients.xml"))
    assert len(clients) == 1
    client = clients[0]
    assert client.machine_identifier == "1234567890123456-com-plexapp-android"
    assert client.name == "SHIELD Android TV"
    assert client.product == "Plex for Android (TV)"
    assert client.port == 32500
    assert "playback" in client.protocol_capabilities
    assert "timeline" in client.protocol_capabilities


def test_sessions_transcode_and_user() -> None:
    sessions = parse_sessions(fixture("session_base.xml", user_id="1"))
    assert len(sessions) == 1
    session = sessions[0]
    assert session.user == "User 1"
    assert session.user_id == "1"
    assert session.player_identifier == "1234567890123456-com-plexapp-android"
    assert session.state == "playing"
    assert session.media_type == "movie"
    assert session.title == "Movie 1"
    assert session.duration_ms == 9000000
    assert session.decision == "transcode"
    assert session.bandwidth_kbps == 7000
    assert session.location == "lan"
    assert session.season is None


@pytest.mark.parametrize("name", ["session_transient.xml", "session_unknown.xml"])
def test_other_recorded_sessions_parse(name: str) -> None:
    sessions = parse_sessions(fixture(name))
    assert sessions
    assert all(s.player_identifier and s.rating_key for s in sessions)


def test_sections_with_locations() -> None:
    sections = parse_sections(fixture("library_sections.xml"))
    assert [(s.key, s.type, s.title) for s in sections] == [
        ("1", "movie", "Movies"),
        ("2", "show", "TV Shows"),
        ("3", "artist", "Music"),
    ]
    assert sections[0].locations == ("/storage/movies",)
    assert sections[0].updated_at == 1602461679


def test_accounts_skip_nameless() -> None:
    assert parse_accounts(fixture("plex_server_accounts.xml")) == [
        "User 1",
        "User 1000",
        "User 1001",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>401 Unauthorized</body></html>", "expected <MediaContainer>"),
        (b"not xml at all", "not an XML document"),
        (b"", "not an XML document"),
        (b"<MediaContainer size='0'/>", "machineIdentifier"),
    ],
)
def test_bad_bodies_raise_clear_errors(body: bytes, message: str) -> None:
    """What is not a Plex answer raises PlexResponseError saying why."""
    with pytest.raises(PlexResponseError, match=message):
        parse_server_info(body)


def test_to_int() -> None:
    assert to_int("12") == 12
    assert to_int("12.7") == 12
    assert to_int("") is None
    assert to_int(None) is None
    assert to_int("abc") is None


def test_session_without_transcode_session_takes_stream_decisions() -> None:
    """A real session with no <TranscodeSession> (recorded): the Part and Streams carry the
    decisions; video is copied while audio is transcoded, so "transcoding because of audio"
    shows."""
    session = parse_sessions(fixture("session_base.xml"))[0]
    assert session.video_decision == "copy"
    assert session.audio_decision == "transcode"
    assert session.decision == "transcode"


def test_transcode_session_decisions_win() -> None:
    body = (
        '<MediaContainer size="1"><Video type="movie" ratingKey="1" sessionKey="9" title="X">'
        '<Media><Part decision="directplay"><Stream streamType="1" decision="directplay"/></Part>'
        '</Media><Player machineIdentifier="p" state="playing"/>'
        '<TranscodeSession videoDecision="transcode" audioDecision="copy"/></Video>'
        "</MediaContainer>"
    )
    session = parse_sessions(body)[0]
    assert (session.video_decision, session.audio_decision) == ("transcode", "copy")
    assert session.decision == "transcode"


def _session_body(
    media: str, player: str = '<Player machineIdentifier="p" state="playing"/>'
) -> str:
    return (
        '<MediaContainer size="1"><Video type="movie" ratingKey="1" sessionKey="9" title="X">'
        f"<Media>{media}</Media>{player}</Video></MediaContainer>"
    )


def test_stream_decisions_without_a_part_decision() -> None:
    """Older servers put decisions only on the streams: a copied stream is "copy", the first
    stream of a kind counts, subtitles and streams without a decision are passed over."""
    copied = _session_body(
        '<Part><Stream streamType="3" decision="burn"/><Stream streamType="1"/>'
        '<Stream streamType="1" decision="copy"/><Stream streamType="1" decision="transcode"/>'
        '<Stream streamType="2" decision="directplay"/></Part>'
    )
    session = parse_sessions(copied)[0]
    assert (session.video_decision, session.audio_decision) == ("copy", "directplay")
    assert session.decision == "copy"

    # Nothing says anything (or nonsense): direct play, as Plex shows it.
    plain = _session_body('<Part decision="unknown"><Stream streamType="1"/></Part><Part/>')
    session = parse_sessions(plain)[0]
    assert (session.video_decision, session.audio_decision) == (None, None)
    assert session.decision == "directplay"


def test_sessions_without_a_player_are_skipped() -> None:
    """A session whose player the server no longer describes cannot be shown on any entity."""
    video = '<Video type="movie" ratingKey="1" sessionKey="{key}" title="X">{player}</Video>'
    body = (
        '<MediaContainer size="3">'
        + video.format(key="1", player="")
        + video.format(key="2", player='<Player title="Nameless"/>')
        + video.format(key="3", player='<Player machineIdentifier="p" state="paused"/>')
        + "</MediaContainer>"
    )
    sessions = parse_sessions(body)
    assert [(s.session_key, s.player_identifier) for s in sessions] == [("3", "p")]
