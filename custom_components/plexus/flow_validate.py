"""Validators of the config, options and subentry flows: URL form, server check, catalog, groups.

Each returns what the flow needs to either go on (clean data) or show the form again (a dict of
form errors keyed by field, or `base`). No flow state lives here.
"""

from __future__ import annotations

from ipaddress import ip_address
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import slugify

from .catalog import Catalog
from .catalog_manager import parse_path_mappings
from .const import (
    CONF_DB_URL,
    CONF_DRIFT_THRESHOLD,
    CONF_FOLLOW,
    CONF_GROUP_NAME,
    CONF_MEMBERS,
    CONF_PATH_MAPPINGS,
    CONF_READY_TIMEOUT,
    CONF_SECRET,
    CONF_TOPIC,
    CONF_WAIT_FOR_BUFFERING,
    DEFAULT_TOPIC_PREFIX,
    LOGGER,
)
from .plex import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexNotHTTPSError,
    PlexServerAPI,
    PlexSSLError,
    ServerInfo,
)
from .plex.parse import parse_server_info

# A host name: letters, digits, '-' and '_', in dot-separated labels (IP addresses apart).
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


class InvalidURLError(ValueError):
    """The text entered as server URL is not an http(s) URL with a host."""


def server_url(text: str) -> str:
    """Return the server URL the user meant: trimmed, `http://` added when no scheme is given.

    Raises InvalidURLError for anything but http or https with a host (and a valid port).
    """
    url = text.strip()
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as err:
        raise InvalidURLError(text) from err
    if parts.scheme not in ("http", "https") or not _valid_host(parts.hostname or ""):
        raise InvalidURLError(text)
    return url


def _valid_host(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return _HOST_NAME.fullmatch(host) is not None
    return True


def error_key(err: Exception) -> str:
    """Map an error from the Plex layer to a translation key of the form."""
    if isinstance(err, PlexAuthError):
        return "invalid_auth"
    if isinstance(err, PlexNotHTTPSError):
        return "not_https"
    if isinstance(err, PlexSSLError):
        return "ssl_error"
    if isinstance(err, PlexConnectionError):
        return "cannot_connect"
    return "unknown"


async def validate_server(
    hass: HomeAssistant, url: str, token: str, verify_ssl: bool, client_identifier: str
) -> tuple[ServerInfo | None, dict[str, str]]:
    """Connect to the server; return its info, or the form errors."""
    api = PlexServerAPI(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        url,
        token,
        verify_ssl=verify_ssl,
        client_identifier=client_identifier,
    )
    try:
        return await api.server_info(), {}
    except PlexError as err:
        return None, {"base": error_key(err)}
    except Exception:  # noqa: BLE001 - any surprise becomes "unknown", logged
        LOGGER.exception("Unexpected error while connecting to %s", urlsplit(url).hostname)
        return None, {"base": "unknown"}


async def discovered_identifier(
    hass: HomeAssistant, url: str, client_identifier: str
) -> str | None:
    """The machineIdentifier of the server at `url`, None if it does not say in a few seconds.

    A Plex server's `/identity` answers without a token.
    """
    api = PlexServerAPI(
        async_get_clientsession(hass), url, "", client_identifier=client_identifier, timeout=5
    )
    try:
        return parse_server_info(await api.request("/identity")).machine_identifier
    except PlexError as err:
        LOGGER.debug("The discovered server at %s did not say who it is: %s", url, err)
        return None


def moved_url(configured: str, host: str, port: int) -> str | None:
    """The entry's URL with the discovered address, or None when it should stay as it is.

    Only an address given as an IP changes (DHCP moves those); a host name (a DNS name, a
    plex.direct name whose certificate is checked) keeps pointing at the server by itself. The
    scheme stays (a server reached over https keeps https).
    """
    parts = urlsplit(configured)
    try:
        ip_address(parts.hostname or "")
    except ValueError:
        return None
    shown = f"[{host}]" if ":" in host else host
    url = f"{parts.scheme}://{shown}:{port}"
    return url if url != configured else None


async def validate_catalog(
    hass: HomeAssistant, user_input: dict[str, Any], current_db_url: str | None
) -> dict[str, str]:
    """Check the path mappings parse and a new database URL opens."""
    try:
        parse_path_mappings(user_input.get(CONF_PATH_MAPPINGS, ""))
    except ValueError:
        return {CONF_PATH_MAPPINGS: "invalid_path_mappings"}
    url = user_input.get(CONF_DB_URL)
    if url and url != current_db_url:
        try:
            catalog = await hass.async_add_executor_job(Catalog, url)
        except Exception:  # noqa: BLE001 - any failure to open means "cannot use this URL"
            LOGGER.debug("Catalog database URL rejected", exc_info=False)
            return {CONF_DB_URL: "invalid_db_url"}
        await hass.async_add_executor_job(catalog.close)
    return {}


def topic_for(name: str) -> str:
    """The default MQTT topic of a group."""
    return f"{DEFAULT_TOPIC_PREFIX}/{slugify(name) or 'group'}"


def valid_topic(topic: str) -> bool:
    """An MQTT topic to publish under: no wildcards, no empty levels, not too long."""
    return (
        0 < len(topic) <= 200
        and "+" not in topic
        and "#" not in topic
        and "" not in topic.split("/")
    )


def validate_group(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the group's data (secret generated when empty) and the form errors."""
    name = user_input[CONF_GROUP_NAME].strip()
    topic = (user_input.get(CONF_TOPIC) or topic_for(name)).strip().rstrip("/")
    secret = (user_input.get(CONF_SECRET) or "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors[CONF_GROUP_NAME] = "invalid_name"
    if not valid_topic(topic):
        errors[CONF_TOPIC] = "invalid_topic"
    if secret and len(secret) < 16:
        errors[CONF_SECRET] = "secret_too_short"
    data = {
        CONF_GROUP_NAME: name,
        CONF_TOPIC: topic,
        CONF_SECRET: secret or secrets.token_urlsafe(32),
        CONF_MEMBERS: list(user_input.get(CONF_MEMBERS, [])),
        CONF_DRIFT_THRESHOLD: user_input.get(CONF_DRIFT_THRESHOLD, 400),
        CONF_READY_TIMEOUT: user_input.get(CONF_READY_TIMEOUT, 10),
        CONF_WAIT_FOR_BUFFERING: user_input.get(CONF_WAIT_FOR_BUFFERING, True),
        CONF_FOLLOW: user_input.get(CONF_FOLLOW, False),
    }
    return data, errors
