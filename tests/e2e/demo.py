"""`scripts/develop --check`: start the demo as a newcomer does and check what its web UI loads.

Runs `scripts/develop` itself (same script, same configuration, same packages) in a temporary
folder on free ports — never HA's default port, so it also checks that a non-default `HA_PORT` is
HA's confirmed HTTP config and not a trial that reverts after five minutes. Then, through Home
Assistant's own HTTP API and in the order the frontend does it:

1. the demo's own set-up (tests/e2e/demo_setup.py, started by the script) must report
   "demo ready": onboarding (finishing it sets up HA's own picks: radio_browser,
   google_translate, shopping_list), the Plexus config flow, options, a transfer profile, a
   sync-play group, webhooks, transfers and the group playing in sync; then the check logs in
   with the demo user (HA's login flow);
2. what the default dashboard loads over the websocket: `get_config`, `get_services`,
   `get_states`, `get_panels`, `frontend/get_themes`, `frontend/get_translations`; and
   `http/config` (the port stored as confirmed, nothing pending);
3. the Plexus entry's media players in `get_states`; the "Plexus" dashboard as HA serves it
   (`lovelace/config`): every entity it names exists; the config entries (none failed) and the
   notifications (no "Invalid config");
4. the demo's output: no ERROR line and no traceback; WARNING lines are counted and shown;
5. Ctrl-C (SIGINT to the script's process group), then a second start of the same demo folder
   on another free port: the first stop was clean (no recorder warning), the stored port follows
   `HA_PORT`, the set-up finds everything in place, Plexus comes back from storage, the UI calls,
   the dashboard and the log check pass again.

Any failed call or ERROR line fails the check (exit status 1). Only this machine is contacted (on
one without internet access radio_browser's entry waits to retry, logged at INFO).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import json
import os
from pathlib import Path
import re
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

import aiohttp

from tests.e2e.demo_setup import (
    DASHBOARD,
    PASSWORD,
    SIM_TOKEN,
    USER,
    Websocket,
    open_websocket,
)
from tests.e2e.harness import ROOT, HomeError, free_port, login

PLAYERS = 3  # the simulator's default clients
# The demo set-up's last line, or its failure (tests/e2e/demo_setup.py).
SETUP_READY = "[demo] demo ready"
SETUP_FAILED = "[demo] demo setup FAILED"
SETUP_TIMEOUT_S = 240.0
# The integrations HA itself sets up when onboarding finishes (met skips the default location).
ONBOARDING_DOMAINS = {"google_translate", "radio_browser", "shopping_list"}
# HA's log lines: "2026-10-07 12:00:00.123 ERROR (MainThread) [name] message".
LOG_LEVEL = re.compile(r"^\S+ \S+ (ERROR|WARNING|CRITICAL) ")
STEP_TIMEOUT_S = 90.0
# What HA's recorder says at start when HA was killed before it finished stopping.
UNCLEAN_STOP = "could not validate that the sqlite3 database"


def say(text: str) -> None:
    """One line of the check's report."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class CheckError(RuntimeError):
    """The demo did not do what a newcomer needs."""


class DemoRun:
    """One run of `scripts/develop` on free ports with a given demo folder."""

    def __init__(self, workdir: Path, started: float, name: str, sim_port: int) -> None:
        """Prepare (nothing runs until `start`)."""
        self.workdir = workdir
        self.started = started
        self.ha_port = free_port()
        self.sim_port = sim_port
        self.url = f"http://127.0.0.1:{self.ha_port}"
        self.client_id = f"{self.url}/"
        self.log_file = workdir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.token = ""
        self._session: aiohttp.ClientSession | None = None

    def ok(self, what: str) -> None:
        """One passed step, with the time since the check started."""
        say(f"  ok  {time.monotonic() - self.started:5.1f} s  {what}")

    # ------------------------------------------------------------------ the demo process

    async def start(self) -> None:
        """Start `scripts/develop`, its output in the run's log file; wait until HA answers."""
        say(
            f"scripts/develop with HA_PORT={self.ha_port} SIM_PORT={self.sim_port} "
            f"DEVELOP_DIR={self.workdir}"
        )
        env = dict(
            os.environ,
            HA_PORT=str(self.ha_port),
            SIM_PORT=str(self.sim_port),
            SIM_TOKEN=SIM_TOKEN,
            DEVELOP_DIR=str(self.workdir),
        )
        with self.log_file.open("wb") as output:
            self.process = await asyncio.create_subprocess_exec(
                str(ROOT / "scripts" / "develop"),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self._session = aiohttp.ClientSession()
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            if self.process.returncode is not None:
                raise CheckError("scripts/develop exited")
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"{self.url}/manifest.json") as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise CheckError(f"HA did not answer within {STEP_TIMEOUT_S} s")
            await asyncio.sleep(0.5)
        self.ok(f"Home Assistant answers on {self.url}")

    async def stop(self) -> None:
        """Stop the demo (SIGTERM to its process group, as Ctrl-C does; SIGKILL if stuck)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        process = self.process
        if process is None or process.returncode is not None:
            return
        # What Ctrl-C does: a signal to the script's process group (HA runs in its own session
        # and is stopped by the script).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            # HA's own process, named in its lock file while it runs.
            lock = self.workdir / "config" / ".ha_run.lock"
            with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
                os.kill(int(json.loads(lock.read_text())["pid"]), signal.SIGKILL)
            raise CheckError("scripts/develop did not stop within 60 s of Ctrl-C") from None

    def log_lines(self) -> list[str]:
        """The demo's output so far (scripts/develop, the simulator, HA)."""
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace").splitlines()
        return []

    # ------------------------------------------------------------------ HTTP

    @property
    def http(self) -> aiohttp.ClientSession:
        """The HTTP session (after `start`)."""
        assert self._session is not None, "start() first"
        return self._session

    async def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One HTTP call; its JSON, or CheckError with the status and body."""
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self.http.request(
            method, f"{self.url}{path}", headers=headers, **kwargs
        ) as response:
            if response.status >= 400:
                raise CheckError(f"{method} {path} -> {response.status}: {await response.text()}")
            return await response.json(content_type=None)

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[Websocket]:
        """An authenticated websocket connection."""
        async with open_websocket(
            self.http, self.url, self.token, CheckError, STEP_TIMEOUT_S
        ) as ws:
            yield ws

    async def until[T](self, what: str, check: Callable[[], Awaitable[T | None]]) -> T:
        """Poll `check()` until it returns something; that value."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while (value := await check()) is None:
            if time.monotonic() > deadline:
                raise CheckError(f"{what} within {STEP_TIMEOUT_S} s")
            await asyncio.sleep(0.5)
        return value

    # ------------------------------------------------------------------ the steps

    async def wait_for_setup(self) -> None:
        """Wait for the demo's own set-up (run by scripts/develop) to report it is ready."""
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        while True:
            lines = self.log_lines()
            if any(line.startswith(SETUP_FAILED) for line in lines):
                raise CheckError("the demo set-up failed (its [demo] lines say why)")
            if ready := [line for line in lines if line.startswith(SETUP_READY)]:
                break
            if self.process is not None and self.process.returncode is not None:
                raise CheckError("scripts/develop exited")
            if time.monotonic() > deadline:
                raise CheckError(f"the demo set-up did not finish within {SETUP_TIMEOUT_S} s")
            await asyncio.sleep(1)
        for line in lines:
            if line.startswith("[demo] "):
                say(f"       {line}")
        self.ok(ready[0].removeprefix("[demo] "))

    async def log_in(self) -> None:
        """A returning user: HA's login flow with the user made at onboarding."""
        try:
            self.token = await login(self.http, self.url, USER, PASSWORD)
        except HomeError as err:
            raise CheckError(str(err)) from err
        self.ok(f"logged in as {USER!r} (login flow)")

    async def check_ui(self, ws: Websocket) -> None:
        """What the default dashboard loads; every call must succeed."""

        async def running() -> dict[str, Any] | None:
            config: dict[str, Any] = await ws.call("get_config")
            return config if config["state"] == "RUNNING" else None

        # The frontend shows "Loading…" until start-up is over.
        config = await self.until("HA did not finish starting", running)
        self.ok(
            f"get_config: HA {config['version']}, {config['state']}, "
            f"{len(config['components'])} components"
        )
        services = await ws.call("get_services")
        count = sum(len(domain) for domain in services.values())
        self.ok(f"get_services: {count} actions in {len(services)} domains")
        states = await ws.call("get_states")
        self.ok(f"get_states: {len(states)} entities")
        panels = await ws.call("get_panels")
        self.ok(f"get_panels: {', '.join(sorted(panels))}")
        await ws.call("frontend/get_themes")
        await ws.call("frontend/get_translations", language="en", category="state")
        self.ok("frontend/get_themes, frontend/get_translations")

    async def check_http_config(self, ws: Websocket) -> None:
        """The port is HA's stored, confirmed config: nothing pending, no revert scheduled."""
        http = await ws.call("http/config")
        stored = http["stable"].get("server_port")
        if (
            stored != self.ha_port
            or http["pending"] is not None
            or http["revert_at"] is not None
            or http["active_config_type"] != "stable"
        ):
            raise CheckError(f"HTTP port {self.ha_port} is not HA's confirmed config: {http}")
        self.ok(f"http/config: port {stored} stored as confirmed, nothing pending or to revert")

    async def check_plexus(self, ws: Websocket) -> None:
        """The Plexus entry loaded, with a media player per simulated client."""

        async def players() -> dict[str, str] | None:
            registry = await ws.call("config/entity_registry/list")
            ours = {e["entity_id"] for e in registry if e["platform"] == "plexus"}
            states = {s["entity_id"]: s["state"] for s in await ws.call("get_states")}
            found = {e: states[e] for e in ours if e.startswith("media_player.") and e in states}
            ready = len(found) >= PLAYERS and "unavailable" not in found.values()
            return found if ready else None

        found = await self.until("the Plexus media players did not appear", players)
        self.ok(
            "Plexus media players: "
            + ", ".join(f"{entity} {state}" for entity, state in sorted(found.items()))
        )
        services = await ws.call("get_services")
        if "plexus" not in services:
            raise CheckError(f"no plexus actions in get_services: {sorted(services)}")
        self.ok(f"get_services has plexus.{', plexus.'.join(sorted(services['plexus']))}")

    async def check_dashboard(self, ws: Websocket) -> None:
        """The Plexus dashboard as HA serves it; every entity it names is in the demo."""
        config = await ws.call("lovelace/config", url_path=DASHBOARD, force=True)
        wanted = dashboard_entities(config)
        states = {s["entity_id"]: s["state"] for s in await ws.call("get_states")}
        missing = missing_entities(wanted, states)
        if missing:
            raise CheckError(f"the dashboard names entities the demo does not have: {missing}")
        unavailable = sorted(e for e in wanted if states[e] == "unavailable")
        views = ", ".join(v.get("title", "?") for v in config.get("views", []))
        self.ok(
            f"dashboard {DASHBOARD!r} ({views}): {len(wanted)} entities, all in the demo"
            + (f"; unavailable now: {', '.join(unavailable)}" if unavailable else "")
        )

    async def check_entries(self, ws: Websocket, domains: set[str]) -> None:
        """These config entries exist, each loaded or waiting to retry (no network); none failed."""

        async def settled() -> list[dict[str, Any]] | None:
            entries: list[dict[str, Any]] = await ws.call("config_entries/get")
            busy = {e["state"] for e in entries} & {"not_loaded", "setup_in_progress"}
            return None if busy or not domains <= {e["domain"] for e in entries} else entries

        entries = await self.until(f"config entries for {sorted(domains)} not set up", settled)
        failed = [e for e in entries if e["state"] not in ("loaded", "setup_retry")]
        if failed:
            raise CheckError(f"config entries failed: {failed}")
        self.ok(
            "config entries: "
            + ", ".join(f"{e['domain']} {e['state']}" for e in sorted(entries, key=str))
        )
        notifications = await ws.call("persistent_notification/get")
        if notifications:  # HA's "Invalid config" one lists what failed to set up
            raise CheckError(f"notifications: {notifications}")
        self.ok("no notifications")

    def check_log(self) -> None:
        """No ERROR line and no traceback in the demo's output; WARNING lines counted."""
        check_log(self.log_lines(), self.log_file.name)


def dashboard_entities(node: Any) -> set[str]:
    """Every entity id a dashboard config names (`entity:` and `entities:` at any depth)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "entity" and isinstance(value, str):
                found.add(value)
            elif key == "entities" and isinstance(value, list):
                for item in value:
                    if isinstance(item, str):
                        found.add(item)
                    else:
                        found |= dashboard_entities(item)
            else:
                found |= dashboard_entities(value)
    elif isinstance(node, list):
        for value in node:
            found |= dashboard_entities(value)
    return found


def missing_entities(wanted: set[str], states: dict[str, str]) -> list[str]:
    """The wanted entity ids that have no state."""
    return sorted(e for e in wanted if e not in states)


def check_log(lines: list[str], name: str) -> None:
    """Report a demo log's ERROR/WARNING lines and tracebacks; CheckError on any ERROR."""
    levels: dict[str, list[str]] = {"ERROR": [], "WARNING": [], "CRITICAL": []}
    for line in lines:
        if match := LOG_LEVEL.match(line):
            levels[match.group(1)].append(line)
    tracebacks = [line for line in lines if line.startswith("Traceback")]
    errors = levels["ERROR"] + levels["CRITICAL"]
    say(
        f"  log  {len(lines)} lines: {len(errors)} ERROR, {len(levels['WARNING'])} WARNING, "
        f"{len(tracebacks)} tracebacks ({name})"
    )
    for line in levels["WARNING"] + errors:
        say(f"       {line[:240]}")
    if errors or tracebacks:
        raise CheckError(f"{len(errors)} ERROR lines, {len(tracebacks)} tracebacks")


async def first_start(run: DemoRun) -> None:
    """A fresh demo folder: the demo's set-up, the UI, Plexus, the dashboard, the log."""
    await run.start()
    await run.wait_for_setup()
    await run.log_in()
    async with run.websocket() as ws:
        await run.check_ui(ws)
        await run.check_http_config(ws)
        await run.check_plexus(ws)
        await run.check_dashboard(ws)
        await run.check_entries(ws, ONBOARDING_DOMAINS | {"plexus"})
        # Onboarding's integrations were set up in the background: the UI calls once more.
        await run.check_ui(ws)
    run.check_log()


async def second_start(run: DemoRun) -> None:
    """The same folder again, on another port: the port moves, the rest is kept."""
    await run.start()
    await run.wait_for_setup()
    await run.log_in()
    async with run.websocket() as ws:
        await run.check_ui(ws)
        unclean = [line for line in run.log_lines() if UNCLEAN_STOP in line]
        if unclean:
            raise CheckError(f"the first start did not stop cleanly on Ctrl-C: {unclean}")
        run.ok("the first start had stopped cleanly (recorder)")
        await run.check_http_config(ws)
        await run.check_plexus(ws)
        await run.check_dashboard(ws)
        await run.check_entries(ws, ONBOARDING_DOMAINS | {"plexus"})
    run.check_log()


async def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 when everything passed."""
    parser = argparse.ArgumentParser(prog="scripts/develop --check", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the temporary demo folder")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="plexus-demo-check-"))
    started = time.monotonic()
    # The Plexus entry keeps the simulator's URL: both starts use the same simulator port.
    sim_port = free_port()
    run: DemoRun | None = None
    try:
        for name, steps in (("first-start", first_start), ("second-start", second_start)):
            run = DemoRun(workdir, started, name, sim_port)
            try:
                await steps(run)
            finally:
                await run.stop()
    except (CheckError, TimeoutError, aiohttp.ClientError) as err:
        say(f"demo check FAILED after {time.monotonic() - started:.1f} s: {err}")
        if run is not None:
            say(f"--- the end of {run.log_file}")
            for line in run.log_lines()[-40:]:
                say(line)
        return 1
    finally:
        if args.keep:
            say(f"demo folder kept: {workdir}")
        else:
            await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)
    say(f"demo check passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
