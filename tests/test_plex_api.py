"""PlexServerAPI's TLS errors: plain HTTP behind an https:// URL vs certificate or handshake."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import ClientSession
import pytest

from custom_components.plexus.plex import (
    PlexConnectionError,
    PlexNotHTTPSError,
    PlexServerAPI,
    PlexSSLError,
)
from tests.plex_simulator import PlexSimulator
from tests.tls import https_front

# A TLS alert record: fatal (2), handshake_failure (40), as a server refusing every cipher sends.
HANDSHAKE_FAILURE_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"


async def test_https_to_a_plain_http_port_is_not_https(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    """https:// to the simulator's plain-HTTP port: the port does not speak TLS at all."""
    api = PlexServerAPI(session, simulator.url.replace("http://", "https://"), simulator.token)
    with pytest.raises(PlexNotHTTPSError, match="plain HTTP"):
        await api.server_info()
    # Still an SSL (and connection) error for callers that only know those.
    assert issubclass(PlexNotHTTPSError, PlexSSLError)


async def test_self_signed_certificate_is_a_certificate_error(
    simulator: PlexSimulator, session: ClientSession, tmp_path: Path
) -> None:
    """A real HTTPS server with a self-signed certificate: rejected unless verification is off."""
    async with https_front(simulator, tmp_path) as url:
        api = PlexServerAPI(session, url, simulator.token)
        with pytest.raises(PlexSSLError, match="certificate rejected") as caught:
            await api.server_info()
        assert not isinstance(caught.value, PlexNotHTTPSError)
        unverified = PlexServerAPI(session, url, simulator.token, verify_ssl=False)
        info = await unverified.server_info()
    assert info.machine_identifier == simulator.machine_identifier


@pytest.fixture
async def alerting_server(socket_enabled: None) -> AsyncIterator[str]:
    """A TCP server that answers every TLS hello with a handshake_failure alert."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(HANDSHAKE_FAILURE_ALERT)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_failed_handshake_is_an_ssl_error_not_plain_http(
    alerting_server: str, session: ClientSession
) -> None:
    """A TLS server that refuses the handshake is a TLS problem, not 'no HTTPS on this port'."""
    api = PlexServerAPI(session, alerting_server, "token")
    with pytest.raises(PlexSSLError, match="TLS failed") as caught:
        await api.server_info()
    assert not isinstance(caught.value, PlexNotHTTPSError)


async def test_request_after_the_session_closed_is_a_connection_error(
    simulator: PlexSimulator,
) -> None:
    """While HA stops it closes its shared session; a refresh still under way then fails like an
    unreachable server (handled, logged once) instead of aiohttp's RuntimeError in the log."""
    session = ClientSession()
    api = PlexServerAPI(session, simulator.url, simulator.token)
    assert (await api.server_info()).machine_identifier == simulator.machine_identifier
    await session.close()
    with pytest.raises(PlexConnectionError, match="session is closed"):
        await api.server_info()
