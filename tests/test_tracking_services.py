"""Watch tracking in HA, part two: user devices and sensors, Up Next, the services, the server's
history import and the Repairs fix flow for conflicts (through HA, with the simulator)."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.components.todo import DOMAIN as TODO_DOMAIN, TodoItemStatus
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from sqlalchemy.exc import OperationalError

from custom_components.plexus import tracking_entity
from custom_components.plexus.const import CONF_MARK_WATCHED_IN_PLEX, CONF_MONITORED_USERS, DOMAIN
from custom_components.plexus.ids import signal_watches_changed, user_device_identifier
from custom_components.plexus.repairs import conflict_issue_id
from custom_components.plexus.tracking import WatchTracker
from tests.conftest import wait_until
from tests.plex_simulator import PlexSimulator
from tests.test_tracking_ha import (
    form,
    history,
    imported,
    item_payload,
    manager_of,
    settle,
    url_of,
)

TODO = "todo.alice_up_next"


async def post(
    hass: HomeAssistant,
    client_factory: ClientSessionGenerator,
    entry: MockConfigEntry,
    payload: dict[str, Any],
) -> None:
    client = await client_factory()
    assert (await client.post(url_of(entry), data=form(payload))).status == 200
    await settle(hass)


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


@pytest.fixture
async def tracked(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> MockConfigEntry:
    """The entry with the library imported and alice (id 1) seen through a webhook."""
    await imported(hass, loaded)
    payload = item_payload(simulator, simulator.library.movies()[0], "media.play")
    await post(hass, hass_client_no_auth, loaded, payload)
    await hass.async_block_till_done()
    return loaded


def _show_episodes(sim: PlexSimulator) -> list[Any]:
    """Episodes of the simulator's first show with at least three regular episodes, in order."""
    for show in sim.library.shows():
        episodes = [
            e
            for e in sim.library.episodes()
            if e.grandparent is show and e.parent is not None and (e.parent.index or 0) > 0
        ]
        if len(episodes) >= 3:
            return sorted(episodes, key=lambda e: (e.parent.index, e.index))
    raise AssertionError("no show with three episodes")


async def test_user_device_sensors_follow_the_history(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    tracked: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A user seen in a webhook gets a device with sensors; a scrobble updates them."""
    device = dr.async_get(hass).async_get_device_by_identifier(
        user_device_identifier(simulator.machine_identifier, "alice"), tracked.entry_id
    )
    assert device is not None
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert float(hass.states.get("sensor.alice_watch_time_today").state) == 0
    assert hass.states.get("sensor.alice_last_watched").state == "unknown"
    episode = _show_episodes(simulator)[0]
    await post(hass, hass_client_no_auth, tracked, item_payload(simulator, episode))
    await hass.async_block_till_done()
    last = hass.states.get("sensor.alice_last_watched")
    assert last.state == f"{episode.grandparent.title} · {episode.title}"
    assert last.attributes["source"] == "webhook"
    minutes = round((episode.duration or 0) / 60_000, 1)
    today = hass.states.get("sensor.alice_watch_time_today")
    assert float(today.state) == minutes
    assert today.attributes["state_class"] == "total_increasing"
    assert today.attributes["unit_of_measurement"] == "min"
    assert hass.states.get("sensor.alice_watched_this_week").state == "1"


async def test_up_next_and_checking_an_item_off(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Up Next lists the episode after the one watched; checking it off records it (and in Plex)."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_MARK_WATCHED_IN_PLEX: True})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await imported(hass, config_entry)
    first, second, third = _show_episodes(simulator)[:3]
    # Watched out of order: the second first, then the first; the next one is the third.
    await post(hass, hass_client_no_auth, config_entry, item_payload(simulator, second))
    await post(hass, hass_client_no_auth, config_entry, item_payload(simulator, first))
    await hass.async_block_till_done()
    items = await hass.services.async_call(
        TODO_DOMAIN, "get_items", {"entity_id": TODO}, blocking=True, return_response=True
    )
    listed = items[TODO]["items"]
    assert [i["uid"] for i in listed] == [third.rating_key]
    assert "S" in listed[0]["summary"]
    views = third.view_count
    await hass.services.async_call(
        TODO_DOMAIN,
        "update_item",
        {"entity_id": TODO, "item": third.rating_key, "status": TodoItemStatus.COMPLETED},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert third.rating_key in [w.rating_key for w in await history(config_entry)]
    assert third.view_count == views + 1  # the option marks it watched on the server
    items = await hass.services.async_call(
        TODO_DOMAIN, "get_items", {"entity_id": TODO}, blocking=True, return_response=True
    )
    assert third.rating_key not in [i["uid"] for i in items[TODO]["items"]]
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            TODO_DOMAIN,
            "update_item",
            {"entity_id": TODO, "item": "no such episode", "status": TodoItemStatus.COMPLETED},
            blocking=True,
        )


async def test_mark_watched_unwatched_and_history_services(
    hass: HomeAssistant, simulator: PlexSimulator, tracked: MockConfigEntry
) -> None:
    """Mark by rating key and by title, read back through watch_history, unmark."""
    movie, other = simulator.library.movies()[1:3]
    views = movie.view_count
    response = await call(hass, "mark_watched", item=movie.rating_key, user="alice")
    assert response == {"rating_key": movie.rating_key, "user": "alice", "recorded": True}
    response = await call(hass, "mark_watched", item=other.title, user="1")
    assert response["rating_key"] == other.rating_key
    assert movie.view_count == views  # not pushed: the option is off
    result = await call(hass, "watch_history", user="alice", type="movie", limit=10)
    assert [w["rating_key"] for w in result["watches"]] == [other.rating_key, movie.rating_key]
    assert result["watches"][0]["source"] == "manual"
    assert (await call(hass, "watch_history", type="episode"))["watches"] == []
    response = await call(
        hass, "mark_unwatched", item=movie.rating_key, user="alice", push_to_plex=True
    )
    assert response["removed"] == 1
    assert movie.view_count == 0  # pushed: unscrobbled on the server
    result = await call(hass, "watch_history")
    assert [w["rating_key"] for w in result["watches"]] == [other.rating_key]


@pytest.mark.parametrize(
    ("service", "data", "field"),
    [
        ("mark_watched", {"item": "12", "user": "nobody"}, "user"),
        ("mark_watched", {"item": "zzzz qqqq xxxx", "user": "alice"}, "item"),
        ("mark_unwatched", {"item": "999999", "user": "alice"}, "item"),
        ("watch_history", {"user": "nobody"}, "user"),
    ],
    ids=["unknown user", "title found nowhere", "unknown rating key", "history of unknown user"],
)
async def test_services_refuse_bad_input_naming_the_field(
    hass: HomeAssistant, tracked: MockConfigEntry, service: str, data: dict[str, Any], field: str
) -> None:
    """Bad input is a ServiceValidationError whose message names the field; nothing recorded."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, **data)
    assert err.value.translation_placeholders is not None
    assert err.value.translation_placeholders["field"] == field
    assert await history(tracked) == []


async def test_services_refuse_malformed_values(
    hass: HomeAssistant, tracked: MockConfigEntry
) -> None:
    """Schema errors: a limit out of range, a type that is not watchable, a missing user."""
    for data in ({"limit": 0}, {"type": "album"}, {"since": "not a time"}):
        with pytest.raises(vol.Invalid):
            await call(hass, "watch_history", **data)
    with pytest.raises(vol.Invalid):
        await call(hass, "mark_watched", item="1")


async def test_import_watch_history_pages_without_duplicates(
    hass: HomeAssistant, simulator: PlexSimulator, tracked: MockConfigEntry
) -> None:
    """The server's history is read page by page; importing twice adds nothing the second time."""
    lib = simulator.library
    for item in lib.movies()[:3] + _show_episodes(simulator)[:2]:
        lib.mark_watched(item.rating_key)
    # What the server's history holds (the simulator's library comes with some views).
    watched = [i for i in lib.movies() + lib.episodes() if i.view_count and i.last_viewed_at]
    tracks = [i for i in lib.tracks() if i.view_count and i.last_viewed_at]
    first = await call(hass, "import_watch_history")
    assert first == {
        "read": len(watched) + len(tracks),
        "added": len(watched),
        "duplicates": 0,
        "skipped": len(tracks),
    }
    assert first["read"] > 200  # more than one page
    second = await call(hass, "import_watch_history")
    assert second == first | {"added": 0, "duplicates": len(watched)}
    records = await history(tracked)
    assert sorted(w.rating_key for w in records) == sorted(i.rating_key for i in watched)
    assert {w.source for w in records} == {"plex_history"}
    assert {w.user_name for w in records} == {"alice"}


async def test_import_watch_history_reports_a_server_failure(
    hass: HomeAssistant, simulator: PlexSimulator, tracked: MockConfigEntry
) -> None:
    """A server that fails the history request: a HomeAssistantError naming it."""
    simulator.set_error(500)
    try:
        with pytest.raises(HomeAssistantError, match="Plexus Simulator"):
            await call(hass, "import_watch_history")
    finally:
        simulator.set_error(None)


async def test_conflict_is_a_repairs_issue_resolved_in_its_fix_flow(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Two shows near the payload's title: a fixable issue; the pick is remembered and applied."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    lib = simulator.library
    us = lib.add_show("The Office (US)", year=2005)
    uk = lib.add_show("The Office (UK)", year=2001)
    us_ep = lib.add_episode(us, 1, 1, title="Pilot", duration_ms=1_500_000)
    lib.add_episode(uk, 1, 1, title="Downsize", duration_ms=1_800_000)
    await imported(hass, loaded)
    payload = item_payload(simulator, us_ep)
    # Another source's copy: no key or GUID we know, the show named without its country.
    payload["Metadata"] |= {
        "ratingKey": "777777",
        "guid": "local://777777",
        "Guid": [],
        "grandparentTitle": "The Office",
        "grandparentRatingKey": "777770",
        "grandparentGuid": "local://777770",
    }
    await post(hass, hass_client_no_auth, loaded, payload)
    await hass.async_block_till_done()
    assert await history(loaded) == []
    manager = manager_of(loaded)
    conflicts = await manager.tracker.conflicts()
    assert len(conflicts) == 1
    issue_id = conflict_issue_id(loaded.entry_id, conflicts[0].show_key)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders["title"] == "The Office"

    client = await hass_client()
    resp = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert resp.status == 200, await resp.text()
    flow = await resp.json()
    assert flow["step_id"] == "init"
    options = flow["data_schema"][0]["selector"]["select"]["options"]
    values = [o["value"] for o in options]
    assert us.rating_key in values
    assert uk.rating_key in values
    assert values[-1] == "ignore"
    assert any("2005" in o["label"] for o in options)
    resp = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}", json={"choice": us.rating_key}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    watches = await history(loaded)
    assert [(w.rating_key, w.show_rating_key) for w in watches] == [
        (us_ep.rating_key, us.rating_key)
    ]
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert await manager.tracker.conflicts() == []
    # Remembered: the next episode of the same show is mapped at once.
    payload["Metadata"] |= {"ratingKey": "777778", "index": 2, "title": "Diversity Day"}
    await post(hass, hass_client_no_auth, loaded, payload)
    assert len(await history(loaded)) == 2
    assert await manager.tracker.conflicts() == []


async def test_a_database_error_while_re_reading_keeps_what_the_entities_show(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    tracked: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The history cannot be read (the database went away): the user's entities keep their last
    state (logged at debug), watch_history fails with `history_failed`; a change of another user
    does not make them read at all."""
    movie = simulator.library.movies()[1]
    await call(hass, "mark_watched", item=movie.rating_key, user="alice")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.alice_watched_this_week").state == "1"
    last = hass.states.get("sensor.alice_last_watched").state
    reads: list[str] = []

    async def gone(self: WatchTracker, user_id: str | None = None, **_: Any) -> Any:
        reads.append(str(user_id))
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(WatchTracker, "stats", gone)
    monkeypatch.setattr(WatchTracker, "history", gone)
    monkeypatch.setattr(WatchTracker, "up_next", gone)
    server = manager_of(tracked).server_id
    async_dispatcher_send(hass, signal_watches_changed(server), frozenset({"someone else"}))
    await hass.async_block_till_done()
    assert reads == []
    caplog.set_level(logging.DEBUG, logger="custom_components.plexus.tracking_entity")
    async_dispatcher_send(hass, signal_watches_changed(server), frozenset({"1"}))
    await hass.async_block_till_done()
    assert reads
    assert set(reads) == {"1"}
    assert hass.states.get("sensor.alice_watched_this_week").state == "1"
    assert hass.states.get("sensor.alice_last_watched").state == last
    assert any("Watch history of alice not read" in r.getMessage() for r in caplog.records)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "watch_history", user="alice")
    assert err.value.translation_key == "history_failed"
    assert "server closed the connection" in err.value.translation_placeholders["error"]


async def test_renaming_or_unchecking_an_up_next_item_records_nothing(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    tracked: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Only checking an item off is a watch: a rename or "needs action" leaves history and list."""
    first, second = _show_episodes(simulator)[:2]
    await post(hass, hass_client_no_auth, tracked, item_payload(simulator, first))
    await hass.async_block_till_done()
    before = [w.rating_key for w in await history(tracked)]
    for update in ({"rename": "Something else"}, {"status": TodoItemStatus.NEEDS_ACTION}):
        await hass.services.async_call(
            TODO_DOMAIN,
            "update_item",
            {"entity_id": TODO, "item": second.rating_key} | update,
            blocking=True,
        )
        await hass.async_block_till_done()
        assert [w.rating_key for w in await history(tracked)] == before
        items = await hass.services.async_call(
            TODO_DOMAIN, "get_items", {"entity_id": TODO}, blocking=True, return_response=True
        )
        assert [i["uid"] for i in items[TODO]["items"]] == [second.rating_key]


async def test_watch_history_since_a_time_without_zone_is_local_time(
    hass: HomeAssistant, simulator: PlexSimulator, tracked: MockConfigEntry
) -> None:
    """`since` without a time zone is Home Assistant's local time: a watch made now is after
    yesterday and not after tomorrow."""
    movie = simulator.library.movies()[1]
    await call(hass, "mark_watched", item=movie.rating_key, user="alice")
    now = dt_util.now().replace(tzinfo=None)
    yesterday = (now - timedelta(days=1)).isoformat()
    tomorrow = (now + timedelta(days=1)).isoformat()
    found = await call(hass, "watch_history", since=yesterday)
    assert [w["rating_key"] for w in found["watches"]] == [movie.rating_key]
    assert (await call(hass, "watch_history", since=tomorrow))["watches"] == []


async def test_import_watch_history_stops_at_max_items_and_reads_since(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """max_items caps what is read (across pages); items the catalog does not hold yet are kept
    with what the server's history says of them; `since` in the future reads nothing."""
    lib = simulator.library
    for item in lib.movies()[:3]:
        lib.mark_watched(item.rating_key)
    result = await call(hass, "import_watch_history", max_items=3)
    assert result["read"] == 3
    assert result["added"] + result["skipped"] == 3
    records = await history(loaded)
    assert len(records) == result["added"] > 0
    assert all(w.title and w.guids == () and w.year is None for w in records)
    tomorrow = (dt_util.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert (await call(hass, "import_watch_history", since=tomorrow))["read"] == 0


async def test_import_watch_history_skips_users_not_monitored(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """With monitored users set, the server's history of anybody else is read but skipped."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_MONITORED_USERS: ["bob"]})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    simulator.library.mark_watched(simulator.library.movies()[0].rating_key)
    result = await call(hass, "import_watch_history", max_items=20)
    assert result["read"] > 0
    assert result["skipped"] == result["read"]
    assert result["added"] == 0
    assert await history(config_entry) == []


async def test_a_monitored_user_is_found_by_plex_id_once_seen(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A user named in the monitored users option is known by name only until Plex shows their
    account id; from then on services take the id too and watches are kept under it."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_MONITORED_USERS: ["alice"]})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await imported(hass, config_entry)
    movie = simulator.library.movies()[1]
    with pytest.raises(ServiceValidationError):
        await call(hass, "mark_watched", item=movie.rating_key, user="1")
    payload = item_payload(simulator, simulator.library.movies()[0], "media.play")
    await post(hass, hass_client_no_auth, config_entry, payload)
    await hass.async_block_till_done()
    response = await call(hass, "mark_watched", item=movie.rating_key, user="1")
    assert response["user"] == "alice"
    assert [(w.rating_key, w.user_id) for w in await history(config_entry)] == [
        (movie.rating_key, "1")
    ]


async def test_entities_whose_read_failed_read_again_once_the_database_is_back(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    tracked: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A watch is recorded, but re-reading the history for the entities fails (OperationalError:
    the database went away just after the write). Before: the sensors kept the old figure until
    the user's next watch, however long that took. Now: they read again a little later — while the
    database is still away nothing changes and they try again; once it answers they show it."""
    monkeypatch.setattr(tracking_entity, "REREAD_RETRY_S", 0.05)
    movies = simulator.library.movies()
    await call(hass, "mark_watched", item=movies[1].rating_key, user="alice")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.alice_watched_this_week").state == "1"
    reads: list[str] = []

    async def gone(self: WatchTracker, user_id: str | None = None, **_: Any) -> Any:
        reads.append(str(user_id))
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        for name in ("stats", "history", "up_next"):
            patch.setattr(WatchTracker, name, gone)
        await call(hass, "mark_watched", item=movies[2].rating_key, user="alice")
        await hass.async_block_till_done()
        first = len(reads)
        assert first
        await wait_until(lambda: len(reads) > first, timeout=30)  # tried again, still away
        assert hass.states.get("sensor.alice_watched_this_week").state == "1"  # kept
    await wait_until(
        lambda: hass.states.get("sensor.alice_watched_this_week").state == "2", timeout=30
    )
    assert movies[2].title in hass.states.get("sensor.alice_last_watched").state
