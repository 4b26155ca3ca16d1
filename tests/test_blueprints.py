"""Every blueprint in blueprints/automation/plexus loads through HA's blueprint machinery, and each
one, made into an automation with inputs, does what it says when its trigger fires.

Blueprints that act on Plex players run against the simulator (the effect is checked in the
simulated client's own record). Services of features these tests do not set up (file sync's
`plexus.sync_media` / `plexus.remove_local_copy`, sync-play's `plexus.sync_play`, phones'
`notify.*`, lights) are mocked with `async_mock_service`: the test asserts the call the blueprint
made, with its data.
"""

import asyncio
from pathlib import Path
import shutil
from typing import Any

from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.media_player import DOMAIN as MP_DOMAIN
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
import yaml

from custom_components.plexus.const import DOMAIN
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator, SimulatedClient

SOURCE = Path(__file__).parent.parent / "blueprints" / "automation" / "plexus"
BLUEPRINTS = sorted(p.name for p in SOURCE.glob("*.yaml"))
REPO_PATH = "https://github.com/plexus-ha/plexus/blob/main/blueprints/automation/plexus/"


class _BlueprintLoader(yaml.SafeLoader):
    """Reads `!input name` as a marker (for checks of the file itself)."""


_BlueprintLoader.add_constructor("!input", lambda loader, node: f"!input {node.value}")


@pytest.fixture(autouse=True)
def blueprint_folder(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A config folder of this test's own, with the blueprints where HA looks for them."""
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints/automation/plexus"))
    target.mkdir(parents=True)
    for name in BLUEPRINTS:
        shutil.copy(SOURCE / name, target / name)
    return target


async def automation(hass: HomeAssistant, blueprint: str, inputs: dict[str, Any]) -> str:
    """Create an automation from a blueprint; return its entity id."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": blueprint,
                "alias": blueprint.removesuffix(".yaml"),
                "use_blueprint": {"path": f"plexus/{blueprint}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    entity_id = f"automation.{blueprint.removesuffix('.yaml')}"
    state = hass.states.get(entity_id)
    assert state is not None, f"{blueprint} did not become an automation"
    assert state.state == "on"
    return entity_id


def player_entity(hass: HomeAssistant, sim: PlexSimulator, client: SimulatedClient) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        MP_DOMAIN, DOMAIN, f"{sim.machine_identifier}-player-{client.machine_identifier}"
    )
    assert entity_id is not None
    return entity_id


async def wait_calls(calls: list[ServiceCall], count: int = 1) -> None:
    await wait_until(lambda: len(calls) >= count)


# ---------------------------------------------------------------------------------- loading


def test_there_are_the_seven_blueprints() -> None:
    assert BLUEPRINTS == [
        "copy_new_episodes.yaml",
        "movie_mode.yaml",
        "pause_for_doorbell.yaml",
        "tidy_offline_copies.yaml",
        "transcode_guard.yaml",
        "up_next.yaml",
        "watch_party.yaml",
    ]


@pytest.mark.parametrize("name", BLUEPRINTS)
async def test_blueprint_loads(hass: HomeAssistant, name: str) -> None:
    """HA's blueprint integration accepts it; it is importable and every input is explained."""
    assert await async_setup_component(hass, "blueprint", {})
    blueprint = await async_get_blueprints(hass).async_get_blueprint(f"plexus/{name}")
    assert blueprint.domain == "automation"
    meta = blueprint.metadata
    assert meta["source_url"] == REPO_PATH + name
    assert meta["description"]
    for key, spec in meta["input"].items():
        assert spec.get("name"), f"{name}: input {key} has no name"
        assert "selector" in spec, f"{name}: input {key} has no selector"
    raw = yaml.load((SOURCE / name).read_text(encoding="utf-8"), Loader=_BlueprintLoader)  # noqa: S506
    assert raw["blueprint"]["name"].startswith("Plexus \N{EN DASH} ")


# ---------------------------------------------------------------------------------- movie mode


async def test_movie_mode_dims_and_restores(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A movie starts: lights off (after a snapshot); it pauses: the lights are put back."""
    assert await async_setup_component(hass, "scene", {})
    hass.states.async_set("light.sofa", "on", {"brightness": 180})
    hass.states.async_set("light.ceiling", "off")
    turn_off = async_mock_service(hass, "light", "turn_off")
    turn_on = async_mock_service(hass, "light", "turn_on")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass, "movie_mode.yaml", {"player": player, "lights": ["light.sofa", "light.ceiling"]}
    )

    # An episode does not count (only movies by default).
    await client.local_start(simulator.library.episodes()[0].rating_key)
    await wait_until(lambda: hass.states.get(player).state == "playing")
    await hass.async_block_till_done()
    assert turn_off == []
    await client.local_stop()
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: hass.states.get(player).state != "playing")

    await client.local_start(simulator.library.movies()[0].rating_key)
    await wait_calls(turn_off)
    assert set(turn_off[0].data["entity_id"]) == {"light.sofa", "light.ceiling"}
    hass.states.async_set("light.sofa", "off")  # what the (mocked) light did
    await client.local_pause()
    await wait_calls(turn_on)
    assert turn_on[0].data["entity_id"] == "light.sofa"
    assert turn_on[0].data["brightness"] == 180


async def test_movie_mode_dims_to_a_brightness(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    assert await async_setup_component(hass, "scene", {})
    hass.states.async_set("light.sofa", "on", {"brightness": 255})
    turn_on = async_mock_service(hass, "light", "turn_on")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass,
        "movie_mode.yaml",
        {"player": player, "lights": ["light.sofa"], "brightness": 20, "only_movies": False},
    )
    await client.local_start(simulator.library.episodes()[0].rating_key)
    await wait_calls(turn_on)
    assert turn_on[0].data["brightness_pct"] == 20


# ---------------------------------------------------------------------------------- watch party


async def test_watch_party_starts_the_group_and_tells_the_phones(hass: HomeAssistant) -> None:
    sync_play = async_mock_service(hass, DOMAIN, "sync_play")
    anna = async_mock_service(hass, "notify", "mobile_app_anna")
    ben = async_mock_service(hass, "notify", "mobile_app_ben")
    await automation(
        hass,
        "watch_party.yaml",
        {
            "start": [{"trigger": "event", "event_type": "party_time"}],
            "group": "Movie night",
            "media": "imdb://tt0133093",
            "notify_services": ["notify.mobile_app_anna", "notify.mobile_app_ben"],
        },
    )
    hass.bus.async_fire("party_time")
    await hass.async_block_till_done()
    assert [c.data for c in sync_play] == [{"group": "Movie night", "media": "imdb://tt0133093"}]
    assert anna[0].data["message"] == "The watch party starts now!"
    assert ben[0].data["title"] == "Movie night"


async def test_watch_party_without_a_title_plays_what_the_group_plays(hass: HomeAssistant) -> None:
    sync_play = async_mock_service(hass, DOMAIN, "sync_play")
    await automation(
        hass,
        "watch_party.yaml",
        {"start": [{"trigger": "event", "event_type": "party_time"}], "group": "Movie night"},
    )
    hass.bus.async_fire("party_time")
    await hass.async_block_till_done()
    assert [c.data for c in sync_play] == [{"group": "Movie night"}]


# ---------------------------------------------------------------------------------- file sync


def webhook(event: str, user: str = "anna", **item: Any) -> dict[str, Any]:
    """A `plexus_webhook` event as the tracking glue fires it."""
    return {
        "event": event,
        "user": {"id": "1", "title": user},
        "player": {"id": "p1", "title": "Living room"},
        "server": {"id": "s1", "title": "Home"},
        "item": item,
    }


async def test_copy_new_episodes_queues_and_reports(hass: HomeAssistant) -> None:
    sync_media = async_mock_service(hass, DOMAIN, "sync_media")
    phone = async_mock_service(hass, "notify", "mobile_app_anna")
    await automation(
        hass,
        "copy_new_episodes.yaml",
        {"shows": ["The Expanse"], "profile": "Laptop", "notify_service": "notify.mobile_app_anna"},
    )
    new = "library.new"
    hass.bus.async_fire("plexus_webhook", webhook(new, type="movie", rating_key="7", title="Dune"))
    hass.bus.async_fire(
        "plexus_webhook",
        webhook(new, type="episode", rating_key="8", grandparent_title="Other Show"),
    )
    hass.bus.async_fire(
        "plexus_webhook",
        webhook(new, type="episode", rating_key="9", grandparent_title="the expanse"),
    )
    await hass.async_block_till_done()
    assert [(c.data["profile"], str(c.data["rating_key"])) for c in sync_media] == [("Laptop", "9")]

    done = {"profile": "Laptop", "title": "The Expanse S01E02", "path": "/media/x.mkv"}
    hass.bus.async_fire("plexus_transfer_finished", done)
    hass.bus.async_fire("plexus_transfer_failed", done | {"error": "disk full"})
    hass.bus.async_fire("plexus_transfer_failed", done | {"profile": "Other", "error": "x"})
    await hass.async_block_till_done()
    assert [c.data["message"] for c in phone] == [
        "The Expanse S01E02 is ready offline.",
        "The Expanse S01E02: disk full",
    ]


async def test_tidy_offline_copies_removes_a_watched_copy(hass: HomeAssistant) -> None:
    remove = async_mock_service(hass, DOMAIN, "remove_local_copy")
    tidy = await automation(
        hass, "tidy_offline_copies.yaml", {"profile": "Laptop", "users": ["Anna"]}
    )
    hass.bus.async_fire(
        "plexus_transfer_finished",
        {"profile": "Laptop", "title": "Dune (2021)", "path": "/media/laptop/Dune (2021).mkv"},
    )
    hass.bus.async_fire(
        "plexus_transfer_finished",
        {"profile": "Phone", "title": "Alien (1979)", "path": "/media/phone/Alien.mkv"},
    )
    # One copy of this profile is followed (the automation waits for it to be watched).
    await wait_until(lambda: hass.states.get(tidy).attributes.get("current") == 1)
    # Someone else watching it, or Anna watching something else, keeps the copy.
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", user="Ben", title="Dune"))
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", title="Alien"))
    await asyncio.sleep(0.2)
    assert remove == []
    assert hass.states.get(tidy).attributes.get("current") == 1
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", user="anna", title="Dune"))
    await wait_calls(remove)
    assert [c.data for c in remove] == [
        {"profile": "Laptop", "path": "/media/laptop/Dune (2021).mkv"}
    ]
    await wait_until(lambda: hass.states.get(tidy).attributes.get("current") == 0)


# ---------------------------------------------------------------------------------- players


async def test_up_next_plays_the_next_episode_when_asked(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    phone = async_mock_service(hass, "notify", "mobile_app_anna")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass,
        "up_next.yaml",
        {"notify_service": "notify.mobile_app_anna", "player": player, "users": ["anna"]},
    )
    show = simulator.library.shows()[0]
    first, second = [e for e in simulator.library.episodes() if e.grandparent is show][:2]
    assert (first.parent.index, first.index, second.index) == (1, 1, 2)
    finished = webhook(
        "media.scrobble",
        type="episode",
        rating_key=first.rating_key,
        title=first.title,
        grandparent_title=show.title,
        parent_index=1,
        index=1,
    )
    hass.bus.async_fire("plexus_webhook", finished | {"user": {"id": "2", "title": "Ben"}})
    await hass.async_block_till_done()
    assert phone == []  # not one of the chosen users
    hass.bus.async_fire("plexus_webhook", finished)
    await wait_calls(phone)
    (button,) = phone[0].data["data"]["actions"]
    assert button["title"] == f"Play the next one on {hass.states.get(player).name}"
    hass.bus.async_fire("mobile_app_notification_action", {"action": button["action"]})
    await client.wait_for_state("playing", timeout=10, rating_key=second.rating_key)
    assert client.rating_key == second.rating_key


async def test_transcode_guard_ends_a_remote_transcode(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    admin = async_mock_service(hass, "notify", "mobile_app_admin")
    remote = simulator.add_client("Phone abroad", stream_decision="transcode", location="wan")
    home = simulator.add_client("Kitchen", stream_decision="transcode", location="lan")
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    players = [player_entity(hass, simulator, c) for c in (remote, home)]
    await automation(
        hass,
        "transcode_guard.yaml",
        {
            "players": players,
            "reaction": "both",
            "notify_service": "notify.mobile_app_admin",
            "viewer_message": "Please pick Original quality",
            "only_remote": True,
        },
    )
    movies = [m for m in simulator.library.movies() if m.media and m.media.video_codec]
    await home.local_start(movies[0].rating_key)
    await remote.local_start(movies[1].rating_key)
    await loaded.runtime_data.coordinator.async_refresh()
    await remote.wait_for_state("stopped", timeout=10)
    assert ("terminate", {"reason": "Please pick Original quality"}) in remote.commands
    assert home.state == "playing"  # on the home network: left alone
    assert len(admin) == 1
    assert "video, audio" in admin[0].data["message"]


async def test_pause_for_the_doorbell_and_resume(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    clients = list(simulator.clients.values())
    playing, idle = clients[0], clients[1]
    players = [player_entity(hass, simulator, c) for c in (playing, idle)]
    await automation(
        hass,
        "pause_for_doorbell.yaml",
        {
            "doorbell": [{"trigger": "event", "event_type": "doorbell_rang"}],
            "players": players,
            "resume_trigger": [{"trigger": "event", "event_type": "door_closed"}],
            "resume_after": 60,
        },
    )
    await playing.local_start(simulator.library.movies()[0].rating_key)
    await wait_until(lambda: hass.states.get(players[0]).state == "playing")
    hass.bus.async_fire("doorbell_rang")
    await playing.wait_for_state("paused", timeout=10)
    assert idle.state == "stopped"  # it was not playing: nothing to pause
    await wait_until(lambda: hass.states.get(players[0]).state == "paused")
    await asyncio.sleep(0.1)
    assert playing.state == "paused"  # waits for the door
    hass.bus.async_fire("door_closed")
    await playing.wait_for_state("playing", timeout=10)


async def test_pause_for_the_doorbell_resumes_after_the_delay(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass,
        "pause_for_doorbell.yaml",
        {
            "doorbell": [{"trigger": "event", "event_type": "doorbell_rang"}],
            "players": [player],
            "resume_after": 1,
        },
    )
    await client.local_start(simulator.library.movies()[0].rating_key)
    await wait_until(lambda: hass.states.get(player).state == "playing")
    hass.bus.async_fire("doorbell_rang")
    await client.wait_for_state("paused", timeout=10)
    await wait_until(lambda: hass.states.get(player).state == "paused")
    await client.wait_for_state("playing", timeout=10)
