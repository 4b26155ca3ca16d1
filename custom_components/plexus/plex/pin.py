"""plex.tv sign-in with a PIN: the user approves Plexus on plex.tv, Plexus polls for the token.

1. `create_pin`: POST /api/v2/pins?strong=true -> a PIN (`id`, and a long `code`).
2. `auth_url`: the page where the user signs in and approves. It carries the PIN's code and our
   client identifier (never a token); `context[device][product]` names Plexus on that page.
3. `wait_for_token`: GET /api/v2/pins/{id} until its `authToken` is set, the PIN expires (404)
   or the time is up. A failed poll (network, 5xx, garbage) is retried at the next interval.
The polls must come from the same client identifier that created the PIN.
"""

import asyncio
from dataclasses import dataclass
import logging
from typing import Any, Final
from urllib.parse import urlencode

from .errors import PlexConnectionError, PlexNotFoundError
from .plextv import PlexTv

PLEX_APP_AUTH_URL: Final = "https://app.plex.tv/auth"

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlexPin:
    """A PIN plex.tv made for this sign-in."""

    id: int
    code: str


def _pin(data: Any) -> PlexPin:
    """The PIN in plex.tv's answer, or PlexConnectionError for an answer without one."""
    if isinstance(data, dict):
        pin_id, code = data.get("id"), data.get("code")
        if type(pin_id) is int and isinstance(code, str) and code:  # a bool is no id
            return PlexPin(pin_id, code)
    raise PlexConnectionError("plex.tv's PIN answer has no PIN id and code")


async def create_pin(plex_tv: PlexTv) -> PlexPin:
    """Ask plex.tv for a new (strong) PIN."""
    return _pin(await plex_tv.request_json("POST", "/api/v2/pins", params={"strong": "true"}))


def auth_url(plex_tv: PlexTv, pin: PlexPin) -> str:
    """The plex.tv page where the user approves the PIN (no token in it)."""
    params = {
        "clientID": plex_tv.client_identifier,
        "code": pin.code,
        "context[device][product]": plex_tv.product,
    }
    return f"{PLEX_APP_AUTH_URL}#?{urlencode(params)}"


async def pin_token(plex_tv: PlexTv, pin: PlexPin) -> str | None:
    """The token once the user approved the PIN, None until then.

    Raises PlexNotFoundError when the PIN expired, other PlexErrors when plex.tv fails.
    """
    data = await plex_tv.request_json("GET", f"/api/v2/pins/{pin.id}")
    if not isinstance(data, dict):
        raise PlexConnectionError("plex.tv's PIN answer is not an object")
    token = data.get("authToken")
    return token if isinstance(token, str) and token else None


async def wait_for_token(
    plex_tv: PlexTv, pin: PlexPin, *, give_up_after: float, interval: float
) -> str | None:
    """Poll every `interval` seconds; the token, or None when the PIN expired or time ran out.

    A poll that fails with a connection problem (network, 5xx, an answer that is not JSON) is
    tried again at the next interval; a rejected request (401) is raised.
    """
    try:
        async with asyncio.timeout(give_up_after):
            while True:
                await asyncio.sleep(interval)
                try:
                    token = await pin_token(plex_tv, pin)
                except PlexNotFoundError:
                    _LOGGER.debug("The plex.tv PIN expired before it was approved")
                    return None
                except PlexConnectionError as err:
                    _LOGGER.debug("Polling the plex.tv PIN failed, trying again: %s", err)
                    continue
                if token:
                    return token
    except TimeoutError:
        _LOGGER.debug("The plex.tv PIN was not approved within %s s", give_up_after)
        return None
