"""A fake plex.tv: the PIN sign-in and the account's resources, as plex.tv's v2 API answers them.

    plex_tv = PlexTvSimulator(token="plex-tv-token")
    url = await plex_tv.start()            # http://127.0.0.1:<port>
    plex_tv.add_server("Home", sim.machine_identifier, sim.url, access_token=sim.token)
    ...
    await plex_tv.stop()

The resources start as the recorded real answer
(`tests/fixtures/ha-core/plextv_resources_one_server.xml`: a server and three players), turned
into plex.tv's JSON form (booleans as true/false, ports and owner ids as numbers, empty owner
fields as null). `Accept: application/json` gets JSON; anything else gets the XML form of the
same data, as plex.tv does.

Routes:
* `POST /api/v2/pins[?strong=true]` -> 201 with a new PIN (`id`, `code`: 25 characters when
  strong, 4 otherwise, `authToken: null`, `expiresIn` ...). Needs `X-Plex-Client-Identifier`
  (400 otherwise).
* `GET /api/v2/pins/<id>` -> the PIN; `authToken` set once approved. 404 ("Code not found or
  expired") for an unknown or expired PIN, or one asked for by another client identifier.
* `GET /api/v2/resources[?includeHttps=1&includeRelay=1]` -> the account's devices; relay
  connections only with `includeRelay=1`. Needs the account token (header `X-Plex-Token`, or
  the query, which real plex.tv also takes and which `requests` records so tests can say it was
  not used); 401 otherwise.
Errors come as plex.tv's JSON: `{"errors": [{"code": …, "message": …, "status": …}]}`.

Control: `approve(token=None, pin_id=None)` (the newest PIN by default), `approve_after` (a PIN
approves itself at that poll), `expire(pin_id=None)`, `set_error(status, path=None)`,
`set_slow(seconds)`, `set_answer(path, body, content_type)` (HTTP 200 with that body),
`add_server(...)`, `add_connection(...)`, `remove_servers()`, `clear_resources()`, `requests`
(method, path with query, headers).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import itertools
import json
from pathlib import Path
import secrets
import string
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

RECORDED = Path(__file__).parent.parent / "fixtures" / "ha-core" / "plextv_resources_one_server.xml"
_BOOLS = frozenset(
    {
        "owned", "home", "synced", "relay", "presence", "httpsRequired", "publicAddressMatches",
        "dnsRebindingProtection", "natLoopbackSupported", "local", "IPv6",
    }
)  # fmt: skip
_NUMBERS = frozenset({"port", "ownerId"})
_NULL_WHEN_EMPTY = frozenset({"ownerId", "sourceTitle"})


def _json_value(name: str, text: str) -> Any:
    if name in _NULL_WHEN_EMPTY and text == "":
        return None
    if name in _BOOLS:
        return text == "1"
    if name in _NUMBERS:
        return int(text)
    return text


def recorded_resources() -> list[dict[str, Any]]:
    """The recorded plex.tv resources answer in its JSON form."""
    resources = []
    for elem in ET.fromstring(RECORDED.read_text()).iter("resource"):  # noqa: S314 - our fixture
        resource = {k: _json_value(k, v) for k, v in elem.attrib.items()}
        resource["connections"] = [
            {k: _json_value(k, v) for k, v in conn.attrib.items()}
            for conn in elem.iter("connection")
        ]
        resources.append(resource)
    return resources


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _resources_xml(resources: list[dict[str, Any]]) -> str:
    root = ET.Element("resources")
    for resource in resources:
        attrs = {k: _xml_value(v) for k, v in resource.items() if k != "connections"}
        elem = ET.SubElement(root, "resource", attrs)
        conns = ET.SubElement(elem, "connections")
        for conn in resource.get("connections", []):
            ET.SubElement(conns, "connection", {k: _xml_value(v) for k, v in conn.items()})
    return ET.tostring(root, encoding="unicode")


def _errors(status: int, code: int, message: str) -> web.Response:
    body = {"errors": [{"code": code, "message": message, "status": status}]}
    return web.json_response(body, status=status)


@dataclass
class FakePin:
    """A PIN as plex.tv keeps it."""

    id: int
    code: str
    client_identifier: str
    product: str
    created: datetime
    lifetime_s: int
    auth_token: str | None = None
    polls: int = 0
    expired: bool = False

    def as_json(self) -> dict[str, Any]:
        expires = self.created + timedelta(seconds=self.lifetime_s)
        return {
            "id": self.id,
            "code": self.code,
            "product": self.product,
            "trusted": False,
            "qr": f"https://plex.tv/api/v2/pins/qr/{self.code}",
            "clientIdentifier": self.client_identifier,
            "location": {
                "code": "DE",
                "european_union_member": True,
                "continent_code": "EU",
                "country": "Germany",
                "city": "Berlin",
                "time_zone": "Europe/Berlin",
                "postal_code": "10115",
                "in_privacy_restricted_country": True,
                "subdivisions": "Land Berlin",
                "coordinates": "52.5200, 13.4050",
            },
            "expiresIn": max(0, int((expires - datetime.now(UTC)).total_seconds())),
            "createdAt": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "authToken": self.auth_token,
            "newRegistration": None,
        }


@dataclass
class PlexTvRequest:
    """One request the fake received."""

    method: str
    path_qs: str
    headers: dict[str, str] = field(default_factory=dict)


class PlexTvSimulator:
    """plex.tv's PIN and resources endpoints on 127.0.0.1."""

    def __init__(
        self,
        *,
        token: str = "plex-tv-token",  # noqa: S107 - the fake account's token
        pin_lifetime_s: int = 1800,
        approve_after: int | None = None,
    ) -> None:
        """`token`: the account's token (what an approved PIN yields; what resources accept)."""
        self.token = token
        self.pin_lifetime_s = pin_lifetime_s
        self.approve_after = approve_after
        self.resources: list[dict[str, Any]] = recorded_resources()
        self.pins: dict[int, FakePin] = {}
        self.requests: list[PlexTvRequest] = []
        self.url = ""
        self._ids = itertools.count(1_000_000_001)
        self._error: int | None = None
        self._path_errors: dict[str, int] = {}
        self._slow = 0.0
        self._answers: dict[str, tuple[bytes, str]] = {}
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and return the base URL."""
        self._stopping.clear()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/v2/pins", self._create_pin)
        app.router.add_get("/api/v2/pins/{pin_id}", self._get_pin)
        app.router.add_get("/api/v2/resources", self._resources)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening (requests kept waiting by `set_slow` are answered at once)."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PlexTvSimulator:
        """Start on any free port."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    # ------------------------------------------------------------------ control

    def set_error(self, status: int | None, path: str | None = None) -> None:
        """Answer every request (or those to `path`) with this HTTP status (None: normal again)."""
        if path is None:
            self._error = status
        elif status is None:
            self._path_errors.pop(path, None)
        else:
            self._path_errors[path] = status

    def set_slow(self, delay_s: float) -> None:
        """Wait this long before every answer."""
        self._slow = delay_s

    def set_answer(self, path: str, body: bytes | None, content_type: str = "text/html") -> None:
        """Answer `path` with HTTP 200 and this body (None: normal again)."""
        if body is None:
            self._answers.pop(path, None)
        else:
            self._answers[path] = (body, content_type)

    def latest_pin(self) -> FakePin:
        """The PIN made last."""
        return self.pins[max(self.pins)]

    def approve(self, token: str | None = None, pin_id: int | None = None) -> None:
        """The user approves the PIN on plex.tv (the newest by default)."""
        pin = self.pins[pin_id] if pin_id is not None else self.latest_pin()
        pin.auth_token = token or self.token

    def expire(self, pin_id: int | None = None) -> None:
        """The PIN runs out (404 from now on)."""
        pin = self.pins[pin_id] if pin_id is not None else self.latest_pin()
        pin.expired = True

    def clear_resources(self) -> None:
        """An account with no devices at all."""
        self.resources = []

    def remove_servers(self) -> None:
        """Keep only the recorded players."""
        self.resources = [r for r in self.resources if "server" not in r.get("provides", "")]

    def add_server(
        self,
        name: str,
        client_identifier: str,
        uri: str,
        *,
        access_token: str = "sim-token",  # noqa: S107 - the simulator's token
        owned: bool = True,
        local: bool = True,
        relay: bool = False,
    ) -> dict[str, Any]:
        """Add a server with one connection, shaped as the recorded one."""
        template = next(r for r in recorded_resources() if r["provides"] == "server")
        server = template | {
            "name": name,
            "clientIdentifier": client_identifier,
            "accessToken": access_token,
            "owned": owned,
            "connections": [],
        }
        self.resources.insert(0, server)
        self.add_connection(client_identifier, uri, local=local, relay=relay)
        return server

    def add_connection(
        self, client_identifier: str, uri: str, *, local: bool = True, relay: bool = False
    ) -> None:
        """Another way to reach a device."""
        resource = next(r for r in self.resources if r["clientIdentifier"] == client_identifier)
        host_port = uri.split("://", 1)[1]
        address, _, port = host_port.rpartition(":")
        resource["connections"].append(
            {
                "protocol": uri.split("://", 1)[0],
                "address": address,
                "port": int(port or 32400),
                "uri": uri,
                "local": local,
                "relay": relay,
                "IPv6": False,
            }
        )

    # ------------------------------------------------------------------ handlers

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(PlexTvRequest(request.method, request.path_qs, dict(request.headers)))
        if self._slow:
            with contextlib.suppress(TimeoutError):  # cut short by stop()
                await asyncio.wait_for(self._stopping.wait(), self._slow)
        if (answer := self._answers.get(request.path)) is not None:
            return web.Response(body=answer[0], content_type=answer[1])
        if (status := self._path_errors.get(request.path, self._error)) is not None:
            return _errors(status, 1000 + status, "Simulated failure")
        response: web.StreamResponse = await handler(request)
        return response

    async def _create_pin(self, request: web.Request) -> web.Response:
        client_identifier = request.headers.get("X-Plex-Client-Identifier", "")
        if not client_identifier:
            return _errors(400, 1000, "X-Plex-Client-Identifier is missing")
        strong = request.query.get("strong", "").lower() in ("true", "1")
        alphabet = string.ascii_lowercase + string.digits if strong else string.ascii_uppercase
        code = "".join(secrets.choice(alphabet) for _ in range(25 if strong else 4))
        pin = FakePin(
            id=next(self._ids),
            code=code,
            client_identifier=client_identifier,
            product=request.headers.get("X-Plex-Product", ""),
            created=datetime.now(UTC),
            lifetime_s=self.pin_lifetime_s if strong else 900,
        )
        self.pins[pin.id] = pin
        return self._answer(request, pin.as_json(), status=201)

    async def _get_pin(self, request: web.Request) -> web.Response:
        try:
            pin = self.pins.get(int(request.match_info["pin_id"]))
        except ValueError:
            pin = None
        if (
            pin is None
            or pin.expired
            or pin.client_identifier != request.headers.get("X-Plex-Client-Identifier")
        ):
            return _errors(404, 1020, "Code not found or expired")
        pin.polls += 1
        if self.approve_after is not None and pin.polls >= self.approve_after:
            pin.auth_token = pin.auth_token or self.token
        return self._answer(request, pin.as_json())

    async def _resources(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token")
        if token != self.token:
            return _errors(401, 1001, "User could not be authenticated")
        relay = request.query.get("includeRelay") == "1"
        resources = [
            r | {"connections": [c for c in r["connections"] if relay or not c["relay"]]}
            for r in self.resources
        ]
        if "application/json" not in request.headers.get("Accept", ""):
            return web.Response(text=_resources_xml(resources), content_type="application/xml")
        return self._answer(request, resources)

    @staticmethod
    def _answer(request: web.Request, data: Any, status: int = 200) -> web.Response:
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(data, status=status, dumps=json.dumps)
        # plex.tv's XML for a PIN: one element with the attributes.
        attrs = {k: _xml_value(v) for k, v in data.items() if not isinstance(v, dict)}
        text = ET.tostring(ET.Element("pin", attrs), encoding="unicode")
        return web.Response(text=text, status=status, content_type="application/xml")
