"""Issue 15, point 10: every `plexus.*` service and `media_player.play_media` fed generated
garbage (wrong types, huge/negative/non-finite numbers, unicode, empty strings, nested objects,
broken JSON searches).

Asserted for every call: it either works or raises `vol.Invalid` (HA's schema check),
`ServiceValidationError` or `HomeAssistantError`; no ERROR log line; the entry stays loaded.
The services are listed from HA (`async_services_for_domain`), so a new service is swept too.

Hypothesis runs in an executor thread and hands each call to HA's event loop, so it can shrink a
failing example to the smallest one.
"""

import asyncio
from collections.abc import Callable, Coroutine
import functools
import json
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, SupportsResponse
from homeassistant.exceptions import HomeAssistantError
from hypothesis import HealthCheck, given, settings, strategies as st
import probatio as vol
import pytest

from custom_components.plexus.const import DOMAIN
from tests.plex_simulator import PlexSimulator
from tests.sync_group import MEMBERS, group_entry, setup_group

PLAYER = "media_player.living_room_tv"
NASTY_TEXT = [
    "",
    " ",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "-1",
    "0",
    "99999999999999999999999",
    "\x00",
    "📺🎬",
    "\uff4d\uff4f\uff56\uff49\uff45\uff53",  # "movies" in full-width letters
    "'; DROP TABLE items; --",
    "{",
    "plex://{",
    "plex://",
    "imdb://",
    "999999",
    "../../etc/passwd",
    "x" * 5000,
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN, infinities, subnormals
    | st.sampled_from([1e308, -1e308, 1e400, 86_400, 86_401, -0.0])
    | st.text(max_size=20)
    | st.sampled_from(NASTY_TEXT)
)
GARBAGE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
CHOKED_ON: tuple[Any, ...] = (False, 0, float("inf"), [[]], {"a": None})
SEARCH_FIELDS = ["library_name", "title", "year", "season", "episode", "offset", "shuffle"]
# A JSON search with garbage values (what play_media and sync_play parse themselves).
SEARCHES = st.builds(
    lambda fields, prefix: prefix + json.dumps(fields, default=str),
    st.dictionaries(st.sampled_from(SEARCH_FIELDS), SCALARS, max_size=4),
    st.sampled_from(["", "plex://"]),
)


def _plausible(field: str, entry_id: str, movie: str) -> st.SearchStrategy[Any]:
    """Values that mostly pass a field's schema, so the handlers behind it run too."""
    known: dict[str, st.SearchStrategy[Any]] = {
        "config_entry_id": st.sampled_from([entry_id, "not-an-entry"]),
        "group": st.sampled_from(["Movie Night", "movie night", "Nope"]),
        "entity_id": st.lists(st.sampled_from([*MEMBERS, "media_player.bedroom_roku"]), max_size=2),
        "media": SEARCHES | st.sampled_from([movie, "999999", "plex://movie/0000"]),
        "position": st.floats(min_value=-10, max_value=100_000) | st.sampled_from(["12", "x"]),
        "mode": st.sampled_from(["incremental", "full", "FULL", ""]),
        "libraries": st.lists(st.sampled_from(["Movies", "Cartoons", "", "1"]), max_size=2),
        "library_name": st.sampled_from(["Movies", "movies", "Cartoons", ""]),
        "query": st.text(min_size=1, max_size=20) | st.sampled_from(NASTY_TEXT),
        "type": st.lists(st.sampled_from(["movie", "episode", "show"]), max_size=2),
        "year": st.integers(min_value=1800, max_value=2200) | st.sampled_from([1799, 2201]),
        "limit": st.integers(min_value=1, max_value=100) | st.sampled_from([0, 101, "5"]),
    }
    return known.get(field, GARBAGE)


def _fields(schema: Any) -> dict[str, bool]:
    """A service schema's fields, and whether each is required."""
    inner = getattr(schema, "schema", None)
    if not isinstance(inner, dict):
        return {}
    return {str(key): isinstance(key, vol.Required) for key in inner}


def _service_data(
    fields: dict[str, bool], entry_id: str, movie: str
) -> st.SearchStrategy[dict[str, Any]]:
    """Plausible data; the same with one field garbage; or with a field no service has."""
    plausible = st.fixed_dictionaries(
        {f: _plausible(f, entry_id, movie) for f, required in fields.items() if required},
        optional={
            f: _plausible(f, entry_id, movie) for f, required in fields.items() if not required
        },
    )
    one_garbage = st.builds(
        lambda data, field, garbage: data | {field: garbage},
        plausible,
        st.sampled_from(sorted(fields)),
        GARBAGE,
    )
    unknown = st.builds(lambda data, garbage: data | {"unexpected": garbage}, plausible, GARBAGE)
    return plausible | one_garbage | one_garbage | unknown


@pytest.mark.timeout(120)
async def test_services_refuse_garbage_cleanly(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    services = hass.services.async_services_for_domain(DOMAIN)
    assert {"import_library", "search", "sync_play", "sync_seek", "scan_clients"} <= set(services)
    loop = asyncio.get_running_loop()
    movie = simulator.library.movies()[0].rating_key
    outcomes: dict[str, dict[str, int]] = {}

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def call(domain: str, service: str, data: dict[str, Any], response: bool) -> str:
        errors_before = len([r for r in caplog.records if r.levelno >= logging.ERROR])
        try:
            await hass.services.async_call(
                domain, service, data, blocking=True, return_response=response
            )
            outcome = "ok"
        except vol.Invalid:
            outcome = "invalid"
        except HomeAssistantError as err:  # ServiceValidationError included
            outcome = type(err).__name__
        # Anything else propagates: that is the bug this sweep looks for.
        await hass.async_block_till_done()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR][errors_before:]
        assert not errors, [r.getMessage() for r in errors]
        assert entry.state is ConfigEntryState.LOADED
        return outcome

    def sweep(
        name: str, data: st.SearchStrategy[dict[str, Any]], invoke: Callable[[Any], str]
    ) -> None:
        counts = outcomes.setdefault(name, {})

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data)
        def check(example: dict[str, Any]) -> None:
            outcome = invoke(example)
            counts[outcome] = counts.get(outcome, 0) + 1

        check()

    def invoke_service(name: str, response: bool, example: dict[str, Any]) -> str:
        outcome: str = run(call(DOMAIN, name, example, response))
        return outcome

    def sweep_all() -> None:
        for name, service in services.items():
            fields = _fields(service.schema)
            assert fields, f"{name}: no schema to sweep"
            response = service.supports_response is not SupportsResponse.NONE
            # Values HA's own validators have choked on (cv.entity_ids raised TypeError for a bool),
            # tried on every field, whatever hypothesis draws.
            for field in fields:
                for value in CHOKED_ON:
                    run(call(DOMAIN, name, {field: value}, response))
            data = _service_data(fields, entry.entry_id, movie)
            sweep(name, data, functools.partial(invoke_service, name, response))
        play = st.fixed_dictionaries(
            {
                ATTR_ENTITY_ID: st.just(PLAYER),
                "media_content_id": SEARCHES | GARBAGE,
                "media_content_type": st.sampled_from(["movie", "episode", ""]) | GARBAGE,
            },
            optional={"enqueue": GARBAGE, "announce": GARBAGE, "extra": GARBAGE},
        )
        sweep(
            "media_player.play_media",
            play,
            lambda example: run(call("media_player", "play_media", example, False)),
        )

    await hass.async_add_executor_job(sweep_all)
    # Every service was swept, and garbage was refused (not just ignored) by each.
    assert set(outcomes) == {*services, "media_player.play_media"}
    for name, counts in outcomes.items():
        assert sum(counts.values()) >= 10, (name, counts)
        assert counts.get("invalid", 0) + counts.get("ServiceValidationError", 0) > 0, name
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
