"""The transfer queue on real files and a real database (SQLite; PostgreSQL where marked)."""

# ruff: noqa: ASYNC240, S603, S607  (temp files read directly; mount/umount with fixed args)

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import hashlib
import itertools
import logging
import os
from pathlib import Path
import shutil
import subprocess
import threading
from typing import Any
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from custom_components.plexus.transfer import local as local_mod, queue as queue_mod
from custom_components.plexus.transfer.copier import BuiltinCopier, CopyResult, RsyncCopier
from custom_components.plexus.transfer.errors import (
    CopierError,
    DiskFullError,
    PathEscapeError,
    PathNotAllowedError,
    SourceMissingError,
    TransferError,
    TransferNotFoundError,
)
from custom_components.plexus.transfer.models import (
    ProfileOptions,
    SyncStatus,
    TransferEvent,
    TransferItem,
    TransferRequest,
    TransferState,
)
from custom_components.plexus.transfer.paths import partial_path
from custom_components.plexus.transfer.queue import TransferQueue
from custom_components.plexus.transfer.store import TransferStore
from tests.conftest import PG_URL

MiB = 1024 * 1024
SIZE = 8 * MiB


async def run_sync[T](func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TransferStore]:
    if request.param == "postgresql":
        request.getfixturevalue("socket_enabled")
        st = TransferStore(PG_URL, schema=f"plexus_transfer_{uuid.uuid4().hex[:12]}")
    else:
        st = TransferStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        yield st
    finally:
        if request.param == "postgresql":
            st.drop_all()
        st.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[TransferStore]:
    st = TransferStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield st
    st.close()


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share" / "Movies"
    root.mkdir(parents=True)
    (root / "Movie (2010).mkv").write_bytes(os.urandom(SIZE))
    return root


@pytest.fixture
def dest_root(tmp_path: Path) -> Path:
    root = tmp_path / "local"
    root.mkdir()
    return root


class Recorder:
    """Collects events and disk-full reports."""

    def __init__(self) -> None:
        self.events: list[TransferEvent] = []
        self.disk_full: list[tuple[DiskFullError, TransferItem]] = []

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def on_disk_full(self, err: DiskFullError, item: TransferItem) -> None:
        self.disk_full.append((err, item))


class Counting:
    """A copier wrapper that records every result (bytes written per run)."""

    def __init__(self, inner: BuiltinCopier | RsyncCopier, hook: Any = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.description = inner.description
        self.results: list[CopyResult] = []
        self.hook = hook
        self.calls = 0

    async def copy(self, source: str, destination: str, **kwargs: Any) -> CopyResult:
        self.calls += 1
        if self.hook is not None:
            outer = kwargs.get("progress")

            def progress(done: int, total: int) -> None:
                self.hook(self.calls, done)
                if outer is not None:
                    outer(done, total)

            kwargs["progress"] = progress
        result = await self.inner.copy(source, destination, **kwargs)
        self.results.append(result)
        return result


def make_queue(
    store: TransferStore,
    dest_root: Path,
    copier: Any,
    rec: Recorder,
    **options: Any,
) -> TransferQueue:
    opts: dict[str, Any] = {
        "destination_roots": (str(dest_root),),
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
    }
    opts.update(options)
    return TransferQueue(
        store,
        "profile-1",
        copier=copier,
        run_sync=run_sync,
        options=ProfileOptions(**opts),
        on_event=rec.events.append,
        on_disk_full=rec.on_disk_full,
        restart_delay=0.05,
    )


def request(share: Path, dest_root: Path, name: str = "Movie (2010).mkv") -> TransferRequest:
    return TransferRequest(
        str(share / name), str(dest_root / "Movies" / "Movie (2010)" / name), "Movie (2010)"
    )


@pytest.fixture
async def running() -> AsyncIterator[list[TransferQueue]]:
    queues: list[TransferQueue] = []
    yield queues
    for q in queues:
        await q.stop()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["rsync", "builtin"])
async def test_transfer_done_with_events_sha_and_sync_status(
    kind: str, store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    copier = RsyncCopier() if kind == "rsync" else BuiltinCopier()
    q = make_queue(store, dest_root, copier, rec)
    running.append(q)
    await q.start()
    req = request(share, dest_root)
    assert (await q.sync_status([req.source]))[req.source] == SyncStatus.NOT_SYNCED
    item = await q.enqueue(req)
    await asyncio.wait_for(q.wait_idle(), 30)

    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert done.sha256 == sha(Path(req.source))
    assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()
    assert rec.kinds()[0] == "queued"
    assert rec.kinds()[1] == "started"
    assert rec.kinds()[-1] == "finished"
    finished = rec.events[-1]
    assert (finished.profile, finished.size, finished.sha256) == ("profile-1", SIZE, done.sha256)
    assert finished.source == req.source
    assert finished.destination == req.destination
    assert q.copier_name == kind
    assert (await q.sync_status([req.source]))[req.source] == SyncStatus.SYNCED

    # Asked again (an automation re-running, the demo's second start): the synced copy is the
    # answer, nothing is queued or copied again.
    events_before = len(rec.events)
    same = await q.enqueue(req)
    assert (same.id, same.state) == (item.id, TransferState.DONE)
    assert len(rec.events) == events_before
    assert len(await q.items()) == 1

    # The share away (unmounted): the copy is still the synced one, not "changed at source".
    away = Path(req.source).with_name("away.mkv")
    Path(req.source).rename(away)
    assert (await q.sync_status([req.source]))[req.source] == SyncStatus.SYNCED
    away.rename(req.source)

    st = Path(req.source).stat()
    os.utime(req.source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert (await q.sync_status([req.source]))[req.source] == SyncStatus.CHANGED_AT_SOURCE

    again = await q.enqueue(req)  # a second copy of the same destination is a new transfer
    assert again.id != item.id


async def test_same_destination_while_active_is_not_queued_twice(
    sqlite_store: TransferStore, share: Path, dest_root: Path
) -> None:
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    first = await q.enqueue(request(share, dest_root))
    second = await q.enqueue(request(share, dest_root))
    assert first.id == second.id
    assert len(await q.items()) == 1


async def test_progress_events_at_most_once_a_second(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec, bandwidth_limit=3 * MiB)
    running.append(q)
    await q.start()
    times: list[float] = []
    loop = asyncio.get_running_loop()

    def record(event: TransferEvent) -> None:
        rec.events.append(event)
        times.append(loop.time())

    q._on_event = record
    item = await q.enqueue(request(share, dest_root))
    await asyncio.sleep(1.5)
    current = q.current[item.id]
    assert 0 < current.bytes_done < SIZE
    assert 0 < current.percent < 100
    await asyncio.wait_for(q.wait_idle(), 30)
    progress = [t for t, e in zip(times, rec.events, strict=True) if e.kind == "progress"]
    assert len(progress) >= 2
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(progress))
    last = next(e for e in reversed(rec.events) if e.kind == "progress")
    assert last.speed is not None
    assert last.speed > 0
    assert last.eta is not None


async def test_queue_and_partial_survive_a_restart(
    store: TransferStore, share: Path, dest_root: Path, tmp_path: Path
) -> None:
    """HA stops mid-transfer; a NEW queue on a NEW store object resumes from the partial."""
    req = request(share, dest_root)
    q1 = make_queue(store, dest_root, BuiltinCopier(), Recorder(), bandwidth_limit=2 * MiB)
    await q1.start()
    item = await q1.enqueue(req)
    part = partial_path(req.destination)
    await asyncio.wait_for(_grown(part, 2 * MiB), 20)
    await q1.stop()
    stopped = await q1.get(item.id)
    assert stopped.state == TransferState.QUEUED
    kept = part.stat().st_size
    assert kept >= 2 * MiB
    assert (await q1.sync_status([req.source]))[req.source] == SyncStatus.PARTIAL

    store2 = (
        TransferStore(store.engine.url, schema=store.schema)
        if store.schema
        else TransferStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    )
    try:
        counting = Counting(BuiltinCopier())
        q2 = make_queue(store2, dest_root, counting, Recorder())
        await q2.start()
        await asyncio.wait_for(q2.wait_idle(), 30)
        await q2.stop()
        assert (await q2.get(item.id)).state == TransferState.DONE
        result = counting.results[0]
        assert result.resumed_from == kept
        assert kept + result.bytes_written - SIZE <= MiB
        assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()
    finally:
        store2.close()


async def test_a_crash_leaves_running_and_start_resumes_it(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    req = request(share, dest_root)
    q1 = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder(), bandwidth_limit=2 * MiB)
    await q1.start()
    item = await q1.enqueue(req)
    await asyncio.wait_for(_grown(partial_path(req.destination), MiB), 20)
    await q1.stop()
    # What a killed HA leaves behind: the row still says running.
    sqlite_store.update_transfer(item.id, state=TransferState.RUNNING)

    q2 = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    running.append(q2)
    await q2.start()
    await asyncio.wait_for(q2.wait_idle(), 30)
    assert (await q2.get(item.id)).state == TransferState.DONE
    assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()


async def _grown(path: Path, size: int) -> None:
    while not path.exists() or path.stat().st_size < size:
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["rsync", "builtin"])
async def test_source_share_vanishes_mid_transfer_and_comes_back(
    kind: str,
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
) -> None:
    rec = Recorder()
    copier = RsyncCopier() if kind == "rsync" else BuiltinCopier()
    q = make_queue(sqlite_store, dest_root, copier, rec, bandwidth_limit=4 * MiB, source_poll=0.5)
    running.append(q)
    await q.start()
    req = request(share, dest_root)
    item = await q.enqueue(req)
    await asyncio.wait_for(_grown(partial_path(req.destination), MiB), 20)
    away = share.with_name("away")
    share.rename(away)  # the share is unmounted
    await asyncio.wait_for(_until(lambda: "retrying" in rec.kinds()), 20)
    await asyncio.sleep(2.5)  # several polls find nothing
    assert (await q.get(item.id)).state == TransferState.RUNNING
    loop = asyncio.get_running_loop()
    away.rename(share)  # it is back
    back = loop.time()
    await asyncio.wait_for(q.wait_idle(), 30)
    assert loop.time() - back < 10
    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert done.attempts >= 1
    assert "source is not available" in (
        next(e for e in rec.events if e.kind == "retrying").error or ""
    )
    assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()


async def test_source_missing_at_start_waits_and_resumes_within_10s(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec)
    running.append(q)
    req = request(share, dest_root)
    item = await q.enqueue(req)  # queued while the share is there
    away = share.with_name("away")
    share.rename(away)
    await q.start()
    await asyncio.wait_for(_until(lambda: "retrying" in rec.kinds()), 20)
    await asyncio.sleep(3)
    loop = asyncio.get_running_loop()
    away.rename(share)
    back = loop.time()
    await asyncio.wait_for(q.wait_idle(), 30)
    assert loop.time() - back < 10
    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert done.attempts == 1  # waiting for the share did not use up retries


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.02)


def _touch(path: str) -> None:
    st = Path(path).stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


async def test_verification_mismatch_retries_once_then_fails_clearly(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    req = request(share, dest_root)
    touched: set[int] = set()

    def mutate(call: int, done: int) -> None:
        if call not in touched and done >= MiB:  # the source changes under every attempt
            touched.add(call)
            _touch(req.source)

    rec = Recorder()
    counting = Counting(BuiltinCopier(chunk_size=256 * 1024), hook=mutate)
    q = make_queue(sqlite_store, dest_root, counting, rec, bandwidth_limit=16 * MiB)
    running.append(q)
    await q.start()
    item = await q.enqueue(req)
    await asyncio.wait_for(q.wait_idle(), 30)
    failed = await q.get(item.id)
    assert failed.state == TransferState.FAILED
    assert failed.verify_failures == 2
    assert failed.error is not None
    assert failed.error.startswith("verification failed twice")
    assert "source changed during the copy" in failed.error
    assert counting.calls == 2
    assert rec.kinds().count("retrying") == 1
    assert rec.kinds()[-1] == "failed"
    assert rec.events[-1].error == failed.error
    assert not Path(req.destination).exists()
    assert not partial_path(req.destination).exists()


async def test_one_verification_mismatch_then_success(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    req = request(share, dest_root)

    def mutate_first(call: int, done: int) -> None:
        if call == 1 and done >= MiB:
            _touch(req.source)

    counting = Counting(BuiltinCopier(chunk_size=256 * 1024), hook=mutate_first)
    q = make_queue(sqlite_store, dest_root, counting, Recorder(), bandwidth_limit=16 * MiB)
    running.append(q)
    await q.start()
    item = await q.enqueue(req)
    await asyncio.wait_for(q.wait_idle(), 30)
    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert done.verify_failures == 1
    assert counting.results[-1].resumed_from == 0  # from scratch
    assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_disk_full_before_start_pauses_with_needed_bytes(
    sqlite_store: TransferStore, share: Path, small_fs: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, small_fs, BuiltinCopier(), rec, free_space_reserve=MiB)
    running.append(q)
    await q.start()
    req = TransferRequest(str(share / "Movie (2010).mkv"), str(small_fs / "Movie.mkv"), "Movie")
    item = await q.enqueue(req)
    await asyncio.wait_for(_until(lambda: bool(rec.disk_full)), 20)
    err, reported = rec.disk_full[0]
    assert err.needed_bytes == SIZE + MiB
    assert err.free_bytes is not None
    assert err.free_bytes <= 2 * MiB
    assert reported.id == item.id
    paused = await q.get(item.id)
    assert paused.state == TransferState.PAUSED
    assert "bytes needed" in (paused.error or "")
    assert "paused" in rec.kinds()
    assert "finished" not in rec.kinds()
    assert not Path(req.destination).exists()


@pytest.mark.parametrize("kind", ["rsync", "builtin"])
async def test_enospc_during_copy_pauses_and_keeps_partial(  # noqa: PLR0917
    kind: str,
    sqlite_store: TransferStore,
    share: Path,
    small_fs: Path,
    running: list[TransferQueue],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_mod, "free_bytes", lambda folder: 10**12)  # the pre-check is fooled
    rec = Recorder()
    copier = RsyncCopier() if kind == "rsync" else BuiltinCopier()
    q = make_queue(sqlite_store, small_fs, copier, rec)
    running.append(q)
    await q.start()
    req = TransferRequest(str(share / "Movie (2010).mkv"), str(small_fs / "Movie.mkv"), "Movie")
    item = await q.enqueue(req)
    await asyncio.wait_for(_until(lambda: bool(rec.disk_full)), 20)
    err, _ = rec.disk_full[0]
    part = partial_path(req.destination)
    assert part.exists()
    assert part.stat().st_size > 0
    assert err.needed_bytes == SIZE - part.stat().st_size
    paused = await q.get(item.id)
    assert paused.state == TransferState.PAUSED
    assert paused.bytes_done == part.stat().st_size
    assert paused.sha256 is None
    assert not Path(req.destination).exists()
    assert "finished" not in rec.kinds()


async def test_destination_not_allowed_is_refused_naming_the_path(
    sqlite_store: TransferStore, share: Path, dest_root: Path
) -> None:
    q = TransferQueue(
        sqlite_store,
        "p",
        copier=BuiltinCopier(),
        run_sync=run_sync,
        options=ProfileOptions(destination_roots=(str(dest_root),)),
        is_allowed=lambda path: False,
    )
    req = request(share, dest_root)
    with pytest.raises(PathNotAllowedError) as caught:
        await q.enqueue(req)
    assert caught.value.path == req.destination
    assert await q.items() == []


async def test_destination_outside_the_roots_is_refused(
    sqlite_store: TransferStore, share: Path, dest_root: Path, tmp_path: Path
) -> None:
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    for outside in (tmp_path / "elsewhere.mkv", dest_root / ".." / "escape.mkv"):
        with pytest.raises(PathEscapeError):
            await q.enqueue(TransferRequest(str(share / "Movie (2010).mkv"), str(outside), "x"))
    link = dest_root / "Movies"
    link.symlink_to(tmp_path)
    with pytest.raises(PathEscapeError):
        await q.enqueue(request(share, dest_root))
    assert await q.items() == []


async def test_bad_input(sqlite_store: TransferStore, share: Path, dest_root: Path) -> None:
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    with pytest.raises(SourceMissingError, match=r"nope\.mkv"):
        await q.enqueue(request(share, dest_root, "nope.mkv"))
    with pytest.raises(SourceMissingError, match="not a file"):
        await q.enqueue(TransferRequest(str(share), str(dest_root / "x.mkv"), "a folder"))
    with pytest.raises(TransferNotFoundError, match="no transfer 999"):
        await q.get(999)
    with pytest.raises(TransferNotFoundError):
        await q.cancel(999)
    with pytest.raises(TransferError, match="not a file this profile copied"):
        await q.remove_local_copy(str(dest_root / "x.mkv"))
    with pytest.raises(ValueError, match="destination root"):
        make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder(), destination_roots=())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verify": "md5"}, "verify must be"),
        ({"bandwidth_limit": 0}, "bandwidth_limit"),
        ({"retries": -1}, "retries"),
        ({"backoff_base": 2, "backoff_cap": 120}, "backoff"),
        ({"backoff_base": 0}, "backoff"),
        ({"concurrency": 0}, "concurrency"),
        ({"free_space_reserve": -1}, "free_space_reserve"),
        ({"source_poll": 5}, "source_poll"),
    ],
)
def test_bad_profile_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProfileOptions(**options)


def test_backoff_doubles_and_is_capped() -> None:
    opts = ProfileOptions(backoff_base=2, backoff_cap=60)
    assert [opts.backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]


class Flaky:
    """A copier that fails ``failures`` times, then copies."""

    name = "flaky"
    description = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inner = BuiltinCopier()

    async def copy(self, source: str, destination: str, **kwargs: Any) -> CopyResult:
        if self.failures:
            self.failures -= 1
            raise CopierError("rsync failed (exit 12: error in the rsync protocol data stream)")
        return await self.inner.copy(source, destination, **kwargs)


async def test_copier_errors_retry_with_backoff_then_succeed(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, Flaky(2), rec, retries=3)
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    await asyncio.wait_for(q.wait_idle(), 30)
    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert done.attempts == 2
    assert rec.kinds().count("retrying") == 2


async def test_retries_exhausted_fail_clearly(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, Flaky(10), rec, retries=2)
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    await asyncio.wait_for(q.wait_idle(), 30)
    failed = await q.get(item.id)
    assert failed.state == TransferState.FAILED
    assert failed.error == (
        "gave up after 3 attempts: rsync failed (exit 12: error in the rsync protocol data stream)"
    )
    assert rec.kinds()[-1] == "failed"


async def test_cancel_deletes_a_partial_only_inside_the_roots(
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A queued transfer whose destination is no longer under the profile's roots (the roots were
    edited after it was queued): cancelling it cancels the row but leaves the file at its old
    destination alone, with a warning, as removing the profile does."""
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec)
    req = request(share, dest_root)
    item = await q.enqueue(req)
    part = partial_path(req.destination)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half a movie")
    elsewhere = tmp_path / "new-root"
    elsewhere.mkdir()
    q.update_options(ProfileOptions(destination_roots=(str(elsewhere),)))
    with caplog.at_level(logging.WARNING):
        cancelled = await q.cancel(item.id)
    assert cancelled.state == TransferState.CANCELLED
    assert part.read_bytes() == b"half a movie"
    assert f"Partial file of transfer {item.id} left in place" in caplog.text
    assert rec.kinds()[-1] == "cancelled"

    # inside the roots it is deleted
    q.update_options(ProfileOptions(destination_roots=(str(dest_root),)))
    (share / "Other (2011).mkv").write_bytes(b"x" * 1000)
    again = await q.enqueue(request(share, dest_root, "Other (2011).mkv"))
    other_part = partial_path(again.destination)
    other_part.parent.mkdir(parents=True, exist_ok=True)
    other_part.write_bytes(b"x")
    assert (await q.cancel(again.id)).state == TransferState.CANCELLED
    assert not other_part.exists()


async def test_cancel_running_removes_partial(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec, bandwidth_limit=2 * MiB)
    running.append(q)
    await q.start()
    req = request(share, dest_root)
    item = await q.enqueue(req)
    await asyncio.wait_for(_grown(partial_path(req.destination), MiB), 20)
    cancelled = await q.cancel(item.id)
    assert cancelled.state == TransferState.CANCELLED
    assert not partial_path(req.destination).exists()
    assert rec.kinds()[-1] == "cancelled"
    # The worker goes on with the next item.
    other = share / "Other (2011).mkv"
    other.write_bytes(b"x" * 1000)
    nxt = await q.enqueue(request(share, dest_root, "Other (2011).mkv"))
    q.update_options(ProfileOptions(destination_roots=(str(dest_root),)))
    await asyncio.wait_for(q.wait_idle(), 30)
    assert (await q.get(nxt.id)).state == TransferState.DONE
    retried = await q.retry(item.id)
    # Queued again; the idle worker may already have taken it by the time retry() returns.
    assert retried.state in (TransferState.QUEUED, TransferState.RUNNING)
    await asyncio.wait_for(q.wait_idle(), 30)
    assert (await q.get(item.id)).state == TransferState.DONE


async def test_pause_and_resume_keep_the_partial(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    rec = Recorder()
    counting = Counting(BuiltinCopier())
    q = make_queue(sqlite_store, dest_root, counting, rec, bandwidth_limit=2 * MiB)
    running.append(q)
    await q.start()
    req = request(share, dest_root)
    item = await q.enqueue(req)
    part = partial_path(req.destination)
    await asyncio.wait_for(_grown(part, MiB), 20)
    await q.pause()
    assert q.paused
    paused = await q.get(item.id)
    assert paused.state == TransferState.PAUSED
    kept = part.stat().st_size
    queued_while_paused = await q.enqueue(request(share, dest_root, "Movie (2010).mkv"))
    assert queued_while_paused.id == item.id
    await asyncio.sleep(0.3)
    assert part.stat().st_size == kept  # nothing runs while paused
    q.update_options(ProfileOptions(destination_roots=(str(dest_root),)))
    await q.resume()
    await asyncio.wait_for(q.wait_idle(), 30)
    assert (await q.get(item.id)).state == TransferState.DONE
    assert counting.results[-1].resumed_from == kept
    assert Path(req.destination).read_bytes() == Path(req.source).read_bytes()


async def test_remove_local_copy_only_deletes_what_the_profile_copied(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    running.append(q)
    await q.start()
    req = request(share, dest_root)
    await q.enqueue(req)
    await asyncio.wait_for(q.wait_idle(), 30)
    stranger = dest_root / "Movies" / "mine.mkv"
    stranger.write_bytes(b"not copied by plexus")
    with pytest.raises(TransferError, match="not a file this profile copied"):
        await q.remove_local_copy(str(stranger))
    assert stranger.exists()
    removed = await q.remove_local_copy(req.destination)
    assert removed.destination == req.destination
    assert not Path(req.destination).exists()
    assert (await q.sync_status([req.source]))[req.source] == SyncStatus.NOT_SYNCED


class BrokenOnce:
    """A store whose claim_next fails once (a database hiccup)."""

    def __init__(self, store: TransferStore) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim_next(self, profile: str) -> TransferItem | None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("database is locked")
        return self._store.claim_next(profile)


async def test_worker_is_supervised_logs_once_and_recovers(
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BrokenOnce(sqlite_store)
    q = make_queue(broken, dest_root, BuiltinCopier(), Recorder())  # type: ignore[arg-type]
    running.append(q)
    with caplog.at_level(logging.INFO, logger="custom_components.plexus.transfer.queue"):
        await q.start()
        item = await q.enqueue(request(share, dest_root))
        await asyncio.wait_for(q.wait_idle(), 30)
    assert broken.failed
    assert (await q.get(item.id)).state == TransferState.DONE
    crashes = [r for r in caplog.records if "failed; restarting" in r.getMessage()]
    assert len(crashes) == 1
    assert crashes[0].exc_info is not None
    assert sum("recovered" in r.getMessage() for r in caplog.records) == 1


async def test_a_failing_event_callback_does_not_stop_transfers(
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(event: TransferEvent) -> None:
        raise RuntimeError("callback broke")

    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder())
    q._on_event = boom
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    await asyncio.wait_for(q.wait_idle(), 30)
    assert (await q.get(item.id)).state == TransferState.DONE
    assert caplog.text.count("The transfer event callback failed") == 1


async def test_concurrency_runs_two_at_once(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    (share / "Other (2011).mkv").write_bytes(os.urandom(SIZE))
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), Recorder(), concurrency=2,
                   bandwidth_limit=4 * MiB)  # fmt: skip
    running.append(q)
    await q.start()
    await q.enqueue(request(share, dest_root))
    await q.enqueue(request(share, dest_root, "Other (2011).mkv"))
    await asyncio.wait_for(_until(lambda: len(q.current) == 2), 20)
    await asyncio.wait_for(q.wait_idle(), 30)
    assert [i.state for i in await q.items()] == [TransferState.DONE, TransferState.DONE]


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    st = TransferStore(url)
    assert st.schema_version == 1
    from custom_components.plexus.transfer import schema as s

    with st.engine.begin() as conn:
        conn.execute(s.schema_version.insert().values(version=99, applied_at=s_now()))
    st.close()
    from custom_components.plexus.transfer.store import TransferSchemaError

    with pytest.raises(TransferSchemaError, match="newer than this code"):
        TransferStore(url)


def test_store_migrates_an_older_schema_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database from the previous release is migrated on open: its queued row is kept, the
    new column is there and the version is recorded (one INFO line says so)."""
    from sqlalchemy import inspect, text

    from custom_components.plexus.transfer import schema as s

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = TransferStore(url)
    old.add_transfer("p", request(tmp_path, tmp_path / "dest"), 10, 1)
    old.close()

    def add_column(conn: Any) -> None:
        conn.execute(text(f"ALTER TABLE {s.queue.name} ADD COLUMN note TEXT"))

    monkeypatch.setattr(s, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(s, "MIGRATIONS", {1: add_column})
    with caplog.at_level(logging.INFO):
        st = TransferStore(url)
    assert st.schema_version == 2
    with st.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns(s.queue.name)}
    assert "note" in columns
    assert len(st.items("p")) == 1
    assert "Migrating the transfer tables from schema version 1" in caplog.text
    st.close()


def test_store_refuses_a_schema_it_has_no_migration_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No migration step from the database's version: a clear error, the database untouched."""
    from custom_components.plexus.transfer import schema as s
    from custom_components.plexus.transfer.store import TransferSchemaError

    url = f"sqlite:///{tmp_path / 'old.db'}"
    TransferStore(url).close()
    monkeypatch.setattr(s, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(s, "MIGRATIONS", {})
    with pytest.raises(TransferSchemaError, match="no migration from transfer schema version 1"):
        TransferStore(url)
    monkeypatch.undo()
    st = TransferStore(url)
    assert st.schema_version == 1
    st.close()


def test_drop_all_on_sqlite_removes_the_tables(tmp_path: Path) -> None:
    """Removing the integration's transfer data on SQLite drops the tables; a new store starts
    empty at the current version."""
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'gone.db'}"
    st = TransferStore(url)
    st.add_transfer("p", request(tmp_path, tmp_path / "dest"), 10, 1)
    st.drop_all()
    with st.engine.connect() as conn:
        assert not [t for t in inspect(conn).get_table_names() if t.startswith("plexus_transfer")]
    st.close()
    again = TransferStore(url)
    assert again.schema_version == 1
    assert again.items("p") == []
    again.close()


def test_an_in_memory_store_creates_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sqlite:///:memory:` works and leaves nothing on disk."""
    monkeypatch.chdir(tmp_path)
    st = TransferStore("sqlite:///:memory:")
    st.add_transfer("p", request(tmp_path, tmp_path / "dest"), 10, 1)
    assert len(st.items("p")) == 1
    st.close()
    assert list(tmp_path.iterdir()) == []


def s_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_shutil_is_real() -> None:
    assert shutil.which("rsync"), "rsync is installed on the test machines"


class UpdateFailsOnce:
    """A store whose first size/mtime update fails (a database hiccup mid-transfer)."""

    def __init__(self, store: TransferStore) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def update_transfer(self, item_id: int, **values: Any) -> bool:
        if not self.failed and "source_mtime_ns" in values:
            self.failed = True
            raise RuntimeError("connection reset")
        return self._store.update_transfer(item_id, **values)


async def test_a_crash_inside_a_transfer_requeues_it_and_the_worker_restarts(
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = UpdateFailsOnce(sqlite_store)
    q = make_queue(flaky, dest_root, BuiltinCopier(), Recorder())  # type: ignore[arg-type]
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    await asyncio.wait_for(q.wait_idle(), 30)
    assert flaky.failed
    done = await q.get(item.id)
    assert done.state == TransferState.DONE
    assert caplog.text.count("failed; restarting") == 1


@pytest.mark.parametrize("kind", ["rsync", "builtin"])
async def test_forget_stops_the_copy_and_deletes_rows_and_partials(
    kind: str,
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
) -> None:
    """A removed profile: the running copy stops (rsync killed), its partial and every row go;
    finished copies stay; another profile's rows are untouched; the queue never starts again."""
    (share / "Small (2001).mkv").write_bytes(os.urandom(64 * 1024))
    rec = Recorder()
    copier = RsyncCopier() if kind == "rsync" else BuiltinCopier()
    q = make_queue(sqlite_store, dest_root, copier, rec, bandwidth_limit=2 * MiB)
    running.append(q)
    await q.start()
    small = await q.enqueue(
        TransferRequest(
            str(share / "Small (2001).mkv"),
            str(dest_root / "Small (2001)" / "Small (2001).mkv"),
            "Small (2001)",
        )
    )
    await asyncio.wait_for(q.wait_idle(), 20)
    assert (await q.get(small.id)).state == TransferState.DONE
    req = request(share, dest_root)
    await q.enqueue(req)
    part = partial_path(req.destination)
    await asyncio.wait_for(_grown(part, MiB), 20)
    other = sqlite_store.add_transfer(
        "profile-2", TransferRequest(req.source, req.destination, "x"), SIZE, 0
    )[0]

    assert await q.forget() == 2

    assert not part.exists()
    assert Path(small.destination).exists()
    assert sqlite_store.items("profile-1") == []
    assert [i.id for i in sqlite_store.items("profile-2")] == [other.id]
    if isinstance(copier, RsyncCopier):
        assert not copier.pids
    assert q.forgotten
    await q.start()
    assert not q._workers


async def test_start_reports_a_transfer_still_paused_for_space(
    sqlite_store: TransferStore, share: Path, dest_root: Path, running: list[TransferQueue]
) -> None:
    """After a restart, a transfer a full disk paused is reported again (Repairs), with what it
    needs now; one the user paused is not."""
    req = request(share, dest_root)
    full, _ = sqlite_store.add_transfer("profile-1", req, SIZE, 0)
    sqlite_store.update_transfer(
        full.id, state=TransferState.PAUSED, error=str(DiskFullError(SIZE, 10, dest_root))
    )
    mine, _ = sqlite_store.add_transfer(
        "profile-1", TransferRequest(req.source, req.destination + ".2.mkv", "other"), SIZE, 0
    )
    sqlite_store.update_transfer(mine.id, state=TransferState.PAUSED, error="source gone")
    rec = Recorder()
    q = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec, free_space_reserve=MiB)
    running.append(q)
    await q.start()
    [(err, item)] = rec.disk_full
    assert item.id == full.id
    assert err.needed_bytes == SIZE + MiB  # nothing copied yet, plus the reserve
    assert err.free_bytes is not None
    assert err.free_bytes > 0
    assert (await q.get(full.id)).state == TransferState.PAUSED  # it waits for Resume

    await q.stop()
    await q.resume()  # resuming clears the mark: a later start reports nothing
    assert sqlite_store.get(full.id).error is None
    rec2 = Recorder()
    q2 = make_queue(sqlite_store, dest_root, BuiltinCopier(), rec2)
    running.append(q2)
    await q2.pause()
    await q2.start()
    assert rec2.disk_full == []


def test_a_schema_on_sqlite_is_refused(tmp_path: Path) -> None:
    """Schemas keep PostgreSQL test runs apart; SQLite has none, so asking for one is an error
    rather than tables silently put elsewhere."""
    with pytest.raises(TransferError, match="not supported on SQLite"):
        TransferStore(f"sqlite:///{tmp_path / 'catalog.db'}", schema="elsewhere")


# -- the database away while a copy runs or finishes ----------------------------------------------


def _db_down() -> OperationalError:
    return OperationalError(
        "UPDATE plexus_transfer_queue", {}, Exception("server closed the connection")
    )


class DoneOutage:
    """A store that goes away when a finished copy is recorded, for the next `writes` writes."""

    def __init__(self, store: TransferStore, writes: int) -> None:
        self._store = store
        self.left = 0
        self.writes = writes
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def update_transfer(self, item_id: int, **values: Any) -> bool:
        if values.get("state") == TransferState.DONE and not self.refused:
            self.left = self.writes
        if self.left:
            self.left -= 1
            self.refused += 1
            raise _db_down()
        return self._store.update_transfer(item_id, **values)


async def test_a_finished_copy_is_recorded_done_once_the_database_is_back(
    sqlite_store: TransferStore,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database refuses every write (OperationalError, as a restarted PostgreSQL does) from
    the moment a finished copy is recorded, for three writes. Before: the `done` write and the
    fallback re-queue both failed and the transfer stayed `running` for good (until Home Assistant
    restarted). Now: one warning, the same copy recorded `done` when the database is back, no
    second copy."""
    outage = DoneOutage(sqlite_store, writes=3)
    counting = Counting(BuiltinCopier())
    rec = Recorder()
    q = make_queue(outage, dest_root, counting, rec)  # type: ignore[arg-type]
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    async with asyncio.timeout(60):
        while (await q.get(item.id)).state != TransferState.DONE:
            await asyncio.sleep(0.1)
    assert outage.refused == 3
    assert counting.calls == 1
    done = await q.get(item.id)
    assert done.sha256 == sha(Path(item.destination))
    assert rec.kinds().count("finished") == 1
    warnings = [r for r in caplog.records if "cannot be recorded yet" in r.getMessage()]
    assert len(warnings) == 1
    assert "UPDATE" not in warnings[0].getMessage()
    assert sum("recorded as done" in r.getMessage() for r in caplog.records) == 1
    assert "failed; restarting" not in caplog.text


class ProgressOutage:
    """A store that refuses the first progress (bytes done) write (the database restarting)."""

    def __init__(self, store: TransferStore) -> None:
        self._store = store
        self.refused = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def update_transfer(self, item_id: int, **values: Any) -> bool:
        if set(values) == {"bytes_done"} and not self.refused.is_set():
            self.refused.set()
            raise _db_down()
        return self._store.update_transfer(item_id, **values)


class HeldCopier:
    """The built-in copier, held until released after reporting some progress."""

    def __init__(self) -> None:
        self.inner = BuiltinCopier()
        self.name = self.inner.name
        self.description = self.inner.description
        self.release = asyncio.Event()
        self.calls = 0

    async def copy(self, source: str, destination: str, **kwargs: Any) -> CopyResult:
        self.calls += 1
        kwargs["progress"](1, SIZE)
        await self.release.wait()
        return await self.inner.copy(source, destination, **kwargs)


async def test_a_progress_write_refused_mid_copy_does_not_cost_the_copy(
    sqlite_store: TransferStore,
    *,
    share: Path,
    dest_root: Path,
    running: list[TransferQueue],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The periodic bytes-done write fails once (OperationalError) while a copy runs. Before: the
    progress reporter task died with the error, and when the copy finished that error replaced its
    result: the finished copy was thrown away, the worker crashed and copied it again. Now: one
    warning, the copy goes on and is recorded done after one copy."""
    monkeypatch.setattr(queue_mod, "_PERSIST_EVERY", 0.0)
    outage = ProgressOutage(sqlite_store)
    copier = HeldCopier()
    q = make_queue(outage, dest_root, copier, Recorder())  # type: ignore[arg-type]
    running.append(q)
    await q.start()
    item = await q.enqueue(request(share, dest_root))
    async with asyncio.timeout(60):
        while not outage.refused.is_set():
            await asyncio.sleep(0.1)
    copier.release.set()
    await asyncio.wait_for(q.wait_idle(), 60)
    assert (await q.get(item.id)).state == TransferState.DONE
    assert copier.calls == 1
    assert "failed; restarting" not in caplog.text
    warnings = [r for r in caplog.records if "not stored (the copy goes on)" in r.getMessage()]
    assert len(warnings) == 1
