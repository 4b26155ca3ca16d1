"""Form schemas of the config, options and subentry flows (no flow state, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .const import (
    CONF_AUTO_MAP_THRESHOLD,
    CONF_CROSS_SERVER,
    CONF_DB_URL,
    CONF_DRIFT_THRESHOLD,
    CONF_FOLLOW,
    CONF_FULL_HOURS,
    CONF_GROUP_NAME,
    CONF_IGNORED_CLIENTS,
    CONF_INCREMENTAL_MINUTES,
    CONF_MARK_WATCHED_IN_PLEX,
    CONF_MEMBERS,
    CONF_MONITORED_USERS,
    CONF_PATH_MAPPINGS,
    CONF_READY_TIMEOUT,
    CONF_SECRET,
    CONF_STALE_MINUTES,
    CONF_TOPIC,
    CONF_WAIT_FOR_BUFFERING,
    CONF_WATCHED_THRESHOLD,
    CONF_WEBHOOK_LOCAL_ONLY,
    DEFAULT_AUTO_MAP_THRESHOLD,
    DEFAULT_FULL_HOURS,
    DEFAULT_INCREMENTAL_MINUTES,
    DEFAULT_STALE_MINUTES,
    DEFAULT_WATCHED_THRESHOLD,
    DOMAIN,
)

CONF_SERVER = "server"
PASSWORD_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


def _number(minimum: int, maximum: int, unit: str, step: int = 1) -> vol.All[int]:
    """A whole number typed into a box, with its unit."""
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=minimum,
                max=maximum,
                step=step,
                mode=NumberSelectorMode.BOX,
                unit_of_measurement=unit,
            )
        ),
        vol.Coerce(int),
    )


def manual_schema() -> vol.Schema:
    """URL, token and certificate check of a server entered by hand."""
    return vol.Schema(
        {
            vol.Required(CONF_URL): URL_SELECTOR,
            vol.Required(CONF_TOKEN): PASSWORD_SELECTOR,
            vol.Required(CONF_VERIFY_SSL): bool,
        }
    )


def token_schema() -> vol.Schema:
    """A new token (reauth)."""
    return vol.Schema({vol.Required(CONF_TOKEN): PASSWORD_SELECTOR})


def reconfigure_schema() -> vol.Schema:
    """A new address of the same server."""
    return vol.Schema({vol.Required(CONF_URL): URL_SELECTOR, vol.Required(CONF_VERIFY_SSL): bool})


def select_server_schema(servers: Mapping[str, str]) -> vol.Schema:
    """One of the account's servers (id -> name)."""
    options = [SelectOptionDict(value=key, label=name) for key, name in servers.items()]
    return vol.Schema(
        {vol.Required(CONF_SERVER): SelectSelector(SelectSelectorConfig(options=options))}
    )


CATALOG_OPTIONS = {
    vol.Optional(CONF_INCREMENTAL_MINUTES, default=DEFAULT_INCREMENTAL_MINUTES): _number(
        5, 24 * 60, "min"
    ),
    vol.Optional(CONF_FULL_HOURS, default=DEFAULT_FULL_HOURS): _number(1, 24 * 30, "h"),
    vol.Optional(CONF_PATH_MAPPINGS, default=""): TextSelector(TextSelectorConfig(multiline=True)),
    vol.Optional(CONF_DB_URL): PASSWORD_SELECTOR,
}


# Watch tracking: thresholds in percent / as a fraction, switches.
TRACKING_OPTIONS = {
    vol.Optional(CONF_WATCHED_THRESHOLD, default=DEFAULT_WATCHED_THRESHOLD): _number(50, 100, "%"),
    vol.Optional(CONF_AUTO_MAP_THRESHOLD, default=DEFAULT_AUTO_MAP_THRESHOLD): vol.All(
        NumberSelector(
            NumberSelectorConfig(min=0.5, max=1.0, step=0.01, mode=NumberSelectorMode.BOX)
        ),
        vol.Coerce(float),
    ),
    vol.Optional(CONF_MARK_WATCHED_IN_PLEX, default=False): bool,
    vol.Optional(CONF_CROSS_SERVER, default=False): bool,
    vol.Optional(CONF_WEBHOOK_LOCAL_ONLY, default=True): bool,
}


def options_schema(clients: Mapping[str, str], users: Iterable[str]) -> vol.Schema:
    """Players (clients id -> label to ignore, users to monitor, stale time) and the catalog."""
    return vol.Schema(
        {
            vol.Optional(CONF_IGNORED_CLIENTS): SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(value=cid, label=name)
                        for cid, name in sorted(clients.items(), key=lambda i: i[1].casefold())
                    ],
                    multiple=True,
                    custom_value=True,
                )
            ),
            vol.Optional(CONF_MONITORED_USERS): SelectSelector(
                SelectSelectorConfig(
                    options=sorted(users, key=str.casefold), multiple=True, custom_value=True
                )
            ),
            vol.Optional(CONF_STALE_MINUTES, default=DEFAULT_STALE_MINUTES): _number(
                1, 60 * 24 * 30, "min"
            ),
        }
    ).extend(CATALOG_OPTIONS | TRACKING_OPTIONS)


def group_schema() -> vol.Schema:
    """A sync-play group: name, topic, secret, local members and timing."""
    return vol.Schema(
        {
            vol.Required(CONF_GROUP_NAME): TextSelector(),
            vol.Optional(CONF_TOPIC): TextSelector(),
            vol.Optional(CONF_SECRET): PASSWORD_SELECTOR,
            vol.Optional(CONF_MEMBERS, default=[]): EntitySelector(
                EntitySelectorConfig(domain="media_player", integration=DOMAIN, multiple=True)
            ),
            vol.Optional(CONF_DRIFT_THRESHOLD, default=400): _number(50, 5000, "ms", step=10),
            vol.Optional(CONF_READY_TIMEOUT, default=10): _number(2, 120, "s"),
            vol.Optional(CONF_WAIT_FOR_BUFFERING, default=True): bool,
            vol.Optional(CONF_FOLLOW, default=False): bool,
        }
    )
