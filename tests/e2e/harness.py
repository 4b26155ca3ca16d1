"""Real Home Assistant processes with Plexus, each with its own simulated Plex home.

A `HaHome` owns one `hass -c <dir>` process (started through `tests.e2e.skewed_hass`, so its
wall clock can be seconds off) and one `PlexSimulator` running in the caller's event loop (so
the caller reads the players' records directly, all on this machine's monotonic clock).
Everything is set up the way a user does it, through HA's own HTTP API: a user created with
`hass --script auth`, a login, the MQTT config flow, the Plexus config flow (URL + token) and the
sync-group subentry flow; services are called through `/api/services`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import os
from pathlib import Path
import signal
import socket
import sys
import time
from typing import Any

import aiohttp

from tests.plex_simulator import ClientBehaviour, LibraryConfig, PlexSimulator
from tests.plex_simulator.clients import SimulatedClient

ROOT = Path(__file__).resolve().parents[2]
USER = "e2e"
PASSWORD = "e2e-password-not-secret"
# The same small library in every home (same seed: same titles, years and GUIDs; each
# simulator still has its own machine identifier, players and rating-key space).
SHARED_LIBRARY = LibraryConfig(
    seed=7, movies=6, shows=1, seasons_per_show=1, episodes_per_season=2, artists=0
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HomeError(RuntimeError):
    """A Home Assistant process did not do what the harness asked (its log tail is included)."""


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    """Log in as the frontend does (login flow, then its code for a token); the access token."""
    client_id = f"{url}/"

    async def post(path: str, **kwargs: Any) -> Any:
        async with session.post(f"{url}{path}", **kwargs) as response:
            if response.status >= 400:
                raise HomeError(f"POST {path} -> {response.status}: {await response.text()}")
            return await response.json()

    flow = await post(
        "/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": client_id,
        },
    )
    result = await post(
        f"/auth/login_flow/{flow['flow_id']}",
        json={"client_id": client_id, "username": username, "password": password},
    )
    if result.get("type") != "create_entry":
        raise HomeError(f"login failed: {result}")
    tokens = await post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": result["result"], "client_id": client_id},
    )
    return str(tokens["access_token"])


class HaHome:
    """One home: a Home Assistant process plus its simulated Plex server and players."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        clock_offset_s: float = 0.0,
        player_latencies_ms: tuple[tuple[int, int], ...] = ((150, 300), (150, 300)),
        player_behaviours: tuple[ClientBehaviour, ...] | None = None,
        seed: int = 1,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
    ) -> None:
        """Prepare (nothing runs until `start`).

        `player_behaviours`: one per player, how a real kind of player behaves (the simulator's
        presets; their latencies replace `player_latencies_ms`).
        """
        if player_behaviours is not None and len(player_behaviours) != len(player_latencies_ms):
            raise ValueError("one behaviour per player")
        self.name = name
        self.config_dir = workdir / name.lower().replace(" ", "_")
        self.clock_offset_s = clock_offset_s
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.simulator = PlexSimulator(
            clients=0, seed=seed, library=SHARED_LIBRARY, token=f"token-{seed}"
        )
        self.players: list[SimulatedClient] = [
            self.simulator.add_client(
                f"{name} Player {n + 1}",
                product="Plex for Android (TV)",
                latency_ms=latency,
                machine_identifier=f"{name.lower().replace(' ', '-')}-player-{n + 1}",
                behaviour=player_behaviours[n] if player_behaviours else None,
            )
            for n, latency in enumerate(player_latencies_ms)
        ]
        self.process: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""
        self.entry_id = ""
        self.entity_ids: dict[str, str] = {}  # player machine identifier -> media_player entity

    @property
    def log_file(self) -> Path:
        """Home Assistant's output."""
        return self.config_dir / "hass-output.log"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of Home Assistant's output (for failure messages)."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, timeout: float = 120.0) -> None:
        """Start the simulator and Home Assistant; log in."""
        await self.simulator.start()
        self._write_config()
        await self._run(
            sys.executable,
            "-m",
            "homeassistant",
            "--script",
            "auth",
            "-c",
            str(self.config_dir),
            "add",
            USER,
            PASSWORD,
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        output = self.log_file.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e.skewed_hass",
            "--clock-offset",
            str(self.clock_offset_s),
            "-c",
            str(self.config_dir),
            "--skip-pip",
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        self.session = aiohttp.ClientSession()
        await self._until(self._http_up, timeout, "Home Assistant did not start")
        self.token = await self._login()
        await self._confirm_http_config()

    async def stop(self) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL) and the simulator."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self.session is not None:
            await self.session.close()
        await self.simulator.stop()

    def _write_config(self) -> None:
        (self.config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
        link = self.config_dir / "custom_components" / "plexus"
        if not link.exists():
            link.symlink_to(ROOT / "custom_components" / "plexus")
        (self.config_dir / "configuration.yaml").write_text(
            f"""homeassistant:
  name: {self.name}
  time_zone: UTC
  latitude: 52.0
  longitude: 4.0
  elevation: 0
  unit_system: metric
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {self.port}
api:
config:
logger:
  default: warning
  logs:
    custom_components.plexus: info
"""
        )

    async def _run(self, *command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode:
            raise HomeError(f"{' '.join(command)} failed: {output.decode(errors='replace')}")

    async def _http_up(self) -> bool:
        if self.process is not None and self.process.returncode is not None:
            raise HomeError(f"{self.name}: Home Assistant exited\n{self.log_tail()}")
        try:
            async with self._http.get(f"{self.url}/api/") as response:
                return response.status in (200, 401)
        except aiohttp.ClientError:
            return False

    async def _until(self, check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise HomeError(f"{self.name}: {what} within {timeout} s\n{self.log_tail()}")
            await asyncio.sleep(0.25)

    @property
    def _http(self) -> aiohttp.ClientSession:
        assert self.session is not None, "start() first"
        return self.session

    async def _login(self) -> str:
        try:
            return await login(self._http, self.url, USER, PASSWORD)
        except HomeError as err:
            raise HomeError(f"{self.name}: {err}") from err

    async def _confirm_http_config(self) -> None:
        """Confirm the HTTP settings from configuration.yaml, as the user is asked to.

        HA 2026 moves them into storage as a trial and, unconfirmed, reverts to the defaults and
        restarts five minutes later.
        """
        async with self._http.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise HomeError(f"{self.name}: websocket authentication failed")
            await ws.send_json({"id": 1, "type": "http/config/promote"})
            result = await ws.receive_json()
        if not result.get("success"):
            error = result.get("error", {})
            # Nothing pending (already confirmed on an earlier start) is fine.
            if error.get("code") != "not_allowed":
                raise HomeError(f"{self.name}: confirming the HTTP config failed: {result}")

    # ------------------------------------------------------------------ HTTP API

    async def _post_json(self, path: str, body: dict[str, Any], *, auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self._http.post(f"{self.url}{path}", json=body, headers=headers) as response:
            if response.status >= 400:
                text = await response.text()
                raise HomeError(f"{self.name}: POST {path} -> {response.status}: {text}")
            return await response.json()

    async def get(self, path: str) -> Any:
        """GET an API path (JSON)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._http.get(f"{self.url}{path}", headers=headers) as response:
            if response.status >= 400:
                raise HomeError(f"{self.name}: GET {path} -> {response.status}")
            return await response.json()

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Call a service through the REST API; (HTTP status, JSON or text)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._http.post(
            f"{self.url}/api/services/{domain}/{service}", json=data or {}, headers=headers
        ) as response:
            body: Any = await response.text()
            with contextlib.suppress(ValueError):
                body = await response.json(content_type=None)
            return response.status, body

    async def states(self) -> list[dict[str, Any]]:
        """Every entity state."""
        result: list[dict[str, Any]] = await self.get("/api/states")
        return result

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """One entity's state (None when it does not exist)."""
        return next((s for s in await self.states() if s["entity_id"] == entity_id), None)

    async def _flow(self, path: str, init: dict[str, Any], *steps: dict[str, Any]) -> Any:
        result = await self._post_json(path, init)
        for step in steps:
            if result.get("type") not in ("form", "menu"):
                break
            result = await self._post_json(f"{path}/{result['flow_id']}", step)
        if result.get("type") != "create_entry":
            raise HomeError(f"{self.name}: flow {path} {init} ended with {result}")
        return result

    # ------------------------------------------------------------------ set-up as a user does

    async def add_mqtt(self) -> None:
        """The MQTT integration, pointed at the broker."""
        await self._flow(
            "/api/config/config_entries/flow",
            {"handler": "mqtt"},
            {
                "broker": self.mqtt_host,
                "port": self.mqtt_port,
                "other_settings": {"set_client_cert": False, "set_ca_cert": "off"},
            },
        )

    async def add_plexus(self, *, timeout: float = 60.0) -> None:
        """Plexus with "Enter URL and token"; wait for every player's media_player entity."""
        result = await self._flow(
            "/api/config/config_entries/flow",
            {"handler": "plexus"},
            {"next_step_id": "manual"},
            {"url": self.simulator.url, "token": self.simulator.token, "verify_ssl": True},
        )
        self.entry_id = result["result"]["entry_id"]

        async def players_listed() -> bool:
            names = {p.name: p.machine_identifier for p in self.players}
            for state in await self.states():
                name = state["attributes"].get("friendly_name")
                if state["entity_id"].startswith("media_player.") and name in names:
                    self.entity_ids[names[name]] = state["entity_id"]
            return len(self.entity_ids) == len(self.players)

        await self._until(players_listed, timeout, "the players' entities did not appear")

    async def add_sync_group(self, name: str, secret: str) -> None:
        """A sync group with every player of this home, the shared secret typed in."""
        await self._flow(
            "/api/config/config_entries/subentries/flow",
            {"handler": [self.entry_id, "sync_group"]},
            {"name": name, "secret": secret, "members": list(self.entity_ids.values())},
            {},
        )

    async def wait_for_state(
        self,
        entity_id: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
        what: str = "",
    ) -> dict[str, Any]:
        """Poll an entity until `check(state)` holds; return that state."""
        found: dict[str, Any] = {}

        async def holds() -> bool:
            state = await self.state(entity_id)
            if state is not None and check(state):
                found.update(state)
                return True
            return False

        await self._until(holds, timeout, what or f"{entity_id} did not reach the state")
        return found


async def start_homes(homes: list[HaHome]) -> None:
    """Start several homes at once (Home Assistant takes a while to start)."""
    await asyncio.gather(*(home.start() for home in homes))


async def set_up_group(homes: list[HaHome], group: str, secret: str) -> None:
    """Start the homes; in each, MQTT, Plexus and the group; wait until all see every member."""
    await start_homes(homes)
    for home in homes:
        await home.add_mqtt()
        await home.add_plexus()
        await home.add_sync_group(group, secret)
    members = str(sum(len(home.players) for home in homes))
    slug = group.lower().replace(" ", "_")
    for home in homes:
        await home.wait_for_state(
            f"sensor.{slug}_members",
            lambda state: state["state"] == members,
            what=f"the group did not see all {members} members",
        )


async def stop_homes(homes: list[HaHome]) -> None:
    """Stop every home, even when some failed to start."""
    await asyncio.gather(*(home.stop() for home in homes), return_exceptions=True)
