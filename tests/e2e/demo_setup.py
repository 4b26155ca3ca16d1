"""What `scripts/develop` does once Home Assistant answers: a demo with something to look at.

Everything goes through Home Assistant's public HTTP and websocket APIs, the way a person does it
in the UI (no file under `.storage` is written):

1. onboarding with the demo user (a fresh folder), else HA's login flow with that user;
2. Plexus with "Enter URL and token" (the simulator the script started), unless it is there;
3. the options a person would set: Alice as a monitored user (watch tracking: her sensors and
   Up Next list) and path mappings from the simulator's Plex folders to the demo's media folder;
4. a transfer profile "Laptop" (subentry): the catalog's files under `<media>/share`, copied to
   `<media>/laptop` at a limited speed, so a transfer shows progress for a while;
5. a sync-play group "Movie night" (subentry) of two local simulated players;
6. the "Plexus" dashboard as the default panel (frontend system data);
7. motion: Plex webhooks of episodes Alice watched (her Up Next list fills, her watch time
   counts), three movies queued on the profile (real files, written here), the group playing a
   movie in sync (the player of the third client was started by the simulator's `--autoplay`).

Every step is skipped when its result is already there (a second start of the same folder).
Prints one line per step and "demo ready" at the end; "demo setup FAILED: ..." and exit status 1
on any error (`scripts/develop --check` fails on it).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from datetime import UTC, datetime, timedelta
import hashlib
import json
from pathlib import Path
import sys
import time
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import aiohttp

USER = "demo"
PASSWORD = "demo-password-not-secret"
SIM_TOKEN = "demo-token"
# What the frontend's onboarding map starts at when nothing is detected (met's "no home yet").
DEFAULT_LOCATION = {"latitude": 52.3731339, "longitude": 4.8903147}
DASHBOARD = "plexus-demo"
# The user whose history the demo fills (one of the simulator's accounts; the Bedroom Roku's).
# Every account is monitored: the option also chooses whose sessions the players show.
TRACKED_USER = (1001, "Alice")
PROFILE = "Laptop"
GROUP = "Movie night"
GROUP_MEMBERS = ("media_player.bedroom_roku", "media_player.office_htpc")
# Three movies copied at this speed: each takes FILE_MIB * 1024 / BANDWIDTH_KIB seconds (48 s).
FILE_MIB = 24
BANDWIDTH_KIB = 512
TRANSFERS = 3
# Alice's history: the first episodes of a few shows (Up Next: the episode after the last).
WATCHED_EPISODES = {0: 3, 1: 1, 2: 5}  # show index -> episodes of season 1 watched
# Simulated minutes Alice watched on each of the days before the demo started (newest first):
# long-term statistics of her "watch time today" sensor, so its weekly graph is not empty on a
# fresh demo (HA compiles hourly statistics only once an hour has passed).
PAST_WATCH_MINUTES = (95, 40, 130, 0, 75, 160)
STEP_TIMEOUT_S = 120.0


def say(text: str) -> None:
    """One line of the demo set-up's report (in scripts/develop's output)."""
    sys.stdout.write(f"[demo] {text}\n")
    sys.stdout.flush()


class SetupError(RuntimeError):
    """Home Assistant did not do what the demo needs."""


class Websocket:
    """HA's websocket API: one authenticated connection, one command at a time.

    Shared with the demo check (`tests/e2e/demo.py`), which raises its own error type.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        error: type[RuntimeError] = SetupError,
        timeout: float = STEP_TIMEOUT_S,
    ) -> None:
        """Wrap an authenticated connection."""
        self._ws = ws
        self._id = 0
        self._error = error
        self._timeout = timeout

    async def call(self, command: str, **data: Any) -> Any:
        """Send one command; its result, or the error type with HA's error."""
        self._id += 1
        await self._ws.send_json({"id": self._id, "type": command, **data})
        async with asyncio.timeout(self._timeout):
            while True:
                message = await self._ws.receive_json()
                if message.get("id") == self._id and message.get("type") == "result":
                    break
        if not message.get("success"):
            raise self._error(f"websocket {command} failed: {message.get('error')}")
        return message.get("result")


@contextlib.asynccontextmanager
async def open_websocket(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    error: type[RuntimeError] = SetupError,
    timeout: float = STEP_TIMEOUT_S,
) -> AsyncIterator[Websocket]:
    """An authenticated websocket connection to the HA at `url`."""
    async with http.ws_connect(f"{url}/api/websocket", max_msg_size=0) as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": token})
        if (await ws.receive_json()).get("type") != "auth_ok":
            raise error("websocket authentication failed")
        yield Websocket(ws, error, timeout)


class Home:
    """One Home Assistant over HTTP: onboarding, login, REST and websocket calls."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Talk to the HA at `url` (nothing is sent yet)."""
        self.http = session
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.token = ""

    async def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One HTTP call; its JSON, or SetupError with the status and body."""
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self.http.request(
            method, f"{self.url}{path}", headers=headers, **kwargs
        ) as response:
            if response.status >= 400:
                raise SetupError(f"{method} {path} -> {response.status}: {await response.text()}")
            text = await response.text()
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text  # a webhook answers with plain text

    async def token_for(self, code: str) -> str:
        """Exchange an authorization code for an access token (as the frontend does)."""
        tokens = await self.request(
            "POST",
            "/auth/token",
            auth=False,
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
        )
        return str(tokens["access_token"])

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[Websocket]:
        """An authenticated websocket connection."""
        async with open_websocket(self.http, self.url, self.token) as ws:
            yield ws

    async def wait_until_up(self, timeout: float = STEP_TIMEOUT_S) -> None:
        """Wait until HA's HTTP server answers."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"{self.url}/manifest.json") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise SetupError(f"Home Assistant did not answer within {timeout} s")
            await asyncio.sleep(0.5)

    async def onboarded(self) -> bool:
        """True when onboarding has a user already (HA drops its views once it is over)."""
        async with self.http.get(f"{self.url}/api/onboarding") as response:
            if response.status == 404:
                return True
            if response.status >= 400:
                raise SetupError(f"GET /api/onboarding -> {response.status}")
            steps = await response.json()
        return any(step["step"] == "user" and step["done"] for step in steps)

    async def onboard(self, username: str, password: str) -> list[str]:
        """Every onboarding step, as the frontend's onboarding pages do them; the step names."""
        created = await self.request(
            "POST",
            "/api/onboarding/users",
            auth=False,
            json={
                "client_id": self.client_id,
                "name": "Demo",
                "username": username,
                "password": password,
                "language": "en",
            },
        )
        self.token = await self.token_for(created["auth_code"])
        async with self.websocket() as ws:
            await ws.call(
                "config/core/update",
                **DEFAULT_LOCATION,
                elevation=0,
                unit_system="metric",
                time_zone="Europe/Amsterdam",
                currency="EUR",
                country="NL",
                language="en",
            )
        await self.request("POST", "/api/onboarding/core_config")
        await self.request("POST", "/api/onboarding/analytics")
        integration = await self.request(
            "POST",
            "/api/onboarding/integration",
            json={"client_id": self.client_id, "redirect_uri": f"{self.url}/?auth_callback=1"},
        )
        # The frontend logs in again with this code when onboarding ends.
        self.token = await self.token_for(integration["auth_code"])
        steps = await self.request("GET", "/api/onboarding", auth=False)
        if not all(step["done"] for step in steps):
            raise SetupError(f"onboarding not finished: {steps}")
        return [step["step"] for step in steps]

    async def log_in(self, username: str, password: str) -> None:
        """HA's login flow (what the login page does), then its code for a token."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            auth=False,
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            auth=False,
            json={"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise SetupError(f"login as {username!r} failed: {result.get('errors')}")
        self.token = await self.token_for(result["result"])

    async def flow(self, path: str, init: dict[str, Any], *steps: dict[str, Any]) -> Any:
        """A config/options/subentry flow through REST, step by step; its last result."""
        result = await self.request("POST", path, json=init)
        for step in steps:
            if result.get("type") not in ("form", "menu"):
                break
            result = await self.request("POST", f"{path}/{result['flow_id']}", json=step)
        if result.get("type") != "create_entry":
            raise SetupError(f"flow {path} {init} ended with {result}")
        return result

    async def call_service(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        """An action through REST (what a dashboard button does)."""
        return await self.request("POST", f"/api/services/{domain}/{service}", json=data)

    async def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state by entity id."""
        return {s["entity_id"]: s for s in await self.request("GET", "/api/states")}


async def until[T](what: str, check: Callable[[], Awaitable[T | None]], timeout: float) -> T:
    """Poll `check()` until it returns something; that value."""
    deadline = time.monotonic() + timeout
    while (value := await check()) is None:
        if time.monotonic() > deadline:
            raise SetupError(f"{what} within {timeout} s")
        await asyncio.sleep(0.5)
    return value


class Simulator:
    """The Plex simulator's HTTP API (the demo's server), read as Plex clients read it."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        """Read the server at `url`."""
        self.http = session
        self.url = url.rstrip("/")
        self.token = token

    async def xml(self, path: str, **params: str) -> ET.Element:
        """One XML answer."""
        headers = {"X-Plex-Token": self.token, "Accept": "application/xml"}
        async with self.http.get(f"{self.url}{path}", params=params, headers=headers) as response:
            if response.status >= 400:
                raise SetupError(f"simulator GET {path} -> {response.status}")
            return ET.fromstring(await response.read())  # noqa: S314 - the demo's own simulator

    async def identity(self) -> str:
        """The server's machine identifier."""
        return str((await self.xml("/identity")).get("machineIdentifier"))

    async def section(self, kind: str) -> str:
        """The key of the first section of a type (movie, show)."""
        for directory in await self.xml("/library/sections"):
            if directory.get("type") == kind:
                return str(directory.get("key"))
        raise SetupError(f"the simulator has no {kind} section")

    async def items(self, kind: str, plex_type: str, count: int) -> list[ET.Element]:
        """The first `count` items of a type in the section of that kind."""
        section = await self.section(kind)
        container = await self.xml(
            f"/library/sections/{section}/all",
            type=plex_type,
            includeGuids="1",
            **{"X-Plex-Container-Start": "0", "X-Plex-Container-Size": str(count)},
        )
        return list(container)

    async def accounts(self) -> list[str]:
        """The names of the server's user accounts."""
        return [str(a.get("name")) for a in await self.xml("/accounts") if a.get("name")]

    async def roots(self) -> dict[str, str]:
        """Each video section's type and its first folder as Plex sees it."""
        roots: dict[str, str] = {}
        for directory in await self.xml("/library/sections"):
            location = directory.find("Location")
            if directory.get("type") in ("movie", "show") and location is not None:
                roots.setdefault(str(directory.get("type")), str(location.get("path")))
        return roots


def webhook_payload(server_id: str, episode: ET.Element, user: tuple[int, str]) -> dict[str, Any]:
    """A `media.scrobble` webhook for an episode, shaped as Plex Media Server sends it."""
    duration = int(episode.get("duration") or 1_800_000)
    return {
        "event": "media.scrobble",
        "user": True,
        "owner": False,
        "Account": {"id": user[0], "title": user[1]},
        "Server": {"title": "Plexus Simulator", "uuid": server_id},
        "Player": {"local": True, "title": "Bedroom Roku", "uuid": "demo-webhook-player"},
        "Metadata": {
            "ratingKey": episode.get("ratingKey"),
            "key": episode.get("key"),
            "guid": episode.get("guid"),
            "type": "episode",
            "title": episode.get("title"),
            "year": int(episode.get("year") or 0) or None,
            "duration": duration,
            "viewOffset": int(duration * 0.95),
            "index": int(episode.get("index") or 0),
            "parentIndex": int(episode.get("parentIndex") or 0),
            "grandparentTitle": episode.get("grandparentTitle"),
            "grandparentRatingKey": episode.get("grandparentRatingKey"),
            "grandparentGuid": episode.get("grandparentGuid"),
            "Guid": [{"id": g.get("id")} for g in episode.findall("Guid")],
        },
    }


def write_source(path: Path, size: int) -> None:
    """A file of `size` bytes (same content for the same path)."""
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(path).encode()).digest() * 2048  # 64 KiB
    with path.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)


class DemoSetup:
    """The steps of the module docstring against one HA and one simulator."""

    def __init__(self, home: Home, sim: Simulator, media: Path) -> None:
        """Set up the demo of `home`, whose Plexus server is `sim`; files under `media`."""
        self.home = home
        self.sim = sim
        self.media = media
        self.entry_id = ""

    async def log_in(self) -> None:
        """Onboard a fresh HA with the demo user, else log in as that user."""
        await self.home.wait_until_up()
        if await self.home.onboarded():
            await self.home.log_in(USER, PASSWORD)
            say(f"logged in as {USER!r} (login flow)")
        else:
            steps = await self.home.onboard(USER, PASSWORD)
            say(f"onboarding done ({', '.join(steps)}), logged in as {USER!r}")

    async def run(self) -> None:
        """Every step; each skipped when already done."""
        await self.log_in()
        async with self.home.websocket() as ws:

            async def running() -> bool | None:
                return True if (await ws.call("get_config"))["state"] == "RUNNING" else None

            await until("HA did not finish starting", running, STEP_TIMEOUT_S)
            await self.add_plexus(ws)
            await self.set_options()
            await self.add_subentries(ws)
            await ws.call(
                "frontend/set_system_data", key="core", value={"default_panel": DASHBOARD}
            )
            say(f"default dashboard: {DASHBOARD}")
            await self.wait_for_entities()
            await self.send_webhooks()
            await self.import_past_watch_time(ws)
            await self.queue_transfers()
            await self.play_in_sync()

    async def add_plexus(self, ws: Websocket) -> None:
        """The Plexus config flow with the simulator's URL and token (unless it is there)."""
        entries = await ws.call("config_entries/get", domain="plexus")
        if entries:
            self.entry_id = entries[0]["entry_id"]
            say(f"Plexus entry {entries[0]['title']!r} is there")
            return
        result = await self.home.flow(
            "/api/config/config_entries/flow",
            {"handler": "plexus"},
            {"next_step_id": "manual"},
            {"url": self.sim.url, "token": self.sim.token, "verify_ssl": True},
        )
        self.entry_id = result["result"]["entry_id"]
        say(f"Plexus config flow: entry {result['result']['title']!r} created")

    async def set_options(self) -> None:
        """The server's users monitored, its folders mapped into the demo's media folder."""
        path = "/api/config/config_entries/options/flow"
        form = await self.home.request("POST", path, json={"handler": self.entry_id})
        suggested = {
            str(field["name"]): (field.get("description") or {}).get("suggested_value")
            for field in form.get("data_schema", [])
        }
        if TRACKED_USER[1] in (suggested.get("monitored_users") or []):
            await self.home.request("DELETE", f"{path}/{form['flow_id']}")
            say("options: set already (monitored users)")
            return
        roots = await self.sim.roots()
        share = self.media / "share"
        mappings = "\n".join(f"{root} => {share / kind}" for kind, root in sorted(roots.items()))
        users = await self.sim.accounts()
        result = await self.home.request(
            "POST",
            f"{path}/{form['flow_id']}",
            json={"monitored_users": users, "path_mappings": mappings},
        )
        if result.get("type") != "create_entry":
            raise SetupError(f"options flow ended with {result}")
        say(f"options: monitored users {', '.join(users)}; path mappings {mappings!r}")

    async def add_subentries(self, ws: Websocket) -> None:
        """The transfer profile and the sync group (the server entry reloads after each)."""
        have = {
            (s["subentry_type"], s["title"])
            for s in await ws.call("config_entries/subentries/list", entry_id=self.entry_id)
        }
        path = "/api/config/config_entries/subentries/flow"
        if ("transfer_profile", PROFILE) not in have:
            laptop = self.media / "laptop"
            await self.home.flow(
                path,
                {"handler": [self.entry_id, "transfer_profile"]},
                {
                    "name": PROFILE,
                    "source_mode": "catalog",
                    # The "plex" layout puts Movies/ and TV/ under the destination.
                    "movie_destination": str(laptop),
                    "tv_destination": str(laptop),
                    "bandwidth_limit_kib": BANDWIDTH_KIB,
                },
            )
            say(f"transfer profile {PROFILE!r}: catalog files -> {laptop}")
            await self.wait_for((f"sensor.{PROFILE.lower()}_queue",), "the profile's sensors")
        if ("sync_group", GROUP) not in have:
            await self.wait_for(GROUP_MEMBERS, "the group's players")
            await self.home.flow(
                path,
                {"handler": [self.entry_id, "sync_group"]},
                {"name": GROUP, "members": list(GROUP_MEMBERS)},
                {},
            )
            say(f"sync group {GROUP!r}: {', '.join(GROUP_MEMBERS)}")

    async def wait_for(self, entity_ids: tuple[str, ...], what: str) -> dict[str, Any]:
        """Wait until these entities exist and are available; their states."""

        async def present() -> dict[str, Any] | None:
            states = await self.home.states()
            found = {e: states[e] for e in entity_ids if e in states}
            available = all(s["state"] != "unavailable" for s in found.values())
            return found if len(found) == len(entity_ids) and available else None

        return await until(f"{what} did not appear", present, STEP_TIMEOUT_S)

    async def wait_for_entities(self) -> None:
        """The entities of the user, the profile and the group; the catalog imported."""
        user = TRACKED_USER[1].lower()
        group = GROUP.lower().replace(" ", "_")
        profile = PROFILE.lower()
        await self.wait_for(
            (
                f"todo.{user}_up_next",
                f"sensor.{user}_watch_time_today",
                f"sensor.{profile}_queue",
                f"binary_sensor.{group}_in_sync",
            ),
            "the tracked user's, profile's and group's entities",
        )

        async def imported() -> str | None:
            state = (await self.home.states()).get("sensor.plexus_simulator_catalog_episodes")
            value = state["state"] if state else "unknown"
            return value if value not in ("unknown", "unavailable", "0") else None

        episodes = await until("the catalog was not imported", imported, STEP_TIMEOUT_S)
        say(f"entities there; catalog imported ({episodes} episodes)")

    async def webhook_path(self) -> str:
        """The webhook path the options dialog shows (where a person pastes it into Plex)."""
        path = "/api/config/config_entries/options/flow"
        form = await self.home.request("POST", path, json={"handler": self.entry_id})
        await self.home.request("DELETE", f"{path}/{form['flow_id']}")
        local = str(form.get("description_placeholders", {}).get("webhook_local") or "")
        if "/api/webhook/" not in local:
            raise SetupError(f"no webhook URL in the options dialog: {local!r}")
        return urlsplit(local).path

    async def send_webhooks(self) -> None:
        """Plex's webhooks for the episodes Alice watched (duplicates are dropped by Plexus)."""
        server_id = await self.sim.identity()
        episodes = await self.sim.items("show", "4", 200)
        shows: dict[str, list[ET.Element]] = {}
        for episode in episodes:
            if episode.get("parentIndex") == "1":
                shows.setdefault(str(episode.get("grandparentRatingKey")), []).append(episode)
        chosen = list(shows.values())
        webhook = await self.webhook_path()
        sent = 0
        for show_index, count in WATCHED_EPISODES.items():
            if show_index >= len(chosen):
                continue
            watched = sorted(chosen[show_index], key=lambda e: int(e.get("index") or 0))[:count]
            for episode in watched:
                form = aiohttp.FormData()
                form.add_field(
                    "payload",
                    json.dumps(webhook_payload(server_id, episode, TRACKED_USER)),
                    content_type="application/json",
                )
                await self.home.request("POST", webhook, auth=False, data=form)
                sent += 1
        user = TRACKED_USER[1].lower()

        async def listed() -> int | None:
            # One item per show she is watching, once the tracker recorded every webhook.
            state = (await self.home.states()).get(f"todo.{user}_up_next")
            count = int(state["state"]) if state and state["state"].isdigit() else 0
            return count if count >= len(WATCHED_EPISODES) else None

        items = await until("Up Next stayed empty", listed, STEP_TIMEOUT_S)
        say(f"webhooks: {sent} episodes {TRACKED_USER[1]} watched; Up Next lists {items}")

    async def import_past_watch_time(self, ws: Websocket) -> None:
        """Simulated watch time of the days before the demo, as long-term statistics."""
        statistic = f"sensor.{TRACKED_USER[1].lower()}_watch_time_today"
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        first = now - timedelta(days=len(PAST_WATCH_MINUTES))
        known = await ws.call(
            "recorder/statistics_during_period",
            start_time=(first - timedelta(hours=1)).isoformat(),
            statistic_ids=[statistic],
            period="hour",
            types=["sum"],
        )
        if known.get(statistic):
            say(f"statistics of {statistic}: there already")
            return
        rows, total = [], 0.0
        for days_ago, minutes in reversed(list(enumerate(PAST_WATCH_MINUTES, start=1))):
            total += minutes
            start = now - timedelta(days=days_ago)
            rows.append({"start": start.isoformat(), "state": minutes, "sum": total})
        await ws.call(
            "recorder/import_statistics",
            metadata={
                "has_mean": False,
                "mean_type": 0,
                "has_sum": True,
                "name": None,
                "source": "recorder",
                "statistic_id": statistic,
                "unit_class": "duration",
                "unit_of_measurement": "min",
            },
            stats=rows,
        )
        say(f"statistics of {statistic}: {len(rows)} simulated past days imported")

    async def queue_transfers(self) -> None:
        """Real files for a few movies, queued on the profile with plexus.sync_media."""
        roots = await self.sim.roots()
        movies = await self.sim.items("movie", "1", TRANSFERS)
        share = self.media / "share" / "movie"
        queued = []
        for movie in movies:
            part = movie.find("Media/Part")
            plex_file = part.get("file") if part is not None else None
            if not plex_file or not plex_file.startswith(roots["movie"] + "/"):
                raise SetupError(f"no file under {roots['movie']} for {movie.get('title')}")
            local = share / plex_file[len(roots["movie"]) + 1 :]
            await asyncio.to_thread(write_source, local, FILE_MIB * 1024 * 1024)
            try:
                await self.home.call_service(
                    "plexus",
                    "sync_media",
                    {"profile": PROFILE, "rating_key": movie.get("ratingKey")},
                )
            except SetupError as err:  # e.g. copied already on an earlier start
                say(f"transfer of {movie.get('title')!r} not queued: {err}")
                continue
            queued.append(str(movie.get("title")))
        say(f"transfers queued on {PROFILE!r}: {', '.join(queued) or 'none'}")

    async def play_in_sync(self) -> None:
        """The group plays a movie; wait until it reports itself in sync."""
        group = GROUP.lower().replace(" ", "_")
        state = (await self.home.states()).get(f"sensor.{group}_state")
        if state and state["state"] == "playing":
            say(f"{GROUP!r} is playing already")
            return
        movies = await self.sim.items("movie", "1", 5)
        movie = movies[-1]
        media = {"library_name": "Movies", "title": movie.get("title"), "year": movie.get("year")}
        await self.home.call_service(
            "plexus", "sync_play", {"group": GROUP, "media": json.dumps(media)}
        )

        async def in_sync() -> bool | None:
            found = (await self.home.states()).get(f"binary_sensor.{group}_in_sync")
            return True if found and found["state"] == "on" else None

        await until(f"{GROUP!r} did not play in sync", in_sync, STEP_TIMEOUT_S)
        say(f"{GROUP!r} plays {movie.get('title')!r} in sync")


async def main(argv: list[str] | None = None) -> int:
    """Set the demo up; 0 when every step passed."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.demo_setup", description=__doc__)
    parser.add_argument("--url", required=True, help="Home Assistant's URL")
    parser.add_argument("--sim-url", required=True, help="the Plex simulator's URL")
    parser.add_argument("--sim-token", default=SIM_TOKEN)
    parser.add_argument("--media", required=True, type=Path, help="the demo's media folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        setup = DemoSetup(
            Home(session, args.url), Simulator(session, args.sim_url, args.sim_token), args.media
        )
        try:
            await setup.run()
        except (SetupError, TimeoutError, aiohttp.ClientError) as err:
            say(f"demo setup FAILED: {err}")
            say("(Home Assistant keeps running; DEMO_SETUP=0 scripts/develop skips the set-up)")
            return 1
    say(f"demo ready in {time.monotonic() - started:.0f} s: {args.url}/{DASHBOARD}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
