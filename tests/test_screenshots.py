"""`scripts/screenshots`' page checks (tests/e2e/screenshots.cjs) catch what they must.

Pages shaped like Home Assistant's frontend (the elements the checks look for, some inside shadow
roots as HA draws them) are served on 127.0.0.1 and opened by the real screenshot script in
Debian's Chromium. Skipped where Chromium, node or playwright-core (`scripts/screenshots` installs
them) are missing.
"""

import asyncio
import json
import os
from pathlib import Path
import shutil
from typing import Any

from aiohttp import web
import pytest

from tests.e2e.harness import ROOT

NODE_MODULES = ROOT / ".develop" / "node" / "node_modules"
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None
    or shutil.which("node") is None
    or not (NODE_MODULES / "playwright-core").is_dir(),
    reason="needs chromium, node and playwright-core (scripts/screenshots installs them)",
)

# A view as HA draws it: the panel inside partial-panel-resolver, cards inside a shadow root.
PAGE = """<!doctype html><html><body>
<home-assistant><partial-panel-resolver><ha-panel-lovelace id="panel"></ha-panel-lovelace>
</partial-panel-resolver></home-assistant>
<script>
  const root = document.getElementById("panel").attachShadow({mode: "open"});
  root.innerHTML = `<hui-view><hui-card>Living Room TV</hui-card>{extra}</hui-view>`;
  const error = root.querySelector("hui-error-card");
  if (error) {
    error.attachShadow({mode: "open"}).innerHTML = "<ha-alert>Configuration error</ha-alert>";
  }
</script></body></html>"""
LOADING = "<!doctype html><html><body><home-assistant>Loading data</home-assistant></body></html>"


async def run_shots(tmp_path: Path, pages: dict[str, str]) -> tuple[int, str]:
    """Serve the pages, run screenshots.cjs on them (dashboard checks); exit status, output."""
    app = web.Application()

    def page(html: str) -> Any:
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html")

        return handler

    for name, html in pages.items():
        app.router.add_get(f"/{name}", page(html))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    job = {
        "url": f"http://127.0.0.1:{port}",
        "tokens": {},
        "chromium": CHROMIUM,
        "out_dir": str(tmp_path),
        "timeout_ms": 3000,
        "shots": [
            {"name": name, "path": f"/{name}", "kind": "dashboard", "wait_text": "Living Room TV"}
            for name in pages
        ],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    try:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(ROOT / "tests" / "e2e" / "screenshots.cjs"),
            str(tmp_path / "job.json"),
            env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    finally:
        await runner.cleanup()
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.timeout(120)
async def test_clean_view_passes_and_error_card_or_loading_fails(
    tmp_path: Path, socket_enabled: None
) -> None:
    """A clean view gives a PNG; an error card or a page stuck loading fails the run."""
    code, output = await run_shots(
        tmp_path,
        {
            "clean": PAGE.replace("{extra}", ""),
            "broken": PAGE.replace("{extra}", "<hui-error-card></hui-error-card>"),
            "loading": LOADING,
        },
    )
    assert code == 1, output
    assert "ok  clean" in output, output
    assert (tmp_path / "clean.png").stat().st_size > 1000
    assert 'broken: broken: 1 "Configuration error" card(s): Configuration error' in output
    assert not (tmp_path / "broken.png").exists()
    assert "loading: no panel after" in output, output
    assert not (tmp_path / "loading.png").exists()
