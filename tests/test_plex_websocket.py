"""The notification listener: dispatch, malformed messages, 401, reconnect after an outage."""

import asyncio
from collections.abc import AsyncIterator
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.plexus.plex import websocket as ws_module
from custom_components.plexus.plex.errors import PlexAuthError
from custom_components.plexus.plex.websocket import NotificationListener
from tests.conftest import wait_until

pytestmark = pytest.mark.usefixtures("socket_enabled")


class FakeServer:
    """A websocket endpoint that sends what the test queues."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.token = "tok"
        self.connections = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, request: web.Request) -> web.StreamResponse:
        # The listener must send its token as a header, never in the URL (URLs get logged).
        if "X-Plex-Token" in request.query:
            raise web.HTTPBadRequest(text="token in the URL")
        if request.headers.get("X-Plex-Token") != self.token:
            raise web.HTTPUnauthorized
        self.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        receiver = asyncio.ensure_future(ws.receive())  # ends when the client goes away
        while not ws.closed:
            getter = asyncio.ensure_future(self.outbox.get())
            await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            message = getter.result()
            if message == "CLOSE":
                await ws.close()
                break
            if message.startswith("BYTES:"):
                await ws.send_bytes(message.removeprefix("BYTES:").encode())
                continue
            await ws.send_str(message)
        receiver.cancel()
        return ws

    async def route(self, request: web.Request) -> web.StreamResponse:
        """Look the handler up per request, so a test can swap it."""
        return await self.handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/:/websockets/notifications", self.route)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    srv = FakeServer()
    await srv.start()
    yield srv
    assert srv.runner is not None
    await srv.runner.cleanup()


async def test_dispatch_and_malformed(server: FakeServer) -> None:
    """Good notifications reach the callback; broken ones are counted and dropped."""
    got: list[tuple[str, dict[str, Any]]] = []
    states: list[bool] = []
    async with aiohttp.ClientSession() as session:
        listener = NotificationListener(
            session,
            server.url,
            "tok",
            lambda k, c: got.append((k, c)),
            lambda connected, _err: states.append(connected),
        )
        listener.start()
        await wait_until(lambda: listener.connected)
        for bad in ("not json", "[]", '{"x": 1}', '{"NotificationContainer": {"type": 5}}'):
            await server.outbox.put(bad)
        good = {"NotificationContainer": {"type": "playing", "size": 1}}
        await server.outbox.put(json.dumps(good))
        await wait_until(lambda: got)
        assert got == [("playing", good["NotificationContainer"])]
        assert listener.bad_messages == 4
        assert listener.messages == 1
        await listener.stop()
    assert states == [True, False]


async def test_reconnects_after_close(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped connection is re-opened by itself."""
    monkeypatch.setattr(ws_module, "RETRY_DELAYS", (0.01,))
    async with aiohttp.ClientSession() as session:
        states: list[bool] = []
        listener = NotificationListener(
            session, server.url, "tok", lambda k, c: None, lambda c, _e: states.append(c)
        )
        listener.start()
        await wait_until(lambda: listener.connected)
        await server.outbox.put("CLOSE")
        await wait_until(lambda: server.connections == 2 and listener.connected)
        await listener.stop()
    assert states == [True, False, True, False]


async def test_wrong_token_reports_auth_error(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 handshake is reported as PlexAuthError (and retried later, not hammered)."""
    monkeypatch.setattr(ws_module, "RETRY_DELAYS", (0.01,))
    monkeypatch.setattr(ws_module, "RETRY_MAX", 0.01)
    errors: list[Exception | None] = []
    async with aiohttp.ClientSession() as session:
        listener = NotificationListener(
            session, server.url, "wrong", lambda k, c: None, lambda c, e: errors.append(e)
        )
        # Record failures through the state callback even though "connected" never changes.
        original = listener._set_state

        def spy(*, connected: bool, error: Exception | None) -> None:
            errors.append(error)
            original(connected=connected, error=error)

        listener._set_state = spy  # type: ignore[method-assign]
        listener.start()
        await wait_until(lambda: len(errors) >= 2)
        await listener.stop()
    assert isinstance(errors[0], PlexAuthError)
    assert server.connections == 0


async def test_binary_frames_ignored_and_an_unreadable_frame_reconnects(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binary frames are not notifications; a frame the client cannot take (larger than it
    accepts) ends the connection, which is opened again; nothing reaches the callback twice."""
    monkeypatch.setattr(ws_module, "RETRY_DELAYS", (0.01,))
    got: list[str] = []
    states: list[tuple[bool, Exception | None]] = []
    async with aiohttp.ClientSession() as session:
        listener = NotificationListener(
            session,
            server.url,
            "tok",
            lambda kind, _c: got.append(kind),
            lambda connected, err: states.append((connected, err)),
        )
        task = listener.start()
        assert listener.start() is task  # already listening: the same task
        await wait_until(lambda: listener.connected)
        await server.outbox.put('BYTES:{"NotificationContainer": {"type": "playing"}}')
        await server.outbox.put(json.dumps({"NotificationContainer": {"type": "timeline"}}))
        await wait_until(lambda: got == ["timeline"])
        assert listener.bad_messages == 0
        await server.outbox.put("x" * (5 * 1024 * 1024))
        await wait_until(lambda: server.connections == 2 and listener.connected)
        await listener.stop()
    assert got == ["timeline"]
    assert [connected for connected, _ in states] == [True, False, True, False]


async def test_server_error_on_handshake_is_retried(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handshake refused with 500 (a restarting server) is retried; no bad-token report."""
    monkeypatch.setattr(ws_module, "RETRY_DELAYS", (0.01,))
    monkeypatch.setattr(ws_module, "RETRY_MAX", 0.01)
    refusals = 0
    original = server.handler

    async def flaky(request: web.Request) -> web.StreamResponse:
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            raise web.HTTPInternalServerError
        return await original(request)

    server.handler = flaky  # type: ignore[method-assign]
    errors: list[Exception | None] = []
    async with aiohttp.ClientSession() as session:
        listener = NotificationListener(
            session, server.url, "tok", lambda k, c: None, lambda c, e: errors.append(e)
        )
        await listener.stop()  # never started: nothing to stop, still reported disconnected
        assert listener.connected is False
        listener.start()
        await wait_until(lambda: listener.connected)
        await listener.stop()
    assert refusals == 2
    # No "bad token" report on the way: only connected and the stop.
    assert errors == [None, None]


async def test_a_handler_that_raises_does_not_end_the_listener(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The notification callback raises (TypeError, as a `playing` entry whose state was a list
    did in the server-state model). Before: the error ended the listener's task for good — no
    more push, `connected` left True, the error never retrieved. Now: logged once with its
    traceback, counted, and the next notifications still arrive."""
    got: list[str] = []

    def handler(kind: str, container: dict[str, Any]) -> None:
        if container.get("bad"):
            raise TypeError("unhashable type: 'list'")
        got.append(kind)

    async with aiohttp.ClientSession() as session:
        listener = NotificationListener(session, server.url, "tok", handler, lambda _c, _e: None)
        task = listener.start()
        await wait_until(lambda: listener.connected)
        for _ in range(2):
            await server.outbox.put(json.dumps({"NotificationContainer": {"type": "x", "bad": 1}}))
        await server.outbox.put(json.dumps({"NotificationContainer": {"type": "playing"}}))
        await wait_until(lambda: got or task.done())
        assert not task.done()
        assert got == ["playing"]
        assert listener.handler_failures == 2
        assert listener.connected
        await listener.stop()
    logged = [r for r in caplog.records if "notification failed" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
