"""plex.tv over HTTP: the headers, the JSON answers and the errors every plex.tv call shares.

plex.tv's v2 API answers in JSON when asked with `Accept: application/json`. The account token
travels in the `X-Plex-Token` header, never in a URL (URLs end up in proxies' and servers' logs),
and no error message or log line carries it: messages name the method and path only.

The base URL is a parameter (tests point it at a fake plex.tv); `None` means `PLEX_TV_URL`, read
when the client is made.
"""

from collections.abc import Mapping
import json
import logging
from typing import Any, Final

import aiohttp

from .api import PRODUCT
from .errors import PlexAuthError, PlexConnectionError, PlexNotFoundError

PLEX_TV_URL: Final = "https://plex.tv"
DEFAULT_TIMEOUT: Final = 15.0

_LOGGER = logging.getLogger(__name__)


class PlexTv:
    """Send requests to plex.tv as one client (its identifier) over a session the caller owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        client_identifier: str,
        *,
        base_url: str | None = None,
        product: str = PRODUCT,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Remember the session, who is asking and where plex.tv is."""
        self._session = session
        self.client_identifier = client_identifier
        self.base_url = (base_url or PLEX_TV_URL).rstrip("/")
        self.product = product
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def headers(self, token: str | None = None) -> dict[str, str]:
        """The headers of every request (the token only when one is given)."""
        headers = {
            "Accept": "application/json",
            "X-Plex-Product": self.product,
            "X-Plex-Client-Identifier": self.client_identifier,
            "X-Plex-Device-Name": "Home Assistant",
            "X-Plex-Platform": "Home Assistant",
        }
        if token:
            headers["X-Plex-Token"] = token
        return headers

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; return the parsed JSON answer or raise a PlexError.

        401 -> PlexAuthError, 404 -> PlexNotFoundError; other HTTP errors, network failures,
        time-outs and answers that are not JSON -> PlexConnectionError.
        """
        what = f"plex.tv {method} {path}"
        _LOGGER.debug("%s", what)
        try:
            async with self._session.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                headers=self.headers(token),
                timeout=self._timeout,
            ) as resp:
                if resp.status == 401:
                    raise PlexAuthError(f"{what}: plex.tv rejected the token (HTTP 401)")
                if resp.status == 404:
                    raise PlexNotFoundError(f"{what}: not found (HTTP 404)")
                if resp.status >= 400:
                    raise PlexConnectionError(f"{what}: plex.tv answered HTTP {resp.status}")
                body = await resp.read()
        except TimeoutError as err:
            raise PlexConnectionError(f"{what}: plex.tv did not answer in time") from err
        except (aiohttp.ClientError, OSError) as err:
            raise PlexConnectionError(
                f"{what}: plex.tv could not be reached ({type(err).__name__})"
            ) from err
        try:
            return json.loads(body)
        except ValueError as err:  # UnicodeDecodeError is a ValueError too
            raise PlexConnectionError(f"{what}: plex.tv's answer is not JSON") from err
