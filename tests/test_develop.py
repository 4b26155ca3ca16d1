"""`scripts/develop`: the demo opens clean for a newcomer (issue 13, points 1 and 16).

The end-to-end test runs `scripts/develop --check` exactly as a developer would (see
tests/e2e/demo.py): a real Home Assistant and simulator on free, non-default ports, onboarding
and login through HA's HTTP API, the websocket calls the frontend's default dashboard makes, the
Plexus config flow, zero ERROR lines in the demo's output, and a second start on another port.
The other tests show that the check's own log reading catches what it must.
"""

import asyncio

import pytest

from tests.e2e.demo import CheckError, check_log
from tests.e2e.harness import ROOT

HA_LINE = "2026-10-07 12:00:00.123 {level} (MainThread) [homeassistant.setup] {text}"


@pytest.mark.timeout(300)
async def test_demo_check_passes() -> None:
    """A fresh demo: the UI's calls succeed, Plexus is set up, no ERROR line, the port holds."""
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "develop"),
        "--check",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await process.communicate()
    output = stdout.decode(errors="replace")
    assert process.returncode == 0, output
    for expected in (
        "get_services:",
        "get_states:",
        "get_panels:",
        "stored as confirmed, nothing pending or to revert",
        "Plexus media players: media_player.",
        "no notifications",
        "logged in as 'demo' (login flow)",
        "the first start had stopped cleanly",
        "demo check passed",
    ):
        assert expected in output, f"{expected!r} missing:\n{output}"
    # Both starts: their log summaries say no ERROR line and no traceback.
    assert output.count(" 0 ERROR, ") == 2, output
    assert output.count(" 0 tracebacks ") == 2, output


def test_log_check_counts_warnings_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    """WARNING lines are counted and shown; they do not fail the check."""
    check_log(
        [
            "Plex simulator 'Plexus Simulator' listening on 127.0.0.1:32400",
            HA_LINE.format(level="WARNING", text="Skipping pip installation"),
            HA_LINE.format(level="INFO", text="Setting up frontend"),
        ],
        "start.log",
    )
    output = capsys.readouterr().out
    assert "0 ERROR, 1 WARNING, 0 tracebacks" in output
    assert "Skipping pip installation" in output


@pytest.mark.parametrize(
    "bad_line",
    [
        HA_LINE.format(level="ERROR", text="Setup failed for 'infrared'"),
        HA_LINE.format(level="CRITICAL", text="Home Assistant failed"),
        "Traceback (most recent call last):",
    ],
    ids=["error", "critical", "traceback"],
)
def test_log_check_fails_on_an_error(bad_line: str) -> None:
    """One ERROR or CRITICAL line, or one traceback, fails the check."""
    with pytest.raises(CheckError, match=r"1 ERROR lines|1 tracebacks"):
        check_log([HA_LINE.format(level="WARNING", text="fine"), bad_line], "start.log")
