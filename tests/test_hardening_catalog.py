"""Issue 15, points 2 and 3: a catalog database that cannot be opened or fails mid-import.

The catalog is optional for everything but its own features: the server entry sets up, the
catalog's entities are unavailable, a Repairs issue names the cause and the fix, and the catalog
is retried with a back-off until it opens by itself.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
from datetime import timedelta
import logging
import os
from pathlib import Path
import shutil
import socket
import subprocess
from typing import Any
import uuid

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import psycopg
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.plexus.catalog import Catalog, ImportWriter, sqlite_url
from custom_components.plexus.catalog.errors import CatalogUnavailableError
from custom_components.plexus.const import CONF_DB_URL, DOMAIN
from tests.conftest import PG_URL
from tests.plex_simulator import PlexSimulator

MOVIES = "sensor.plexus_simulator_catalog_movies"
ACTIVE = "sensor.plexus_simulator_active_streams"
LAST = "sensor.plexus_simulator_last_import"
PLAYER = "media_player.living_room_tv"


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def _issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"catalog_unavailable_{entry.entry_id}")


def _catalog_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.plexus")
        and r.levelno >= logging.INFO
        and "catalog" in r.getMessage().casefold()
    ]


async def test_directory_at_catalog_path_keeps_entry_and_recovers_by_itself(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    catalog_in_tmp: Path,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A directory where the SQLite file belongs: entry loaded, issue raised, retried, back."""
    caplog.set_level(logging.INFO)
    await hass.async_add_executor_job(catalog_in_tmp.mkdir)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert config_entry.state is ConfigEntryState.LOADED
    assert _state(hass, ACTIVE).state == "0"  # the server's sensors work
    assert hass.states.get(PLAYER) is not None
    assert _state(hass, MOVIES).state == STATE_UNAVAILABLE
    issue = _issue(hass, config_entry)
    assert issue is not None
    assert issue.translation_key == "catalog_unavailable"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["kind"] == "path"
    assert issue.translation_placeholders["location"] == str(catalog_in_tmp)
    assert issue.translation_placeholders["server"] == "Plexus Simulator"
    assert "directory" in issue.translation_placeholders["error"].casefold() or (
        "open" in issue.translation_placeholders["error"].casefold()
    )
    assert len(_catalog_lines(caplog)) == 1, _catalog_lines(caplog)

    # Still broken at the next attempts: no new log lines, still unavailable.
    for _ in range(3):
        freezer.tick(timedelta(minutes=16))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert _state(hass, MOVIES).state == STATE_UNAVAILABLE
    assert len(_catalog_lines(caplog)) == 1, _catalog_lines(caplog)

    await hass.async_add_executor_job(catalog_in_tmp.rmdir)
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    # Back by itself, and it imports what the schedules skipped meanwhile.
    assert _state(hass, MOVIES).state == str(len(simulator.library.movies()))
    assert _issue(hass, config_entry) is None
    lines = _catalog_lines(caplog)
    assert len(lines) == 2, lines
    assert "works again" in lines[1] or "recovered" in lines[1]
    assert simulator.token not in caplog.text


# --- the other ways a catalog database cannot be opened ------------------------------------------


@pytest.fixture
def pg_database(socket_enabled: None) -> Iterator[str]:
    """A PostgreSQL database of this test's own; its SQLAlchemy URL (dropped afterwards)."""
    name = f"plexus_harden_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _forward(port: int, target: int) -> AsyncIterator[None]:
    """Forward 127.0.0.1:port to 127.0.0.1:target (PostgreSQL "coming back" on port)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


def _chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)  # noqa: S603, S607


CAN_CHATTR = shutil.which("chattr") is not None and os.geteuid() == 0


async def _fire(hass: HomeAssistant, freezer: FrozenDateTimeFactory, minutes: float) -> None:
    freezer.tick(timedelta(minutes=minutes))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def _assert_down_then_back(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    kind: str,
    fix: Callable[[], object],
) -> None:
    """Set up with the database broken: entry loaded, issue of `kind`; fixed: back by itself."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _state(hass, ACTIVE).state == "0"
    assert _state(hass, MOVIES).state == STATE_UNAVAILABLE
    assert _state(hass, "button.plexus_simulator_import_now").state == STATE_UNAVAILABLE
    issue = _issue(hass, entry)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["kind"] == kind, issue.translation_placeholders
    assert "hunter2" not in str(issue.translation_placeholders)  # a password in the URL
    await _fire(hass, freezer, 1)
    assert _state(hass, MOVIES).state == STATE_UNAVAILABLE  # still broken, still retried
    result = fix()
    if asyncio.iscoroutine(result):
        await result
    await _fire(hass, freezer, 16)
    assert _state(hass, MOVIES).state != STATE_UNAVAILABLE
    assert _issue(hass, entry) is None


async def test_corrupt_catalog_file_keeps_entry_and_recovers_when_replaced(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    catalog_in_tmp: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A file that is not a database: issue kind `corrupt`; once moved aside, a new one opens."""
    await hass.async_add_executor_job(catalog_in_tmp.write_bytes, b"not a database " * 400)
    await _assert_down_then_back(hass, config_entry, freezer, "corrupt", catalog_in_tmp.unlink)


@pytest.mark.skipif(not CAN_CHATTR, reason="needs root and chattr (root ignores permissions)")
async def test_read_only_catalog_file_keeps_entry_and_recovers_when_writable(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    catalog_in_tmp: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An existing catalog that cannot be written (immutable file): kind `read_only`."""
    Catalog(sqlite_url(catalog_in_tmp)).close()
    _chattr("+i", catalog_in_tmp)
    try:
        await _assert_down_then_back(
            hass, config_entry, freezer, "read_only", lambda: _chattr("-i", catalog_in_tmp)
        )
    finally:
        _chattr("-i", catalog_in_tmp)


async def test_postgresql_down_at_start_keeps_entry_and_recovers_when_it_answers(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    pg_database: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """PostgreSQL not answering at start-up (port closed): kind `unreachable`; it starts: back.

    The database is reached through a port nothing listens on; "starting PostgreSQL" opens a
    forwarder on that port to the real server. The password in the URL never shows.
    """
    port = _free_port()
    url = pg_database.replace("postgres@127.0.0.1:5432", f"postgres:hunter2@127.0.0.1:{port}")
    assert f":{port}/" in url
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_DB_URL: url})
    async with contextlib.AsyncExitStack() as stack:

        async def start_postgresql() -> None:
            await stack.enter_async_context(_forward(port, 5432))

        await _assert_down_then_back(hass, config_entry, freezer, "unreachable", start_postgresql)
        await hass.config_entries.async_unload(config_entry.entry_id)


# --- point 3: database errors mid-import (real PostgreSQL) -------------------------------------


def _restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (every connection dies; the server comes back)."""
    lsclusters, ctlcluster = shutil.which("pg_lsclusters"), shutil.which("pg_ctlcluster")
    assert lsclusters is not None
    assert ctlcluster is not None
    listing = subprocess.run(  # noqa: S603 - fixed local tools, no outside input
        [lsclusters, "--no-header"], check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    subprocess.run(  # noqa: S603
        [ctlcluster, "--skip-systemctl-redirect", listing[0], listing[1], "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _break_first_write(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> list[int]:
    """Run `action` (in the executor) just before the import's first batch is written."""
    calls: list[int] = []
    original = ImportWriter.write_batch

    def write_batch(self: ImportWriter, batch: Any) -> None:
        if not calls:
            action()
        calls.append(len(batch))
        original(self, batch)

    monkeypatch.setattr(ImportWriter, "write_batch", write_batch)
    return calls


async def _pg_entry(hass: HomeAssistant, entry: MockConfigEntry, url: str) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_DB_URL: url})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs a local PostgreSQL")
async def test_postgres_restart_mid_import_service_raises_translated_error_then_works(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL restarted while `plexus.import_library` runs: a short translated error, the
    catalog unchanged, and the next call works on the same catalog."""
    await _pg_entry(hass, config_entry, pg_database)
    calls = _break_first_write(monkeypatch, _restart_postgres)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "import_library", {"mode": "full"}, blocking=True, return_response=True
        )
    assert calls
    err = caught.value
    assert err.translation_key == "import_failed"
    assert not isinstance(err, ServiceValidationError)
    assert isinstance(err.__cause__, CatalogUnavailableError)
    message = str(err)
    assert message.startswith("The catalog import of Plexus Simulator failed:")
    assert "\n" not in message
    assert "[SQL" not in message
    assert "sqlalchemy" not in message.casefold()
    assert len(message) < 300
    assert simulator.token not in message
    assert _state(hass, MOVIES).state == "0"  # nothing half-written
    assert _state(hass, LAST).attributes["status"] == "failed"

    response = await hass.services.async_call(
        DOMAIN, "import_library", {"mode": "full"}, blocking=True, return_response=True
    )
    assert response is not None
    assert _state(hass, MOVIES).state == str(len(simulator.library.movies()))
    assert _state(hass, LAST).attributes["status"] == "success"
    assert config_entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_connection_killed_mid_scheduled_import_logs_once_and_next_run_retries(
    hass: HomeAssistant,
    *,
    simulator: PlexSimulator,
    config_entry: MockConfigEntry,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The import's PostgreSQL connection is killed (pg_terminate_backend) during a scheduled
    import: one warning, no traceback; the next scheduled run imports everything."""
    caplog.set_level(logging.INFO)
    await _pg_entry(hass, config_entry, pg_database)
    name = pg_database.rsplit("/", 1)[1]

    def kill_connections() -> None:
        admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    calls = _break_first_write(monkeypatch, kill_connections)
    caplog.clear()
    await _fire(hass, freezer, 1)  # the first import, FIRST_IMPORT_DELAY after setup
    assert calls
    assert _state(hass, LAST).attributes["status"] == "failed"
    lines = _catalog_lines(caplog)
    assert len(lines) == 1, lines
    assert "failed" in lines[0]
    assert "[SQL" not in lines[0]
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    await _fire(hass, freezer, 61)  # the next scheduled (hourly) import
    assert _state(hass, MOVIES).state == str(len(simulator.library.movies()))
    assert _state(hass, LAST).attributes["status"] == "success"
    lines = _catalog_lines(caplog)
    assert len(lines) == 2, lines
    assert "works again" in lines[1]
    await hass.config_entries.async_unload(config_entry.entry_id)
