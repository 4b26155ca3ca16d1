"""Config flow: every path, every error followed by its recovery, against the Plex simulator.

plex.tv itself cannot be reached from tests: a fake plex.tv (tests/plex_simulator/plextv.py)
answers the PIN sign-in and the account's resources in plex.tv's JSON, starting from the recorded
real answer (tests/fixtures/ha-core), with the server's connection pointing at the simulator.
"""

import asyncio
from collections.abc import Iterator
import contextlib
from ipaddress import ip_address
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.config_flow import _host_port
from custom_components.plexus.const import (
    CONF_CLIENT_IDENTIFIER,
    CONF_DB_URL,
    CONF_IGNORED_CLIENTS,
    CONF_MONITORED_USERS,
    CONF_PATH_MAPPINGS,
    CONF_SERVER_IDENTIFIER,
    DOMAIN,
)
from custom_components.plexus.flow_validate import moved_url, server_url
from custom_components.plexus.plex import PlexClientInfo
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import PlexSimulator, PlexTvSimulator
from tests.tls import https_front


async def _start_manual(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["plex_tv", "manual"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "manual"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    return result


def _manual_input(sim: PlexSimulator, **overrides: Any) -> dict[str, Any]:
    return {CONF_URL: sim.url, CONF_TOKEN: sim.token, CONF_VERIFY_SSL: True} | overrides


def _suggested(result: dict[str, Any]) -> dict[str, Any]:
    """The values a form comes pre-filled with (what the user typed, after an error)."""
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


async def test_manual_success(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """URL + token of a running server creates the entry with its machineIdentifier."""
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator, **{CONF_URL: simulator.url + "/"})
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Plexus Simulator"
    assert result["result"].unique_id == simulator.machine_identifier
    data = result["data"]
    assert data[CONF_URL] == simulator.url  # trailing slash removed
    assert data[CONF_TOKEN] == simulator.token
    assert data[CONF_SERVER_IDENTIFIER] == simulator.machine_identifier
    assert data[CONF_CLIENT_IDENTIFIER]
    assert result["result"].state is ConfigEntryState.LOADED


async def test_manual_url_without_scheme(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """A bare host:port gets http:// in front."""
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator, **{CONF_URL: simulator.url[len("http://") :]})
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.url


async def test_manual_invalid_auth_then_recovers(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """A wrong token shows invalid_auth; the right one then works."""
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator, **{CONF_TOKEN: "wrong"})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    # What was typed stays in the form, the token included (issue 13, point 10).
    assert _suggested(result) == _manual_input(simulator, **{CONF_TOKEN: "wrong"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_cannot_connect_then_recovers(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """An offline server shows cannot_connect; once it is back the same input works."""
    await simulator.go_offline()
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    await simulator.go_online()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_server_error_is_cannot_connect(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """A 500 from the server is a connection problem, not a crash; it recovers."""
    simulator.set_error(500)
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    assert result["errors"] == {"base": "cannot_connect"}
    simulator.set_error(None)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_https_on_plain_http_port_then_recovers(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """https:// to a server that does not speak TLS says so (not_https); http:// then works."""
    result = await _start_manual(hass)
    https_url = simulator.url.replace("http://", "https://")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator, **{CONF_URL: https_url})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_https"}
    assert _suggested(result)[CONF_URL] == https_url
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_self_signed_certificate_then_unverified(
    hass: HomeAssistant, simulator: PlexSimulator, tmp_path: Path
) -> None:
    """A real HTTPS server with a self-signed certificate is an ssl_error; unverified, it works."""
    async with https_front(simulator, tmp_path) as https_url:
        result = await _start_manual(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _manual_input(simulator, **{CONF_URL: https_url})
        )
        assert result["errors"] == {"base": "ssl_error"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            _manual_input(simulator, **{CONF_URL: https_url, CONF_VERIFY_SSL: False}),
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == https_url
    assert result["data"][CONF_VERIFY_SSL] is False


@pytest.mark.parametrize(
    "typed",
    [
        "not a url",
        "ftp://plex.local:32400",
        "http://",
        "https://:32400",
        "http://plex.local:99999",
        "http://plex.local:port",
        "http://plex server:32400",
        "://plex.local:32400",
    ],
)
async def test_manual_invalid_url_then_recovers(
    hass: HomeAssistant, simulator: PlexSimulator, typed: str
) -> None:
    """Text that is not an http(s) URL with a host is refused on the URL field, typed text kept."""
    result = await _start_manual(hass)
    with patch(
        "custom_components.plexus.flow_validate.PlexServerAPI.server_info",
        side_effect=AssertionError("no connection is tried for a malformed URL"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _manual_input(simulator, **{CONF_URL: typed})
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "invalid_url"}
    assert _suggested(result) == _manual_input(simulator, **{CONF_URL: typed})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("  192.168.1.10:32400/ ", "http://192.168.1.10:32400"),
        ("HTTPS://Plex.Example.com", "HTTPS://Plex.Example.com"),
        ("http://[::1]:32400", "http://[::1]:32400"),
        ("plex-1.local.", "http://plex-1.local."),
    ],
)
def test_server_url_accepts(typed: str, url: str) -> None:
    """Host names, IPv4/IPv6 addresses and a missing scheme are fine."""
    assert server_url(typed) == url


async def test_manual_not_a_plex_server_then_recovers(
    hass: HomeAssistant, simulator: PlexSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected failure shows unknown and is logged (without the token); retry works."""
    with patch(
        "custom_components.plexus.flow_validate.PlexServerAPI.server_info",
        side_effect=RuntimeError("boom"),
    ):
        result = await _start_manual(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _manual_input(simulator)
        )
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error" in caplog.text
    assert simulator.token not in caplog.text
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_duplicate_aborts(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """The same server twice is already_configured."""
    config_entry.add_to_hass(hass)
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# --------------------------------------------------------------------------- plex.tv sign-in
# Against the fake plex.tv (tests/plex_simulator/plextv.py, the `plex_tv` fixture): Plexus's own
# PIN sign-in and resources calls, over HA's shared session, with the server pointing at the
# simulator.


@pytest.fixture
def pin_approved(plex_tv: PlexTvSimulator) -> Iterator[PlexTvSimulator]:
    """The user approves the PIN on plex.tv: the second poll carries the token."""
    plex_tv.approve_after = 2
    with patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0):
        yield plex_tv


def _own_server(plex_tv: PlexTvSimulator, sim: PlexSimulator, name: str = "Home") -> None:
    """The account's only server is the simulator (the recorded one is unreachable)."""
    plex_tv.remove_servers()
    plex_tv.add_server(name, sim.machine_identifier, sim.url, access_token=sim.token)


async def _sign_in(hass: HomeAssistant, plex_tv: PlexTvSimulator) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "plex_tv"}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    pin = plex_tv.latest_pin()
    assert result["url"] == (
        f"https://app.plex.tv/auth#?clientID={pin.client_identifier}&code={pin.code}"
        "&context%5Bdevice%5D%5Bproduct%5D=Plexus"
    )
    await hass.async_block_till_done()
    return await hass.config_entries.flow.async_configure(result["flow_id"])


async def test_plex_tv_single_server(
    hass: HomeAssistant, simulator: PlexSimulator, pin_approved: PlexTvSimulator
) -> None:
    """With one server on the account, sign-in connects to it directly."""
    plex_tv = pin_approved
    _own_server(plex_tv, simulator)
    result = await _sign_in(hass, plex_tv)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == simulator.machine_identifier
    data = result["data"]
    assert data[CONF_URL] == simulator.url
    assert data[CONF_TOKEN] == "sim-token"
    assert data["plex_tv_token"] == "plex-tv-token"  # to list the account's players
    # A strong PIN, polled by the client that made it; then the resources with the PIN's token
    # (read again by the new entry, for the account's players).
    created, poll_1, poll_2, resources, *_ = plex_tv.requests
    assert (created.method, created.path_qs) == ("POST", "/api/v2/pins?strong=true")
    pin_path = f"/api/v2/pins/{plex_tv.latest_pin().id}"
    assert poll_1.path_qs == poll_2.path_qs == pin_path
    assert resources.path_qs == "/api/v2/resources?includeHttps=1&includeRelay=1"
    assert resources.headers["X-Plex-Token"] == "plex-tv-token"
    assert resources.headers["Accept"] == "application/json"
    for request in plex_tv.requests:
        assert request.headers["X-Plex-Client-Identifier"] == data[CONF_CLIENT_IDENTIFIER]
        assert request.headers["X-Plex-Product"] == "Plexus"


async def test_plex_tv_pick_server_with_error_and_recovery(
    hass: HomeAssistant, simulator: PlexSimulator, pin_approved: PlexTvSimulator
) -> None:
    """Several servers: the user picks one; an unreachable one shows cannot_connect."""
    plex_tv = pin_approved
    _own_server(plex_tv, simulator)
    plex_tv.add_server("Away", "away-id", "http://127.0.0.1:9")  # discard port: nothing listens
    result = await _sign_in(hass, plex_tv)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "select_server"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"server": "away-id"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"server": simulator.machine_identifier}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Plexus Simulator"


async def test_plex_tv_connects_local_before_relay(
    hass: HomeAssistant, simulator: PlexSimulator, pin_approved: PlexTvSimulator
) -> None:
    """A server plex.tv lists with a relay first still gets its local address."""
    plex_tv = pin_approved
    plex_tv.remove_servers()
    plex_tv.add_server(
        "Home", simulator.machine_identifier, "http://127.0.0.1:9", local=False, relay=True
    )
    plex_tv.add_connection(simulator.machine_identifier, simulator.url, local=True)
    result = await _sign_in(hass, plex_tv)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.url


async def test_plex_tv_skips_configured_servers(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    pin_approved: PlexTvSimulator,
    config_entry: MockConfigEntry,
) -> None:
    """A server that is already set up is not offered; if it is the only one, abort."""
    config_entry.add_to_hass(hass)
    _own_server(pin_approved, simulator)
    result = await _sign_in(hass, pin_approved)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_plex_tv_account_without_servers(
    hass: HomeAssistant, pin_approved: PlexTvSimulator
) -> None:
    """An account with players only has nothing to add."""
    pin_approved.remove_servers()
    result = await _sign_in(hass, pin_approved)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_servers"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("401", "invalid_auth"),
        ("503", "cannot_connect"),
        ("garbage", "cannot_connect"),
        ("not a list", "cannot_connect"),
    ],
)
async def test_plex_tv_resources_fail(
    hass: HomeAssistant, pin_approved: PlexTvSimulator, fault: str, reason: str
) -> None:
    """plex.tv refusing the token, failing or sending garbage ends the flow with a reason."""
    plex_tv = pin_approved
    if fault == "401":
        plex_tv.token = "another-token"  # the PIN's token is then not the account's
        plex_tv.approve_after = None
    elif fault == "503":
        plex_tv.set_error(503, "/api/v2/resources")
    elif fault == "garbage":
        plex_tv.set_answer("/api/v2/resources", b"<html>Sign in to the proxy</html>")
    else:
        plex_tv.set_answer("/api/v2/resources", b'{"errors": []}', "application/json")
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "plex_tv"}
    )
    if fault == "401":
        plex_tv.approve("plex-tv-token")
    await hass.async_block_till_done()
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


@pytest.mark.parametrize("fault", ["down", "503", "garbage"])
async def test_plex_tv_unreachable(
    hass: HomeAssistant, plex_tv: PlexTvSimulator, fault: str
) -> None:
    """plex.tv not answering the PIN request (or with garbage) aborts with cannot_connect."""
    if fault == "down":
        await plex_tv.stop()
    elif fault == "503":
        plex_tv.set_error(503)
    else:
        plex_tv.set_answer("/api/v2/pins", b'{"id": "x"}', "application/json")
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "plex_tv"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_plex_tv_timeout_then_new_flow_succeeds(
    hass: HomeAssistant, simulator: PlexSimulator, plex_tv: PlexTvSimulator
) -> None:
    """A PIN never approved (while plex.tv hiccups during polling) ends in token_timeout;
    a new sign-in then works."""
    _own_server(plex_tv, simulator)
    with (
        patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0.01),
        patch("custom_components.plexus.config_flow.PIN_TIMEOUT", 0.1),
    ):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "plex_tv"}
        )
        plex_tv.set_error(503)  # every poll fails: retried, not fatal
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "token_timeout"
    polls = [r for r in plex_tv.requests if r.method == "GET"]
    assert len(polls) >= 2  # it kept trying after the first failure
    plex_tv.set_error(None)
    plex_tv.approve_after = 1
    with patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0):
        result = await _sign_in(hass, plex_tv)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_plex_tv_expired_pin_stops_waiting(
    hass: HomeAssistant, plex_tv: PlexTvSimulator
) -> None:
    """A PIN plex.tv forgot (404) ends the wait at once, not after the whole timeout."""
    with patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0.01):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "plex_tv"}
        )
        plex_tv.expire()
        async with asyncio.timeout(5):  # PIN_TIMEOUT is 300 s
            await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "token_timeout"


@pytest.mark.parametrize(("fault", "reason"), [("401", "invalid_auth"), ("bug", "unknown")])
async def test_plex_tv_polling_fails(
    hass: HomeAssistant,
    plex_tv: PlexTvSimulator,
    caplog: pytest.LogCaptureFixture,
    *,
    fault: str,
    reason: str,
) -> None:
    """plex.tv refusing the polls, or a bug while waiting, ends the flow (never a dead task)."""

    async def broken(*_: Any, **__: Any) -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("boom")

    bug = patch("custom_components.plexus.config_flow.wait_for_token", broken)
    with (
        patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0.01),
        bug if fault == "bug" else contextlib.nullcontext(),
    ):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "plex_tv"}
        )
        plex_tv.set_error(401, f"/api/v2/pins/{plex_tv.latest_pin().id}")
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    if fault == "bug":
        assert "Unexpected error during the plex.tv sign-in" in caplog.text


async def test_plex_tv_flow_removed_stops_polling(
    hass: HomeAssistant, plex_tv: PlexTvSimulator
) -> None:
    """Closing the dialog while waiting for plex.tv cancels the polling task."""

    def polls() -> int:
        return sum(1 for r in plex_tv.requests if r.method == "GET")

    with patch("custom_components.plexus.config_flow.PIN_POLL_INTERVAL", 0.01):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "plex_tv"}
        )
        await wait_until(lambda: polls() > 1)
        hass.config_entries.flow.async_abort(result["flow_id"])
        await asyncio.sleep(0.02)
        calls = polls()
        await asyncio.sleep(0.1)
        assert polls() == calls


async def test_plex_tv_token_never_in_a_url_or_a_log_line(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    pin_approved: PlexTvSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sign-in with debug logging, plus a failure: neither token shows up in a URL or the log."""
    caplog.set_level(logging.DEBUG)
    plex_tv = pin_approved
    _own_server(plex_tv, simulator)
    plex_tv.add_server("Away", "away-id", "http://127.0.0.1:9")
    plex_tv.set_error(503, "/api/v2/resources")
    result = await _sign_in(hass, plex_tv)
    assert result["reason"] == "cannot_connect"
    plex_tv.set_error(None, "/api/v2/resources")
    result = await _sign_in(hass, plex_tv)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"server": "away-id"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"server": simulator.machine_identifier}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "plex.tv GET /api/v2/resources" in caplog.text  # the debug lines were captured
    for secret in ("plex-tv-token", simulator.token):
        assert secret not in caplog.text
        assert not [r for r in plex_tv.requests if secret in r.path_qs]
        assert not [r for r in simulator.requests if secret in str(r)]


# --------------------------------------------------------------------------- zeroconf


def _zeroconf(sim: PlexSimulator, host: str = "127.0.0.1") -> ZeroconfServiceInfo:
    port = int(sim.url.rsplit(":", 1)[1])
    return ZeroconfServiceInfo(
        ip_address=ip_address(host),
        ip_addresses=[ip_address(host)],
        hostname="plex.local.",
        name="Living Room Plex._plexmediasvr._tcp.local.",
        port=port,
        properties={},
        type="_plexmediasvr._tcp.local.",
    )


async def test_zeroconf_then_manual(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """A discovered server offers sign-in; the manual form comes prefilled with its URL."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "Living Room Plex", "url": simulator.url}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "manual"}
    )
    schema_defaults = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert schema_defaults[CONF_URL] == simulator.url
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_zeroconf_known_host_aborts(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """A server already configured at that address is not offered again."""
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_zeroconf_server_at_a_new_address_updates_its_entry(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """DHCP moved the server: the announcement at the new address fixes the entry's URL, and
    the entry (retrying at the old one) comes up there."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator, **{CONF_URL: "http://127.0.0.1:9"}),  # nothing listens
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == simulator.url
    assert entry.data[CONF_TOKEN] == simulator.token  # the rest is kept
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert not hass.config_entries.flow.async_progress()


async def test_zeroconf_entry_with_a_host_name_is_not_rewritten(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """An entry that reaches its server by name keeps the name (it follows the server)."""
    named = "https://1-2-3-4.0123456789abcdef.plex.direct:32400"
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator, **{CONF_URL: named}),
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == named


async def test_zeroconf_another_server_on_a_known_host_is_offered(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """Two servers on one machine (other ports): the one not set up is still offered."""
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="another-server",
        data=entry_data(simulator, **{CONF_URL: "http://127.0.0.1:9"}),
    )
    other.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "zeroconf_confirm"
    assert other.data[CONF_URL] == "http://127.0.0.1:9"


async def test_zeroconf_server_that_does_not_answer_is_still_offered(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """When /identity fails, the discovery is offered as before (the user can still add it)."""
    simulator.set_error(500)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"]["url"] == simulator.url


@pytest.mark.parametrize(
    ("configured", "host", "port", "expected"),
    [
        ("http://192.168.1.10:32400", "192.168.1.23", 32400, "http://192.168.1.23:32400"),
        ("https://192.168.1.10:32400", "192.168.1.10", 32401, "https://192.168.1.10:32401"),
        ("http://192.168.1.10", "fe80::1", 32400, "http://[fe80::1]:32400"),
        ("http://192.168.1.10:32400", "192.168.1.10", 32400, None),
        ("http://plex.home.arpa:32400", "192.168.1.23", 32400, None),
        ("", "192.168.1.23", 32400, None),
    ],
)
def test_moved_url(configured: str, host: str, port: int, expected: str | None) -> None:
    assert moved_url(configured, host, port) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://192.168.1.10:32400", ("192.168.1.10", 32400)),
        ("https://plex.example", ("plex.example", 443)),
        ("http://plex.example", ("plex.example", 80)),
        ("http://plex.example:99999", ("plex.example", 80)),  # a port out of range: ignored
        ("", (None, 80)),
    ],
)
def test_host_port(url: str, expected: tuple[str | None, int]) -> None:
    assert _host_port(url) == expected


# --------------------------------------------------------------------------- reauth, reconfigure


async def test_reauth_after_token_change(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """A token the server stops accepting starts reauth; a wrong token, then the new one."""
    config_entry.add_to_hass(hass)
    simulator.change_token("new-token")
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == "reauth"
    flow_id = flows[0]["flow_id"]
    assert flows[0]["step_id"] == "reauth"  # the menu: sign in with plex.tv, or a token
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"next_step_id": "reauth_confirm"}
    )
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "sim-token"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert _suggested(result) == {CONF_TOKEN: "sim-token"}  # kept to correct, not retyped
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "new-token"})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_TOKEN] == "new-token"
    assert config_entry.state is ConfigEntryState.LOADED


async def test_reauth_other_server_aborts(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """A token for the URL is checked to reach the same server."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id="another-server", data=entry_data(simulator))
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["plex_tv", "reauth_confirm"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: simulator.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_server"


async def _reauth_with_plex_tv(
    hass: HomeAssistant, entry: MockConfigEntry, plex_tv: PlexTvSimulator
) -> dict[str, Any]:
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "plex_tv"}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    await hass.async_block_till_done()
    return await hass.config_entries.flow.async_configure(result["flow_id"])


async def test_reauth_by_signing_in_with_plex_tv(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    pin_approved: PlexTvSimulator,
) -> None:
    """Reauth can sign in with plex.tv again: the account's token for this very server is
    checked against the entry's address and stored; nothing is pasted by hand."""
    plex_tv = pin_approved
    config_entry.add_to_hass(hass)
    simulator.change_token("rotated-token")
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    for flow in hass.config_entries.flow.async_progress():
        hass.config_entries.flow.async_abort(flow["flow_id"])
    plex_tv.remove_servers()
    plex_tv.add_server(
        "Home", simulator.machine_identifier, simulator.url, access_token="rotated-token"
    )
    result = await _reauth_with_plex_tv(hass, config_entry, plex_tv)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_TOKEN] == "rotated-token"
    assert config_entry.data["plex_tv_token"] == "plex-tv-token"
    assert config_entry.data[CONF_URL] == simulator.url  # the address is kept
    assert config_entry.state is ConfigEntryState.LOADED


async def test_reauth_with_an_account_without_this_server(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    pin_approved: PlexTvSimulator,
) -> None:
    """Signing in with an account that cannot use this server changes nothing and says so;
    so does a server that refuses the account's token."""
    plex_tv = pin_approved
    config_entry.add_to_hass(hass)
    before = dict(config_entry.data)
    plex_tv.remove_servers()
    plex_tv.add_server("Other", "another-machine", simulator.url, access_token="x")
    result = await _reauth_with_plex_tv(hass, config_entry, plex_tv)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "server_not_in_account"
    assert dict(config_entry.data) == before

    plex_tv.remove_servers()
    plex_tv.add_server(
        "Home", simulator.machine_identifier, simulator.url, access_token="not-accepted"
    )
    result = await _reauth_with_plex_tv(hass, config_entry, plex_tv)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_server_failed"
    assert dict(config_entry.data) == before


async def test_reconfigure_new_url(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """A new URL is checked (cannot_connect first) and saved."""
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "http://127.0.0.1:9", CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert _suggested(result) == {CONF_URL: "http://127.0.0.1:9", CONF_VERIFY_SSL: True}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "ftp://127.0.0.1", CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {CONF_URL: "invalid_url"}
    assert _suggested(result)[CONF_URL] == "ftp://127.0.0.1"
    # Entered without a scheme (normalised to http://) and with verification off.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: simulator.url[len("http://") :], CONF_VERIFY_SSL: False}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_URL] == simulator.url
    assert config_entry.data[CONF_VERIFY_SSL] is False


async def test_reconfigure_other_server_aborts(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """Pointing an entry at a different server is refused."""
    other = PlexSimulator(token="sim-token", clients=0, seed=99)
    await other.start()
    try:
        entry = MockConfigEntry(
            domain=DOMAIN, unique_id=simulator.machine_identifier, data=entry_data(simulator)
        )
        entry.add_to_hass(hass)
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: other.url, CONF_VERIFY_SSL: True}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "wrong_server"
        assert entry.data[CONF_URL] == simulator.url
    finally:
        await other.stop()


# --------------------------------------------------------------------------- options


async def test_options_ignore_client_and_monitor_user(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """Options list the known clients and accounts; saving reloads and applies them."""
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.plexus_simulator_clients").state == "3"

    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    client_options = schema[CONF_IGNORED_CLIENTS].config["options"]
    assert len(client_options) == 3
    user_options = schema[CONF_MONITORED_USERS].config["options"]
    assert user_options  # the simulator's /accounts names
    ignored = client_options[0]["value"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_IGNORED_CLIENTS: [ignored], CONF_MONITORED_USERS: []}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options[CONF_IGNORED_CLIENTS] == [ignored]
    assert config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.plexus_simulator_clients").state == "2"


async def test_options_errors_keep_input_then_save(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry, tmp_path: Path
) -> None:
    """A bad path mapping or database URL shows its error with everything typed kept; then saves."""
    result = await hass.config_entries.options.async_init(loaded.entry_id)
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    client = schema[CONF_IGNORED_CLIENTS].config["options"][0]["value"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_IGNORED_CLIENTS: [client], CONF_PATH_MAPPINGS: "no arrow here"}
    )
    assert result["errors"] == {CONF_PATH_MAPPINGS: "invalid_path_mappings"}
    assert _suggested(result)[CONF_IGNORED_CLIENTS] == [client]
    assert _suggested(result)[CONF_PATH_MAPPINGS] == "no arrow here"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_PATH_MAPPINGS: "/data/tv => /media/tv", CONF_DB_URL: "notadialect://nowhere"},
    )
    assert result["errors"] == {CONF_DB_URL: "invalid_db_url"}
    assert _suggested(result)[CONF_DB_URL] == "notadialect://nowhere"
    url = f"sqlite:///{tmp_path / 'other.db'}"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_IGNORED_CLIENTS: [client], CONF_PATH_MAPPINGS: "/data/tv => /tv", CONF_DB_URL: url},
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options[CONF_IGNORED_CLIENTS] == [client]
    assert loaded.options[CONF_PATH_MAPPINGS] == "/data/tv => /tv"
    assert loaded.options[CONF_DB_URL] == url


async def test_options_offer_every_known_client_and_user(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """Clients seen only while playing count as known; configured values no longer known stay."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={CONF_IGNORED_CLIENTS: ["old-tv"], CONF_MONITORED_USERS: ["Carol"]},
    )
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = config_entry.runtime_data.coordinator
    listed = {cid: client.name for cid, client in coordinator.data.clients.items()}
    # A phone that played but is not listed in /clients (as the coordinator tracks it).
    coordinator.state.known_clients["phone-1"] = PlexClientInfo("phone-1", "Ann's phone")

    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    clients = schema[CONF_IGNORED_CLIENTS].config
    offered = {o["value"]: o["label"] for o in clients["options"]}
    assert offered == listed | {"phone-1": "Ann's phone", "old-tv": "old-tv"}
    assert clients["multiple"] is True
    assert clients["custom_value"] is True  # free text still allowed
    users = schema[CONF_MONITORED_USERS].config
    # The simulator's /accounts (its nameless account 0 left out) and the configured Carol.
    assert users["options"] == ["Alice", "Bob", "Carol", "plexowner"]
    assert users["multiple"] is True
    assert users["custom_value"] is True


async def test_options_when_server_down(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """The options form still opens (with saved values) when /accounts fails."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_IGNORED_CLIENTS: ["gone-client"]}
    )
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    simulator.set_error(500)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    values = [o["value"] for o in schema[CONF_IGNORED_CLIENTS].config["options"]]
    assert "gone-client" in values


async def test_options_while_entry_not_loaded(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """Without a running coordinator the form offers the saved values only."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_IGNORED_CLIENTS: ["tv-1"], CONF_MONITORED_USERS: ["Ann"]}
    )
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    assert [o["value"] for o in schema[CONF_IGNORED_CLIENTS].config["options"]] == ["tv-1"]
    assert schema[CONF_MONITORED_USERS].config["options"] == ["Ann"]


async def test_manual_not_a_plex_answer_is_unknown(
    hass: HomeAssistant, simulator: PlexSimulator, socket_enabled: None
) -> None:
    """A web server that is not Plex (HTML instead of a MediaContainer) shows unknown."""

    async def router_page(_request: web.Request) -> web.Response:
        return web.Response(text="<html>router</html>")

    app = web.Application()
    app.router.add_get("/", router_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        result = await _start_manual(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _manual_input(simulator, **{CONF_URL: f"http://127.0.0.1:{port}"})
        )
        assert result["errors"] == {"base": "unknown"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _manual_input(simulator)
        )
        await hass.async_block_till_done()
        assert result["type"] is FlowResultType.CREATE_ENTRY
    finally:
        await runner.cleanup()


async def test_zeroconf_other_host_is_offered(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """A configured server elsewhere does not hide a newly discovered one."""
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="elsewhere",
        data=entry_data(simulator, url="http://10.9.9.9:32400"),
    ).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "zeroconf_confirm"


async def test_manual_while_the_same_server_waits_under_discovered(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """Adding a discovered server by hand (instead of from *Discovered*) works.

    Bad input tried: the user ignores the discovered card and enters URL and token in a new
    flow; it must create the entry (not abort "already in progress"), and the discovery goes away.
    """
    discovered = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=_zeroconf(simulator)
    )
    assert discovered["type"] is FlowResultType.MENU
    result = await _start_manual(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _manual_input(simulator)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
