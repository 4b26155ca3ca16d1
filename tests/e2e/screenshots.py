"""`scripts/screenshots`: the README's pictures, taken from the running demo in headless Chromium.

Starts `scripts/develop` in a temporary folder on free ports (the same run as `scripts/develop
--check`), waits for the demo's set-up to report "demo ready", logs in with HA's login flow and
hands the tokens to `screenshots.cjs` (playwright-core driving Debian's Chromium), which opens
each page as a logged-in user and saves a PNG. A dashboard view with a "Configuration error" card
or a card warning, a page stuck on "Loading…" or a dialog that does not show what it should fails
the run (exit status 1); nothing is written over the committed pictures then (the new ones, and
the failed page as it was, stay in the temporary folder, which is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
import shutil
import sys
import tempfile
import time

import aiohttp

from tests.e2e.demo import CheckError, DemoRun, say
from tests.e2e.demo_setup import DASHBOARD, PASSWORD, USER, Home, SetupError
from tests.e2e.harness import ROOT, free_port

NODE_DIR = ROOT / ".develop" / "node"
# name, path, kind, what must show (besides the checks every kind has), extra options.
SHOTS: list[dict[str, object]] = [
    {  # first: the demo's transfers run for about two minutes after "demo ready"
        "name": "dashboard-transfers",
        "path": f"/{DASHBOARD}/transfers",
        "kind": "dashboard",
        "wait_text": "Transfer profile",
    },
    {
        "name": "dashboard-now-playing",
        "path": f"/{DASHBOARD}/now-playing",
        "kind": "dashboard",
        "wait_text": "Movie night",
        "full_page": True,
    },
    {
        "name": "dashboard-watching",
        "path": f"/{DASHBOARD}/watching",
        "kind": "dashboard",
        "wait_text": "Alice's Up Next",
        "full_page": True,
    },
    {
        "name": "config-flow",
        "path": "/config/integrations/dashboard/add?domain=plexus",
        "kind": "flow",
        "wait_text": "Enter URL and token",
    },
    {
        "name": "config-flow-manual",
        "path": "/config/integrations/dashboard/add?domain=plexus",
        "kind": "flow",
        "wait_text": "Enter URL and token",
        "click": "Enter URL and token",
        "then_text": "Server URL",
    },
    {
        "name": "player-more-info",
        "path": f"/{DASHBOARD}/now-playing",
        "kind": "more_info",
        "entity": "media_player.bedroom_roku",
        "wait_text": "Bedroom Roku",
    },
]


async def tokens(run: DemoRun) -> dict[str, object]:
    """Log in as the demo user; the tokens as the frontend keeps them after a login."""
    home = Home(run.http, run.url)
    flow = await home.request(
        "POST",
        "/auth/login_flow",
        auth=False,
        json={
            "client_id": home.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": home.client_id,
        },
    )
    result = await home.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        auth=False,
        json={"client_id": home.client_id, "username": USER, "password": PASSWORD},
    )
    if result.get("type") != "create_entry":
        raise CheckError(f"login as {USER!r} failed: {result.get('errors')}")
    token = await home.request(
        "POST",
        "/auth/token",
        auth=False,
        data={
            "grant_type": "authorization_code",
            "code": result["result"],
            "client_id": home.client_id,
        },
    )
    run.ok(f"logged in as {USER!r} (login flow)")
    return {
        "hassUrl": run.url,
        "clientId": home.client_id,
        "access_token": token["access_token"],
        "refresh_token": token["refresh_token"],
        "token_type": "Bearer",
        "expires_in": token["expires_in"],
        "expires": int((time.time() + token["expires_in"]) * 1000),
    }


async def take(run: DemoRun, out: Path, shots_dir: Path, chromium: str) -> None:
    """Every shot into `shots_dir`; CheckError when one fails."""
    job = {
        "url": run.url,
        "tokens": await tokens(run),
        "chromium": chromium,
        "out_dir": str(shots_dir),
        "width": 1280,
        "height": 900,
        "shots": SHOTS,
    }
    job_file = shots_dir / "job.json"
    await asyncio.to_thread(job_file.write_text, json.dumps(job))
    env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
    process = await asyncio.create_subprocess_exec(
        "node",
        str(ROOT / "tests" / "e2e" / "screenshots.cjs"),
        str(job_file),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    await asyncio.to_thread(job_file.unlink)
    for line in output.decode(errors="replace").splitlines():
        say(line)
    if process.returncode:
        raise CheckError(f"screenshots failed (pages as they were: {shots_dir})")

    def publish() -> None:
        out.mkdir(parents=True, exist_ok=True)
        for shot in SHOTS:
            shutil.copy2(shots_dir / f"{shot['name']}.png", out / f"{shot['name']}.png")

    await asyncio.to_thread(publish)
    run.ok(f"{len(SHOTS)} screenshots in {out}")


async def main(argv: list[str] | None = None) -> int:
    """Start the demo, take the screenshots, stop; 0 when every page passed."""
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="plexus-screenshots-"))
    shots_dir = workdir / "shots"
    shots_dir.mkdir()
    started = time.monotonic()
    run = DemoRun(workdir, started, "demo", free_port())
    try:
        try:
            await run.start()
            await run.wait_for_setup()
            await take(run, args.out.resolve(), shots_dir, args.chromium)
        finally:
            await run.stop()
    except (CheckError, SetupError, TimeoutError, aiohttp.ClientError) as err:
        say(f"screenshots FAILED after {time.monotonic() - started:.1f} s: {err}")
        say(f"demo folder kept: {workdir} (its log: {run.log_file})")
        return 1
    await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)
    say(f"screenshots done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
