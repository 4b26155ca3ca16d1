"""The server's notification websocket (`/:/websockets/notifications`).

Reconnects by itself with a short back-off (at most RETRY_MAX seconds, so a returning server
is picked up quickly) and reports every connect/disconnect once through `on_state`, so the caller
decides what to log. The token travels in the URL Plex requires; it is never logged here.
"""

import asyncio
from collections.abc import Callable
import contextlib
import json
import logging
from typing import Any, Final

import aiohttp

from .api import plex_headers
from .errors import PlexAuthError

_LOGGER = logging.getLogger(__name__)

RETRY_DELAYS: Final = (1.0, 2.0, 5.0, 10.0)
RETRY_MAX: Final = 15.0
HEARTBEAT: Final = 15.0

type NotificationCallback = Callable[[str, dict[str, Any]], None]
type StateCallback = Callable[[bool, Exception | None], None]


class NotificationListener:
    """Listen to one server's notifications until stopped."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        on_notification: NotificationCallback,
        on_state: StateCallback,
        *,
        verify_ssl: bool = True,
        client_identifier: str = "plexus",
    ) -> None:
        """Prepare the listener; `start` opens the connection."""
        self._session = session
        self._ws_url = url.rstrip("/").replace("http", "ws", 1) + "/:/websockets/notifications"
        self._token = token
        self._on_notification = on_notification
        self._on_state = on_state
        self._verify_ssl = verify_ssl
        self._client_identifier = client_identifier
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.messages = 0
        self.bad_messages = 0
        self.handler_failures = 0

    def start(self) -> asyncio.Task[None]:
        """Start listening in a background task."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="plexus websocket"
            )
        return self._task

    async def stop(self) -> None:
        """Stop listening and wait for the task to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_state(connected=False, error=None)

    def _set_state(self, *, connected: bool, error: Exception | None) -> None:
        if connected != self.connected:
            self.connected = connected
            self._on_state(connected, error)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
                failures = 0
                error: Exception | None = None
            except PlexAuthError as err:
                # Raised by the handshake, so never while connected: report the rejected token
                # even though the state does not change.
                error = err
                self._on_state(False, err)
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                error = err
            self._set_state(connected=False, error=error)
            delay = RETRY_DELAYS[failures] if failures < len(RETRY_DELAYS) else RETRY_MAX
            failures += 1
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        try:
            ws = await self._session.ws_connect(
                self._ws_url,
                # The token goes in a header only (as Tautulli does): a URL ends up in logs.
                headers=plex_headers(self._client_identifier, self._token),
                heartbeat=HEARTBEAT,
                ssl=self._verify_ssl,
            )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise PlexAuthError("the server rejected the token") from err
            raise
        async with ws:
            self._set_state(connected=True, error=None)
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._dispatch(message.data)
                elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break

    def _dispatch(self, data: str) -> None:
        """Hand one notification to the callback; malformed ones are counted and dropped."""
        try:
            container = json.loads(data)["NotificationContainer"]
            kind = container["type"]
            if not isinstance(kind, str):
                raise TypeError("type is not a string")  # noqa: TRY301
        except (ValueError, KeyError, TypeError) as err:
            self.bad_messages += 1
            _LOGGER.debug("Ignoring a malformed notification (%s)", type(err).__name__)
            return
        self.messages += 1
        try:
            self._on_notification(kind, container)
        except Exception:  # a handler's bug must not end the listener (and push) for good
            self.handler_failures += 1
            if self.handler_failures == 1:
                _LOGGER.exception("Handling a %s notification failed; listening on", kind)
