"""The tracking glue's worker and lookups through Home Assistant: answering before recording,
supervision (a failing batch, a full queue, Home Assistant stopping), the server's GUID lookup,
and the across-servers option on two simulated servers."""

# ruff: noqa: PLR0917  (pytest fixtures and parameters are positional)
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
import logging
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from sqlalchemy.exc import OperationalError

from custom_components.plexus import tracking_manager
from custom_components.plexus.catalog.db import Catalog, sqlite_url
from custom_components.plexus.const import CONF_CROSS_SERVER, DOMAIN
from custom_components.plexus.ids import signal_notification
from custom_components.plexus.tracking import TrackingStore, WatchTracker, parse_payload
from custom_components.plexus.tracking.store import TrackingStore as Store
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import LibraryConfig, PlexSimulator
from tests.test_tracking_ha import form, history, imported, item_payload, manager_of, settle, url_of


def shared_movie(sim: PlexSimulator) -> Any:
    """A movie of the simulator with a Plex agent GUID (what the other server can be asked for)."""
    return next(m for m in sim.library.movies() if m.guid.startswith("plex://movie/"))


async def keys_on(entry: MockConfigEntry) -> list[str]:
    """Rating keys in the watch history of one server entry (the database is shared)."""
    server = manager_of(entry).server_id
    return [w.rating_key for w in await history(entry) if w.server == server]


def scrobbled_keys(sim: PlexSimulator) -> list[str]:
    """Rating keys the server was asked to mark watched (`/:/scrobble`)."""
    return [query.get("key", "") for _, path, query in sim.requests if path == "/:/scrobble"]


# --- answering first, recording supervised -------------------------------------------------------


async def test_a_failing_batch_is_logged_once_and_the_worker_goes_on(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected error while recording: one log line with the cause, later webhooks recorded."""
    await imported(hass, loaded)
    manager = manager_of(loaded)
    failures = iter([RuntimeError("disk on fire"), RuntimeError("still on fire")])
    real = TrackingStore.add_audits

    def flaky(self: TrackingStore, entries: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real(self, entries)

    monkeypatch.setattr(TrackingStore, "add_audits", flaky)
    client = await hass_client_no_auth()
    movies = simulator.library.movies()
    for movie in movies[:2]:  # two failing batches
        assert (
            await client.post(url_of(loaded), data=form(item_payload(simulator, movie)))
        ).status == 200
        await settle(hass)
    assert (
        await client.post(url_of(loaded), data=form(item_payload(simulator, movies[2])))
    ).status == 200
    await settle(hass)
    logged = [r for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "disk on fire" in str(logged[0].exc_info[1])
    assert manager.inbox.counters.worker_failures == 2
    assert movies[2].rating_key in [w.rating_key for w in await history(loaded)]
    assert manager.inbox.queued == 0


async def test_a_worker_that_dies_is_logged_and_started_again(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error outside a batch ends the worker: logged with its cause, restarted, nothing lost."""
    await imported(hass, loaded)
    client = await hass_client_no_auth()
    movie = simulator.library.movies()[0]
    play = item_payload(simulator, simulator.library.movies()[1], "media.play")
    assert (await client.post(url_of(loaded), data=form(play))).status == 200
    await settle(hass)  # alice is known now: only the worker waits for a pause below
    manager = manager_of(loaded)
    real = manager.inbox.wait_for_a_pause
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("clock went backwards")
        await real()

    monkeypatch.setattr(manager.inbox, "wait_for_a_pause", broken)
    assert (
        await client.post(url_of(loaded), data=form(item_payload(simulator, movie)))
    ).status == 200
    await settle(hass)
    await settle(hass)
    logged = [r for r in caplog.records if "stopped unexpectedly" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "clock went backwards" in str(logged[0].exc_info[1])
    assert manager.inbox.counters.worker_failures == 1
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]


async def test_a_full_queue_answers_429_and_loses_nothing_queued(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """10,000 webhooks waiting: the next one is refused with a 429 (a 4xx, logged once)."""
    await imported(hass, loaded)
    manager = manager_of(loaded)
    movies = simulator.library.movies()
    queued = [parse_payload(json.dumps(item_payload(simulator, m))) for m in movies[:3]]
    manager.inbox._queue = type(manager.inbox._queue)(3)
    for event in queued:
        assert manager.enqueue(event)
    client = await hass_client_no_auth()
    for movie in movies[3:5]:
        payload = item_payload(simulator, movie)
        resp = await client.post(url_of(loaded), data=form(payload))
        assert resp.status == 429
    assert manager.inbox.counters.refused_busy == 2
    assert len([r for r in caplog.records if "(busy)" in r.getMessage()]) == 1
    await settle(hass)
    recorded = {w.rating_key for w in await history(loaded)}
    assert recorded == {m.rating_key for m in movies[:3]}


async def test_stopping_home_assistant_records_what_is_queued(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    catalog_in_tmp: Path,
) -> None:
    """HA stopping right after a burst: the queue is recorded before tasks are cancelled."""
    await imported(hass, loaded)
    client = await hass_client_no_auth()
    movies = simulator.library.movies()[:20]
    for movie in movies:
        payload = item_payload(simulator, movie)
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    assert manager_of(loaded).inbox.queued > 0  # not recorded yet: answering came first
    await hass.async_stop()
    catalog = Catalog(sqlite_url(catalog_in_tmp))
    try:
        watches = Store(catalog.engine).history(None, limit=100)
    finally:
        catalog.close()
    assert {w.rating_key for w in watches} == {m.rating_key for m in movies}


# --- asking the server ---------------------------------------------------------------------------


async def test_a_guid_the_catalog_does_not_know_is_asked_of_the_server(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """An item added since the last import, under a stale key: found by its plex:// GUID."""
    await imported(hass, loaded)
    added = simulator.library.add_movie("Arrived Since The Import", year=2025, notify=False)
    payload = item_payload(simulator, added)
    payload["Metadata"]["ratingKey"] = "990001"  # a key the catalog has never seen
    client = await hass_client_no_auth()
    assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    assert [w.rating_key for w in await history(loaded)] == [added.rating_key]
    asked = [q.get("guid") for _, path, q in simulator.requests if "guid" in q]
    assert added.guid in asked


# --- across servers ------------------------------------------------------------------------------


@pytest.fixture
async def second_server(socket_enabled: None) -> AsyncIterator[PlexSimulator]:
    """Another server (other machine id, fewer items, so its rating keys differ)."""
    sim = PlexSimulator(
        token="other-token", clients=1, seed=11, library=LibraryConfig(movies=5, shows=1, seed=11)
    )
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def two_entries(
    hass: HomeAssistant, first: PlexSimulator, second: PlexSimulator, options: dict[str, Any]
) -> tuple[MockConfigEntry, MockConfigEntry]:
    entries = []
    for sim, title in ((first, "Plexus Simulator"), (second, "Other")):
        entry = MockConfigEntry(
            domain=DOMAIN,
            title=title,
            unique_id=sim.machine_identifier,
            data=entry_data(sim, server_name=title),
            options=options,
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        entries.append(entry)
    return entries[0], entries[1]


@pytest.mark.parametrize("imported_there", [True, False], ids=["in-its-catalog", "asked-of-it"])
async def test_across_servers_marks_the_watch_on_the_other_server(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    second_server: PlexSimulator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    imported_there: bool,
) -> None:
    """With the option, a watch on one server is scrobbled on the other (found by GUID)."""
    home, other = await two_entries(hass, simulator, second_server, {CONF_CROSS_SERVER: True})
    movie = shared_movie(simulator)
    copy = second_server.library.add_movie(
        movie.title, year=movie.year, guid=movie.guid, guids=movie.ext_guids, notify=False
    )
    assert copy.rating_key != movie.rating_key
    await imported(hass, home)
    if imported_there:
        await imported(hass, other)
    client = await hass_client_no_auth()
    assert (
        await client.post(url_of(home), data=form(item_payload(simulator, movie)))
    ).status == 200
    await settle(hass)
    assert await keys_on(home) == [movie.rating_key]
    assert scrobbled_keys(second_server) == [copy.rating_key]
    assert second_server.library[copy.rating_key].view_count == 1
    assert scrobbled_keys(simulator) == []  # nothing sent back to the server it came from
    assert await keys_on(other) == ([copy.rating_key] if imported_there else [])
    assert not [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components.plexus")
    ]


async def test_across_servers_is_off_by_default(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    second_server: PlexSimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Without the option, the other server is left alone."""
    home, other = await two_entries(hass, simulator, second_server, {})
    movie = shared_movie(simulator)
    copy = second_server.library.add_movie(
        movie.title, year=movie.year, guid=movie.guid, guids=movie.ext_guids, notify=False
    )
    await imported(hass, home)
    await imported(hass, other)
    client = await hass_client_no_auth()
    assert (
        await client.post(url_of(home), data=form(item_payload(simulator, movie)))
    ).status == 200
    await settle(hass)
    assert await keys_on(home) == [movie.rating_key]
    assert scrobbled_keys(second_server) == []
    assert second_server.library[copy.rating_key].view_count == 0
    assert await keys_on(other) == []


# --- a database that cannot be opened ------------------------------------------------------------


async def test_a_history_that_cannot_be_opened_holds_watches_until_it_can(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tracking tables cannot be opened (a locked database): one warning with the cause,
    services refuse with a translated error, scrobbles are held (the oldest dropped past the cap,
    one warning) and recorded once the database opens."""

    def locked(_engine: Any) -> None:
        raise OperationalError("CREATE TABLE", {}, Exception("database is locked"))

    monkeypatch.setattr(tracking_manager, "TrackingStore", locked)
    monkeypatch.setattr(tracking_manager, "MAX_HELD", 3)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    manager = manager_of(config_entry)
    assert manager.status == "waiting_for_catalog"
    opened = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(opened) == 1
    assert "database is locked" in opened[0].getMessage()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "mark_watched",
            {"item": simulator.library.movies()[0].rating_key, "user": "alice"},
            blocking=True,
        )
    assert err.value.translation_key == "tracking_not_ready"
    client = await hass_client_no_auth()
    movies = simulator.library.movies()[:5]
    for movie in movies:
        payload = item_payload(simulator, movie)
        assert (await client.post(url_of(config_entry), data=form(payload))).status == 200
    await settle(hass)
    assert manager.counters.held_dropped == 2
    assert len([r for r in caplog.records if "oldest held watches" in r.getMessage()]) == 1
    assert manager.diagnostics()["held"] == 3
    monkeypatch.setattr(tracking_manager, "TrackingStore", Store)
    await manager._async_open_store()
    await settle(hass)
    assert manager.status == "ready"
    assert {w.rating_key for w in await history(config_entry)} == {m.rating_key for m in movies[2:]}


async def test_a_server_that_refuses_the_push_keeps_the_local_watch(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """mark_watched with push_to_plex while the server fails: the watch is recorded in Plexus,
    the service fails with the translated `scrobble_failed` naming the server."""
    await imported(hass, loaded)
    movie = simulator.library.movies()[1]
    manager_of(loaded).learn_user("1", "alice")
    views = movie.view_count
    simulator.set_error(500)
    try:
        with pytest.raises(HomeAssistantError) as err:
            await hass.services.async_call(
                DOMAIN,
                "mark_watched",
                {"item": movie.rating_key, "user": "alice", "push_to_plex": True},
                blocking=True,
            )
    finally:
        simulator.set_error(None)
    assert err.value.translation_key == "scrobble_failed"
    assert err.value.translation_placeholders["server"] == loaded.title
    assert movie.view_count == views
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]


async def test_marking_twice_records_one_watch(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry
) -> None:
    """The same item marked watched twice in a row: the second call says not recorded."""
    await imported(hass, loaded)
    movie = simulator.library.movies()[1]
    manager_of(loaded).learn_user("1", "alice")
    responses = [
        await hass.services.async_call(
            DOMAIN,
            "mark_watched",
            {"item": movie.rating_key, "user": "alice"},
            blocking=True,
            return_response=True,
        )
        for _ in range(2)
    ]
    assert [r["recorded"] for r in responses] == [True, False]
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]


async def test_across_servers_skips_a_server_without_the_item_and_survives_a_refusal(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    second_server: PlexSimulator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the option: a movie the other server lacks is not scrobbled there (no warning); a
    movie it holds but whose scrobble it refuses is one warning naming it; the home watch stays."""
    home, other = await two_entries(hass, simulator, second_server, {CONF_CROSS_SERVER: True})
    movie, missing = [m for m in simulator.library.movies() if m.guid.startswith("plex://")][:2]
    second_server.library.add_movie(
        movie.title, year=movie.year, guid=movie.guid, guids=movie.ext_guids, notify=False
    )
    await imported(hass, home)
    await imported(hass, other)
    client = await hass_client_no_auth()
    assert (
        await client.post(url_of(home), data=form(item_payload(simulator, missing)))
    ).status == 200
    await settle(hass)
    assert scrobbled_keys(second_server) == []
    second_server.set_error(500)
    try:
        assert (
            await client.post(url_of(home), data=form(item_payload(simulator, movie)))
        ).status == 200
        await settle(hass)
    finally:
        second_server.set_error(None)
    assert sorted(await keys_on(home)) == sorted([movie.rating_key, missing.rating_key])
    assert await keys_on(other) == []
    warned = [r.getMessage() for r in caplog.records if "not marked watched" in r.getMessage()]
    assert len(warned) == 1
    assert movie.title in warned[0]
    assert "Other" in warned[0]


# --- the websocket backup in trouble -----------------------------------------------------------


async def test_odd_notifications_and_a_database_down_at_session_end_break_nothing(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`playing` notifications of an odd shape are ignored; a session that ends past the
    threshold while the database is down is not recorded (logged at debug), nothing raised."""
    await imported(hass, loaded)
    coordinator = loaded.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected, timeout=10)
    movie = simulator.library.movies()[3]
    player = next(iter(simulator.clients.values()))
    await player.local_start(movie.rating_key, offset_ms=0)
    await wait_until(lambda: bool(coordinator.data.sessions), timeout=10)
    manager = manager_of(loaded)
    server = manager.server_id
    for container in (
        {"PlaySessionStateNotification": "not a list"},
        {"PlaySessionStateNotification": ["not an entry", 7]},
    ):
        async_dispatcher_send(hass, signal_notification(server), "playing", container)
    await player.local_seek(int((movie.duration or 0) * 0.95))
    await wait_until(
        lambda: any(
            s.position_ms >= (movie.duration or 0) * 0.9 for s in manager._sessions.values()
        ),
        timeout=10,
    )
    ended: list[Any] = []

    async def down(self: WatchTracker, session: Any) -> Any:
        ended.append(session)
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(WatchTracker, "session_ended", down)
    caplog.set_level(logging.DEBUG, logger="custom_components.plexus.tracking_manager")
    await player.local_stop()
    await wait_until(lambda: not coordinator.data.sessions, timeout=10)
    await settle(hass)
    assert [s.item.rating_key for s in ended] == [movie.rating_key]
    assert await history(loaded) == []
    assert any("Ended session of" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_worker_that_dies_twice_is_restarted_after_a_delay(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second death in a row waits (a timer) before the restart; when it fires, what was
    queued is recorded."""
    await imported(hass, loaded)
    client = await hass_client_no_auth()
    play = item_payload(simulator, simulator.library.movies()[1], "media.play")
    assert (await client.post(url_of(loaded), data=form(play))).status == 200
    await settle(hass)  # alice is known now: only the worker waits for a pause below
    manager = manager_of(loaded)
    real = manager.inbox.wait_for_a_pause
    deaths = [RuntimeError("first"), RuntimeError("second")]

    async def broken() -> None:
        if deaths:
            raise deaths.pop(0)
        await real()

    monkeypatch.setattr(manager.inbox, "wait_for_a_pause", broken)
    movie = simulator.library.movies()[0]
    assert (
        await client.post(url_of(loaded), data=form(item_payload(simulator, movie)))
    ).status == 200
    await settle(hass)
    assert manager.inbox.counters.worker_failures == 2
    assert await history(loaded) == []  # waiting for the restart timer
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=5))
    await settle(hass)
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]


async def test_webhooks_not_recorded_by_shutdown_are_counted_in_a_warning(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database too slow to take the queue before the shutdown limit: the entry unloads on
    time and says how many webhooks were not recorded."""
    monkeypatch.setattr(tracking_manager, "DRAIN_TIMEOUT_S", 0.3)
    await imported(hass, loaded)
    manager = manager_of(loaded)
    stuck = asyncio.Event()

    async def slow(batch: list[Any]) -> list[Any]:
        await stuck.wait()
        return []

    manager.inbox._record = slow  # type: ignore[method-assign]
    client = await hass_client_no_auth()
    for movie in simulator.library.movies()[:3]:
        payload = item_payload(simulator, movie)
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    assert await hass.config_entries.async_unload(loaded.entry_id)
    warned = [
        r.getMessage() for r in caplog.records if "not recorded at shutdown" in r.getMessage()
    ]
    assert len(warned) == 1
    assert warned[0].startswith("3 webhooks")  # the batch being written counts too
