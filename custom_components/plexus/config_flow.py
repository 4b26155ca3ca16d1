"""Config flow for Plexus: plex.tv sign-in or URL + token, zeroconf, reauth, reconfigure."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, override
from urllib.parse import urlsplit
import uuid

from homeassistant.components.webhook import async_generate_id
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL, CONF_WEBHOOK_ID
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .catalog import suggest_mappings
from .catalog_manager import format_path_mappings
from .const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_DB_URL,
    CONF_IGNORED_CLIENTS,
    CONF_MONITORED_USERS,
    CONF_PLEX_TV_TOKEN,
    CONF_SERVER_IDENTIFIER,
    CONF_SERVER_NAME,
    DOMAIN,
    LOGGER,
    PIN_POLL_INTERVAL,
    PIN_TIMEOUT,
    SUBENTRY_SYNC_GROUP,
    SUBENTRY_TRANSFER,
)
from .flow_schemas import (
    CONF_SERVER,
    manual_schema,
    options_schema,
    reconfigure_schema,
    select_server_schema,
    token_schema,
)
from .flow_sync_group import SyncGroupSubentryFlow
from .flow_transfer import TransferProfileSubentryFlow
from .flow_validate import (
    InvalidURLError,
    discovered_identifier,
    error_key,
    moved_url,
    server_url,
    validate_catalog,
    validate_server,
)
from .plex import PlexError, ServerInfo, ServerResource
from .plex.account import account_servers
from .plex.api import first_reachable
from .plex.pin import PlexPin, auth_url, create_pin, wait_for_token
from .plex.plextv import PlexTv
from .runtime import PlexusConfigEntry
from .tracking_manager import webhook_urls


class PlexusConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Plex server."""

    VERSION = 1
    # 1.2: every server entry owns a webhook id (watch tracking).
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Start with nothing known."""
        self._client_identifier = str(uuid.uuid4())
        self._discovered_url: str | None = None
        self._pin_error: str | None = None
        self._pin_task: asyncio.Task[None] | None = None
        self._plex_tv_token: str | None = None
        self._servers: dict[str, ServerResource] = {}

    # ------------------------------------------------------------------ helpers

    async def _async_validate(
        self, url_text: str, token: str, verify_ssl: bool
    ) -> tuple[str, ServerInfo | None, dict[str, str]]:
        """Check the URL's form, then connect; return the URL, the server's info or the errors."""
        try:
            url = server_url(url_text)
        except InvalidURLError:
            return url_text, None, {CONF_URL: "invalid_url"}
        info, errors = await validate_server(
            self.hass, url, token, verify_ssl, self._client_identifier
        )
        return url, info, errors

    async def _async_create_or_update(
        self,
        info: ServerInfo,
        url: str,
        token: str,
        verify_ssl: bool,
        extra: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        # A discovery of the same server still waiting under *Discovered* must not stop a server
        # added by hand; HA removes that discovery once this entry is created.
        await self.async_set_unique_id(info.machine_identifier, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        webhook_id = async_generate_id()
        urls = webhook_urls(self.hass, webhook_id)
        return self.async_create_entry(
            title=info.friendly_name,
            description="default",  # config.create_entry.default: where to paste the webhook URL
            description_placeholders={
                "webhook_local": urls["local"] or "-",
                "webhook_external": urls["external"] or "-",
            },
            data={
                CONF_URL: url,
                CONF_TOKEN: token,
                CONF_VERIFY_SSL: verify_ssl,
                CONF_SERVER_IDENTIFIER: info.machine_identifier,
                CONF_SERVER_NAME: info.friendly_name,
                CONF_CLIENT_IDENTIFIER: self._client_identifier,
                CONF_WEBHOOK_ID: webhook_id,
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
            url, info, errors = await self._async_validate(
                user_input[CONF_URL], user_input[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
            )
            if info is not None:
                return await self._async_create_or_update(
                    info, url, user_input[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
                )
        # After an error the form keeps everything typed, the token included.
        suggested = user_input or {CONF_URL: self._discovered_url or "", CONF_VERIFY_SSL: True}
        return self.async_show_form(
            step_id="manual",
            data_schema=self.add_suggested_values_to_schema(manual_schema(), suggested),
            errors=errors,
        )

    # ------------------------------------------------------------------ plex.tv sign-in

    def _plex_tv(self) -> PlexTv:
        """plex.tv, reached over HA's shared session as this flow's client identifier."""
        return PlexTv(async_get_clientsession(self.hass), self._client_identifier)

    async def async_step_plex_tv(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Start the plex.tv PIN sign-in and send the user to plex.tv."""
        plex_tv = self._plex_tv()
        try:
            pin = await create_pin(plex_tv)
        except PlexError as err:
            LOGGER.debug("Could not start the plex.tv sign-in: %s", err)
            return self.async_abort(reason=error_key(err))
        self._pin_error = None
        self._pin_task = self.hass.async_create_task(
            self._async_wait_for_token(plex_tv, pin), "plexus plex.tv sign-in"
        )
        return self.async_external_step(step_id="obtain_token", url=auth_url(plex_tv, pin))

    async def _async_wait_for_token(self, plex_tv: PlexTv, pin: PlexPin) -> None:
        """Poll plex.tv until the user approved the PIN, it expired or time ran out; go on."""
        try:
            self._plex_tv_token = await wait_for_token(
                plex_tv, pin, give_up_after=PIN_TIMEOUT, interval=PIN_POLL_INTERVAL
            )
        except PlexError as err:
            LOGGER.debug("The plex.tv sign-in failed: %s", err)
            self._pin_error = error_key(err)
        except Exception:  # noqa: BLE001 - the flow must go on; the cause is logged
            LOGGER.exception("Unexpected error during the plex.tv sign-in")
            self._pin_error = "unknown"
        await self.hass.config_entries.flow.async_configure(flow_id=self.flow_id)

    async def async_step_obtain_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The sign-in ended: go on with the token, or say why not."""
        if self._plex_tv_token:
            return self.async_external_step_done(next_step_id="select_server")
        return self.async_external_step_done(next_step_id="timed_out")

    async def async_step_timed_out(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The user did not approve the sign-in in time (or plex.tv refused it)."""
        return self.async_abort(reason=self._pin_error or "token_timeout")

    async def async_step_select_server(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick one of the account's servers (skipped when there is only one)."""
        assert self._plex_tv_token is not None
        if self.source == SOURCE_REAUTH:
            return await self._async_reauth_from_account(self._plex_tv_token)
        errors: dict[str, str] = {}
        if not self._servers:
            try:
                servers = await account_servers(self._plex_tv(), self._plex_tv_token)
            except PlexError as err:
                return self.async_abort(reason=error_key(err))
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
                errors["base"] = error_key(err)
            else:
                return await self._async_create_or_update(
                    info,
                    url,
                    resource.access_token,
                    verify_ssl=True,
                    extra={CONF_PLEX_TV_TOKEN: self._plex_tv_token},
                )
        return self.async_show_form(
            step_id="select_server",
            data_schema=select_server_schema({k: s.name for k, s in self._servers.items()}),
            errors=errors,
        )

    # ------------------------------------------------------------------ zeroconf

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """A Plex server announced itself on the network.

        A server already set up at that address is not offered again; one set up at another
        address (DHCP gave it a new IP, or a new port) gets its entry's URL updated.
        """
        port = discovery_info.port or 32400
        shown = f"[{discovery_info.host}]" if ":" in discovery_info.host else discovery_info.host
        url = f"http://{shown}:{port}"
        for entry in self._async_current_entries(include_ignore=False):
            if _host_port(entry.data.get(CONF_URL, "")) == (discovery_info.host, port):
                return self.async_abort(reason="already_configured")
        # The announcement does not say which server it is; the server's /identity does.
        identifier = await discovered_identifier(self.hass, url, self._client_identifier)
        if identifier is not None:
            await self.async_set_unique_id(identifier)
            known = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, identifier)
            new_url = known and moved_url(known.data.get(CONF_URL, ""), discovery_info.host, port)
            self._abort_if_unique_id_configured(updates={CONF_URL: new_url} if new_url else None)
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
        """Start re-authentication because the token stopped working: sign in again or paste."""
        return self.async_show_menu(
            step_id="reauth",
            menu_options=["plex_tv", "reauth_confirm"],
            description_placeholders={"name": self._get_reauth_entry().title},
        )

    async def _async_reauth_from_account(self, token: str) -> ConfigFlowResult:
        """plex.tv sign-in during reauth: the account's token for this entry's server."""
        entry = self._get_reauth_entry()
        try:
            servers = await account_servers(self._plex_tv(), token)
        except PlexError as err:
            return self.async_abort(reason=error_key(err))
        resource = next((s for s in servers if s.client_identifier == entry.unique_id), None)
        if resource is None:
            return self.async_abort(reason="server_not_in_account")
        _, info, errors = await self._async_validate(
            entry.data[CONF_URL], resource.access_token, entry.data.get(CONF_VERIFY_SSL, True)
        )
        if info is None:
            LOGGER.debug("Reauth with the account's token failed: %s", errors)
            return self.async_abort(reason="reauth_server_failed")
        await self.async_set_unique_id(info.machine_identifier)
        self._abort_if_unique_id_mismatch(reason="wrong_server")
        return self.async_update_reload_and_abort(
            entry, data_updates={CONF_TOKEN: resource.access_token, CONF_PLEX_TV_TOKEN: token}
        )

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token and check it reaches the same server."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            _, info, errors = await self._async_validate(
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
            data_schema=self.add_suggested_values_to_schema(token_schema(), user_input or {}),
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
            url, info, errors = await self._async_validate(
                user_input[CONF_URL], entry.data[CONF_TOKEN], user_input[CONF_VERIFY_SSL]
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
            data_schema=self.add_suggested_values_to_schema(reconfigure_schema(), suggested),
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
        """Sync-play groups and transfer profiles are subentries of a server."""
        return {
            SUBENTRY_SYNC_GROUP: SyncGroupSubentryFlow,
            SUBENTRY_TRANSFER: TransferProfileSubentryFlow,
        }

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PlexusConfigEntry) -> PlexusOptionsFlow:
        """Return the options flow."""
        return PlexusOptionsFlow()


def _host_port(url: str) -> tuple[str | None, int]:
    """Host and port of a configured URL (the scheme's default port when none is given)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _known_clients(entry: PlexusConfigEntry) -> dict[str, str]:
    """Clients the running entry has seen (id -> name); empty while the entry is not loaded."""
    runtime = getattr(entry, "runtime_data", None)  # unset while the entry is not loaded
    if runtime is None:
        return {}
    return {cid: client.name for cid, client in runtime.coordinator.state.known_clients.items()}


async def _known_users(entry: PlexusConfigEntry) -> set[str]:
    """The server's accounts and the users seen playing; empty while the entry is not loaded."""
    runtime = getattr(entry, "runtime_data", None)
    if runtime is None:
        return set()
    users = {s.user for s in runtime.coordinator.data.sessions if s.user}
    try:
        users.update(await runtime.coordinator.api.accounts())
    except PlexError:
        LOGGER.debug("Could not list the server's accounts")
    return users


class PlexusOptionsFlow(OptionsFlowWithReload):
    """Preferences of a server entry (saved options reload the entry)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Players (ignored clients, monitored users, stale time) and the catalog."""
        entry: PlexusConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await validate_catalog(self.hass, user_input, entry.options.get(CONF_DB_URL))
            if not errors:
                return self.async_create_entry(data=user_input)
        options = entry.options
        # Configured values stay offered even when the server no longer knows them.
        clients = {cid: cid for cid in options.get(CONF_IGNORED_CLIENTS, [])}
        clients.update(_known_clients(entry))
        users = set(options.get(CONF_MONITORED_USERS, [])) | await _known_users(entry)
        webhook_id = entry.data.get(CONF_WEBHOOK_ID)
        urls = webhook_urls(self.hass, webhook_id) if webhook_id else {}
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options_schema(clients, users), user_input or dict(options)
            ),
            errors=errors,
            description_placeholders={
                "suggestions": self._mapping_suggestions(),
                "webhook_local": urls.get("local") or "-",
                "webhook_external": urls.get("external") or "-",
            },
        )

    def _mapping_suggestions(self) -> str:
        """Library roots as Plex sees them, in the form the path mappings take."""
        runtime = getattr(self.config_entry, "runtime_data", None)
        if runtime is None or runtime.coordinator.data is None:
            return "-"
        roots = [loc for s in runtime.coordinator.data.sections for loc in s.locations]
        suggestions = suggest_mappings(roots, "/media/plex")
        return format_path_mappings(suggestions) or "-"
