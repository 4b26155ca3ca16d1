"""Issue 15, point 10 (flows): the sync-group subentry forms (create and reconfigure) and the
options form fed generated garbage.

Asserted for every submit: the flow answers with a schema refusal (`InvalidData`), the form
again with errors, an abort, or a created entry; never another exception; no ERROR log line;
the server entry stays (or comes back) loaded. Fields are read from each form's own schema, so
new fields are swept too.
"""

import asyncio
from collections.abc import Callable, Coroutine
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, InvalidData
from hypothesis import HealthCheck, given, settings, strategies as st
import probatio as vol
import pytest

from custom_components.plexus.const import SUBENTRY_SYNC_GROUP
from tests.plex_simulator import PlexSimulator
from tests.sync_group import MEMBERS, group_entry, setup_group
from tests.test_hardening_sweep import GARBAGE, NASTY_TEXT

# Values each form accepts (mostly: the edges are in); garbage comes from one_garbage below.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(min_size=1, max_size=30) | st.sampled_from(NASTY_TEXT),
    "topic": st.sampled_from(
        ["plexus/sync/a", "a/#", "+", "", "x" * 300, "plexus/sync/movie_night"]
    ),
    "secret": st.text(max_size=80) | st.sampled_from(["", "short", "s" * 32]),
    "members": st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True),
    "drift_threshold_ms": st.integers(min_value=50, max_value=5000),
    "ready_timeout_s": st.integers(min_value=2, max_value=120),
    "wait_for_buffering": st.booleans(),
    "follow": st.booleans(),
    "incremental_minutes": st.integers(min_value=5, max_value=1440),
    "full_hours": st.integers(min_value=1, max_value=720),
    "path_mappings": st.sampled_from(
        [
            "",
            "/data => /media",
            "no arrow",
            "=>",
            " => /x",
            "/a => \x00",
            "\n".join(["/a => /b"] * 50),
        ]
    )
    | st.text(max_size=40),
    "db_url": st.sampled_from(
        [
            "",
            "sqlite:////nonexistent/dir/x.db",
            "notadialect://x",
            "postgresql://u:pw@127.0.0.1:1/x",
            "::",
        ]
    )
    | st.text(max_size=30),
    "ignored_clients": st.lists(st.text(max_size=10), max_size=3),
    "monitored_users": st.lists(st.text(max_size=10), max_size=3),
    "stale_minutes": st.integers(min_value=1, max_value=1440),
}


def _form_data(fields: dict[str, bool]) -> st.SearchStrategy[dict[str, Any]]:
    """Plausible input (required fields always given), or the same with one field garbage."""
    plausible = st.fixed_dictionaries(
        {f: PLAUSIBLE.get(f, GARBAGE) for f, required in fields.items() if required},
        optional={f: PLAUSIBLE.get(f, GARBAGE) for f, required in fields.items() if not required},
    )
    one_garbage = st.builds(
        lambda data, field, garbage: data | {field: garbage},
        plausible,
        st.sampled_from(sorted(fields)),
        GARBAGE,
    )
    return plausible | one_garbage | one_garbage


def _fields(result: FlowResult[Any, Any]) -> dict[str, bool]:
    """A form's fields, and whether each is required."""
    schema = result.get("data_schema")
    assert schema is not None
    return {str(key): isinstance(key, vol.Required) for key in schema.schema}


@pytest.mark.timeout(90)
async def test_flows_refuse_garbage_cleanly(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = group_entry(simulator, follow=True)
    await setup_group(hass, entry)
    group_id = next(iter(entry.subentries))
    loop = asyncio.get_running_loop()
    outcomes: dict[str, dict[str, int]] = {}

    def run(coro: Coroutine[Any, Any, str]) -> str:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def submit(
        start: Callable[[], Coroutine[Any, Any, Any]],
        configure: Callable[..., Coroutine[Any, Any, Any]],
        data: dict[str, Any],
    ) -> str:
        errors_before = len([r for r in caplog.records if r.levelno >= logging.ERROR])
        result = await start()
        try:
            result = await configure(result["flow_id"], data)
            outcome = str(result["type"])
            if result.get("errors"):
                outcome = "form errors"
        except InvalidData, vol.Invalid:
            outcome = "invalid"
        # Anything else propagates: that is the bug this sweep looks for.
        flow_id = result.get("flow_id")
        for manager in (hass.config_entries.subentries, hass.config_entries.options):
            if flow_id and any(f["flow_id"] == flow_id for f in manager.async_progress()):
                manager.async_abort(flow_id)
        await hass.async_block_till_done()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR][errors_before:]
        assert not errors, [r.getMessage() for r in errors]
        assert entry.state is ConfigEntryState.LOADED
        return outcome

    def sweep(
        name: str,
        fields: dict[str, bool],
        start: Callable[[], Coroutine[Any, Any, Any]],
        configure: Callable[..., Coroutine[Any, Any, Any]],
    ) -> None:
        counts = outcomes.setdefault(name, {})

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(_form_data(fields))
        def check(data: dict[str, Any]) -> None:
            outcome = run(submit(start, configure, data))
            counts[outcome] = counts.get(outcome, 0) + 1

        check()

    subentries = hass.config_entries.subentries
    options = hass.config_entries.options

    def new_group() -> Coroutine[Any, Any, Any]:
        return subentries.async_init(
            (entry.entry_id, SUBENTRY_SYNC_GROUP), context={"source": "user"}
        )

    def reconfigure_group() -> Coroutine[Any, Any, Any]:
        return subentries.async_init(
            (entry.entry_id, SUBENTRY_SYNC_GROUP),
            context={"source": "reconfigure", "subentry_id": group_id},
        )

    def options_form() -> Coroutine[Any, Any, Any]:
        return options.async_init(entry.entry_id)

    forms = {
        "sync group (new)": (new_group, subentries.async_configure),
        "sync group (reconfigure)": (reconfigure_group, subentries.async_configure),
        "options": (options_form, options.async_configure),
    }
    fields: dict[str, dict[str, bool]] = {}
    for name, (start, _configure) in forms.items():
        first = await start()
        fields[name] = _fields(first)
        for manager in (subentries, options):
            if any(f["flow_id"] == first["flow_id"] for f in manager.async_progress()):
                manager.async_abort(first["flow_id"])

    def sweep_all() -> None:
        for name, (start, configure) in forms.items():
            sweep(name, fields[name], start, configure)

    await hass.async_add_executor_job(sweep_all)
    for name, counts in outcomes.items():
        assert sum(counts.values()) >= 10, (name, counts)
        assert counts.get("invalid", 0) + counts.get("form errors", 0) > 0, (name, counts)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
