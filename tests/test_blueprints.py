"""Every blueprint in blueprints/automation/plexus loads through HA's blueprint machinery, and each
one, made into an automation with inputs, does what it says when its trigger fires.

Blueprints that act on Plex players run against the simulator (the effect is checked in the
simulated client's own record). Services of features these tests do not set up (file sync's
`plexus.sync_media` / `plexus.remove_local_copy`, sync-play's `plexus.sync_play`, phones'
`notify.*`, lights) are mocked with `async_mock_service`: the test asserts the call the blueprint
made, with its data.
"""

import asyncio
from datetime import timedelta
import json
from pathlib import Path
import shutil
from typing import Any

from aiohttp import FormData
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.media_player import DOMAIN as MP_DOMAIN
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import yaml

from custom_components.plexus.const import DOMAIN
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator, SimulatedClient

SOURCE = Path(__file__).parent.parent / "blueprints" / "automation" / "plexus"
BLUEPRINTS = sorted(p.name for p in SOURCE.glob("*.yaml"))
REPO_PATH = "https://github.com/plexus-ha/plexus/blob/main/blueprints/automation/plexus/"
REAL_WEBHOOKS = Path(__file__).parent / "fixtures" / "webhooks"


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


def real_payload(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded Plex webhook payload (tests/fixtures/webhooks), with top-level changes."""
    payload: dict[str, Any] = json.loads((REAL_WEBHOOKS / name).read_text(encoding="utf-8"))
    return payload | changes


def as_library_new(name: str, **metadata: Any) -> dict[str, Any]:
    """A recorded episode payload as Plex sends it for `library.new` (no player, not watched)."""
    payload = real_payload(name, event="library.new")
    del payload["Player"]
    for key in ("viewOffset", "lastViewedAt", "viewCount"):
        payload["Metadata"].pop(key, None)
    payload["Metadata"] |= metadata
    return payload


async def post_webhook(
    hass: HomeAssistant,
    client_factory: ClientSessionGenerator,
    entry: MockConfigEntry,
    payload: dict[str, Any],
) -> None:
    """Post a payload to the entry's webhook as Plex does (multipart, `payload` part)."""
    data = FormData()
    data.add_field("payload", json.dumps(payload), content_type="application/json")
    client = await client_factory()
    resp = await client.post(f"/api/webhook/{entry.data[CONF_WEBHOOK_ID]}", data=data)
    assert resp.status == 200
    await spin()


async def spin() -> None:
    """Let waiting automation runs take their turn (they never end: no block_till_done)."""
    for _ in range(50):
        await asyncio.sleep(0)


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
    await hass.async_block_till_done()
    assert len(turn_on) == 1  # the ceiling light, off before, is not switched on


async def test_movie_mode_forgets_its_snapshot_once_restored(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Tried: a movie (dimmed, restored), later the user changes the lights, then an episode
    plays and pauses. The old snapshot must not come back: the episode never dimmed anything."""
    assert await async_setup_component(hass, "scene", {})
    hass.states.async_set("light.sofa", "on", {"brightness": 180})
    turn_off = async_mock_service(hass, "light", "turn_off")
    turn_on = async_mock_service(hass, "light", "turn_on")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(hass, "movie_mode.yaml", {"player": player, "lights": ["light.sofa"]})

    await client.local_start(simulator.library.movies()[0].rating_key)
    await wait_calls(turn_off)
    hass.states.async_set("light.sofa", "off")
    await client.local_stop()
    await wait_calls(turn_on)  # restored
    hass.states.async_set("light.sofa", "on", {"brightness": 180})
    await wait_until(lambda: hass.states.get(player).state != "playing")

    # Later the user turns the sofa light off by hand and watches an episode.
    hass.states.async_set("light.sofa", "off")
    await client.local_start(simulator.library.episodes()[0].rating_key)
    await wait_until(lambda: hass.states.get(player).state == "playing")
    await client.local_pause()
    await wait_until(lambda: hass.states.get(player).state == "paused")
    await hass.async_block_till_done()
    assert len(turn_on) == 1  # no second restore: the sofa light stays off
    assert len(turn_off) == 1


async def test_movie_mode_dims_to_a_brightness(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Tried: one light on and one off when playing starts; only the one that is on is dimmed
    (dimming must not switch on a light that was off)."""
    assert await async_setup_component(hass, "scene", {})
    hass.states.async_set("light.sofa", "on", {"brightness": 255})
    hass.states.async_set("light.ceiling", "off")
    turn_on = async_mock_service(hass, "light", "turn_on")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass,
        "movie_mode.yaml",
        {
            "player": player,
            "lights": ["light.sofa", "light.ceiling"],
            "brightness": 20,
            "only_movies": False,
        },
    )
    await client.local_start(simulator.library.episodes()[0].rating_key)
    await wait_calls(turn_on)
    assert turn_on[0].data["brightness_pct"] == 20
    assert turn_on[0].data["entity_id"] == ["light.sofa"]


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


async def test_copy_new_episodes_from_real_library_new_payloads(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Recorded payloads through the webhook. Tried: a whole new show (Plex names the show, not
    its episodes, when several arrive together: library.new-1), an album (library.new-2), two
    episodes of a followed show at once, and an episode of a show nobody follows."""
    sync_media = async_mock_service(hass, DOMAIN, "sync_media")
    await automation(
        hass,
        "copy_new_episodes.yaml",
        {"shows": ["Wave, Listen to Me!", "bob's burgers"], "profile": "Laptop"},
    )
    post = [
        real_payload("library.new-1.json"),  # type show, title "Wave, Listen to Me!"
        real_payload("library.new-2.json"),  # an album
        as_library_new("media.pause-1.json"),  # Bob's Burgers S09E15
        as_library_new("media.pause-1.json", ratingKey="146735", index=16),
        as_library_new("media.resume-1.json"),  # Be Cool, Scooby-Doo! (not followed)
    ]
    for payload in post:
        await post_webhook(hass, hass_client_no_auth, loaded, payload)
    await wait_calls(sync_media, 3)
    await hass.async_block_till_done()
    assert sorted((str(c.data["rating_key"]), c.data["episodes"]) for c in sync_media) == [
        ("146734", "new"),
        ("146735", "new"),
        ("58657", "new"),
    ]
    assert {c.data["profile"] for c in sync_media} == {"Laptop"}


async def test_tidy_offline_copies_matches_real_scrobbles_by_name(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Recorded scrobbles through the webhook, against copies named as file sync names them.
    Tried: a film whose title is part of a copied film's name ("Little China" vs "Big Trouble
    in Little China (1986)": must keep the copy), and an episode, whose scrobble carries the
    episode's own title, not "Show S01E14" (must remove the episode's copy)."""
    remove = async_mock_service(hass, DOMAIN, "remove_local_copy")
    tidy = await automation(hass, "tidy_offline_copies.yaml", {"profile": "Laptop"})
    movie = "/media/laptop/Movies/Big Trouble in Little China (1986).mkv"
    episode = "/media/laptop/TV/Be Cool, Scooby-Doo!/S01E14.mkv"
    for title, path in (
        ("Big Trouble in Little China (1986)", movie),
        ("Be Cool, Scooby-Doo! S01E14", episode),
    ):
        hass.bus.async_fire(
            "plexus_transfer_finished", {"profile": "Laptop", "title": title, "path": path}
        )
    await wait_until(lambda: hass.states.get(tidy).attributes.get("current") == 2)

    other = real_payload("media.scrobble-1.json")
    other["Metadata"] |= {"ratingKey": "1", "title": "Little China", "year": 2019}
    await post_webhook(hass, hass_client_no_auth, loaded, other)
    await asyncio.sleep(0.2)
    assert remove == []

    watched = real_payload("media.resume-1.json", event="media.scrobble")
    await post_webhook(hass, hass_client_no_auth, loaded, watched)
    await wait_calls(remove)
    assert [c.data["path"] for c in remove] == [episode]

    await post_webhook(hass, hass_client_no_auth, loaded, real_payload("media.scrobble-1.json"))
    await wait_calls(remove, 2)
    assert [c.data["path"] for c in remove] == [episode, movie]
    await wait_until(lambda: hass.states.get(tidy).attributes.get("current") == 0)


async def test_tidy_offline_copies_gives_up_after_the_days_despite_other_scrobbles(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Tried: a copy followed for 1 day; someone else's scrobble after 23 hours must not give it
    another day: at 25 hours the copy is no longer followed."""
    remove = async_mock_service(hass, DOMAIN, "remove_local_copy")
    tidy = await automation(hass, "tidy_offline_copies.yaml", {"profile": "Laptop", "keep_days": 1})

    def following() -> Any:
        return hass.states.get(tidy).attributes.get("current")

    done = {"profile": "Laptop", "title": "Dune (2021)", "path": "/m/d.mkv"}
    hass.bus.async_fire("plexus_transfer_finished", done)
    await spin()
    assert following() == 1
    freezer.tick(timedelta(hours=23))
    async_fire_time_changed(hass, dt_util.utcnow())
    await spin()
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", title="Alien", year=1979))
    await spin()
    assert following() == 1
    freezer.tick(timedelta(hours=2))
    async_fire_time_changed(hass, dt_util.utcnow())
    await spin()
    assert following() == 0
    assert remove == []


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
    dune = {"type": "movie", "title": "Dune", "year": 2021}
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", user="Ben", **dune))
    hass.bus.async_fire(
        "plexus_webhook", webhook("media.scrobble", type="movie", title="Alien", year=1979)
    )
    await asyncio.sleep(0.2)
    assert remove == []
    assert hass.states.get(tidy).attributes.get("current") == 1
    hass.bus.async_fire("plexus_webhook", webhook("media.scrobble", user="anna", **dune))
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


async def test_up_next_after_a_season_finale_plays_the_next_season(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """The last episode of season 1 finished: the button plays season 2's first episode (the
    blueprint used to ask for "episode n+1 of the same season", which does not exist)."""
    phone = async_mock_service(hass, "notify", "mobile_app_anna")
    client = next(iter(simulator.clients.values()))
    player = player_entity(hass, simulator, client)
    await automation(
        hass, "up_next.yaml", {"notify_service": "notify.mobile_app_anna", "player": player}
    )
    show = next(
        s
        for s in simulator.library.shows()
        if len(
            {
                e.parent.index
                for e in simulator.library.episodes()
                if e.grandparent is s and e.parent
            }
        )
        > 1
    )
    episodes = [e for e in simulator.library.episodes() if e.grandparent is show and e.parent]
    finale = max(
        (e for e in episodes if e.parent and e.parent.index == 1), key=lambda e: e.index or 0
    )
    opener = next(e for e in episodes if e.parent and e.parent.index == 2 and e.index == 1)
    hass.bus.async_fire(
        "plexus_webhook",
        webhook(
            "media.scrobble",
            type="episode",
            rating_key=finale.rating_key,
            title=finale.title,
            grandparent_title=show.title,
            parent_index=1,
            index=finale.index,
        ),
    )
    await wait_calls(phone)
    assert phone[0].data["message"] == f"{finale.title} is done. Play the next episode?"
    (button,) = phone[0].data["data"]["actions"]
    hass.bus.async_fire("mobile_app_notification_action", {"action": button["action"]})
    await client.wait_for_state("playing", timeout=10, rating_key=opener.rating_key)
    assert client.rating_key == opener.rating_key


async def transcoding(
    hass: HomeAssistant, sim: PlexSimulator, entry: MockConfigEntry, *where: tuple[str, str]
) -> tuple[list[SimulatedClient], list[str]]:
    """New clients that transcode, each (name, location); and their player entities."""
    clients = [sim.add_client(n, stream_decision="transcode", location=loc) for n, loc in where]
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return clients, [player_entity(hass, sim, c) for c in clients]


async def test_transcode_guard_ends_a_remote_transcode(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    admin = async_mock_service(hass, "notify", "mobile_app_admin")
    (remote, home), players = await transcoding(
        hass, simulator, loaded, ("Phone abroad", "wan"), ("Kitchen", "lan")
    )
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


async def test_transcode_guard_only_4k_counts_a_4k_file_transcoded_down(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Only 4K: a 4K film the server sends as 720p is told (the session reports 720, the file
    is 4K); a 1080p film transcoded the same way is not."""
    admin = async_mock_service(hass, "notify", "mobile_app_admin")
    (big, small), players = await transcoding(
        hass, simulator, loaded, ("Den TV", "lan"), ("Attic TV", "lan")
    )
    await automation(
        hass,
        "transcode_guard.yaml",
        {
            "players": players,
            "reaction": "notify",
            "notify_service": "notify.mobile_app_admin",
            "only_4k": True,
        },
    )
    movies = [m for m in simulator.library.movies() if m.media and m.media.video_codec]
    uhd = next(m for m in movies if m.media and m.media.video_resolution == "4k")
    hd = next(m for m in movies if m.media and m.media.video_resolution == "1080")
    await small.local_start(hd.rating_key)
    await big.local_start(uhd.rating_key)
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: len(admin) == 1)
    assert hass.states.get(players[0]).attributes["video_resolution"] == "720"
    assert uhd.title in admin[0].data["message"]
    await asyncio.sleep(0.3)
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert len(admin) == 1  # the 1080p film is not told


async def test_transcode_guard_tells_each_transcoded_item_once(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """A player that transcodes one film after another: its decision stays "transcode" while the
    item changes — each item is told once (not only the first), and the position updates in
    between tell nothing."""
    admin = async_mock_service(hass, "notify", "mobile_app_admin")
    (tv,), (player,) = await transcoding(hass, simulator, loaded, ("Den TV", "lan"))
    await automation(
        hass,
        "transcode_guard.yaml",
        {"players": [player], "reaction": "notify", "notify_service": "notify.mobile_app_admin"},
    )
    first, second = [m for m in simulator.library.movies() if m.media and m.media.video_codec][:2]
    await tv.local_start(first.rating_key)
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: len(admin) == 1)
    for _ in range(3):  # position updates of the same item
        await asyncio.sleep(0.3)
        await loaded.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
    assert len(admin) == 1
    await tv.local_start(second.rating_key)
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: len(admin) == 2)
    assert second.title in admin[1].data["message"]


async def doorbell_automation(hass: HomeAssistant, players: list[str]) -> None:
    """Pause for the doorbell (event `doorbell_rang`), resume on `door_closed` (or after 60 s)."""
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


async def test_pause_for_the_doorbell_and_resume(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    clients = list(simulator.clients.values())
    playing, idle = clients[0], clients[1]
    players = [player_entity(hass, simulator, c) for c in (playing, idle)]
    await doorbell_automation(hass, players)
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


async def test_pause_for_the_doorbell_leaves_what_the_user_paused_or_stopped(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """Tried: one player already paused by the user when the bell rings (must stay paused), and
    one paused by the bell but stopped by the user before the door closes (must stay stopped)."""
    clients = list(simulator.clients.values())
    watching, user_paused = clients[0], clients[1]
    players = [player_entity(hass, simulator, c) for c in (watching, user_paused)]
    await doorbell_automation(hass, players)
    movies = simulator.library.movies()
    await watching.local_start(movies[0].rating_key)
    await user_paused.local_start(movies[1].rating_key)
    await user_paused.local_pause()
    await wait_until(lambda: hass.states.get(players[0]).state == "playing")
    await wait_until(lambda: hass.states.get(players[1]).state == "paused")
    hass.bus.async_fire("doorbell_rang")
    await watching.wait_for_state("paused", timeout=10)
    await wait_until(lambda: hass.states.get(players[0]).state == "paused")
    # At the door it turns out to be a long talk: the user stops the film.
    await watching.local_stop()
    await loaded.runtime_data.coordinator.async_refresh()
    await wait_until(lambda: hass.states.get(players[0]).state not in ("playing", "paused"))
    commands = len(watching.commands)
    hass.bus.async_fire("door_closed")
    await hass.async_block_till_done()
    await asyncio.sleep(0.2)
    assert watching.state == "stopped"
    assert len(watching.commands) == commands  # nothing was sent to it
    assert user_paused.state == "paused"
    assert not [c for c in user_paused.commands if c[0] == "play"]
