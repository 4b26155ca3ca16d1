"""Issue 15, points 8 and 9 (glue): bad service arguments are refused with translated errors.

A JSON search with wrong types (`media_player.play_media`, `plexus.sync_play`) is a
`ServiceValidationError` naming the field; sync positions must be finite, within 24 h and within
the item where its length is known; the engine's own refusal (`InvalidPositionError`) is a
`ServiceValidationError` too. Nothing reaches the server or the players.
"""

import logging
from typing import Any

from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.syncplay import InvalidPositionError
from tests.plex_simulator import PlexSimulator
from tests.sync_group import MEMBERS, group_entry, setup_group

PLAYER = "media_player.living_room_tv"

BAD_SEARCHES = [
    # (what was tried, search, field the error names)
    ('year "abc"', '{"library_name": "Movies", "title": "Dune", "year": "abc"}', "year"),
    ("year 1e400", '{"library_name": "Movies", "title": "Dune", "year": 1e400}', "year"),
    ("year as a list", '{"title": "Dune", "year": [1]}', "year"),
    ('season "x"', '{"library_name": "TV Shows", "title": "Show", "season": "x"}', "season"),
    ("offset 1e400", '{"library_name": "Movies", "title": "Dune", "offset": 1e400}', "offset"),
    ("library_name as a list", '{"library_name": ["Movies"], "title": "Dune"}', "library_name"),
    ("library_name as a number", '{"library_name": 7, "title": "Dune"}', "library_name"),
    ("library_name as an object", '{"library_name": {"x": 1}, "title": "Dune"}', "library_name"),
    ("title null and no other", '{"title": null}', None),
]


def _library_requests(sim: PlexSimulator) -> int:
    return sum(1 for _m, path, _q in sim.requests if path.startswith("/library"))


@pytest.mark.parametrize(
    ("tried", "search", "field"), BAD_SEARCHES, ids=[b[0] for b in BAD_SEARCHES]
)
async def test_play_media_with_bad_search_is_refused_naming_the_field(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    tried: str,
    search: str,
    field: str | None,
) -> None:
    before = _library_requests(simulator)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "media_player",
            "play_media",
            {ATTR_ENTITY_ID: PLAYER, "media_content_type": "movie", "media_content_id": search},
            blocking=True,
        )
    err = caught.value
    assert err.translation_key == "nothing_to_play", tried
    assert err.translation_placeholders is not None
    if field is not None:
        assert err.translation_placeholders["error"].startswith(f"{field}: "), tried
        assert _library_requests(simulator) == before  # refused before asking the server
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_sync_play_with_bad_search_or_position_is_refused(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    """Each bad search names its field; infinite, huge, NaN, negative and > 24 h positions are
    refused by the schema (services.yaml's 0..86,400 s); nothing reaches the players."""
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    commands_before = sum(len(c.record) for c in simulator.clients.values())
    for tried, search, field in BAD_SEARCHES:
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN, "sync_play", {"group": "Movie Night", "media": search}, blocking=True
            )
        assert caught.value.translation_key == "nothing_to_play", tried
        placeholders = caught.value.translation_placeholders or {}
        if field is not None:
            assert placeholders["error"].startswith(f"{field}: "), tried
    movie = simulator.library.movies()[0]
    for position in (float("inf"), 1e308, float("nan"), -1, 86_401, "1e400", [1], {"s": 1}):
        for service, data in (
            (
                "sync_play",
                {"group": "Movie Night", "media": movie.rating_key, "position": position},
            ),
            ("sync_seek", {"group": "Movie Night", "position": position}),
        ):
            with pytest.raises(vol.Invalid):
                await hass.services.async_call(DOMAIN, service, data, blocking=True)
    assert sum(len(c.record) for c in simulator.clients.values()) == commands_before
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_sync_position_past_the_items_end_is_refused(
    hass: HomeAssistant, simulator: PlexSimulator
) -> None:
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    movie = simulator.library.movies()[0]
    item = await entry.runtime_data.coordinator.library.metadata(movie.rating_key)
    assert item is not None
    assert item.duration_ms > 0
    past = item.duration_ms / 1000 + 60
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "sync_play",
            {"group": "Movie Night", "media": movie.rating_key, "position": past},
            blocking=True,
        )
    assert caught.value.translation_key == "position_past_end"
    assert (caught.value.translation_placeholders or {})[
        "duration"
    ] == f"{item.duration_ms / 1000:.0f}"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_engine_position_refusal_is_a_validation_error(
    hass: HomeAssistant, simulator: PlexSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the schema lets through, the engine's `InvalidPositionError` reaches the caller
    as a translated `ServiceValidationError`, not a raw ValueError."""
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    group = next(iter(entry.runtime_data.sync_groups.values()))

    async def refuse(position_ms: float) -> Any:
        raise InvalidPositionError(f"position must be finite, not {position_ms!r}")

    monkeypatch.setattr(group.engine, "seek", refuse)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "sync_seek", {"group": "Movie Night", "position": 10}, blocking=True
        )
    assert caught.value.translation_key == "invalid_position"
    assert not isinstance(caught.value.__cause__, HomeAssistantError)
    assert set(group.members) == set(MEMBERS)
    assert await hass.config_entries.async_unload(entry.entry_id)
