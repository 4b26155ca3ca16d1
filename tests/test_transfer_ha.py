"""File sync through Home Assistant: profiles, services, events, Repairs, restarts."""

# ruff: noqa: ASYNC240  (temp files read directly in tests)

import asyncio
from datetime import timedelta
import errno
import hashlib
import os
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData, SubentryFlowResult
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from sqlalchemy.exc import OperationalError

from custom_components.plexus.browse_media import KIND_ITEM, BrowsePath, media_id
from custom_components.plexus.const import (
    CONF_MOVIE_DESTINATION,
    CONF_MOVIE_SOURCES,
    CONF_PATH_MAPPINGS,
    CONF_PROFILE_NAME,
    CONF_SOURCE_MODE,
    CONF_TV_DESTINATION,
    CONF_TV_SOURCES,
    CONF_VERIFY,
    DOMAIN,
    SUBENTRY_TRANSFER,
    TRANSFER_FREE_SPACE_INTERVAL,
)
from custom_components.plexus.diagnostics import async_get_config_entry_diagnostics
from custom_components.plexus.transfer import TransferState
from custom_components.plexus.transfers import TransferManager, disk_full_issue_id
from tests.conftest import entry_data, wait_until
from tests.plex_simulator import PlexSimulator

MiB = 1024 * 1024
COPIER = "custom_components.plexus.transfer.copier"
BUILTIN_COPIER = "custom_components.plexus.transfer.builtin_copier"


def _bytes(size: int, seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def dirs(hass: HomeAssistant, tmp_path: Path) -> dict[str, Path]:
    """Source and destination folders under tmp, allowed by Home Assistant."""
    paths = {
        "src": tmp_path / "share",
        "movies": tmp_path / "share" / "movies",
        "tv": tmp_path / "share" / "tv",
        "dest": tmp_path / "laptop",
        "outside": tmp_path / "outside",
    }
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    hass.config.allowlist_external_dirs = {str(paths["src"]), str(paths["dest"])}
    return paths


def profile_data(dirs: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    """Subentry data of a profile scanning the tmp share, copying to the tmp laptop folder."""
    return {
        CONF_PROFILE_NAME: "Laptop",
        CONF_SOURCE_MODE: "folders",
        CONF_MOVIE_SOURCES: [str(dirs["movies"])],
        CONF_TV_SOURCES: [str(dirs["tv"])],
        CONF_MOVIE_DESTINATION: str(dirs["dest"] / "Movies"),
        CONF_TV_DESTINATION: str(dirs["dest"] / "TV"),
        "layout": "plex",
        CONF_VERIFY: "sha256",
        "bandwidth_limit_kib": 0,
        "retries": 2,
        "backoff_base_s": 0.5,
        "backoff_cap_s": 1.0,
        "concurrency": 1,
        "free_space_reserve_mib": 0,
    } | overrides


async def setup_entry(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    *,
    profile: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """A server entry mapping the simulator's folders to the tmp share, with one profile."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        options={CONF_PATH_MAPPINGS: f"/data/movies => {dirs['movies']}\n/data/tv => {dirs['tv']}"},
        subentries_data=[
            ConfigSubentryData(
                data=profile or profile_data(dirs),
                subentry_type=SUBENTRY_TRANSFER,
                title="Laptop",
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager(entry).store is not None)
    return entry


def manager(entry: MockConfigEntry) -> TransferManager:
    transfers: TransferManager | None = entry.runtime_data.transfers
    assert transfers is not None
    return transfers


def subentry_id(entry: MockConfigEntry) -> str:
    return next(iter(manager(entry).profiles))


def place_source(simulator: PlexSimulator, dirs: dict[str, Path], item: Any, size: int) -> Path:
    """Write the file a simulator item's Plex path maps to (under the tmp share)."""
    plex_path: str = item.media.file
    for prefix, local in (("/data/movies", dirs["movies"]), ("/data/tv", dirs["tv"])):
        if plex_path.startswith(prefix + "/"):
            path = Path(str(local) + plex_path[len(prefix) :])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_bytes(size, plex_path))
            return path
    raise AssertionError(f"unmapped simulator path {plex_path}")


def state(hass: HomeAssistant, entity_id: str) -> State:
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return found


def collect(hass: HomeAssistant, kind: str) -> list[Event]:
    events: list[Event] = []
    hass.bus.async_listen(f"plexus_transfer_{kind}", events.append)
    return events


async def sync_media(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "sync_media", data, blocking=True, return_response=True
    )
    assert response is not None
    return response


async def import_full(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        DOMAIN, "import_library", {"mode": "full"}, blocking=True, return_response=True
    )


# -- the subentry flow -------------------------------------------------------------------------


async def _start_flow(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TRANSFER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return result


def form_input(dirs: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    data = profile_data(dirs, **overrides)
    for key in (CONF_MOVIE_SOURCES, CONF_TV_SOURCES):
        if isinstance(data[key], list):
            data[key] = "\n".join(data[key])
    return data


async def test_flow_creates_profile_and_refuses_paths_outside_the_allowlist(
    hass: HomeAssistant, simulator: PlexSimulator, loaded: MockConfigEntry, dirs: dict[str, Path]
) -> None:
    """A folder HA does not allow is refused naming the setting; a good form makes the profile."""
    result = await _start_flow(hass, loaded)
    outside = str(dirs["outside"] / "Movies")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, **{CONF_MOVIE_DESTINATION: outside})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MOVIE_DESTINATION: "path_not_allowed"}
    assert result["description_placeholders"] == {"path": outside}
    # two fields refused: each error names both folders (the form has one placeholder)
    outside_tv = str(dirs["outside"] / "TV")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        form_input(dirs, **{CONF_MOVIE_DESTINATION: outside, CONF_TV_DESTINATION: outside_tv}),
    )
    assert result["errors"] == {
        CONF_MOVIE_DESTINATION: "path_not_allowed",
        CONF_TV_DESTINATION: "path_not_allowed",
    }
    assert result["description_placeholders"] == {"path": f"{outside}, {outside_tv}"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, **{CONF_TV_SOURCES: "relative/tv"})
    )
    assert result["errors"] == {CONF_TV_SOURCES: "path_not_absolute"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, **{CONF_TV_DESTINATION: "laptop/TV"})
    )
    assert result["errors"] == {CONF_TV_DESTINATION: "path_not_absolute"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        form_input(dirs, **{CONF_MOVIE_DESTINATION: "", CONF_TV_DESTINATION: ""}),
    )
    assert result["errors"] == {CONF_MOVIE_DESTINATION: "destination_required"}

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, backoff_base_s=30, backoff_cap_s=10)
    )
    assert result["errors"] == {"backoff_base_s": "invalid_backoff"}

    second = str(dirs["src"] / "movies2")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        form_input(dirs, **{CONF_MOVIE_SOURCES: f"{dirs['movies']}\n{second}\n"}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    sub = next(s for s in loaded.subentries.values() if s.subentry_type == SUBENTRY_TRANSFER)
    assert sub.title == "Laptop"
    assert sub.data[CONF_MOVIE_SOURCES] == [str(dirs["movies"]), second]
    assert sub.data[CONF_VERIFY] == "sha256"
    # The reload started the profile's queue.
    await wait_until(lambda: manager(loaded).profiles[sub.subentry_id].available)

    # A second profile with the same name is refused.
    result = await _start_flow(hass, loaded)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs)
    )
    assert result["errors"] == {CONF_PROFILE_NAME: "profile_exists"}


async def test_reconfigure_keeps_the_queue(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Paused transfers survive a reconfigure (which reloads the entry)."""
    entry = await setup_entry(hass, simulator, dirs)
    sid = subentry_id(entry)
    (dirs["movies"] / "Arrival (2016)").mkdir()
    (dirs["movies"] / "Arrival (2016)" / "Arrival (2016).mkv").write_bytes(_bytes(MiB, "a"))
    await hass.services.async_call(DOMAIN, "pause_transfers", {}, blocking=True)
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    queued = await sync_media(hass, title="Arrival", year=2016)
    [transfer_id] = queued["transfer_ids"]

    result = await entry.start_subentry_reconfigure_flow(hass, sid)
    assert result["step_id"] == "reconfigure"
    # A bad form is shown again with its errors, the profile unchanged.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        form_input(dirs, **{CONF_PROFILE_NAME: "  ", CONF_MOVIE_SOURCES: "", CONF_TV_SOURCES: ""}),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {
        CONF_PROFILE_NAME: "invalid_name",
        CONF_MOVIE_SOURCES: "sources_required",
    }
    assert manager(entry).profiles[sid].name == "Laptop"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, verify="size", concurrency=2)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    await wait_until(lambda: manager(entry).store is not None)
    profile = manager(entry).profiles[sid]
    assert profile.config.options.verify == "size"
    assert profile.config.options.concurrency == 2
    items = await manager(entry).queue(sid).items()
    assert [(i.id, i.state) for i in items] == [(transfer_id, TransferState.PAUSED)]


# -- sync_media ----------------------------------------------------------------------------------


async def test_transferred_today_starts_again_at_midnight(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """What was copied today counts until local midnight; then the sensor starts from 0 (a
    total_increasing sensor's new cycle), and a later refresh does not count yesterday's copy."""
    entry = await setup_entry(hass, simulator, dirs)
    await import_full(hass)
    movie = simulator.library.movies()[0]
    source = place_source(simulator, dirs, movie, MiB + 5)
    await sync_media(hass, profile="Laptop", rating_key=movie.rating_key)
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    await hass.async_block_till_done(wait_background_tasks=True)
    sensor = "sensor.laptop_transferred_today"
    assert float(state(hass, sensor).state) == pytest.approx(source.stat().st_size / 1e6)

    tomorrow = dt_util.start_of_local_day(dt_util.now() + timedelta(days=1))
    with patch.object(dt_util, "now", lambda time_zone=None: tomorrow):
        async_fire_time_changed(hass, tomorrow)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert float(state(hass, sensor).state) == 0
        # a refresh (the free-space poll) reads the queue again: yesterday's copy stays out
        async_fire_time_changed(hass, tomorrow + timedelta(minutes=10))
        await hass.async_block_till_done(wait_background_tasks=True)
        assert float(state(hass, sensor).state) == 0
        assert state(hass, "sensor.laptop_queue").attributes["done"] == 1


async def test_sync_media_by_rating_key_copies_bit_exact_and_fires_events(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """A catalog movie whose Plex path maps to a tmp file is copied, verified and announced."""
    entry = await setup_entry(hass, simulator, dirs)
    await import_full(hass)
    movie = simulator.library.movies()[0]
    source = place_source(simulator, dirs, movie, 3 * MiB + 17)
    queued_events = collect(hass, "queued")
    started = collect(hass, "started")
    finished = collect(hass, "finished")

    response = await sync_media(hass, profile="Laptop", rating_key=movie.rating_key)
    [transfer_id] = response["transfer_ids"]
    [info] = response["transfers"]
    destination = Path(info["path"])
    assert destination.is_relative_to(dirs["dest"] / "Movies")
    assert destination.suffix == source.suffix

    await manager(entry).queue(subentry_id(entry)).wait_idle()
    await hass.async_block_till_done()
    assert destination.read_bytes() == source.read_bytes()
    assert [e.data["transfer_id"] for e in queued_events] == [transfer_id]
    assert [e.data["transfer_id"] for e in started] == [transfer_id]
    [done] = finished
    assert done.data["profile"] == "Laptop"
    assert done.data["path"] == str(destination)
    assert done.data["size"] == source.stat().st_size
    assert done.data["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert done.data["error"] is None

    # The profile's device shows it.
    size = source.stat().st_size
    await hass.async_block_till_done(wait_background_tasks=True)
    today = state(hass, "sensor.laptop_transferred_today")
    # Shown in MB (the exact bytes converted by HA), not as a ten-digit byte count.
    assert today.attributes["unit_of_measurement"] == "MB"
    assert float(today.state) == pytest.approx(size / 1e6)
    assert state(hass, "sensor.laptop_transferred_today").attributes["state_class"] == (
        "total_increasing"
    )
    assert state(hass, "sensor.laptop_queue").state == "0"
    assert state(hass, "sensor.laptop_queue").attributes["done"] == 1
    assert state(hass, "binary_sensor.laptop_transferring").state == "off"
    assert state(hass, "sensor.laptop_current_transfer").state == "unknown"
    free = state(hass, "sensor.laptop_destination_free_space")
    assert free.attributes["unit_of_measurement"] == "GB"
    assert float(free.state) > 0


async def test_sync_media_by_show_season_and_episode_selection(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Scanned episodes are picked by show, season and "1,3-4"; "new" skips what is copied."""
    entry = await setup_entry(hass, simulator, dirs)
    season = dirs["tv"] / "Doctor Who (2005)" / "Season 01"
    season.mkdir(parents=True)
    for number in range(1, 6):
        (season / f"Doctor Who (2005) - S01E{number:02d}.mkv").write_bytes(
            _bytes(4096, str(number))
        )
    (dirs["tv"] / "Doctor Who (2005)" / "Season 02").mkdir()
    (dirs["tv"] / "Doctor Who (2005)" / "Season 02" / "Doctor Who (2005) - S02E01.mkv").write_bytes(
        b"x" * 100
    )
    scan = await hass.services.async_call(
        DOMAIN, "scan_sources", {"profile": "laptop"}, blocking=True, return_response=True
    )
    assert scan is not None
    assert scan["seen"] == 6
    assert scan["added"] == 6
    await hass.async_block_till_done()
    await wait_until(lambda: state(hass, "sensor.laptop_scan_progress").state == "6")
    assert state(hass, "sensor.laptop_scan_progress").attributes["scanning"] is False

    response = await sync_media(hass, show="Doctor Who", season=1, episodes="1,3-4")
    titles = [t["title"] for t in response["transfers"]]
    assert titles == ["Doctor Who S01E01", "Doctor Who S01E03", "Doctor Who S01E04"]
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    copied = sorted(p.name for p in (dirs["dest"] / "TV").rglob("*.mkv"))
    assert copied == [
        "Doctor Who (2005) - S01E01.mkv",
        "Doctor Who (2005) - S01E03.mkv",
        "Doctor Who (2005) - S01E04.mkv",
    ]
    # "new": only the season's episodes not copied yet.
    response = await sync_media(hass, show="Doctor Who", season=1, episodes="new")
    assert [t["title"] for t in response["transfers"]] == [
        "Doctor Who S01E02",
        "Doctor Who S01E05",
    ]
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    # Nothing new left: an empty answer, not an error (a nightly automation keeps working).
    response = await sync_media(hass, show="Doctor Who", season=1, episodes="new")
    assert response == {"transfer_ids": [], "transfers": []}
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, show="Doctor Who", season=1, episodes="9")
    assert info.value.translation_key == "transfer_nothing_selected"


async def test_sync_media_bad_input_names_the_field(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Every kind of bad input is refused with a translated error naming what was wrong."""
    await setup_entry(hass, simulator, dirs)
    cases: list[tuple[dict[str, Any], str, dict[str, str]]] = [
        ({}, "transfer_what_required", {}),
        ({"title": "A", "show": "B"}, "transfer_what_required", {}),
        ({"profile": "Desktop", "title": "A"}, "transfer_unknown_profile", {"profile": "Desktop"}),
        ({"show": "X", "episodes": "1,,3"}, "transfer_bad_episodes", {"field": "episodes"}),
        ({"show": "X", "episodes": "5-2"}, "transfer_bad_episodes", {"field": "episodes"}),
        ({"title": "No Such Film"}, "transfer_item_not_found", {"field": "title"}),
        ({"rating_key": "999999"}, "transfer_item_not_found", {"field": "rating_key"}),
        ({"media_id": "plexus://nonsense"}, "transfer_bad_media_id", {"field": "media_id"}),
    ]
    for data, key, placeholders in cases:
        with pytest.raises(ServiceValidationError) as info:
            await sync_media(hass, **data)
        assert info.value.translation_key == key, data
        shown = info.value.translation_placeholders or {}
        for name, value in placeholders.items():
            assert shown[name] == value, data
    # The schema refuses a rating key that is not a number.
    with pytest.raises(Exception, match="rating_key"):
        await sync_media(hass, rating_key="abc")


async def test_destination_escape_is_refused_at_enqueue(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """A symlink in the destination pointing outside, or a source HA does not allow: refused."""
    entry = await setup_entry(hass, simulator, dirs, profile=profile_data(dirs, layout="mirror"))
    folder = dirs["movies"] / "Escape"
    folder.mkdir()
    (folder / "Escape.mkv").write_bytes(b"x" * 1000)
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    # The destination's "Escape" folder is a symlink to a folder outside the root.
    (dirs["dest"] / "Movies").mkdir()
    (dirs["dest"] / "Movies" / "Escape").symlink_to(dirs["outside"])
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, title="Escape")
    assert info.value.translation_key == "transfer_path_escape"
    assert not list(dirs["outside"].iterdir())
    assert await manager(entry).queue(subentry_id(entry)).items() == []


# -- cancel, pause, resume, remove ---------------------------------------------------------------


async def test_pause_resume_cancel_and_remove_local_copy(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Pause holds the queue, resume runs it, cancel drops one; only own copies are removed."""
    entry = await setup_entry(hass, simulator, dirs)
    for name in ("One", "Two"):
        (dirs["movies"] / f"{name} (2001)").mkdir()
        (dirs["movies"] / f"{name} (2001)" / f"{name} (2001).mkv").write_bytes(_bytes(MiB, name))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.laptop_pause"}, blocking=True
    )
    first = await sync_media(hass, title="One")
    [one] = first["transfer_ids"]
    [two] = (await sync_media(hass, title="Two"))["transfer_ids"]
    queue = manager(entry).queue(subentry_id(entry))
    assert {i.state for i in await queue.items()} == {TransferState.PAUSED}

    await hass.services.async_call(DOMAIN, "cancel_transfer", {"transfer_id": two}, blocking=True)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, "cancel_transfer", {"transfer_id": 4242}, blocking=True
        )
    assert info.value.translation_key == "transfer_not_found"

    await hass.services.async_call(
        "button", "press", {"entity_id": "button.laptop_resume"}, blocking=True
    )
    await queue.wait_idle()
    states = {i.id: i.state for i in await queue.items()}
    assert states == {one: TransferState.DONE, two: TransferState.CANCELLED}
    copy = Path(first["transfers"][0]["path"])
    # The plex layout under the movie destination (a library folder of its own):
    # Title (Year)/Title (Year).ext, no second "Movies" folder.
    assert copy == dirs["dest"] / "Movies" / "One (2001)" / "One (2001).mkv"
    assert copy.read_bytes() == _bytes(MiB, "One")

    # A file this profile did not copy is refused, and left alone.
    stranger = dirs["dest"] / "Movies" / "stranger.mkv"
    stranger.write_bytes(b"mine")
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, "remove_local_copy", {"path": str(stranger)}, blocking=True
        )
    assert info.value.translation_key == "transfer_not_copied"
    assert stranger.exists()
    await hass.services.async_call(DOMAIN, "remove_local_copy", {"path": str(copy)}, blocking=True)
    assert not copy.exists()


# -- disk full, builtin copier, restart ----------------------------------------------------------


async def test_disk_full_raises_a_repairs_issue_until_resolved(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC during the copy pauses the transfer, raises an issue; resuming clears it."""
    monkeypatch.setattr(f"{COPIER}.shutil.which", lambda _name: None)  # builtin copier
    entry = await setup_entry(hass, simulator, dirs)
    (dirs["movies"] / "Big (1988)").mkdir()
    (dirs["movies"] / "Big (1988)" / "Big (1988).mkv").write_bytes(_bytes(2 * MiB, "big"))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)

    real_pwrite = os.pwrite
    full = {"on": True}

    def pwrite(*args: Any) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(*args)

    monkeypatch.setattr(f"{BUILTIN_COPIER}.os.pwrite", pwrite)
    sid = subentry_id(entry)
    [transfer_id] = (await sync_media(hass, title="Big"))["transfer_ids"]
    issues = ir.async_get(hass)
    await wait_until(lambda: issues.async_get_issue(DOMAIN, disk_full_issue_id(sid)) is not None)
    issue = issues.async_get_issue(DOMAIN, disk_full_issue_id(sid))
    assert issue is not None
    assert issue.is_fixable is False
    assert issue.translation_placeholders is not None
    assert int(issue.translation_placeholders["needed_mib"]) >= 1
    queue = manager(entry).queue(sid)
    assert (await queue.get(transfer_id)).state == TransferState.PAUSED

    full["on"] = False
    await hass.services.async_call(DOMAIN, "resume_transfers", {}, blocking=True)
    await queue.wait_idle()
    await hass.async_block_till_done()
    assert (await queue.get(transfer_id)).state == TransferState.DONE
    assert issues.async_get_issue(DOMAIN, disk_full_issue_id(sid)) is None


async def test_builtin_copier_when_rsync_is_missing_shows_in_diagnostics(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(f"{COPIER}.shutil.which", lambda _name: None)
    entry = await setup_entry(hass, simulator, dirs)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    transfers = diagnostics["transfers"]
    assert transfers["copier"] == "builtin"
    assert transfers["profiles"][subentry_id(entry)]["available"] is True


async def test_restart_mid_transfer_resumes_from_the_partial(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload while copying keeps the queue and the partial file; the copy then finishes."""
    monkeypatch.setattr(f"{COPIER}.shutil.which", lambda _name: None)
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, bandwidth_limit_kib=2048)
    )
    (dirs["movies"] / "Slow (1999)").mkdir()
    source = dirs["movies"] / "Slow (1999)" / "Slow (1999).mkv"
    source.write_bytes(_bytes(8 * MiB, "slow"))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    [transfer_id] = (await sync_media(hass, title="Slow"))["transfer_ids"]
    sid = subentry_id(entry)
    folder = dirs["dest"] / "Movies" / "Slow (1999)"
    partial = folder / ".Slow (1999).mkv.plexus-partial"
    await wait_until(lambda: partial.exists() and partial.stat().st_size > MiB, timeout=10)
    # While it copies: the current transfer with its progress, and "transferring" on.
    await wait_until(
        lambda: state(hass, "sensor.laptop_current_transfer").attributes.get("speed") is not None
    )
    current = state(hass, "sensor.laptop_current_transfer")
    assert current.state == "Slow (1999)"
    assert 0 < current.attributes["progress"] < 100
    assert current.attributes["size"] == 8 * MiB
    assert current.attributes["speed"] > 0
    assert current.attributes["eta"] >= 0
    assert state(hass, "binary_sensor.laptop_transferring").state == "on"
    assert state(hass, "sensor.laptop_queue").state == "1"

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    kept = partial.stat().st_size if partial.exists() else 0
    assert kept > 0  # the partial survived the restart
    await wait_until(lambda: manager(entry).store is not None)
    queue = manager(entry).queue(sid)
    await asyncio.wait_for(queue.wait_idle(), 20)
    item = await queue.get(transfer_id)
    assert item.state == TransferState.DONE
    final = folder / "Slow (1999).mkv"
    assert final.read_bytes() == source.read_bytes()


async def test_services_say_when_the_catalog_database_is_not_open(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Without an open catalog database the profile is unavailable and services say so."""
    entry = await setup_entry(hass, simulator, dirs)
    await manager(entry).async_stop()  # as if the database had not opened
    manager(entry)._push(next(iter(manager(entry).profiles.values())))
    await hass.async_block_till_done()
    await wait_until(lambda: state(hass, "sensor.laptop_queue").state == "unavailable")
    with pytest.raises(HomeAssistantError) as info:
        await sync_media(hass, title="Anything")
    assert info.value.translation_key == "transfer_unavailable"
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(DOMAIN, "pause_transfers", {}, blocking=True)
    assert info.value.translation_key == "transfer_unavailable"


async def test_sync_media_by_browser_id_of_a_season_and_from_the_catalog_by_title(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """A media-browser id of a season queues its mapped episodes; a catalog profile finds titles."""
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, source_mode="catalog")
    )
    await import_full(hass)
    season = next(s for s in simulator.library.seasons() if len(s.children) >= 2)
    episodes = sorted(season.children, key=lambda e: e.index or 0)
    for episode in episodes:
        place_source(simulator, dirs, episode, 2048)
    browser_id = media_id(BrowsePath(simulator.machine_identifier, KIND_ITEM, season.rating_key))

    first_only = await sync_media(hass, media_id=browser_id, episodes=str(episodes[0].index))
    assert len(first_only["transfer_ids"]) == 1
    assert f"E{episodes[0].index:02d}" in first_only["transfers"][0]["title"]
    everything = await sync_media(hass, media_id=browser_id)
    # The episode queued before is returned again (same destination), the rest are new.
    assert len(everything["transfer_ids"]) == len(episodes)
    assert first_only["transfer_ids"][0] in everything["transfer_ids"]
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    tv_root = dirs["dest"] / "TV"
    assert len(list(tv_root.rglob("*.*"))) == len(episodes)
    assert not (tv_root / "TV").exists()

    movie = simulator.library.movies()[1]
    place_source(simulator, dirs, movie, 1000)
    response = await sync_media(hass, title=movie.title, year=movie.year)
    assert response["transfers"][0]["source"].startswith(str(dirs["movies"]))
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, title=movie.title + " Nonexistent Sequel")
    assert info.value.translation_key == "transfer_item_not_found"


async def test_an_item_newer_than_the_catalog_is_imported_and_copied(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Plex announces a new movie and a new episode (library.new) before the catalog's own import
    has run — here: added to the server without a notification. sync_media by rating key (what
    the *Copy new episodes* blueprint does) imports what is new and queues it, instead of "not
    found"; for a show, the new episode is among those queued."""
    await setup_entry(hass, simulator, dirs)
    await import_full(hass)
    movie = simulator.library.add_movie(
        "Brand New Film", year=2026, file="/data/movies/Brand New Film (2026).mkv", notify=False
    )
    place_source(simulator, dirs, movie, 2000)
    response = await sync_media(hass, profile="Laptop", rating_key=movie.rating_key)
    assert [t["title"] for t in response["transfers"]] == ["Brand New Film (2026)"]

    show = simulator.library.shows()[0]
    episode = simulator.library.add_episode(show, 9, 1, title="Premiere", notify=False)
    place_source(simulator, dirs, episode, 1000)
    for old in simulator.library.episodes():
        if old is not episode and old.parent is not None and old.parent.parent is show:
            place_source(simulator, dirs, old, 1000)
    response = await sync_media(hass, profile="Laptop", rating_key=show.rating_key)
    assert any("S09E01" in t["title"] for t in response["transfers"])

    with pytest.raises(ServiceValidationError) as info:  # still nowhere: not found, clearly
        await sync_media(hass, profile="Laptop", rating_key="987654321")
    assert info.value.translation_key == "transfer_item_not_found"


async def test_queue_services_bad_input(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Unknown profiles, a catalog profile asked to scan, and no profile at all are refused."""
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, source_mode="catalog")
    )
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, "pause_transfers", {"profile": "Nope"}, blocking=True
        )
    assert info.value.translation_key == "transfer_unknown_profile"
    assert info.value.translation_placeholders == {"profile": "Nope", "profiles": "Laptop"}
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    assert err.value.translation_key == "transfer_no_sources"
    with pytest.raises(Exception, match="transfer_id"):
        await hass.services.async_call(
            DOMAIN, "cancel_transfer", {"transfer_id": "x"}, blocking=True
        )
    # Ids no database column holds (before: a raw OverflowError from SQLite, not the field).
    for too_big in (2**31, 2**63, 1e30):
        with pytest.raises(vol.Invalid, match="transfer_id"):
            await hass.services.async_call(
                DOMAIN, "cancel_transfer", {"transfer_id": too_big}, blocking=True
            )
    # A path with NUL (before: a raw database error on PostgreSQL, which refuses NUL in text).
    with pytest.raises(vol.Invalid, match="path"):
        await hass.services.async_call(
            DOMAIN, "remove_local_copy", {"path": f"{dirs['dest']}/a\x00b.mkv"}, blocking=True
        )
    # No scan button on a catalog profile (it has no folders to scan).
    assert hass.states.get("button.laptop_scan_sources") is None
    assert state(hass, "button.laptop_pause").state != "unavailable"

    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, title="Anything")
    assert info.value.translation_key == "transfer_no_profile"


async def test_profile_waits_for_the_catalog_database_then_starts(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path], catalog_in_tmp: Path
) -> None:
    """A catalog database that cannot be opened: unavailable entities; it opens: the queue runs."""
    catalog_in_tmp.mkdir()  # a folder where the SQLite file should be
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        subentries_data=[
            ConfigSubentryData(
                data=profile_data(dirs),
                subentry_type=SUBENTRY_TRANSFER,
                title="Laptop",
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "sensor.laptop_queue").state == "unavailable"
    assert state(hass, "binary_sensor.laptop_transferring").state == "unavailable"
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    assert info.value.translation_key == "transfer_unavailable"
    assert info.value.translation_placeholders == {"profile": "Laptop"}

    catalog_in_tmp.rmdir()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))  # the catalog retries
    await hass.async_block_till_done()
    await wait_until(lambda: state(hass, "sensor.laptop_queue").state == "0")
    assert manager(entry).copier_name in ("rsync", "builtin")
    assert state(hass, "binary_sensor.laptop_transferring").state == "off"


async def test_disk_full_issue_comes_back_after_a_restart_while_still_paused(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HA forgets Repairs issues over a restart: setup raises it again for a transfer still
    paused for space; once resumed, another restart raises nothing."""
    monkeypatch.setattr(f"{COPIER}.shutil.which", lambda _name: None)  # builtin copier
    entry = await setup_entry(hass, simulator, dirs)
    (dirs["movies"] / "Big (1988)").mkdir()
    source = dirs["movies"] / "Big (1988)" / "Big (1988).mkv"
    source.write_bytes(_bytes(2 * MiB, "big"))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    real_pwrite = os.pwrite
    full = {"on": True}

    def pwrite(*args: Any) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(*args)

    monkeypatch.setattr(f"{BUILTIN_COPIER}.os.pwrite", pwrite)
    sid = subentry_id(entry)
    issue_id = disk_full_issue_id(sid)
    issues = ir.async_get(hass)
    [transfer_id] = (await sync_media(hass, title="Big"))["transfer_ids"]
    await wait_until(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)

    # A restart: the entry goes down, HA's issue registry does not keep the issue.
    assert await hass.config_entries.async_unload(entry.entry_id)
    ir.async_delete_issue(hass, DOMAIN, issue_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager(entry).store is not None)
    await wait_until(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["title"] == "Big (1988)"
    assert int(issue.translation_placeholders["needed_mib"]) >= 1
    queue = manager(entry).queue(sid)
    assert (await queue.get(transfer_id)).state == TransferState.PAUSED

    full["on"] = False
    await hass.services.async_call(DOMAIN, "resume_transfers", {}, blocking=True)
    await queue.wait_idle()
    await hass.async_block_till_done()
    assert (await queue.get(transfer_id)).state == TransferState.DONE
    assert issues.async_get_issue(DOMAIN, issue_id) is None

    # Paused by the user (not for space): a restart raises no issue.
    await hass.services.async_call(DOMAIN, "pause_transfers", {}, blocking=True)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager(entry).store is not None)
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_removing_a_profile_forgets_its_queue_and_partials(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleting the subentry stops its copy, deletes its partial file and its queue rows;
    copies it finished stay on disk."""
    monkeypatch.setattr(f"{COPIER}.shutil.which", lambda _name: None)
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, bandwidth_limit_kib=2048)
    )
    sid = subentry_id(entry)
    for name, size in (("Done (2001)", 64 * 1024), ("Slow (1999)", 8 * MiB)):
        (dirs["movies"] / name).mkdir()
        (dirs["movies"] / name / f"{name}.mkv").write_bytes(_bytes(size, name))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    queue = manager(entry).queue(sid)
    await sync_media(hass, title="Done")
    await queue.wait_idle()
    finished = dirs["dest"] / "Movies" / "Done (2001)" / "Done (2001).mkv"
    assert finished.exists()
    await sync_media(hass, title="Slow")
    partial = dirs["dest"] / "Movies" / "Slow (1999)" / ".Slow (1999).mkv.plexus-partial"
    await wait_until(lambda: partial.exists() and partial.stat().st_size > 0, timeout=10)
    store = manager(entry).store
    assert store is not None
    assert len(await hass.async_add_executor_job(store.items, sid)) == 2
    ir.async_create_issue(
        hass,
        DOMAIN,
        disk_full_issue_id(sid),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="transfer_disk_full",
    )  # as if it had been raised

    assert hass.config_entries.async_remove_subentry(entry, sid)
    await hass.async_block_till_done()
    await wait_until(lambda: not partial.exists())
    await wait_until(lambda: store.items(sid) == [])
    assert sid not in manager(entry).profiles
    assert finished.exists(), "a finished copy is the user's file: it stays"
    assert ir.async_get(hass).async_get_issue(DOMAIN, disk_full_issue_id(sid)) is None
    assert not queue._workers
    assert hass.states.get("sensor.laptop_queue") is None


async def test_one_destination_for_movies_and_tv_keeps_them_apart(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """The plex layout in a folder both media types share adds Movies/ and TV/ inside it."""
    shared = str(dirs["dest"])
    entry = await setup_entry(
        hass,
        simulator,
        dirs,
        profile=profile_data(dirs, **{CONF_MOVIE_DESTINATION: shared, CONF_TV_DESTINATION: shared}),
    )
    (dirs["movies"] / "Heat (1995)").mkdir()
    (dirs["movies"] / "Heat (1995)" / "Heat (1995).mkv").write_bytes(b"h" * 1000)
    season = dirs["tv"] / "Show" / "Season 01"
    season.mkdir(parents=True)
    (season / "Show - S01E01.mkv").write_bytes(b"s" * 1000)
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    [movie] = (await sync_media(hass, title="Heat"))["transfers"]
    [episode] = (await sync_media(hass, show="Show", season=1))["transfers"]
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    assert movie["path"] == str(dirs["dest"] / "Movies" / "Heat (1995)" / "Heat (1995).mkv")
    assert episode["path"] == str(dirs["dest"] / "TV" / "Show" / "Season 01" / "Show - S01E01.mkv")
    assert Path(movie["path"]).exists()
    assert Path(episode["path"]).exists()


# -- sync_media from the catalog: shows, refusals -----------------------------------------------


async def test_sync_media_of_a_show_from_the_catalog_and_what_it_refuses(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """A catalog profile: a show by title queues its mapped episodes; a show the catalog lacks,
    an item whose file Plex keeps outside the mapped folders, a file gone from the share, a
    browser id that is not Plexus's, and a server that fails to list a show's
    episodes are each refused with their own translated error, and nothing is queued for them."""
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, source_mode="catalog")
    )
    queue = manager(entry).queue(subentry_id(entry))
    await import_full(hass)
    season = next(s for s in simulator.library.seasons() if len(s.children) >= 2)
    show = season.parent
    assert show is not None
    episodes = [e for e in simulator.library.episodes() if e.grandparent is show]
    for episode in episodes:
        place_source(simulator, dirs, episode, 1024)
    response = await sync_media(hass, show=show.title)
    assert len(response["transfer_ids"]) == len(episodes)
    queued = len(await queue.items())

    movie = simulator.library.movies()[2]  # its file is not on the share
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, rating_key=movie.rating_key)
    assert info.value.translation_key == "transfer_source_missing"
    assert info.value.translation_placeholders["path"].startswith(str(dirs["movies"]))

    cases: list[tuple[dict[str, Any], str, dict[str, str]]] = [
        ({"show": "No Such Show At All"}, "transfer_item_not_found", {"field": "show"}),
        (
            {"media_id": "media-source://media_source/local/film.mkv"},  # not a Plex id
            "transfer_item_not_found",
            {"field": "media_id"},
        ),
    ]
    for data, key, placeholders in cases:
        with pytest.raises(ServiceValidationError) as info:
            await sync_media(hass, **data)
        assert info.value.translation_key == key, data
        assert placeholders.items() <= (info.value.translation_placeholders or {}).items()

    simulator.set_error(500)
    try:
        with pytest.raises(HomeAssistantError) as err:
            await sync_media(hass, rating_key=show.rating_key)
    finally:
        simulator.set_error(None)
    assert err.value.translation_key == "refresh_failed"
    assert len(await queue.items()) == queued


async def test_two_profiles_need_a_name_and_queue_services_without_profiles(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """With two profiles, sync_media must be told which; pause by name pauses only that one;
    remove_local_copy refuses a copy whose folder now links outside the destination; with no
    entry loaded the queue services say there is no profile."""
    entry = await setup_entry(hass, simulator, dirs)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TRANSFER), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_input(dirs, **{CONF_PROFILE_NAME: "Desktop"})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_until(lambda: len(manager(entry).profiles) == 2)
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, title="Anything")
    assert info.value.translation_key == "transfer_profile_required"
    assert set(info.value.translation_placeholders["profiles"].split(", ")) == {
        "Laptop",
        "Desktop",
    }
    await hass.services.async_call(DOMAIN, "pause_transfers", {"profile": "Desktop"}, blocking=True)
    await hass.async_block_till_done()
    paused = {
        p.name: manager(entry).queue(sid).paused for sid, p in manager(entry).profiles.items()
    }
    assert paused == {"Laptop": False, "Desktop": True}
    # A copy whose folder was swapped for a link to somewhere else: not removed through it.
    (dirs["movies"] / "One (2001)").mkdir()
    (dirs["movies"] / "One (2001)" / "One (2001).mkv").write_bytes(_bytes(MiB, "One"))
    await hass.services.async_call(DOMAIN, "scan_sources", {"profile": "Laptop"}, blocking=True)
    copied = await sync_media(hass, title="One", profile="Laptop")
    await manager(entry).queue(subentry_id(entry)).wait_idle()
    copy = Path(copied["transfers"][0]["path"])
    assert copy.exists()
    (dirs["outside"] / copy.name).write_bytes(b"keep")
    copy.unlink()
    copy.parent.rmdir()
    copy.parent.symlink_to(dirs["outside"])
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(
            DOMAIN, "remove_local_copy", {"profile": "Laptop", "path": str(copy)}, blocking=True
        )
    assert info.value.translation_key == "transfer_path_not_allowed"
    assert (dirs["outside"] / copy.name).read_bytes() == b"keep"
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as info:
        await hass.services.async_call(DOMAIN, "resume_transfers", {}, blocking=True)
    assert info.value.translation_key == "transfer_no_profile"


# -- profiles that cannot work, destinations -----------------------------------------------------


async def test_an_unusable_stored_profile_is_logged_and_the_others_work(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A profile whose stored settings are broken (an unknown verify mode): one error naming it,
    shown in diagnostics; the other profile is set up and copies."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        options={CONF_PATH_MAPPINGS: f"/data/movies => {dirs['movies']}"},
        subentries_data=[
            ConfigSubentryData(
                data=profile_data(dirs, **{CONF_PROFILE_NAME: title, CONF_VERIFY: verify}),
                subentry_type=SUBENTRY_TRANSFER,
                title=title,
                unique_id=None,
            )
            for title, verify in (("Broken", "crc-of-the-moon"), ("Laptop", "sha256"))
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: manager(entry).store is not None)
    logged = [r.getMessage() for r in caplog.records if "is not usable" in r.getMessage()]
    assert len(logged) == 1
    assert "Broken" in logged[0]
    assert [p.name for p in manager(entry).profiles.values()] == ["Laptop"]
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert len(diagnostics["transfers"]["bad_profiles"]) == 1
    (dirs["movies"] / "One (2001)").mkdir()
    (dirs["movies"] / "One (2001)" / "One (2001).mkv").write_bytes(_bytes(1000, "One"))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    assert len((await sync_media(hass, title="One"))["transfer_ids"]) == 1


async def test_a_profile_without_a_tv_destination_refuses_episodes(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """Movies only: asking for a show is refused naming the profile and the media type."""
    entry = await setup_entry(hass, simulator, dirs, profile=profile_data(dirs, tv_destination=""))
    show = dirs["tv"] / "Some Show" / "Season 01"
    show.mkdir(parents=True)
    (show / "Some Show - S01E01.mkv").write_bytes(b"x" * 1000)
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, show="Some Show")
    assert info.value.translation_key == "transfer_no_destination"
    assert info.value.translation_placeholders == {"profile": "Laptop", "media_type": "show"}
    assert await manager(entry).queue(subentry_id(entry)).items() == []


async def test_a_source_home_assistant_no_longer_allows_is_refused(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """The share dropped from allowlist_external_dirs after a scan: the file is not read."""
    entry = await setup_entry(hass, simulator, dirs)
    (dirs["movies"] / "One (2001)").mkdir()
    source = dirs["movies"] / "One (2001)" / "One (2001).mkv"
    source.write_bytes(_bytes(1000, "One"))
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    hass.config.allowlist_external_dirs = {str(dirs["dest"])}
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, title="One")
    assert info.value.translation_key == "transfer_path_not_allowed"
    assert info.value.translation_placeholders == {"path": str(source)}
    assert await manager(entry).queue(subentry_id(entry)).items() == []


async def test_transfer_tables_that_cannot_be_opened(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses the transfer tables: logged once with its cause, the profile is
    unavailable and sync_media says so; removing the profile meanwhile warns that its queue stays
    in the database (nothing can be cleaned while it is closed)."""

    def refused(_engine: Any) -> None:
        raise OperationalError("CREATE TABLE", {}, Exception("permission denied for schema"))

    monkeypatch.setattr("custom_components.plexus.transfers.TransferStore", refused)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Plexus Simulator",
        unique_id=simulator.machine_identifier,
        data=entry_data(simulator),
        subentries_data=[
            ConfigSubentryData(
                data=profile_data(dirs),
                subentry_type=SUBENTRY_TRANSFER,
                title="Laptop",
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    logged = [r for r in caplog.records if "could not be opened" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "permission denied" in str(logged[0].exc_info[1])
    assert manager(entry).store is None
    assert state(hass, "sensor.laptop_queue").state == "unavailable"
    with pytest.raises(HomeAssistantError) as info:
        await sync_media(hass, title="Anything")
    assert info.value.translation_key == "transfer_unavailable"
    assert hass.config_entries.async_remove_subentry(entry, subentry_id(entry))
    await hass.async_block_till_done()
    assert manager(entry).profiles == {}
    assert any("its queue stays in the database" in r.getMessage() for r in caplog.records)


async def test_a_catalog_item_outside_the_mapped_folders_has_no_local_file(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """A movie Plex keeps in a folder no path mapping covers: refused naming its title."""
    entry = await setup_entry(
        hass, simulator, dirs, profile=profile_data(dirs, source_mode="catalog")
    )
    movie = simulator.library.add_movie(
        "Kept Elsewhere", year=2020, file="/mnt/elsewhere/Kept Elsewhere (2020).mkv", notify=False
    )
    await import_full(hass)
    with pytest.raises(ServiceValidationError) as info:
        await sync_media(hass, rating_key=movie.rating_key)
    assert info.value.translation_key == "transfer_no_local_file"
    assert info.value.translation_placeholders == {"title": "Kept Elsewhere"}
    assert await manager(entry).queue(subentry_id(entry)).items() == []


async def test_free_space_is_read_again_and_unknown_when_the_disk_cannot_say(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The destination's free space is read again on a timer; a file system that cannot say
    (an error from statvfs) shows it as unknown, and it comes back when the disk answers."""
    await setup_entry(hass, simulator, dirs)
    entity = "sensor.laptop_destination_free_space"
    await wait_until(lambda: state(hass, entity).state not in ("unknown", "unavailable"))

    def cannot_say(_path: Any) -> Any:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(shutil, "disk_usage", cannot_say)
    async_fire_time_changed(hass, dt_util.utcnow() + TRANSFER_FREE_SPACE_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)  # the catalog's first import too
    await wait_until(lambda: state(hass, entity).state == "unknown")
    monkeypatch.undo()
    async_fire_time_changed(hass, dt_util.utcnow() + 2 * TRANSFER_FREE_SPACE_INTERVAL)
    await hass.async_block_till_done(wait_background_tasks=True)
    await wait_until(lambda: state(hass, entity).state not in ("unknown", "unavailable"))
    assert float(state(hass, entity).state) > 0


async def test_another_entry_changing_leaves_the_profiles_alone(
    hass: HomeAssistant, simulator: PlexSimulator, dirs: dict[str, Path]
) -> None:
    """An unrelated config entry (without this entry's subentries) is updated: no profile is
    taken for removed, the queue and its transfers stay."""
    entry = await setup_entry(hass, simulator, dirs)
    sid = subentry_id(entry)
    (dirs["movies"] / "One (2001)").mkdir()
    (dirs["movies"] / "One (2001)" / "One (2001).mkv").write_bytes(_bytes(1000, "One"))
    await hass.services.async_call(DOMAIN, "pause_transfers", {}, blocking=True)
    await hass.services.async_call(DOMAIN, "scan_sources", {}, blocking=True)
    [transfer_id] = (await sync_media(hass, title="One"))["transfer_ids"]
    other = MockConfigEntry(domain="other_integration", title="Other")
    other.add_to_hass(hass)
    hass.config_entries.async_update_entry(other, title="Other, renamed")
    await hass.async_block_till_done()
    assert list(manager(entry).profiles) == [sid]
    assert [i.id for i in await manager(entry).queue(sid).items()] == [transfer_id]
    assert state(hass, "sensor.laptop_queue").state != "unavailable"
