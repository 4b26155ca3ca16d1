"""PlexSimulator: a real aiohttp HTTP server that speaks the Plex Media Server API.

Lifecycle, fault injection, websocket notifications and the simulated players live here; the
request handlers are in `handlers.py`, the XML shapes in `render.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import contextlib
import json
import logging
import random
import time
from typing import Any, Final
from urllib.parse import unquote

from aiohttp import WSCloseCode, web

from .clients import PlayQueue, SimulatedClient, StateChange, StreamDecision
from .library import Library, LibraryConfig
from .presets import ClientBehaviour

_LOGGER = logging.getLogger(__name__)

MAX_LOGGED_REQUESTS: Final = 10_000
ACCOUNTS: Final[tuple[tuple[int, str], ...]] = (
    (0, ""),
    (1, "plexowner"),
    (1001, "Alice"),
    (1002, "Bob"),
)

# name, product, platform, platform version, device, device class, model, vendor, capabilities
_PLAYER_PROFILES: Final[tuple[tuple[str, str, str, str, str, str, str, str, str], ...]] = (
    (
        "Living Room TV",
        "Plex for Android (TV)",
        "Android",
        "11",
        "SHIELD Android TV",
        "stb",
        "mdarcy",
        "NVIDIA",
        "timeline,playback,navigation,mirror,playqueues,provider-playback",
    ),
    (
        "Bedroom Roku",
        "Plex for Roku",
        "Roku",
        "12.5",
        "Roku Ultra",
        "stb",
        "4800X",
        "Roku",
        "timeline,playback,navigation,playqueues,provider-playback",
    ),
    (
        "Office HTPC",
        "Plex HTPC",
        "Linux",
        "6.8",
        "PC",
        "pc",
        "standalone",
        "",
        "timeline,playback,navigation,mirror,playqueues",
    ),
    (
        "Kitchen Plexamp",
        "Plexamp",
        "Linux",
        "6.6",
        "Raspberry Pi",
        "stb",
        "rpi4",
        "",
        "timeline,playback,playqueues,playqueues-creation",
    ),
    (
        "Phone",
        "Plex for iOS",
        "iOS",
        "18.1",
        "iPhone",
        "phone",
        "iPhone15,2",
        "Apple",
        "playback,playqueues,timeline,provider-playback",
    ),
    (
        "Samsung TV",
        "Plex for Samsung",
        "Tizen",
        "7.0",
        "Samsung TV",
        "tv",
        "QN90B",
        "Samsung",
        "timeline,playback,navigation,playqueues",
    ),
    (
        "Xbox",
        "Plex for Xbox",
        "Xbox",
        "10.0",
        "Xbox Series X",
        "stb",
        "XboxSeriesX",
        "Microsoft",
        "timeline,playback,navigation,playqueues",
    ),
    (
        "Bedroom LG",
        "Plex for LG",
        "webOS",
        "6.0",
        "LG TV",
        "tv",
        "OLED55C1",
        "LG",
        "timeline,playback,navigation,playqueues",
    ),
    (
        "Apple TV",
        "Plex for Apple TV",
        "tvOS",
        "18.0",
        "Apple TV",
        "stb",
        "AppleTV14,1",
        "Apple",
        "timeline,playback,navigation,mirror,playqueues,provider-playback",
    ),
    (
        "Fire TV",
        "Plex for Fire TV",
        "Android",
        "9",
        "Fire TV Stick 4K",
        "stb",
        "AFTMM",
        "Amazon",
        "timeline,playback,navigation,mirror,playqueues",
    ),
)
_DECISIONS: Final[tuple[StreamDecision, ...]] = ("directplay", "copy", "transcode")


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


class PlexSimulator:
    """A fake but wire-compatible Plex Media Server with simulated players."""

    def __init__(
        self,
        *,
        token: str = "sim-token",  # noqa: S107 - a test token
        friendly_name: str = "Plexus Simulator",
        machine_identifier: str | None = None,
        version: str = "1.41.3.9314-a0bfb8370",
        library: LibraryConfig | Library | None = None,
        clients: int = 3,
        seed: int = 1,
        latency_ms: tuple[int, int] = (150, 900),
        report_delay_ms: tuple[int, int] = (0, 0),
        timeline_interval_s: float = 1.0,
        scan_duration_s: float = 0.2,
        platform: str = "Linux",
        platform_version: str = "6.8.0-49-generic",
        my_plex_username: str = "plexowner@example.com",
        max_logged_requests: int = MAX_LOGGED_REQUESTS,
    ) -> None:
        """Build the library and the players; nothing listens until `start`."""
        self._rng = random.Random(seed)
        self._latency_rng = random.Random(seed * 7919 + 17)
        self.token = token
        self.friendly_name = friendly_name
        self.machine_identifier = machine_identifier or _hex(self._rng, 40)
        self.version = version
        self.platform = platform
        self.platform_version = platform_version
        self.my_plex_username = my_plex_username
        # The owner has Plex Pass: stream control (terminating sessions) is allowed.
        self.plex_pass = True
        self.latency_ms = latency_ms
        # A real player reports an effect through its next timeline, a moment after it happened;
        # the server's `playing` notification follows that report (in order per player).
        self.report_delay_ms = report_delay_ms
        self._report_rng = random.Random(seed * 104729 + 3)
        self._reported_at: dict[str, float] = {}
        self._reports: set[asyncio.TimerHandle] = set()
        self.timeline_interval_s = timeline_interval_s
        self.scan_duration_s = scan_duration_s
        self.started_at = int(time.time())
        # A newer server release: None, "new" (installable) or "new_not_installable".
        self.update: str | None = None
        if isinstance(library, Library):
            self.library = library
        else:
            self.library = Library(library or LibraryConfig(seed=seed))
        self.clients: dict[str, SimulatedClient] = {}
        self.play_queues: dict[int, PlayQueue] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.max_logged_requests = max_logged_requests
        self.accounts = ACCOUNTS
        self.host = "127.0.0.1"
        self.port = 0
        self.url = ""
        self.transient_tokens: set[str] = set()
        self._delay = 0.0
        self._error: int | None = None
        self._answers: dict[str, tuple[bytes, str]] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._websockets: dict[web.WebSocketResponse, str] = {}
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_queue_id = 100
        self._next_queue_item_id = 1000
        self._next_session_key = 1
        self._unsubscribe = self.library.subscribe(self._emit)
        for n in range(clients):
            profile = _PLAYER_PROFILES[n % len(_PLAYER_PROFILES)]
            name = profile[0] if n < len(_PLAYER_PROFILES) else f"{profile[0]} {n // 10 + 1}"
            self.add_client(
                name,
                product=profile[1],
                platform=profile[2],
                platform_version=profile[3],
                device=profile[4],
                device_class=profile[5],
                model=profile[6],
                vendor=profile[7],
                capabilities=profile[8],
                stream_decision=_DECISIONS[n % 3],
                location="wan" if n % 5 == 4 else "lan",
                user_id=ACCOUNTS[1 + n % 3][0],
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True while the server listens."""
        return self._site is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = any free port) and return the base URL."""
        from .handlers import build_app

        self.host = host
        self._outbox = asyncio.Queue()
        self._spawn(self._sender(), "sender")
        self._spawn(self._ticker(), "ticker")
        runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner, self._site = runner, site
        self.port = int(runner.addresses[0][1]) if runner.addresses else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
        self.url = f"http://{shown}:{self.port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening, drop websockets, stop every background task and player."""
        await self._shutdown_http()
        for report in self._reports:
            report.cancel()
        self._reports.clear()
        for client in self.clients.values():
            await client.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._outbox = None

    async def __aenter__(self) -> PlexSimulator:
        """`async with PlexSimulator() as sim:` starts on 127.0.0.1, any port."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop on leaving the block."""
        await self.stop()

    async def _shutdown_http(self) -> None:
        await self._close_websockets(None)
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def go_offline(self) -> None:
        """Close the listening socket and every open connection/websocket."""
        await self._shutdown_http()

    async def go_online(self) -> None:
        """Listen again on the same host and port."""
        if self._runner is not None:
            return
        from .handlers import build_app

        runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner, self._site = runner, site

    # ------------------------------------------------------------------ faults

    def set_slow(self, delay_s: float) -> None:
        """Delay every HTTP response by delay_s seconds (0 = off)."""
        self._delay = max(0.0, delay_s)

    def set_error(self, status: int | None) -> None:
        """Answer every HTTP request with this status (None = off)."""
        self._error = status

    def set_answer(self, path: str, body: bytes | None, content_type: str = "text/html") -> None:
        """Answer every request of `path` (any method) with HTTP 200 and this body (None = off).

        For what sits between a client and a real server: a proxy's login page, `<html/>`,
        a document that is not a `MediaContainer`.
        """
        if body is None:
            self._answers.pop(path, None)
        else:
            self._answers[path] = (body, content_type)

    def forced_answer(self, path: str) -> tuple[bytes, str] | None:
        """The body and content type set with `set_answer` for a path, if any."""
        return self._answers.get(path)

    def change_token(self, new_token: str) -> None:
        """Rotate the token: the old one (and transient ones) now get 401, websockets drop."""
        old = self.token
        self.token = new_token
        self.transient_tokens.clear()
        stale = [ws for ws, token in self._websockets.items() if token != new_token]
        if stale:
            self._spawn(self._close_websockets(stale), "close stale websockets")
        _LOGGER.debug("token rotated (old token had %d chars)", len(old))

    @property
    def slow_delay(self) -> float:
        """Current artificial delay in seconds."""
        return self._delay

    @property
    def forced_error(self) -> int | None:
        """Current forced status code."""
        return self._error

    def token_valid(self, token: str | None) -> bool:
        """True for the current token and transient tokens made with it."""
        return bool(token) and (token == self.token or token in self.transient_tokens)

    def log_request(self, method: str, path: str, query: dict[str, str]) -> None:
        """Remember a request (capped)."""
        self.requests.append((method, path, query))
        if len(self.requests) > self.max_logged_requests:
            del self.requests[: len(self.requests) - self.max_logged_requests // 2]

    # ------------------------------------------------------------------ notifications

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
            coro, name=f"plex-sim {name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, payload: dict[str, Any]) -> None:
        """Queue a notification for every websocket (no-op when not started)."""
        if self._outbox is not None:
            self._outbox.put_nowait(json.dumps(payload, separators=(",", ":")))

    async def notify(self, payload: dict[str, Any]) -> None:
        """Push a raw NotificationContainer to every websocket now."""
        await self._broadcast(json.dumps(payload, separators=(",", ":")))

    async def _broadcast(self, data: str) -> None:
        for ws in list(self._websockets):
            if ws.closed:
                self._websockets.pop(ws, None)
                continue
            try:
                await ws.send_str(data)
            except ConnectionError, RuntimeError:
                self._websockets.pop(ws, None)

    async def _sender(self) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        while True:
            data = await outbox.get()
            await self._broadcast(data)

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        due: dict[str, float] = {}
        while True:
            intervals = [self.timeline_interval_s] + [
                c.behaviour.timeline_interval_s for c in self.clients.values() if c.behaviour
            ]
            await asyncio.sleep(min(intervals))
            now = loop.time()
            for client in list(self.clients.values()):
                behaviour = client.behaviour
                interval = behaviour.timeline_interval_s if behaviour else self.timeline_interval_s
                key = client.machine_identifier
                if now + 0.001 < due.get(key, 0.0):
                    continue
                due[key] = now + interval
                client.advance_if_finished()
                # (a player with a behaviour also sends its timeline while paused, as real
                # players do; one now and then is lost)
                states = ("playing", "paused") if behaviour else ("playing",)
                if client.state not in states or not client.is_active:
                    continue
                if behaviour and self._report_rng.random() < behaviour.lost_reports:
                    continue
                self._emit(client.notification())
                if client.state == "playing" and client.stream_decision != "directplay":
                    # PMS reports a running transcode's progress this often too.
                    self._emit(client.transcode_notification())

    def add_websocket(self, ws: web.WebSocketResponse, token: str) -> None:
        """Register a connected notification websocket."""
        self._websockets[ws] = token

    def remove_websocket(self, ws: web.WebSocketResponse) -> None:
        """Forget a websocket."""
        self._websockets.pop(ws, None)

    @property
    def websocket_count(self) -> int:
        """Number of connected notification websockets."""
        return sum(1 for ws in self._websockets if not ws.closed)

    async def _close_websockets(self, which: Iterable[web.WebSocketResponse] | None) -> None:
        targets = list(self._websockets if which is None else which)
        for ws in targets:
            self._websockets.pop(ws, None)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in targets),
            return_exceptions=True,
        )

    # ------------------------------------------------------------------ library scans

    async def scan(self, section_id: str | int) -> None:
        """Run a simulated scan: activity started -> updated -> ended within scan_duration_s."""
        section = self.library.start_scan(section_id)
        await asyncio.sleep(self.scan_duration_s / 2)
        self.library.activity(section, "updated", 50)
        await asyncio.sleep(self.scan_duration_s / 2)
        self.library.finish_scan(section_id)

    def start_scan(self, section_id: str | int) -> None:
        """Start a scan in the background (what `/library/sections/N/refresh` does)."""
        self._spawn(self.scan(section_id), f"scan {section_id}")

    # ------------------------------------------------------------------ players

    def add_client(
        self,
        name: str,
        *,
        product: str = "Plex for Android (TV)",
        capabilities: str = "timeline,playback,navigation,mirror,playqueues",
        platform: str = "Android",
        platform_version: str = "11",
        device: str | None = None,
        device_class: str = "stb",
        model: str = "",
        vendor: str = "",
        machine_identifier: str | None = None,
        address: str | None = None,
        port: int = 32500,
        stream_decision: StreamDecision = "directplay",
        location: str = "lan",
        user_id: int = 1,
        accepts_control: bool = True,
        online: bool = True,
        latency_ms: tuple[int, int] | None = None,
        behaviour: ClientBehaviour | None = None,
    ) -> SimulatedClient:
        """Add a player that shows up in `/clients` (`behaviour`: a real kind, see presets)."""
        n = len(self.clients)
        if machine_identifier is None:
            if "Android" in product or platform == "Android":
                machine_identifier = f"{_hex(self._rng, 16)}-com-plexapp-android"
            else:
                machine_identifier = _hex(self._rng, 24)
        user_title = next(
            (title for uid, title in self.accounts if uid == user_id), f"User {user_id}"
        )
        client = SimulatedClient(
            host=self,
            machine_identifier=machine_identifier,
            name=name,
            product=product,
            platform=platform,
            platform_version=platform_version,
            device=device or name,
            device_class=device_class,
            model=model,
            vendor=vendor,
            profile=platform,
            address=address or f"192.168.1.{50 + n % 200}",
            port=port,
            capabilities=capabilities,
            stream_decision=stream_decision,
            location="wan" if location == "wan" else "lan",
            remote_public_address=f"203.0.113.{10 + n % 240}"
            if location == "wan"
            else "198.51.100.7",
            user_id=user_id,
            user_title=user_title,
            accepts_control=accepts_control,
            online=online,
            latency_ms=latency_ms,
            behaviour=behaviour,
        )
        client._rng.seed(machine_identifier)
        self.clients[machine_identifier] = client
        return client

    def remove_client(self, machine_identifier: str) -> None:
        """Remove a player (its session ends)."""
        client = self.clients.pop(machine_identifier)
        if client.is_active:
            client._stop("removed")
        if client._worker is not None:
            client._worker.cancel()

    def client(self, name_or_id: str) -> SimulatedClient:
        """A player by machine identifier or name."""
        found = self.clients.get(name_or_id)
        if found is not None:
            return found
        return next(c for c in self.clients.values() if c.name == name_or_id)

    async def autoplay(self, count: int, *, seed: int | None = None) -> list[SimulatedClient]:
        """Start `count` idle players on random movies/episodes (tracks for music players).

        For demos and benchmarks: effects are immediate (like `local_start`), offsets random.
        """
        rng = random.Random(seed if seed is not None else len(self.requests))
        videos = self.library.movies() + self.library.episodes()
        tracks = self.library.tracks()
        started: list[SimulatedClient] = []
        for client in self.clients.values():
            if len(started) >= count:
                break
            if client.is_active:
                continue
            pool = tracks if client.product == "Plexamp" and tracks else videos
            if not pool:
                break
            item = rng.choice(pool)
            offset = rng.randint(0, max(0, (item.duration or 0) // 2))
            await client.local_start(item.rating_key, offset_ms=offset)
            started.append(client)
        return started

    def active_clients(self) -> list[SimulatedClient]:
        """Players with a session (playing, paused, buffering)."""
        return [c for c in self.clients.values() if c.is_active]

    # ClientHost protocol ------------------------------------------------

    def command_delay(self, *, fast: bool, latency_ms: tuple[int, int] | None = None) -> float:
        """Jittered command delay from the seeded RNG (`latency_ms`: a player's own range)."""
        low_high = latency_ms or self.latency_ms
        lo, hi = float(low_high[0]), float(low_high[1])
        if fast:
            lo, hi = lo / 3, hi / 3
        return self._latency_rng.uniform(lo, hi) / 1000.0

    def client_changed(self, client: SimulatedClient, change: StateChange) -> None:
        """Push the `playing` notification of a player's effect (after `report_delay_ms`)."""
        low, high = self.report_delay_ms
        if client.behaviour is not None:
            delay = client.behaviour.report_delay(self._report_rng)
        else:
            delay = self._report_rng.uniform(low, high) / 1000.0 if high > 0 else 0.0
        if delay <= 0:
            self._emit(client.notification())
            return
        loop = asyncio.get_running_loop()
        # In order per player: never before the previous report of the same player.
        due = max(
            loop.time() + delay,
            self._reported_at.get(client.machine_identifier, 0.0),
        )
        self._reported_at[client.machine_identifier] = due
        # The report describes the player when it is sent (its position has moved on by then).

        def report() -> None:
            self._reports.discard(handle)
            self._emit(client.notification())

        handle = loop.call_at(due, report)
        self._reports.add(handle)

    def new_session_key(self) -> str:
        """Next session key."""
        key = self._next_session_key
        self._next_session_key += 1
        return str(key)

    def play_queue(self, queue_id: int) -> PlayQueue | None:
        """An existing play queue."""
        return self.play_queues.get(queue_id)

    def create_play_queue(
        self,
        rating_keys: list[str],
        *,
        source_uri: str,
        start_key: str | None = None,
        shuffle: bool = False,
    ) -> PlayQueue:
        """Create a play queue over rating_keys."""
        keys = list(rating_keys)
        if shuffle:
            random.Random(self._next_queue_id).shuffle(keys)
        entries = []
        for key in keys:
            entries.append((self._next_queue_item_id, key))
            self._next_queue_item_id += 1
        queue = PlayQueue(
            id=self._next_queue_id, items=entries, source_uri=source_uri, shuffled=shuffle
        )
        self._next_queue_id += 1
        if start_key is not None:
            index = queue.index_of(start_key.rsplit("/", 1)[-1])
            queue.selected_index = index or 0
        self.play_queues[queue.id] = queue
        while len(self.play_queues) > 500:
            del self.play_queues[next(iter(self.play_queues))]
        return queue

    def keys_for_uri(self, uri: str) -> list[str]:
        """Rating keys a play-queue uri stands for (leaves of shows/seasons/albums/artists)."""
        uri = unquote(uri)
        marker = "/library/metadata/"
        if marker not in uri:
            return []
        tail = uri.split(marker, 1)[1]
        raw_keys = tail.split("/", 1)[0].split("?", 1)[0].split(",")
        keys: list[str] = []
        for raw in raw_keys:
            item = self.library.get(raw)
            if item is not None:
                keys.extend(leaf.rating_key for leaf in item.leaves())
        return keys

    def play_queue_from_uri(
        self, uri: str, *, start_key: str | None = None, shuffle: bool = False
    ) -> PlayQueue | None:
        """Create a play queue from a `server://`/`library://` uri (None when it names nothing)."""
        keys = self.keys_for_uri(uri)
        if not keys:
            return None
        return self.create_play_queue(keys, source_uri=uri, start_key=start_key, shuffle=shuffle)
