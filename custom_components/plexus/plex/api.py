"""Async HTTP access to one Plex Media Server."""

import asyncio
from collections.abc import Mapping
import ssl
from typing import Final

import aiohttp

from .errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexForbiddenError,
    PlexNotFoundError,
    PlexNotHTTPSError,
    PlexResponseError,
    PlexSSLError,
)
from .models import LibrarySection, PlexClientInfo, PlexSession, ServerInfo
from .parse import parse_accounts, parse_clients, parse_sections, parse_server_info, parse_sessions

DEFAULT_TIMEOUT: Final = 10.0
PRODUCT: Final = "Plexus"
# OpenSSL's reasons when a TLS client hello is answered with plain HTTP.
_PLAIN_HTTP_REASONS: Final = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
)


def _answered_in_plain_http(err: Exception) -> bool:
    """True when a TLS failure means the port speaks plain HTTP, not a certificate problem."""
    cause = getattr(err, "os_error", err)  # aiohttp wraps the ssl.SSLError
    return getattr(cause, "reason", None) in _PLAIN_HTTP_REASONS


def plex_headers(client_identifier: str, token: str | None = None) -> dict[str, str]:
    """Return the X-Plex-* headers every request carries."""
    headers = {
        "Accept": "application/xml",
        "X-Plex-Product": PRODUCT,
        "X-Plex-Client-Identifier": client_identifier,
        "X-Plex-Device-Name": "Home Assistant",
        "X-Plex-Platform": "Home Assistant",
    }
    if token:
        headers["X-Plex-Token"] = token
    return headers


class PlexServerAPI:
    """Talk to one Plex Media Server over HTTP; the session is owned by the caller."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        verify_ssl: bool = True,
        client_identifier: str = "plexus",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Remember how to reach the server."""
        self._session = session
        self.url = url.rstrip("/")
        self._token = token
        self.verify_ssl = verify_ssl
        self.client_identifier = client_identifier
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def token(self) -> str:
        """Return the token (never log it)."""
        return self._token

    async def request(
        self,
        path: str,
        *,
        method: str = "GET",
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send a request and return the body; map every failure to a PlexError."""
        if self._session.closed:
            # Home Assistant closes its shared session while stopping; a refresh still on its
            # way then fails like an unreachable server, not with aiohttp's RuntimeError.
            raise PlexConnectionError(f"{method} {path}: the HTTP session is closed (stopping)")
        all_headers = plex_headers(self.client_identifier, self._token)
        if headers:
            all_headers.update(headers)
        try:
            async with self._session.request(
                method,
                f"{self.url}{path}",
                params=params,
                headers=all_headers,
                ssl=self.verify_ssl,
                timeout=self._timeout,
            ) as resp:
                if resp.status == 401:
                    raise PlexAuthError(f"{method} {path}: the server rejected the token")
                if resp.status == 403:
                    raise PlexForbiddenError(f"{method} {path}: refused (HTTP 403)")
                if resp.status == 404:
                    raise PlexNotFoundError(f"{method} {path}: not found")
                if resp.status >= 400:
                    # (with the reason phrase: "HTTP 400 Bad Request" says who is at fault)
                    reason = (resp.reason or "").strip()[:60]
                    raise PlexConnectionError(
                        f"{method} {path}: HTTP {resp.status}{' ' + reason if reason else ''}"
                    )
                return await resp.read()
        except aiohttp.ClientConnectorCertificateError as err:
            raise PlexSSLError(f"certificate rejected: {err.certificate_error}") from err
        except (aiohttp.ClientSSLError, ssl.SSLError) as err:
            if _answered_in_plain_http(err):
                raise PlexNotHTTPSError("TLS failed: the port answers in plain HTTP") from err
            raise PlexSSLError(f"TLS failed: {err}") from err
        except TimeoutError as err:
            raise PlexConnectionError(f"{method} {path}: timed out") from err
        except (aiohttp.ClientError, OSError) as err:
            raise PlexConnectionError(f"{method} {path}: {type(err).__name__}") from err

    async def server_info(self) -> ServerInfo:
        """Return what the server says about itself."""
        return parse_server_info(await self.request("/"))

    async def clients(self) -> list[PlexClientInfo]:
        """Return the clients the server currently lists."""
        return parse_clients(await self.request("/clients"))

    async def sessions(self) -> list[PlexSession]:
        """Return the active playback sessions."""
        return parse_sessions(await self.request("/status/sessions"))

    async def sections(self) -> list[LibrarySection]:
        """Return the library sections."""
        return parse_sections(await self.request("/library/sections"))

    async def accounts(self) -> list[str]:
        """Return the names of the server's user accounts."""
        return parse_accounts(await self.request("/accounts"))

    async def refresh_section(self, section_key: str) -> None:
        """Ask the server to scan one library section."""
        await self.request(f"/library/sections/{section_key}/refresh")


async def first_reachable(
    session: aiohttp.ClientSession,
    uris: list[str],
    token: str,
    *,
    verify_ssl: bool = True,
    client_identifier: str = "plexus",
    request_timeout: float = 5.0,
) -> tuple[str, ServerInfo]:
    """Try the URIs in order and return the first that answers with its server info."""
    last_error: Exception = PlexConnectionError("the server lists no connection")
    for uri in uris:
        api = PlexServerAPI(
            session,
            uri,
            token,
            verify_ssl=verify_ssl,
            client_identifier=client_identifier,
            timeout=request_timeout,
        )
        try:
            return uri, await api.server_info()
        except PlexAuthError:
            raise
        except (PlexConnectionError, PlexResponseError) as err:
            last_error = err
        await asyncio.sleep(0)
    raise last_error
