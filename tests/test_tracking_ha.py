"""Watch tracking through Home Assistant: the webhook, bus events, the event entity, the history.

Real payloads (tests/fixtures/webhooks/, their Server.uuid pointed at the simulator) and synthetic
ones (tests/fixtures/webhooks-synthetic/) posted to the entry's webhook over HTTP; bad requests;
duplicate suppression; the websocket backup; the entry migration; a restart of the entry.
"""

# ruff: noqa: PLR0917  (pytest fixtures and parameters are positional)
from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import copy
import json
import logging
from pathlib import Path
import threading
from typing import Any
import uuid

from aiohttp import FormData
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from sqlalchemy import Engine, create_engine, inspect

from custom_components.plexus.const import (
    CONF_DB_URL,
    CONF_MONITORED_USERS,
    DOMAIN,
    EVENT_PLEXUS_WEBHOOK,
)
from custom_components.plexus.event import MAX_EXTRA_EVENT_TYPES
from custom_components.plexus.tracking import EVENT_TYPES
from custom_components.plexus.tracking_manager import TrackingManager
from tests.conftest import PG_URL, entry_data, wait_until
from tests.plex_simulator import PlexSimulator
from tests.plex_simulator.library import Item

FIXTURES = Path(__file__).parent / "fixtures"
REAL = sorted((FIXTURES / "webhooks").glob("*.json"))
SYNTHETIC = sorted((FIXTURES / "webhooks-synthetic").glob("*.json"))
EVENT_ENTITY = "event.plexus_simulator_plex_webhook"


def manager_of(entry: MockConfigEntry) -> TrackingManager:
    """The entry's tracking manager."""
    manager: TrackingManager = entry.runtime_data.tracking
    return manager


def url_of(entry: MockConfigEntry) -> str:
    """The path of the entry's webhook."""
    return f"/api/webhook/{entry.data[CONF_WEBHOOK_ID]}"


def form(payload: dict[str, Any] | str | bytes, *, thumb: bytes | None = None) -> FormData:
    """A multipart body as Plex sends it (payload part, optional JPEG thumbnail)."""
    data = FormData()
    text = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    data.add_field("payload", text, content_type="application/json")
    if thumb is not None:
        data.add_field("thumb", thumb, filename="thumb.jpg", content_type="image/jpeg")
    return data


def item_payload(
    sim: PlexSimulator,
    item: Item,
    event: str = "media.scrobble",
    *,
    user: tuple[int, str] = (1, "alice"),
    progress: float = 0.95,
    server: str | None = None,
) -> dict[str, Any]:
    """A payload for a simulator item, shaped like the real captures."""
    duration = item.duration or 1_800_000
    metadata: dict[str, Any] = {
        "ratingKey": item.rating_key,
        "key": f"/library/metadata/{item.rating_key}",
        "guid": item.guid,
        "type": item.type,
        "title": item.title,
        "year": item.year,
        "duration": duration,
        "viewOffset": int(duration * progress),
        "Guid": [{"id": g} for g in item.ext_guids],
    }
    if item.type == "episode":
        season = item.parent
        show = item.grandparent
        assert season is not None
        assert show is not None
        metadata |= {
            "index": item.index,
            "parentIndex": season.index,
            "grandparentTitle": show.title,
            "grandparentRatingKey": show.rating_key,
            "grandparentGuid": show.guid,
        }
    return {
        "event": event,
        "user": True,
        "owner": True,
        "Account": {"id": user[0], "title": user[1]},
        "Server": {"title": "Plexus Simulator", "uuid": server or sim.machine_identifier},
        "Player": {"local": True, "title": "Living Room", "uuid": "player-1"},
        "Metadata": metadata,
    }


async def imported(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Import the simulator's library into the catalog."""
    await entry.runtime_data.catalog.async_import("full")
    await hass.async_block_till_done()


async def settle(hass: HomeAssistant) -> None:
    """Let the tracking worker record what was queued."""
    await hass.async_block_till_done(wait_background_tasks=True)


async def history(entry: MockConfigEntry) -> list[Any]:
    tracker = manager_of(entry).tracker
    assert tracker is not None
    return await tracker.history(None, limit=1_000)


def bus_events(hass: HomeAssistant) -> list[Event]:
    events: list[Event] = []
    hass.bus.async_listen(EVENT_PLEXUS_WEBHOOK, events.append)
    return events


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


# --- receiving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL + SYNTHETIC, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_every_payload_is_accepted_fired_and_shown(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    path: Path,
) -> None:
    """Each real and synthetic payload (pointed at our server): 200, a bus event, the entity."""
    payload = json.loads(path.read_text())  # noqa: ASYNC240 - a small fixture
    payload.setdefault("Server", {})["uuid"] = simulator.machine_identifier
    events = bus_events(hass)
    client = await hass_client_no_auth()
    resp = await client.post(url_of(loaded), data=form(payload, thumb=b"\xff\xd8jpeg"))
    assert resp.status == 200
    await settle(hass)
    assert len(events) == 1
    fired = events[0].data
    assert fired["event"] == payload["event"]
    assert fired["config_entry_id"] == loaded.entry_id
    assert fired["known_server"] is True
    if "Metadata" in payload:
        assert fired["item"]["rating_key"] == str(payload["Metadata"]["ratingKey"])
        assert fired["item"]["guids"] == [
            g["id"] for g in payload["Metadata"].get("Guid", []) if "id" in g
        ]
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    # Known or not, a Plex-style event name is passed through as itself.
    assert state.attributes["event_type"] == payload["event"]
    assert payload["event"] in state.attributes["event_types"]
    assert state.attributes["plex_event"] == payload["event"]
    assert manager_of(loaded).counters.accepted == 1
    no_errors(caplog)


async def test_unknown_events_reach_the_event_entity_as_themselves(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    simulator: PlexSimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """An event Plex may add later fires as itself (automations can use it); a name unlike
    Plex's, or new names beyond the cap (a leaked URL must not grow the list), fire as
    ``other`` — never dropped, the raw name always in ``plex_event``."""
    client = await hass_client_no_auth()

    async def post(name: str) -> State:
        payload = {"event": name, "Server": {"uuid": simulator.machine_identifier}}
        resp = await client.post(url_of(loaded), data=form(payload))
        assert resp.status == 200
        await settle(hass)
        state = hass.states.get(EVENT_ENTITY)
        assert state is not None
        assert state.attributes["plex_event"] == name
        return state

    state = await post("media.newthing")
    assert state.attributes["event_type"] == "media.newthing"
    assert "media.newthing" in state.attributes["event_types"]
    assert (await post("Weird <Event>!")).attributes["event_type"] == "other"
    assert (await post("media.newthing")).attributes["event_type"] == "media.newthing"
    for n in range(MAX_EXTRA_EVENT_TYPES - 1):
        name = f"library.extra.e{chr(97 + n)}"
        assert (await post(name)).attributes["event_type"] == name
    state = await post("library.one.toomany")
    assert state.attributes["event_type"] == "other"
    assert "library.one.toomany" not in state.attributes["event_types"]
    assert len(state.attributes["event_types"]) == len(EVENT_TYPES) + 1 + MAX_EXTRA_EVENT_TYPES


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    # (what was tried, request kwargs, status, reason)
    ("JSON body instead of multipart", {"json": {"event": "media.play"}}, 415, "not_multipart"),
    (
        "urlencoded form",
        {
            "data": "payload=%7B%7D",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        415,
        "not_multipart",
    ),
    (
        "multipart without a payload part",
        {"data": {"thumb": "x"}, "multipart": True},
        400,
        "no_payload",
    ),
    (
        "payload that is not JSON",
        {"data": {"payload": "{not json"}, "multipart": True},
        400,
        "invalid_json",
    ),
    (
        "JSON without an event",
        {"data": {"payload": json.dumps({"Account": {"id": 1}})}, "multipart": True},
        400,
        "not_an_event",
    ),
    (
        "multipart with a broken boundary",
        {
            "data": b'--zzz\r\nContent-Disposition: form-data; name=payload\r\n\r\n{"event"',
            "headers": {"Content-Type": "multipart/form-data; boundary=zzz"},
        },
        400,
        "malformed",
    ),
    (
        "multipart without a boundary",
        {"data": b"xx", "headers": {"Content-Type": "multipart/form-data"}},
        415,
        "not_multipart",
    ),
]


@pytest.mark.parametrize(
    ("tried", "kwargs", "status", "reason"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
async def test_bad_requests_get_a_4xx_and_one_log_line(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    tried: str,
    kwargs: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    """Every kind of bad request: the right 4xx, one warning per source, nothing fired."""
    events = bus_events(hass)
    client = await hass_client_no_auth()
    for _ in range(3):
        request = copy.deepcopy(kwargs)
        if request.pop("multipart", False):
            request["data"] = FormData(request["data"], default_to_multipart=True)
        resp = await client.post(url_of(loaded), **request)
        assert resp.status == status, tried
        assert await resp.text() == reason
    await settle(hass)
    assert events == []
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1, tried
    assert refused[0].levelno == logging.WARNING
    assert manager_of(loaded).counters.rejected == {reason: 3}
    no_errors(caplog)


async def test_oversized_body_is_refused_without_reading_it_all(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body over 10 MiB gets a 413, with or without a Content-Length that says so."""
    client = await hass_client_no_auth()
    big = form({"event": "media.play"}, thumb=b"\0" * (10 * 1024 * 1024 + 1))
    resp = await client.post(url_of(loaded), data=big)
    assert resp.status == 413

    async def chunks() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="thumb"\r\n\r\n'
        for _ in range(11):
            yield b"\0" * (1024 * 1024)

    resp = await client.post(
        url_of(loaded),
        data=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert resp.status == 413
    no_errors(caplog)


async def test_framing_over_the_cap_is_refused(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Streamed without a length: 11 MiB of lines before the first boundary, or 40 empty parts.

    Both end in a valid payload part; both get a 413 and nothing is fired.
    """
    events = bus_events(hass)
    client = await hass_client_no_auth()
    tail = b'--b\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{"event": "media.play"}'

    async def preamble() -> Any:
        for _ in range(11 * 32):
            yield b"p" * 32_766 + b"\r\n"
        yield tail + b"\r\n--b--\r\n"

    async def empty_parts() -> Any:
        yield b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n' * 40
        yield tail + b"\r\n--b--\r\n"

    for body in (preamble(), empty_parts()):
        resp = await client.post(
            url_of(loaded), data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert resp.status == 413
        assert await resp.text() == "too_large"
    await settle(hass)
    assert events == []
    assert manager_of(loaded).counters.rejected == {"too_large": 2}
    no_errors(caplog)


async def test_wrong_method_is_refused(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """The webhook takes POST only."""
    client = await hass_client_no_auth()
    resp = await client.put(url_of(loaded), data=form({"event": "media.play"}))
    assert resp.status == 405


# --- recording ------------------------------------------------------------------------------


async def test_scrobble_is_recorded_once_and_duplicates_are_suppressed(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A scrobble of a catalog episode is one watch; the same payload again and a stop are not."""
    await imported(hass, loaded)
    episode = simulator.library.episodes()[0]
    client = await hass_client_no_auth()
    payload = item_payload(simulator, episode)
    for _ in range(2):  # Plex delivering the same payload twice
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    stop = item_payload(simulator, episode, "media.stop", progress=0.97)
    assert (await client.post(url_of(loaded), data=form(stop))).status == 200
    await settle(hass)
    watches = await history(loaded)
    assert len(watches) == 1
    watch = watches[0]
    assert watch.rating_key == episode.rating_key
    assert watch.user_id == "1"
    assert watch.user_name == "alice"
    assert watch.source == "webhook"
    assert episode.grandparent is not None
    assert watch.show_rating_key == episode.grandparent.rating_key
    counters = manager_of(loaded).counters.outcomes
    assert counters == {
        "recorded:webhook": 1,
        "duplicate:same_payload": 1,
        "duplicate:same_play": 1,
    }
    no_errors(caplog)


async def test_unknown_user_item_and_event_are_kept_not_lost(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown user is recorded (no users configured), an unknown item under its own key."""
    await imported(hass, loaded)
    movie = simulator.library.movies()[0]
    client = await hass_client_no_auth()
    stranger = item_payload(simulator, movie, user=(4242, "stranger"))
    unknown_item = item_payload(simulator, movie, user=(1, "alice"))
    unknown_item["Metadata"] |= {
        "ratingKey": "999999",
        "title": "Nothing Like It Anywhere",
        "guid": "plex://movie/ffffffffffffffffffffffff",
        "Guid": [],
    }
    teleport = item_payload(simulator, movie, "media.teleport")
    for payload in (stranger, unknown_item, teleport):
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    watches = {(w.user_name, w.rating_key) for w in await history(loaded)}
    assert watches == {("stranger", movie.rating_key), ("alice", "999999")}
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["plex_event"] == "media.teleport"
    audit = await hass.async_add_executor_job(manager_of(loaded).store.audit_log)  # type: ignore[union-attr]
    assert audit[0].action == "not_a_watch"
    assert len(audit) == 3
    no_errors(caplog)


async def test_forged_account_names_make_at_most_the_user_limit_of_devices(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tried: 60 webhooks, each from another made-up account, with no monitored users set.
    Each name a device with entities would let whoever has the webhook URL fill the registry:
    the first MAX_LEARNED_USERS get devices, a warning says so once, every watch is recorded."""
    from custom_components.plexus.tracking_manager import MAX_LEARNED_USERS

    await imported(hass, loaded)
    movie = simulator.library.movies()[0]
    client = await hass_client_no_auth()
    forged = MAX_LEARNED_USERS + 10
    for n in range(forged):
        payload = item_payload(simulator, movie, user=(10_000 + n, f"forged-{n}"))
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    await hass.async_block_till_done()
    manager = manager_of(loaded)
    assert len(manager.users) == MAX_LEARNED_USERS
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded.entry_id)
    user_devices = [d for d in devices if d.model == "Plex user"]
    assert len(user_devices) == MAX_LEARNED_USERS
    assert len({w.user_name for w in await history(loaded)}) == forged
    warnings = [r for r in caplog.records if "Plex users seen" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING"
    # A user already known still has their id updated (the limit is for new names only).
    manager.learn_user_soon("new-id", "forged-0")
    await settle(hass)
    assert manager.users["forged-0"] == "new-id"


async def test_unmonitored_user_fires_events_but_records_nothing(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Monitored users decide whose watches are recorded; events fire for everybody."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_MONITORED_USERS: ["bob"]})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await imported(hass, config_entry)
    events = bus_events(hass)
    client = await hass_client_no_auth()
    payload = item_payload(simulator, simulator.library.movies()[0], user=(1, "alice"))
    assert (await client.post(url_of(config_entry), data=form(payload))).status == 200
    await settle(hass)
    assert len(events) == 1
    assert await history(config_entry) == []
    assert manager_of(config_entry).counters.outcomes == {"skipped:user_not_monitored": 1}


async def test_user_dropped_from_monitored_users_loses_their_device(
    hass: HomeAssistant, simulator: PlexSimulator, config_entry: MockConfigEntry
) -> None:
    """Narrowing the monitored users removes the dropped user's device and entities (they
    stayed "unavailable" forever before); the users still monitored keep theirs."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_MONITORED_USERS: ["alice", "bob"]}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    devices = dr.async_get(hass)
    server_id = simulator.machine_identifier

    def user_device(user: str) -> dr.DeviceEntry | None:
        wanted = (DOMAIN, f"{server_id}-user-{user}")
        entries = dr.async_entries_for_config_entry(devices, config_entry.entry_id)
        return next((d for d in entries if wanted in d.identifiers), None)

    alice, bob = user_device("alice"), user_device("bob")
    assert alice is not None
    assert bob is not None
    bob_entities = er.async_entries_for_device(er.async_get(hass), bob.id)
    assert bob_entities
    hass.config_entries.async_update_entry(config_entry, options={CONF_MONITORED_USERS: ["alice"]})
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert user_device("bob") is None
    assert all(er.async_get(hass).async_get(e.entity_id) is None for e in bob_entities)
    assert hass.states.get(bob_entities[0].entity_id) is None
    assert user_device("alice") is not None
    # With the option emptied (everybody is tracked), nobody's device is removed.
    hass.config_entries.async_update_entry(config_entry, options={CONF_MONITORED_USERS: []})
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert user_device("alice") is not None
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_foreign_server_is_acknowledged_and_skipped(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server Plexus has no entry for: 200, fired on the bus (unknown), skipped, logged once."""
    caplog.set_level(logging.INFO)
    await imported(hass, loaded)
    events = bus_events(hass)
    client = await hass_client_no_auth()
    payload = item_payload(simulator, simulator.library.movies()[0], server="f" * 40)
    for _ in range(2):
        payload["Metadata"]["viewOffset"] += 1  # not the same payload
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    assert [e.data["known_server"] for e in events] == [False, False]
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.state == "unknown"
    assert await history(loaded) == []
    assert manager_of(loaded).counters.outcomes == {"skipped:foreign_server": 2}
    store = manager_of(loaded).store
    assert store is not None
    audit = await hass.async_add_executor_job(store.audit_log)
    assert [(a.status, a.action, a.server) for a in audit] == [
        ("skipped", "foreign_server", "f" * 40)
    ] * 2
    assert len([r for r in caplog.records if "does not know" in r.getMessage()]) == 1
    no_errors(caplog)


async def test_payload_of_another_entry_is_handled_as_that_entrys(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Plex posts every server's webhooks to one URL: the other server's entry records it."""
    other = PlexSimulator(token="other-token", clients=1, seed=11)
    await other.start()
    try:
        second = MockConfigEntry(
            domain=DOMAIN,
            title="Other",
            unique_id=other.machine_identifier,
            data=entry_data(other, server_name="Other"),
        )
        second.add_to_hass(hass)
        assert await hass.config_entries.async_setup(second.entry_id)
        await imported(hass, second)
        events = bus_events(hass)
        client = await hass_client_no_auth()
        movie = other.library.movies()[0]
        payload = item_payload(other, movie)
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
        await settle(hass)
        assert events[0].data["config_entry_id"] == second.entry_id
        assert [w.rating_key for w in await history(second)] == [movie.rating_key]
        assert manager_of(loaded).counters.accepted == 1
        assert manager_of(loaded).counters.outcomes == {}
        assert await hass.config_entries.async_unload(second.entry_id)
    finally:
        await other.stop()


async def test_webhook_and_websocket_of_one_play_are_one_watch(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """A session the websocket sees end past the threshold, and the play's scrobble: one watch."""
    await imported(hass, loaded)
    coordinator = loaded.runtime_data.coordinator
    await wait_until(lambda: coordinator.listener.connected, timeout=10)
    movie = simulator.library.movies()[3]
    duration = movie.duration or 0
    player = next(iter(simulator.clients.values()))
    await player.local_start(movie.rating_key, offset_ms=0)
    await wait_until(lambda: bool(coordinator.data.sessions), timeout=10)
    session = coordinator.data.sessions[0]
    await player.local_seek(int(duration * 0.95))
    manager = manager_of(loaded)
    await wait_until(
        lambda: any(s.position_ms >= duration * 0.9 for s in manager._sessions.values()),
        timeout=10,
    )
    await player.local_stop()
    await wait_until(lambda: not coordinator.data.sessions, timeout=10)
    await settle(hass)
    watches = await history(loaded)
    assert [(w.rating_key, w.source) for w in watches] == [(movie.rating_key, "websocket")]
    # The webhook of the same play arrives (late): still one watch.
    http = await hass_client_no_auth()
    payload = item_payload(simulator, movie, user=(int(session.user_id), session.user))
    assert (await http.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    assert len(await history(loaded)) == 1
    assert manager.counters.outcomes == {"recorded:websocket": 1, "duplicate:same_play": 1}


# --- lifecycle ------------------------------------------------------------------------------


async def test_old_entry_gets_a_webhook_id_through_migration(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """An entry made before watch tracking (1.1) is migrated to 1.2 with a webhook id."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        version=1,
        minor_version=1,
    )
    assert CONF_WEBHOOK_ID not in entry.data
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.minor_version == 2
    webhook_id = entry.data[CONF_WEBHOOK_ID]
    assert len(webhook_id) >= 32
    assert manager_of(entry).webhook_id == webhook_id
    # A reload keeps it.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.data[CONF_WEBHOOK_ID] == webhook_id
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_newer_entry_is_not_migrated(hass: HomeAssistant, simulator: PlexSimulator) -> None:
    """An entry written by a newer major version is left alone (setup refused)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        version=2,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert CONF_WEBHOOK_ID not in entry.data


async def test_history_survives_a_restart_and_the_webhook_is_unregistered(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Watches are in the catalog database: a reload reads them back; unloading frees the URL."""
    await imported(hass, loaded)
    client = await hass_client_no_auth()
    movie = simulator.library.movies()[1]
    assert (
        await client.post(url_of(loaded), data=form(item_payload(simulator, movie)))
    ).status == 200
    # Reload at once: what was queued is recorded before the catalog closes.
    assert await hass.config_entries.async_reload(loaded.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager_of(loaded).tracker is not None)
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]
    assert await hass.config_entries.async_unload(loaded.entry_id)
    events = bus_events(hass)
    resp = await client.post(url_of(loaded), data=form(item_payload(simulator, movie)))
    assert resp.status == 200  # HA answers for unknown webhooks without saying so
    await hass.async_block_till_done()
    assert events == []


async def test_webhooks_while_the_catalog_is_closed_are_held_then_recorded(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Without a database, events still fire and scrobbles wait; they are recorded once it opens."""
    manager = manager_of(loaded)
    tracker = manager.tracker
    manager.tracker = None  # as while the catalog database cannot be opened
    assert manager.status == "waiting_for_catalog"
    events = bus_events(hass)
    client = await hass_client_no_auth()
    movie = simulator.library.movies()[2]
    for event in ("media.play", "media.scrobble"):
        payload = item_payload(simulator, movie, event)
        assert (await client.post(url_of(loaded), data=form(payload))).status == 200
    await settle(hass)
    assert len(events) == 2
    assert len(manager._held) == 1  # only what can become a watch is held
    manager.tracker = tracker
    manager.tracker = None
    await manager._async_open_store()
    await settle(hass)
    assert manager.status == "ready"
    assert [w.rating_key for w in await history(loaded)] == [movie.rating_key]


async def test_webhook_url_in_options_and_redacted_in_diagnostics(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """The options form shows where to paste the URL; diagnostics never show the id."""
    await async_process_ha_core_config(
        hass,
        {"internal_url": "http://192.168.1.2:8123", "external_url": "https://home.example.org"},
    )
    webhook_id = loaded.data[CONF_WEBHOOK_ID]
    result = await hass.config_entries.options.async_init(loaded.entry_id)
    placeholders = result["description_placeholders"]
    assert placeholders["webhook_local"] == f"http://192.168.1.2:8123/api/webhook/{webhook_id}"
    assert placeholders["webhook_external"] == f"https://home.example.org/api/webhook/{webhook_id}"
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    assert webhook_id not in json.dumps(diagnostics)
    assert diagnostics["tracking"]["webhook_path"] == "/api/webhook/**REDACTED**"
    assert diagnostics["tracking"]["status"] == "ready"
    assert diagnostics["entry"]["data"][CONF_WEBHOOK_ID] == "**REDACTED**"


async def test_config_flow_makes_the_webhook_and_shows_where_to_paste_it(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """The entry gets a webhook id; the finish dialog shows its URL; reconfigure keeps it."""
    await async_process_ha_core_config(hass, {"internal_url": "http://192.168.1.2:8123"})
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "manual"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": simulator.url, "token": simulator.token, "verify_ssl": True}
    )
    await hass.async_block_till_done()
    webhook_id = result["data"][CONF_WEBHOOK_ID]
    assert result["description"] == "default"
    assert result["description_placeholders"] == {
        "webhook_local": f"http://192.168.1.2:8123/api/webhook/{webhook_id}",
        "webhook_external": "-",
    }
    entry = result["result"]
    assert entry.minor_version == 2
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "reconfigure", "entry_id": entry.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": simulator.url + "/", "verify_ssl": True}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_WEBHOOK_ID] == webhook_id
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def pg_schema(socket_enabled: None) -> Iterator[tuple[str, Engine]]:
    """A PostgreSQL schema of its own (name, admin engine), dropped afterwards."""
    schema = f"plexus_tglue_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema, admin
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


async def setup_in_schema(hass: HomeAssistant, entry: MockConfigEntry, schema: str) -> None:
    """Set the entry up with its catalog (and watch history) in that schema; import it."""
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={CONF_DB_URL: f"{PG_URL}?options=-csearch_path%3D{schema}"}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await imported(hass, entry)


async def test_history_survives_a_restart_on_postgresql(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    pg_schema: tuple[str, Engine],
) -> None:
    """The same with the catalog (and so the history) in PostgreSQL, in a schema of its own."""
    schema, admin = pg_schema
    await setup_in_schema(hass, config_entry, schema)
    client = await hass_client_no_auth()
    movie = simulator.library.movies()[4]
    payload = item_payload(simulator, movie)
    assert (await client.post(url_of(config_entry), data=form(payload))).status == 200
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager_of(config_entry).tracker is not None)
    assert [w.rating_key for w in await history(config_entry)] == [movie.rating_key]
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    # It really was PostgreSQL, in that schema.
    tables = await hass.async_add_executor_job(
        lambda: inspect(admin).get_table_names(schema=schema)
    )
    assert {"plexus_tracking_watches", "plexus_tracking_audit"} <= set(tables)


async def test_nul_characters_do_not_cost_a_watch_on_postgresql(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    pg_schema: tuple[str, Engine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A payload whose user and title hold NUL ("\\u0000"), posted with a clean one.

    PostgreSQL refuses NUL in text: before, that watch was lost and the audit rows of the whole
    batch with it. Now both are recorded (NUL dropped) and nothing is logged.
    """
    schema, _admin = pg_schema
    await setup_in_schema(hass, config_entry, schema)
    client = await hass_client_no_auth()
    movies = simulator.library.movies()
    nul = item_payload(simulator, movies[3], user=(7, "mal\u0000lory"))
    nul["event"] = "media.scrobble\u0000"
    nul["Metadata"]["title"] = "x\u0000y"
    clean = item_payload(simulator, movies[4])
    for payload in (nul, clean):
        assert (await client.post(url_of(config_entry), data=form(payload))).status == 200
    await settle(hass)
    watches = {(w.rating_key, w.user_name) for w in await history(config_entry)}
    assert watches == {(movies[3].rating_key, "mallory"), (movies[4].rating_key, "alice")}
    store = manager_of(config_entry).store
    assert store is not None
    audits = await hass.async_add_executor_job(lambda: store.audit_log(limit=10))
    assert len(audits) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "plexus" in r.name]
    assert await hass.config_entries.async_unload(config_entry.entry_id)


class _Gate:
    """A TCP forwarder to PostgreSQL, in a thread of its own, that can be cut (every connection
    dropped, new ones closed at once) and opened again: PostgreSQL restarting, as the entry sees
    it."""

    def __init__(self) -> None:
        self.down = False
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.down:
                writer.transport.abort()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)
            self._writers |= {writer, up_writer}
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def serve() -> int:
            self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port: int = self._server.sockets[0].getsockname()[1]
            return port

        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(30)

    def cut(self) -> None:
        def abort() -> None:
            self.down = True
            for writer in self._writers:
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(abort)

    def stop(self) -> None:
        async def close() -> None:
            self.down = True
            if self._server is not None:
                self._server.close()
            for writer in self._writers:
                writer.transport.abort()
            await asyncio.sleep(0.1)  # let accepts in progress finish

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


async def test_webhooks_while_postgresql_restarts_are_held_then_recorded(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    pg_schema: tuple[str, Engine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The catalog (and watch history) on PostgreSQL, reached through a gate that is cut (every
    connection dropped, new ones refused) while two scrobbles are posted. Before: the batch was
    `store_error` and both watches were lost. Now: both answered 200 and fired, held while the
    database is away (one warning), and recorded once it is back (one line), each once."""
    schema, _admin = pg_schema
    gate = _Gate()
    gate.start()
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            CONF_DB_URL: PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")
            + f"?options=-csearch_path%3D{schema}"
        },
    )
    try:
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await imported(hass, config_entry)
        assert manager_of(config_entry).tracker is not None
        client = await hass_client_no_auth()
        movies = simulator.library.movies()[:2]
        events = bus_events(hass)
        gate.cut()
        for movie in movies:
            payload = item_payload(simulator, movie)
            assert (await client.post(url_of(config_entry), data=form(payload))).status == 200
        await wait_until(lambda: len(events) == 2)
        await wait_until(
            lambda: any("not answering" in r.getMessage() for r in caplog.records), timeout=60
        )
        gate.down = False
        await wait_until(
            lambda: any("answers again" in r.getMessage() for r in caplog.records), timeout=60
        )
        watches = await history(config_entry)
        assert sorted(w.rating_key for w in watches) == sorted(m.rating_key for m in movies)
        counters = manager_of(config_entry).counters.outcomes
        assert counters.get("recorded:webhook") == 2
        assert "skipped:store_error" not in counters
        assert sum("not answering" in r.getMessage() for r in caplog.records) == 1
        assert sum("answers again" in r.getMessage() for r in caplog.records) == 1
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)  # reads end before the gate
    finally:
        gate.stop()
