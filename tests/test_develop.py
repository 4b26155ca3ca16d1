"""`scripts/develop`: the demo opens clean for a newcomer (issue 13, points 1 and 16).

The end-to-end test runs `scripts/develop --check` exactly as a developer would (see
tests/e2e/demo.py): a real Home Assistant and simulator on free, non-default ports, the demo's own
set-up through HA's HTTP API (onboarding, the Plexus config flow, options, a transfer profile, a
sync-play group, webhooks, transfers, a group playing in sync), a login, the websocket calls the
frontend's default dashboard makes, every entity the Plexus dashboard names, zero ERROR lines in
the demo's output, and a second start on another port. The other tests show that the check's own
log and dashboard reading catch what they must.
"""

import asyncio

import pytest
import yaml

from tests.e2e.demo import CheckError, check_log, dashboard_entities, missing_entities
from tests.e2e.harness import ROOT

HA_LINE = "2026-10-07 12:00:00.123 {level} (MainThread) [homeassistant.setup] {text}"


@pytest.mark.timeout(300)
async def test_demo_check_passes() -> None:
    """A fresh demo: set up, the UI's calls succeed, the dashboard's entities exist, no ERROR."""
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
        "[demo] onboarding done",
        "[demo] Plexus config flow: entry 'Plexus Simulator' created",
        "[demo] transfer profile 'Laptop'",
        "[demo] sync group 'Movie night'",
        "[demo] webhooks: 9 episodes Alice watched; Up Next lists 3",
        "[demo] 'Movie night' plays",
        "[demo] Plexus entry 'Plexus Simulator' is there",
        "get_services:",
        "get_states:",
        "get_panels:",
        "stored as confirmed, nothing pending or to revert",
        "Plexus media players: media_player.",
        "no notifications",
        "logged in as 'demo' (login flow)",
        "all in the demo",
        "the first start had stopped cleanly",
        "demo check passed",
    ):
        assert expected in output, f"{expected!r} missing:\n{output}"
    # Both starts: the set-up is ready, every entity the dashboard names exists, the log
    # summaries say no ERROR line and no traceback.
    assert output.count("[demo] demo ready in") == 2, output
    assert output.count("entities, all in the demo") == 2, output
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


def test_dashboard_entities_are_read_from_every_card_kind() -> None:
    """Entity ids in badges, cards, nested cards, entity rows (plain, dicts, attribute rows)."""
    config = yaml.safe_load((ROOT / "docs" / "dashboard.yaml").read_text())
    found = dashboard_entities(config)
    for expected in (
        "binary_sensor.movie_night_in_sync",  # badge
        "media_player.bedroom_roku",  # media-control card
        "todo.alice_up_next",  # todo-list card
        "sensor.alice_watch_time_today",  # statistics-graph entity row (dict)
        "sensor.laptop_current_transfer",  # tile and attribute rows
        "sensor.plexus_simulator_wan_bandwidth",  # tile in a grid
        "select.office_htpc_subtitles",  # plain entity row
        "sensor.plexus_simulator_catalog_episodes",  # library counts
    ):
        assert expected in found, expected
    assert not {e for e in found if "." not in e}


def test_a_dashboard_entity_the_demo_lacks_is_reported() -> None:
    """The demo check fails on an entity the dashboard names and the demo does not have."""
    config = {
        "views": [
            {
                "badges": [{"type": "entity", "entity": "binary_sensor.group_in_sync"}],
                "cards": [
                    {"type": "todo-list", "entity": "todo.alice_up_next"},
                    {"type": "entities", "entities": ["sensor.a", {"entity": "sensor.b"}]},
                ],
            }
        ]
    }
    states = {"binary_sensor.group_in_sync": "on", "sensor.a": "1", "sensor.b": "2"}
    assert missing_entities(dashboard_entities(config), states) == ["todo.alice_up_next"]
    assert missing_entities(dashboard_entities(config), states | {"todo.alice_up_next": "3"}) == []
