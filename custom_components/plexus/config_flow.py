"""Config flow for Plexus: plex.tv sign-in or URL + token, zeroconf, reauth, reconfigure."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import secrets
from typing import Any, override
from urllib.parse import urlsplit
import uuid

import aiohttp
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
    SubentryFlowResult,
)
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
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
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.util import slugify
from plexauth import PlexAuth
import probatio as vol

from .catalog import Catalog, suggest_mappings
from .catalog_manager import format_path_mappings, parse_path_mappings
from .const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_DB_URL,
    CONF_DRIFT_THRESHOLD,
    CONF_FOLLOW,
    CONF_FULL_HOURS,
    CONF_GROUP_NAME,
    CONF_IGNORED_CLIENTS,
    CONF_INCREMENTAL_MINUTES,
    CONF_MEMBERS,
    CONF_MONITORED_USERS,
    CONF_PATH_MAPPINGS,
    CONF_PLEX_TV_TOKEN,
    CONF_READY_TIMEOUT,
    CONF_SECRET,
    CONF_SERVER_IDENTIFIER,
    CONF_SERVER_NAME,
    CONF_STALE_MINUTES,
    CONF_TOPIC,
    CONF_WAIT_FOR_BUFFERING,
    DEFAULT_FULL_HOURS,
    DEFAULT_INCREMENTAL_MINUTES,
    DEFAULT_STALE_MINUTES,
    DEFAULT_TOPIC_PREFIX,
    DOMAIN,
    LOGGER,
    PIN_POLL_INTERVAL,
    PIN_TIMEOUT,
    SUBENTRY_SYNC_GROUP,
)
from .plex import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexServerAPI,
    PlexSSLError,
    ServerInfo,
    ServerResource,
)
from .plex.account import account_servers
from .plex.api import first_reachable
from .runtime import PlexusConfigEntry

CONF_SERVER = "server"
CATALOG_OPTIONS = {
    vol.Optional(CONF_INCREMENTAL_MINUTES, default=DEFAULT_INCREMENTAL_MINUTES): vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=5, max=24 * 60, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="min"
            )
        ),
        vol.Coerce(int),
    ),
    vol.Optional(CONF_FULL_HOURS, default=DEFAULT_FULL_HOURS): vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=1, max=24 * 30, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="h"
            )
        ),
        vol.Coerce(int),
    ),
    vol.Optional(CONF_PATH_MAPPINGS, default=""): TextSelector(TextSelectorConfig(multiline=True)),
    vol.Optional(CONF_DB_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD)),
}
PASSWORD_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def _error_key(err: Exception) -> str:
    """Map an error from the Plex layer to a translation key of the form."""
    if isinstance(err, PlexAuthError):
        return "invalid_auth"
    if isinstance(err, PlexSSLError):
        return "ssl_error"
    if isinstance(err, PlexConnectionError):
        return "cannot_connect"
    return "unknown"


class PlexusConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Plex server."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing known."""
        self._client_identifier = str(uuid.uuid4())
        self._discovered_url: str | None = None
        self._plexauth: PlexAuth | None = None
        self._pin_task: asyncio.Task[None] | None = None
        self._plex_tv_token: str | None = None
        self._servers: dict[str, ServerResource] = {}

    # ------------------------------------------------------------------ helpers

    async def _async_validate(
        self, url: str, token: str, verify_ssl: bool
    ) -> tuple[ServerInfo | None, dict[str, str]]:
        """Connect to the server; return its info or the form errors."""
        api = PlexServerAPI(
            async_get_clientsession(self.hass, verify_ssl=verify_ssl),
            url,
            token,
            verify_ssl=verify_ssl,
            client_identifier=self._client_identifier,
        )
        try:
            return await api.server_info(), {}
        except PlexError as err:
            return None, {"base": _error_key(err)}
        except Exception:  # noqa: BLE001 - any surprise becomes "unknown", logged
            LOGGER.exception("Unexpected error while connecting to %s", urlsplit(url).hostname)
            return None, {"base": "unknown"}

    async def _async_create_or_update(
        self,
        info: ServerInfo,
        url: str,
        token: str,
        verify_ssl: bool,
        extra: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        await self.async_set_unique_id(info.machine_identifier)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(
            title=info.friendly_name,
            data={
                CONF_URL: url,
                CONF_TOKEN: token,
                CONF_VERIFY_SSL: verify_ssl,
                CONF_SERVER_IDENTIFIER: info.machine_identifier,
                CONF_SERVER_NAME: info.friendly_name,
                CONF_CLIENT_IDENTIFIER: self._client_identifier,
            }
            | (extra or {}),
        )

    # ------------------------------------------------------------------ user

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Let the user choose how to sign in."""
        return self.async_show_menu(step_id="user", menu_options=["plex_tv", "manual"])

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Connect with a URL and a token."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = _normalise_url(user_input[CONF_URL])
            info, errors = await self._async_validate(
                url, user_input[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
            )
            if info is not None:
                return await self._async_create_or_update(
                    info, url, user_input[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
                )
        defaults = user_input or {CONF_URL: self._discovered_url or "", CONF_VERIFY_SSL: True}
        schema = vol.Schema(
            {
                vol.Required(CONF_URL): URL_SELECTOR,
                vol.Required(CONF_TOKEN): PASSWORD_SELECTOR,
                vol.Required(CONF_VERIFY_SSL): bool,
            }
        )
        return self.async_show_form(
            step_id="manual",
            data_schema=self.add_suggested_values_to_schema(
                schema, {k: v for k, v in defaults.items() if k != CONF_TOKEN}
            ),
            errors=errors,
        )

    # ------------------------------------------------------------------ plex.tv sign-in

    async def async_step_plex_tv(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Start the plex.tv PIN sign-in and send the user to plex.tv."""
        self._plexauth = PlexAuth(
            {
                "X-Plex-Product": "Plexus",
                "X-Plex-Version": "1",
                "X-Plex-Device": "Home Assistant",
                "X-Plex-Device-Name": "Home Assistant",
                "X-Plex-Model": "Plexus",
                "X-Plex-Platform": "Home Assistant",
            },
            async_get_clientsession(self.hass),
        )
        try:
            await self._plexauth.initiate_auth()
        except aiohttp.ClientError, TimeoutError, KeyError, ValueError:
            return self.async_abort(reason="cannot_connect")
        self._client_identifier = self._plexauth.client_identifier
        self._pin_task = self.hass.async_create_task(
            self._async_wait_for_token(), "plexus plex.tv sign-in"
        )
        return self.async_external_step(step_id="obtain_token", url=self._plexauth.auth_url())

    async def _async_wait_for_token(self) -> None:
        """Poll plex.tv until the user approved the PIN or it timed out, then go on."""
        assert self._plexauth is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PIN_TIMEOUT
        while loop.time() < deadline:
            await asyncio.sleep(PIN_POLL_INTERVAL)
            try:
                token = await self._plexauth.request_auth_token()
            except aiohttp.ClientError, TimeoutError, KeyError, ValueError:
                continue
            if token:
                self._plex_tv_token = token
                break
        await self.hass.config_entries.flow.async_configure(flow_id=self.flow_id)

    async def async_step_obtain_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The sign-in ended: go on with the token, or say it timed out."""
        if self._plex_tv_token:
            return self.async_external_step_done(next_step_id="select_server")
        return self.async_external_step_done(next_step_id="timed_out")

    async def async_step_timed_out(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The user did not approve the sign-in in time."""
        return self.async_abort(reason="token_timeout")

    async def async_step_select_server(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick one of the account's servers (skipped when there is only one)."""
        assert self._plex_tv_token is not None
        errors: dict[str, str] = {}
        if not self._servers:
            try:
                servers = await self.hass.async_add_executor_job(
                    account_servers, self._plex_tv_token, self._client_identifier
                )
            except PlexError as err:
                return self.async_abort(reason=_error_key(err))
            configured = self._async_current_ids(include_ignore=False)
            self._servers = {
                s.client_identifier: s for s in servers if s.client_identifier not in configured
            }
            if not self._servers:
                return self.async_abort(reason="already_configured" if servers else "no_servers")
        if user_input is None and len(self._servers) == 1:
            user_input = {CONF_SERVER: next(iter(self._servers))}
        if user_input is not None:
            resource = self._servers[user_input[CONF_SERVER]]
            try:
                url, info = await first_reachable(
                    async_get_clientsession(self.hass),
                    [c.uri for c in resource.connections],
                    resource.access_token,
                    client_identifier=self._client_identifier,
                )
            except PlexError as err:
                errors["base"] = _error_key(err)
            else:
                return await self._async_create_or_update(
                    info,
                    url,
                    resource.access_token,
                    verify_ssl=True,
                    extra={CONF_PLEX_TV_TOKEN: self._plex_tv_token},
                )
        options = [
            SelectOptionDict(value=key, label=server.name) for key, server in self._servers.items()
        ]
        return self.async_show_form(
            step_id="select_server",
            data_schema=vol.Schema(
                {vol.Required(CONF_SERVER): SelectSelector(SelectSelectorConfig(options=options))}
            ),
            errors=errors,
        )

    # ------------------------------------------------------------------ zeroconf

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """A Plex server announced itself on the network."""
        url = f"http://{discovery_info.host}:{discovery_info.port or 32400}"
        for entry in self._async_current_entries(include_ignore=False):
            if urlsplit(entry.data.get(CONF_URL, "")).hostname == discovery_info.host:
                return self.async_abort(reason="already_configured")
        self._discovered_url = url
        name = discovery_info.name.split(".")[0] or discovery_info.host
        self.context["title_placeholders"] = {"name": name}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the discovered server: sign in with plex.tv or enter a token."""
        return self.async_show_menu(
            step_id="zeroconf_confirm",
            menu_options=["plex_tv", "manual"],
            description_placeholders={
                "name": self.context["title_placeholders"]["name"],
                "url": self._discovered_url or "",
            },
        )

    # ------------------------------------------------------------------ reauth

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start re-authentication because the token stopped working."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token and check it reaches the same server."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            info, errors = await self._async_validate(
                entry.data[CONF_URL], user_input[CONF_TOKEN], entry.data.get(CONF_VERIFY_SSL, True)
            )
            if info is not None:
                await self.async_set_unique_id(info.machine_identifier)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): PASSWORD_SELECTOR}),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    # ------------------------------------------------------------------ reconfigure

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at a new URL of the same server."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            url = _normalise_url(user_input[CONF_URL])
            info, errors = await self._async_validate(
                url, entry.data[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
            )
            if info is not None:
                await self.async_set_unique_id(info.machine_identifier)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={CONF_URL: url, CONF_VERIFY_SSL: user_input[CONF_VERIFY_SSL]},
                )
        suggested = user_input or {
            CONF_URL: entry.data[CONF_URL],
            CONF_VERIFY_SSL: entry.data.get(CONF_VERIFY_SSL, True),
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {vol.Required(CONF_URL): URL_SELECTOR, vol.Required(CONF_VERIFY_SSL): bool}
                ),
                suggested,
            ),
            errors=errors,
        )

    @override
    def async_remove(self) -> None:
        """Stop waiting for plex.tv when the flow goes away."""
        if self._pin_task is not None and not self._pin_task.done():
            self._pin_task.cancel()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Sync-play groups are subentries of a server."""
        return {SUBENTRY_SYNC_GROUP: SyncGroupSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PlexusConfigEntry) -> PlexusOptionsFlow:
        """Return the options flow."""
        return PlexusOptionsFlow()


class PlexusOptionsFlow(OptionsFlowWithReload):
    """Preferences of a server entry (saved options reload the entry)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Players (ignored clients, monitored users, stale time) and the catalog."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self._async_validate_catalog(user_input)
            if not errors:
                return self.async_create_entry(data=user_input)
        entry: PlexusConfigEntry = self.config_entry
        options = entry.options
        known_clients: dict[str, str] = {}
        known_users: set[str] = set(options.get(CONF_MONITORED_USERS, []))
        runtime = getattr(entry, "runtime_data", None)  # unset while the entry is not loaded
        if runtime is not None and runtime.coordinator.data is not None:
            data = runtime.coordinator.data
            known_clients = {cid: c.name for cid, c in data.clients.items()}
            known_users.update(s.user for s in data.sessions if s.user)
            try:
                known_users.update(await runtime.coordinator.api.accounts())
            except PlexError:
                LOGGER.debug("Could not list the server's accounts")
        for cid in options.get(CONF_IGNORED_CLIENTS, []):
            known_clients.setdefault(cid, cid)
        schema = vol.Schema(
            {
                vol.Optional(CONF_IGNORED_CLIENTS): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=cid, label=name)
                            for cid, name in sorted(known_clients.items(), key=lambda i: i[1])
                        ],
                        multiple=True,
                        custom_value=True,
                    )
                ),
                vol.Optional(CONF_MONITORED_USERS): SelectSelector(
                    SelectSelectorConfig(
                        options=sorted(known_users), multiple=True, custom_value=True
                    )
                ),
                vol.Optional(CONF_STALE_MINUTES, default=DEFAULT_STALE_MINUTES): vol.All(
                    NumberSelector(
                        NumberSelectorConfig(
                            min=1,
                            max=60 * 24 * 30,
                            step=1,
                            mode=NumberSelectorMode.BOX,
                            unit_of_measurement="min",
                        )
                    ),
                    vol.Coerce(int),
                ),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema.extend(CATALOG_OPTIONS), user_input or dict(options)
            ),
            errors=errors,
            description_placeholders={"suggestions": self._mapping_suggestions()},
        )

    def _mapping_suggestions(self) -> str:
        """Library roots as Plex sees them, in the form the path mappings take."""
        runtime = getattr(self.config_entry, "runtime_data", None)
        if runtime is None or runtime.coordinator.data is None:
            return "-"
        roots = [loc for s in runtime.coordinator.data.sections for loc in s.locations]
        suggestions = suggest_mappings(roots, "/media/plex")
        return format_path_mappings(suggestions) or "-"

    async def _async_validate_catalog(self, user_input: dict[str, Any]) -> dict[str, str]:
        """Check the path mappings parse and the database URL opens."""
        try:
            parse_path_mappings(user_input.get(CONF_PATH_MAPPINGS, ""))
        except ValueError:
            return {CONF_PATH_MAPPINGS: "invalid_path_mappings"}
        url = user_input.get(CONF_DB_URL)
        if url and url != self.config_entry.options.get(CONF_DB_URL):
            try:
                catalog = await self.hass.async_add_executor_job(Catalog, url)
            except Exception:  # noqa: BLE001 - any failure to open means "cannot use this URL"
                LOGGER.debug("Catalog database URL rejected", exc_info=False)
                return {CONF_DB_URL: "invalid_db_url"}
            await self.hass.async_add_executor_job(catalog.close)
        return {}


def _topic_for(name: str) -> str:
    return f"{DEFAULT_TOPIC_PREFIX}/{slugify(name) or 'group'}"


def _valid_topic(topic: str) -> bool:
    """An MQTT topic to publish under: no wildcards, no empty levels, not too long."""
    return (
        0 < len(topic) <= 200
        and "+" not in topic
        and "#" not in topic
        and "" not in topic.split("/")
    )


def _group_schema() -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_GROUP_NAME): TextSelector(),
            vol.Optional(CONF_TOPIC): TextSelector(),
            vol.Optional(CONF_SECRET): TextSelector(
                TextSelectorConfig(type=TextSelectorType.PASSWORD)
            ),
            vol.Optional(CONF_MEMBERS, default=[]): EntitySelector(
                EntitySelectorConfig(domain="media_player", integration=DOMAIN, multiple=True)
            ),
            vol.Optional(CONF_DRIFT_THRESHOLD, default=400): vol.All(
                NumberSelector(
                    NumberSelectorConfig(
                        min=50,
                        max=5000,
                        step=10,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="ms",
                    )
                ),
                vol.Coerce(int),
            ),
            vol.Optional(CONF_READY_TIMEOUT, default=10): vol.All(
                NumberSelector(
                    NumberSelectorConfig(
                        min=2, max=120, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="s"
                    )
                ),
                vol.Coerce(int),
            ),
            vol.Optional(CONF_WAIT_FOR_BUFFERING, default=True): bool,
            vol.Optional(CONF_FOLLOW, default=False): bool,
        }
    )


class SyncGroupSubentryFlow(ConfigSubentryFlow):
    """Add or change a sync-play group.

    Homes join the same group by using the same name, topic and secret. The secret is generated
    when left empty and shown once, to copy to the other homes.
    """

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._pending: dict[str, Any] = {}

    def _validate(self, user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        name = user_input[CONF_GROUP_NAME].strip()
        topic = (user_input.get(CONF_TOPIC) or _topic_for(name)).strip().rstrip("/")
        secret = (user_input.get(CONF_SECRET) or "").strip()
        errors: dict[str, str] = {}
        if not name:
            errors[CONF_GROUP_NAME] = "invalid_name"
        if not _valid_topic(topic):
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

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, topic, secret (empty: generate one) and the local players taking part."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = self._validate(user_input)
            entry = self._get_entry()
            if any(
                sub.unique_id == data[CONF_TOPIC]
                for sub in entry.subentries.values()
                if sub.subentry_type == SUBENTRY_SYNC_GROUP
            ):
                return self.async_abort(reason="group_exists")
            if not errors:
                self._pending = data
                return await self.async_step_secret()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(_group_schema(), user_input or {}),
            errors=errors,
        )

    async def async_step_secret(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show the secret once, to copy to the other homes; then create the group."""
        if user_input is not None:
            data = self._pending
            # Start the group's engine: reload the server entry once the subentry is stored.
            self.hass.config_entries.async_schedule_reload(self._get_entry().entry_id)
            return self.async_create_entry(
                title=data[CONF_GROUP_NAME], data=data, unique_id=data[CONF_TOPIC]
            )
        return self.async_show_form(
            step_id="secret",
            data_schema=vol.Schema({}),
            description_placeholders={
                "name": self._pending[CONF_GROUP_NAME],
                "topic": self._pending[CONF_TOPIC],
                "secret": self._pending[CONF_SECRET],
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change members, topic or secret (a new secret must be given to every home)."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = self._validate(
                {
                    **user_input,
                    CONF_SECRET: user_input.get(CONF_SECRET) or subentry.data[CONF_SECRET],
                }
            )
            if not errors:
                return self.async_update_reload_and_abort(
                    entry,
                    subentry,
                    title=data[CONF_GROUP_NAME],
                    data=data,
                    unique_id=data[CONF_TOPIC],
                )
        suggested = {k: v for k, v in subentry.data.items() if k != CONF_SECRET}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _group_schema(), user_input or suggested
            ),
            errors=errors,
        )
