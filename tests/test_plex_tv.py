"""plex.tv engine (plex/plextv.py, plex/pin.py, plex/account.py) against the fake plex.tv.

No Home Assistant here: a plain aiohttp session, as the engines get it from the glue.
"""

import asyncio
from collections.abc import AsyncIterator
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientSession
import pytest

from custom_components.plexus.plex.account import account_players, account_servers
from custom_components.plexus.plex.errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexNotFoundError,
)
from custom_components.plexus.plex.models import ServerConnection
from custom_components.plexus.plex.pin import (
    PlexPin,
    auth_url,
    create_pin,
    pin_token,
    wait_for_token,
)
from custom_components.plexus.plex.plextv import PLEX_TV_URL, PlexTv
from tests.conftest import wait_until
from tests.plex_simulator import PlexTvSimulator

TOKEN = "plex-tv-token"


@pytest.fixture
async def fake(socket_enabled: None) -> AsyncIterator[PlexTvSimulator]:
    async with PlexTvSimulator(token=TOKEN) as plex_tv:
        yield plex_tv


@pytest.fixture
def tv(session: ClientSession, fake: PlexTvSimulator) -> PlexTv:
    return PlexTv(session, "client-1", base_url=fake.url, timeout=2)


def test_base_url_defaults_to_plex_tv(session: ClientSession) -> None:
    assert PLEX_TV_URL == "https://plex.tv"
    assert PlexTv(session, "c").base_url == "https://plex.tv"
    assert PlexTv(session, "c", base_url="http://127.0.0.1:1/").base_url == "http://127.0.0.1:1"


# --------------------------------------------------------------------------- PIN


async def test_pin_sign_in(tv: PlexTv, fake: PlexTvSimulator) -> None:
    """A strong PIN, an auth URL with its code and our id, the token once approved."""
    pin = await create_pin(tv)
    made = fake.pins[pin.id]
    assert pin.code == made.code
    assert len(pin.code) == 25  # strong
    assert made.client_identifier == "client-1"
    assert made.product == "Plexus"
    url = urlsplit(auth_url(tv, pin))
    assert (url.scheme, url.netloc, url.path) == ("https", "app.plex.tv", "/auth")
    assert parse_qs(url.fragment.removeprefix("?")) == {
        "clientID": ["client-1"],
        "code": [pin.code],
        "context[device][product]": ["Plexus"],
    }
    assert await pin_token(tv, pin) is None
    fake.approve()
    assert await pin_token(tv, pin) == TOKEN
    assert TOKEN not in auth_url(tv, pin)


async def test_pin_polled_by_another_client_is_not_found(
    session: ClientSession, tv: PlexTv, fake: PlexTvSimulator
) -> None:
    """plex.tv gives a PIN's token only to the client that made it."""
    pin = await create_pin(tv)
    fake.approve()
    other = PlexTv(session, "client-2", base_url=fake.url)
    with pytest.raises(PlexNotFoundError):
        await pin_token(other, pin)


async def test_wait_for_token_rides_out_failed_polls(tv: PlexTv, fake: PlexTvSimulator) -> None:
    """Polls that fail (5xx, garbage) are retried; the approved token then comes through."""
    pin = await create_pin(tv)
    fake.set_error(502)
    fake.approve_after = 1
    task = asyncio.create_task(wait_for_token(tv, pin, give_up_after=5, interval=0.01))
    await wait_until(lambda: len(fake.requests) >= 3)
    fake.set_error(None)
    fake.set_answer(f"/api/v2/pins/{pin.id}", b"not json")
    await wait_until(lambda: len(fake.requests) >= 5)
    fake.set_answer(f"/api/v2/pins/{pin.id}", None)
    assert await task == TOKEN


async def test_wait_for_token_gives_up_in_time(tv: PlexTv, fake: PlexTvSimulator) -> None:
    """Never approved: None after the time given, also when plex.tv hangs mid-request."""
    pin = await create_pin(tv)
    started = time.monotonic()
    assert await wait_for_token(tv, pin, give_up_after=0.2, interval=0.02) is None
    assert 0.2 <= time.monotonic() - started < 1.5
    fake.set_slow(10)  # a request in flight when time runs out is cut off
    started = time.monotonic()
    assert await wait_for_token(tv, pin, give_up_after=0.2, interval=0.01) is None
    assert time.monotonic() - started < 1.5


async def test_wait_for_token_stops_when_the_pin_expires(tv: PlexTv, fake: PlexTvSimulator) -> None:
    pin = await create_pin(tv)
    fake.expire()
    started = time.monotonic()
    assert await wait_for_token(tv, pin, give_up_after=60, interval=0.01) is None
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>proxy</html>", "plex.tv's answer is not JSON"),
        (b'{"code": "abc"}', "plex.tv's PIN answer has no PIN id and code"),
        (b'{"id": true, "code": "abc"}', "plex.tv's PIN answer has no PIN id and code"),
        (b'{"id": 1, "code": ""}', "plex.tv's PIN answer has no PIN id and code"),
        (b"[]", "plex.tv's PIN answer has no PIN id and code"),
    ],
)
async def test_create_pin_garbage(
    tv: PlexTv, fake: PlexTvSimulator, body: bytes, message: str
) -> None:
    fake.set_answer("/api/v2/pins", body, "application/json")
    with pytest.raises(PlexConnectionError, match=message):
        await create_pin(tv)


async def test_pin_answer_not_an_object(tv: PlexTv, fake: PlexTvSimulator) -> None:
    fake.set_answer("/api/v2/pins/7", b"[1, 2]", "application/json")
    with pytest.raises(PlexConnectionError, match="not an object"):
        await pin_token(tv, PlexPin(7, "x"))


# --------------------------------------------------------------------------- resources


async def test_servers_and_players_from_the_recorded_account(
    tv: PlexTv, fake: PlexTvSimulator
) -> None:
    """The recorded account: one server, three players of which one is online."""
    (server,) = await account_servers(tv, TOKEN)
    assert server.name == "Plex Server 1"
    assert server.client_identifier == "unique_id_123"
    assert server.access_token == "faketoken"
    assert server.owned
    assert server.connections == (
        ServerConnection("https://1-2-3-4.123456789001234567890.plex.direct:32400", True, False),
    )
    players = await account_players(tv, TOKEN)
    assert [(p.machine_identifier, p.name, p.product, p.platform, p.version) for p in players] == [
        ("client_id", "Plex HTPC", "Plex HTPC for Mac", "osx", "1.33.2.3525-140e01eb")
    ]
    for request in fake.requests:
        assert request.path_qs == "/api/v2/resources?includeHttps=1&includeRelay=1"
        assert request.headers["X-Plex-Token"] == TOKEN
        assert request.headers["Accept"] == "application/json"
        assert request.headers["X-Plex-Client-Identifier"] == "client-1"
        assert request.headers["X-Plex-Product"] == "Plexus"
        assert TOKEN not in request.path_qs


async def test_connections_local_then_remote_then_relay(tv: PlexTv, fake: PlexTvSimulator) -> None:
    fake.clear_resources()
    fake.add_server("S", "s-1", "https://relay.plex.direct:8443", local=False, relay=True)
    fake.add_connection("s-1", "https://remote.example:32400", local=False)
    fake.add_connection("s-1", "http://192.168.1.10:32400", local=True)
    (server,) = await account_servers(tv, TOKEN)
    assert [c.uri for c in server.connections] == [
        "http://192.168.1.10:32400",
        "https://remote.example:32400",
        "https://relay.plex.direct:8443",
    ]
    assert server.access_token == "sim-token"


async def test_shared_server_without_its_own_token_uses_the_account_token(
    tv: PlexTv, fake: PlexTvSimulator
) -> None:
    fake.clear_resources()
    fake.add_server("Friend", "f-1", "http://10.0.0.2:32400", access_token="", owned=False)
    (server,) = await account_servers(tv, TOKEN)
    assert server.access_token == TOKEN
    assert not server.owned


async def test_malformed_resources_are_skipped(tv: PlexTv, fake: PlexTvSimulator) -> None:
    """One odd entry does not hide the others."""
    resources = [
        "not an object",
        {"name": "no id", "provides": "server"},
        {"clientIdentifier": "s-2", "provides": "server", "connections": "nope"},
        {
            "clientIdentifier": "s-3",
            "name": "Good",
            "provides": "server",
            "owned": 1,
            "accessToken": "t3",
            "connections": [{"uri": ""}, 5, {"uri": "http://h:1", "local": "1"}],
        },
        {"clientIdentifier": "p-1", "provides": "player", "presence": "1"},
        {"clientIdentifier": "p-2", "provides": None, "presence": True},
    ]
    fake.set_answer("/api/v2/resources", json.dumps(resources).encode(), "application/json")
    servers = await account_servers(tv, TOKEN)
    assert [(s.client_identifier, s.name, s.owned, s.connections) for s in servers] == [
        ("s-2", "s-2", False, ()),
        ("s-3", "Good", True, (ServerConnection("http://h:1", True, False),)),
    ]
    assert [p.machine_identifier for p in await account_players(tv, TOKEN)] == ["p-1"]


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("401", PlexAuthError, "plex.tv rejected the token \\(HTTP 401\\)"),
        ("500", PlexConnectionError, "plex.tv answered HTTP 500"),
        ("404", PlexNotFoundError, "not found"),
        ("garbage", PlexConnectionError, "plex.tv's answer is not JSON"),
        ("object", PlexConnectionError, "plex.tv's resources answer is not a list"),
        ("down", PlexConnectionError, "plex.tv could not be reached \\(ClientConnectorError\\)"),
        ("slow", PlexConnectionError, "plex.tv did not answer in time"),
    ],
)
async def test_resources_errors(
    session: ClientSession,
    fake: PlexTvSimulator,
    caplog: pytest.LogCaptureFixture,
    *,
    fault: str,
    error: type[Exception],
    message: str,
) -> None:
    """Each failure is the right error with a clear message; the token is in none of them."""
    caplog.set_level(logging.DEBUG)
    tv = PlexTv(session, "client-1", base_url=fake.url, timeout=0.3)
    token = TOKEN
    if fault == "401":
        token = "a-wrong-token"
    elif fault in ("500", "404"):
        fake.set_error(int(fault))
    elif fault == "garbage":
        fake.set_answer("/api/v2/resources", b"\xff\xfe<html>", "text/html")
    elif fault == "object":
        fake.set_answer("/api/v2/resources", b'{"errors": []}', "application/json")
    elif fault == "down":
        await fake.stop()
    else:
        fake.set_slow(5)
    with pytest.raises(error, match=message) as raised:
        await account_servers(tv, token)
    assert "plex.tv GET /api/v2/resources" in str(raised.value)
    assert token not in str(raised.value)
    assert token not in caplog.text
    assert not [r for r in fake.requests if token in r.path_qs]
