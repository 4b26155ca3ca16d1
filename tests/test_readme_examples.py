"""The README's "Use cases" automations load in Home Assistant and do what the README says.

The YAML is read from README.md itself, so an example that stops working fails here.
"""

from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service
import yaml

README = Path(__file__).parent.parent / "README.md"


def _use_case_blocks() -> list[Any]:
    text = README.read_text()
    section = text[text.index("## Use cases") : text.index("## Troubleshooting")]
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)]


@pytest.fixture
async def automations(hass: HomeAssistant) -> list[dict[str, Any]]:
    """The README's automations, set up."""
    (config,) = [b for b in _use_case_blocks() if "automation" in b]
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    return list(config["automation"])


def test_blocks_are_yaml() -> None:
    blocks = _use_case_blocks()
    assert len(blocks) == 2
    action = blocks[1]
    assert action["action"] == "media_player.play_media"


async def test_every_automation_loads(
    hass: HomeAssistant, automations: list[dict[str, Any]]
) -> None:
    states = hass.states.async_all("automation")
    assert sorted(s.attributes["friendly_name"] for s in states) == sorted(
        a["alias"] for a in automations
    )
    assert all(s.state == "on" for s in states)


@pytest.mark.usefixtures("automations")
async def test_movie_night(hass: HomeAssistant) -> None:
    calls = async_mock_service(hass, "light", "turn_on")
    tv = "media_player.living_room_tv"
    hass.states.async_set(tv, "playing", {"media_content_type": "episode"})
    await hass.async_block_till_done()
    assert not calls  # not a movie
    hass.states.async_set(tv, "idle", {})
    await hass.async_block_till_done()
    hass.states.async_set(tv, "playing", {"media_content_type": "movie"})
    await hass.async_block_till_done()
    hass.states.async_set(tv, "paused", {"media_content_type": "movie"})
    await hass.async_block_till_done()
    assert [c.data["brightness_pct"] for c in calls] == [100, 10, 100]


@pytest.mark.usefixtures("automations")
async def test_remote_transcode(hass: HomeAssistant) -> None:
    calls = async_mock_service(hass, "notify", "notify")
    phone = "media_player.alices_phone"
    attrs = {"user": "alice", "media_title": "Dune", "decision": "transcode"}
    hass.states.async_set(phone, "playing", attrs | {"location": "lan", "transcode_reasons": []})
    await hass.async_block_till_done()
    hass.states.async_set(phone, "idle", {})
    hass.states.async_set(
        phone, "playing", attrs | {"location": "wan", "transcode_reasons": ["video", "audio"]}
    )
    await hass.async_block_till_done()
    assert [c.data["message"] for c in calls] == ["alice is transcoding Dune (video, audio)"]


@pytest.mark.usefixtures("automations")
async def test_new_movie(hass: HomeAssistant) -> None:
    calls = async_mock_service(hass, "notify", "notify")
    episode = {"type": "episode", "title": "Pilot", "year": 2024}
    hass.bus.async_fire("plexus_webhook", {"event": "library.new", "item": episode})
    movie = {"type": "movie", "title": "Dune", "year": 2021}
    hass.bus.async_fire("plexus_webhook", {"event": "media.play", "item": movie})
    hass.bus.async_fire("plexus_webhook", {"event": "library.new", "item": movie})
    await hass.async_block_till_done()
    assert [c.data["message"] for c in calls] == ["New in Plex: Dune (2021)"]
