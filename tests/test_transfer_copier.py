"""The copiers on real files: real rsync and the built-in copier, resume proven by byte counts."""

# ruff: noqa: ASYNC240, S603, S607  (temp files read directly; mount/umount with fixed args)

import asyncio
from collections.abc import Iterator
import errno
import fcntl
import hashlib
import logging
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
from typing import Any

import pytest

from custom_components.plexus.transfer import builtin_copier as builtin_mod
from custom_components.plexus.transfer.copier import (
    BuiltinCopier,
    CopyResult,
    RsyncCopier,
    copier_for,
)
from custom_components.plexus.transfer.copying import disk_full, hash_prefix, stat_source
from custom_components.plexus.transfer.errors import (
    CopierError,
    DiskFullError,
    SourceMissingError,
    VerificationError,
)
from custom_components.plexus.transfer.paths import partial_path

MiB = 1024 * 1024
SIZE = 8 * MiB
COPIERS = ["rsync", "builtin"]


def make(kind: str) -> RsyncCopier | BuiltinCopier:
    if kind == "rsync":
        rsync = shutil.which("rsync")
        assert rsync is not None, "rsync must be installed on the test machine"
        return RsyncCopier(rsync=rsync)
    return BuiltinCopier(chunk_size=256 * 1024)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "share" / "Movie (2010).mkv"
    path.parent.mkdir()
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "local" / "Movies" / "Movie (2010)" / "Movie (2010).mkv"


async def grown(path: Path, size: int) -> None:
    while not path.exists() or path.stat().st_size < size:
        await asyncio.sleep(0.02)


async def interrupt(kind: str, copier: RsyncCopier | BuiltinCopier, src: Path, dst: Path) -> int:
    """Start a slow copy, stop it mid-file (SIGKILL rsync / cancel the task): partial size."""
    task = asyncio.create_task(
        copier.copy(str(src), str(dst), verify="size", bandwidth_limit=2 * MiB)
    )
    await asyncio.wait_for(grown(partial_path(dst), 2 * MiB), 20)  # what is ON DISK
    if kind == "rsync":
        assert isinstance(copier, RsyncCopier)
        assert copier.pids, "rsync should be running"
        for pid in list(copier.pids):
            os.killpg(pid, signal.SIGKILL)  # rsync and the receiver it forked
        with pytest.raises(CopierError, match="killed by signal 9"):
            await task
    else:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    part = partial_path(dst)
    assert part.exists(), "the partial file is kept for resume"
    assert not dst.exists(), "nothing appears under the final name before the copy is complete"
    have = part.stat().st_size
    assert 0 < have < SIZE
    return have


@pytest.mark.parametrize("kind", COPIERS)
async def test_fresh_copy_is_bit_exact_and_hashed(kind: str, source: Path, dest: Path) -> None:
    seen: list[int] = []
    result = await make(kind).copy(
        str(source), str(dest), progress=lambda done, total: seen.append(done)
    )
    assert dest.read_bytes() == source.read_bytes()
    assert result.sha256 == sha(source)
    assert (result.size, result.resumed_from, result.bytes_written) == (SIZE, 0, SIZE)
    assert result.copier == kind
    assert not partial_path(dest).exists()
    assert seen
    assert seen[-1] == SIZE


@pytest.mark.parametrize("kind", COPIERS)
async def test_killed_mid_file_resumes_recopying_at_most_1mib(
    kind: str, source: Path, dest: Path
) -> None:
    copier = make(kind)
    first_run_bytes = await interrupt(kind, copier, source, dest)

    result = await copier.copy(str(source), str(dest), verify="sha256")

    # Bytes actually written by the second run: rsync's "Literal data" / the built-in counter.
    recopied = first_run_bytes + result.bytes_written - SIZE
    assert result.resumed_from == first_run_bytes
    assert recopied <= MiB
    assert dest.read_bytes() == source.read_bytes()
    assert result.sha256 == sha(source)


async def test_builtin_copier_process_killed_mid_file_resumes_recopying_at_most_1mib(
    source: Path, dest: Path
) -> None:
    """SIGKILL of a process copying with the built-in copier (as when HA dies): the partial on
    disk is good, and the next copy continues it, bit-exact."""
    root = Path(__file__).resolve().parents[1]
    script = (
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from custom_components.plexus.transfer.copier import BuiltinCopier\n"
        "asyncio.run(BuiltinCopier(chunk_size=256 * 1024).copy(\n"
        f"    {str(source)!r}, {str(dest)!r}, verify='size', bandwidth_limit=2 * 1024 * 1024))\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    try:
        await asyncio.wait_for(grown(partial_path(dest), 2 * MiB), 20)
    finally:
        proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    have = partial_path(dest).stat().st_size
    assert 0 < have < SIZE
    assert not dest.exists()

    result = await BuiltinCopier().copy(str(source), str(dest), verify="sha256")

    assert result.resumed_from > 0
    assert have + result.bytes_written - SIZE <= MiB
    assert dest.read_bytes() == source.read_bytes()
    assert result.sha256 == sha(source)


@pytest.mark.parametrize("kind", COPIERS)
async def test_resume_does_not_rewrite_the_prefix(kind: str, source: Path, dest: Path) -> None:
    """Resume appends: a byte changed early in the partial survives a size-verified copy."""
    copier = make(kind)
    have = await interrupt(kind, copier, source, dest)
    assert have > MiB + 200  # the flipped byte lies outside the tail the resume compares
    part = partial_path(dest)
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))

    result = await copier.copy(str(source), str(dest), verify="size")

    expected = bytearray(source.read_bytes())
    expected[100] ^= 0xFF
    assert dest.read_bytes() == bytes(expected)
    assert result.bytes_written == SIZE - have


@pytest.mark.parametrize("kind", COPIERS)
async def test_corrupted_partial_prefix_fails_sha256(kind: str, source: Path, dest: Path) -> None:
    copier = make(kind)
    await interrupt(kind, copier, source, dest)
    part = partial_path(dest)
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))

    with pytest.raises(VerificationError):
        await copier.copy(str(source), str(dest), verify="sha256")
    assert not dest.exists()


@pytest.mark.parametrize("kind", COPIERS)
async def test_partial_with_a_wrong_tail_starts_over(kind: str, source: Path, dest: Path) -> None:
    part = partial_path(dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * (3 * MiB))  # not the source's bytes
    result = await make(kind).copy(str(source), str(dest))
    assert result.resumed_from == 0
    assert dest.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("kind", COPIERS)
async def test_partial_longer_than_source_starts_over(kind: str, source: Path, dest: Path) -> None:
    part = partial_path(dest)
    part.parent.mkdir(parents=True)
    part.write_bytes(source.read_bytes() + b"extra")
    result = await make(kind).copy(str(source), str(dest), verify="size")
    assert result.resumed_from == 0
    assert dest.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("kind", COPIERS)
async def test_source_changed_during_copy_is_a_verification_error(
    kind: str, source: Path, dest: Path
) -> None:
    touched = False

    def progress(done: int, total: int) -> None:
        nonlocal touched
        if not touched and done >= MiB:
            touched = True
            st = source.stat()
            os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    with pytest.raises(VerificationError, match="source changed during the copy"):
        await make(kind).copy(str(source), str(dest), bandwidth_limit=8 * MiB, progress=progress)
    assert touched
    assert not dest.exists()


@pytest.mark.parametrize("kind", COPIERS)
async def test_missing_source(kind: str, tmp_path: Path, dest: Path) -> None:
    with pytest.raises(SourceMissingError, match=r"gone\.mkv"):
        await make(kind).copy(str(tmp_path / "gone.mkv"), str(dest))


@pytest.mark.parametrize("kind", COPIERS)
async def test_relative_paths_are_refused(kind: str, source: Path) -> None:
    with pytest.raises(ValueError, match="absolute paths"):
        await make(kind).copy(str(source), "relative/Movie.mkv")


@pytest.mark.parametrize("kind", COPIERS)
async def test_bad_verify_mode_is_refused(kind: str, source: Path, dest: Path) -> None:
    with pytest.raises(ValueError, match="verify must be"):
        await make(kind).copy(str(source), str(dest), verify="md5")  # type: ignore[arg-type]


def mount_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``mount`` (root only); skipped where mounting is not allowed."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs."""
    yield from mount_tmpfs(tmp_path / "small", "2m")


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="direct I/O is Linux's")
async def test_builtin_writes_buffered_on_a_virtual_filesystem(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmpfs (like NFS, SMB or FUSE: no disk behind its device number) keeps buffered writes."""
    for mount in mount_tmpfs(tmp_path / "virtual", "32m"):
        seen = record_writes(monkeypatch)
        dest = mount / "Movie (2010).mkv"
        result = await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
        assert result.sha256 == sha(source)
        assert dest.read_bytes() == source.read_bytes()
        assert seen == [False] * 8


@pytest.mark.parametrize("kind", COPIERS)
async def test_disk_full_on_a_real_small_filesystem(
    kind: str, source: Path, small_fs: Path
) -> None:
    dest = small_fs / "Movie (2010).mkv"
    with pytest.raises(DiskFullError) as caught:
        await make(kind).copy(str(source), str(dest))
    part = partial_path(dest)
    assert part.exists(), "the partial is kept for a resume"
    assert not dest.exists()
    assert caught.value.needed_bytes == SIZE - part.stat().st_size
    assert caught.value.needed_bytes > 0
    assert caught.value.free_bytes is not None


async def test_injected_enospc_is_disk_full(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = os.pwrite

    def fake(fd: int, data: memoryview, offset: int) -> int:
        nonlocal calls
        calls += 1
        if calls > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", fake)
    with pytest.raises(DiskFullError) as caught:
        await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest), verify="size")
    assert caught.value.needed_bytes == SIZE - 4 * MiB
    assert partial_path(dest).stat().st_size == 4 * MiB


async def test_builtin_bandwidth_limit_slows_the_copy(source: Path, dest: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await BuiltinCopier().copy(str(source), str(dest), bandwidth_limit=16 * MiB)
    assert loop.time() - started >= 0.4  # 8 MiB at 16 MiB/s: at least ~0.5 s
    assert dest.read_bytes() == source.read_bytes()


def record_writes(monkeypatch: pytest.MonkeyPatch, refuse_direct: bool = False) -> list[bool]:
    """Record, for each write, whether the file was open for direct I/O."""
    direct_flag = getattr(os, "O_DIRECT", 0)
    real = os.pwrite
    seen: list[bool] = []

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & direct_flag)
        seen.append(direct)
        if direct and refuse_direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return seen


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="direct I/O is Linux's")
async def test_builtin_writes_direct_and_the_unaligned_tail_buffered(
    tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole chunks bypass the page cache; the file's last, unaligned bytes go through it."""
    odd = tmp_path / "odd.mkv"
    odd.write_bytes(os.urandom(3 * MiB + 123))
    seen = record_writes(monkeypatch)
    result = await BuiltinCopier(chunk_size=MiB).copy(str(odd), str(dest))
    assert dest.read_bytes() == odd.read_bytes()
    assert result.sha256 == sha(odd)
    assert seen == [True, True, True, False]


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="direct I/O is Linux's")
async def test_builtin_falls_back_to_buffered_writes_where_direct_io_is_refused(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_writes(monkeypatch, refuse_direct=True)
    result = await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
    assert result.bytes_written == SIZE
    assert result.sha256 == sha(source)
    assert dest.read_bytes() == source.read_bytes()
    assert seen[0] is True  # tried once, refused
    assert seen[1:] == [False] * 8  # then every chunk buffered


async def test_builtin_resumes_an_unaligned_partial_from_the_4k_boundary_below(
    source: Path, dest: Path
) -> None:
    part = partial_path(dest)
    part.parent.mkdir(parents=True)
    have = 3 * MiB + 1000
    part.write_bytes(source.read_bytes()[:have])
    result = await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
    assert result.resumed_from == 3 * MiB
    assert result.bytes_written == SIZE - 3 * MiB
    assert dest.read_bytes() == source.read_bytes()
    assert result.sha256 == sha(source)


async def test_builtin_source_read_error_is_raised_and_keeps_the_partial(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read failing mid-file (the share dropping) stops the copy with a typed error."""
    real = os.preadv
    calls = 0

    def preadv(fd: int, buffers: list[memoryview], offset: int) -> int:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", preadv)
    with pytest.raises(SourceMissingError, match="not connected"):
        await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
    assert partial_path(dest).stat().st_size == 3 * MiB
    assert not dest.exists()
    monkeypatch.undo()
    result = await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
    assert result.resumed_from == 3 * MiB
    assert dest.read_bytes() == source.read_bytes()


async def test_rsync_exit_codes_become_clear_errors(
    source: Path, dest: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "fake-rsync"
    fake.write_text("#!/bin/sh\necho 'rsync: protocol broke' >&2\nexit 12\n")
    fake.chmod(0o755)
    with pytest.raises(CopierError, match=r"exit 12: error in the rsync protocol data stream") as e:
        await RsyncCopier(rsync=str(fake)).copy(str(source), str(dest))
    assert e.value.exit_code == 12
    assert "protocol broke" in str(e.value)


async def test_rsync_not_runnable_is_a_copier_error(
    source: Path, dest: Path, tmp_path: Path
) -> None:
    with pytest.raises(CopierError, match="cannot run"):
        await RsyncCopier(rsync=str(tmp_path / "no-rsync")).copy(str(source), str(dest))


async def test_rsync_cancelled_task_terminates_rsync_and_keeps_partial(
    source: Path, dest: Path
) -> None:
    copier = make("rsync")
    assert isinstance(copier, RsyncCopier)
    reached = asyncio.Event()
    task = asyncio.create_task(
        copier.copy(
            str(source),
            str(dest),
            bandwidth_limit=4 * MiB,
            progress=lambda d, t: reached.set() if d >= MiB else None,
        )
    )
    await asyncio.wait_for(reached.wait(), 20)
    pids = set(copier.pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not copier.pids
    assert pids
    for pid in pids:
        await asyncio.wait_for(group_gone(pid), 5)
    assert partial_path(dest).stat().st_size > 0


async def group_gone(pgid: int) -> None:
    """Wait until no live (non-zombie) process is left in the process group."""
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(stat)
        if not alive:
            return
        await asyncio.sleep(0.05)


def test_copier_for_prefers_rsync_and_says_which(caplog: pytest.LogCaptureFixture) -> None:
    auto = copier_for(which=lambda name: "/usr/bin/rsync")
    assert isinstance(auto, RsyncCopier)
    assert auto.name == "rsync"
    assert "/usr/bin/rsync" in auto.description
    none = copier_for(which=lambda name: None)
    assert isinstance(none, BuiltinCopier)
    assert none.name == "builtin"
    assert isinstance(copier_for("builtin", which=lambda name: "/usr/bin/rsync"), BuiltinCopier)
    with caplog.at_level(logging.WARNING):
        forced = copier_for("rsync", which=lambda name: None)
    assert isinstance(forced, BuiltinCopier)
    assert "rsync is not installed" in caplog.text
    with pytest.raises(ValueError, match="prefer must be"):
        copier_for("scp")  # type: ignore[arg-type]


def test_copier_for_with_the_real_which() -> None:
    assert copier_for().name == ("rsync" if shutil.which("rsync") else "builtin")


async def test_no_rsync_on_path_copies_with_builtin(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    copier = copier_for()
    result: CopyResult = await copier.copy(str(source), str(dest))
    assert result.copier == "builtin"
    assert dest.read_bytes() == source.read_bytes()


def test_builtin_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        BuiltinCopier(chunk_size=0)


# -- the shared helpers' error paths -------------------------------------------------------------


def test_disk_full_without_a_partial_names_the_whole_size_and_the_free_space(
    tmp_path: Path,
) -> None:
    """The partial (and its folder) already gone: all of the file is still needed, and the free
    space is read where the folder would be (its nearest existing parent)."""
    partial = partial_path(tmp_path / "Movies" / "New (2024)" / "New (2024).mkv")
    error = disk_full(5 * MiB, partial)
    assert error.needed_bytes == 5 * MiB
    assert error.free_bytes is not None
    assert abs(error.free_bytes - shutil.disk_usage(tmp_path).free) < 64 * MiB
    assert str(partial.parent) in str(error)


def test_a_source_the_system_refuses_is_not_called_missing(tmp_path: Path) -> None:
    """A source name the file system refuses (too long) is its own OSError: only a file or a
    share that is gone is `SourceMissingError`."""
    with pytest.raises(OSError) as err:
        stat_source(str(tmp_path / ("x" * 300 + ".mkv")))
    assert not isinstance(err.value, SourceMissingError)
    assert err.value.errno == errno.ENAMETOOLONG
    with pytest.raises(SourceMissingError):
        stat_source(str(tmp_path / "gone.mkv"))


def test_hashing_a_prefix_of_a_file_that_shrank_ends(tmp_path: Path) -> None:
    """Asked for more bytes than the file has (it shrank meanwhile): the hash of what is there."""
    path = tmp_path / "short.bin"
    path.write_bytes(b"abc" * 1000)
    assert hash_prefix(path, 10 * MiB).hexdigest() == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert hash_prefix(path, 3).hexdigest() == hashlib.sha256(b"abc").hexdigest()


async def test_builtin_source_that_shrinks_mid_copy_is_a_verification_error(
    source: Path, dest: Path
) -> None:
    """The source cut short while it is read: the copy stops at its new end and fails
    verification; nothing is published under the destination name."""
    cut = False

    def progress(done: int, total: int) -> None:
        nonlocal cut
        if not cut and done >= MiB:
            cut = True
            os.truncate(source, 2 * MiB)

    with pytest.raises(VerificationError):
        await make("builtin").copy(
            str(source), str(dest), bandwidth_limit=8 * MiB, progress=progress
        )
    assert cut
    assert not dest.exists()


async def test_builtin_partial_name_taken_by_a_folder_is_an_os_error(
    source: Path, dest: Path
) -> None:
    """Something else (a folder) sits where the partial copy goes: the file system's error is
    raised as it is (not disguised as a full disk or a missing source) and the folder is kept."""
    partial = partial_path(dest)
    partial.mkdir(parents=True)
    (partial / "keep.txt").write_text("mine")
    with pytest.raises(OSError) as err:
        await make("builtin").copy(str(source), str(dest), verify="size")
    assert not isinstance(err.value, (DiskFullError, SourceMissingError))
    assert (partial / "keep.txt").read_text() == "mine"
    assert not dest.exists()


async def test_builtin_source_unreadable_while_checking_the_partial_keeps_it(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming with sha256, the source fails to read (an I/O error) while the partial's prefix
    is compared: that error is raised as it is (not 'source missing', not 'disk full') and the
    partial is kept for the next try, which resumes from it."""
    await interrupt("builtin", make("builtin"), source, dest)
    have = partial_path(dest).stat().st_size
    assert have > 0
    real = builtin_mod.hash_prefix

    def failing(path: str | Path, length: int) -> Any:
        if str(path) == str(source):
            raise OSError(errno.EIO, "Input/output error")
        return real(path, length)

    monkeypatch.setattr(builtin_mod, "hash_prefix", failing)
    with pytest.raises(OSError) as err:
        await make("builtin").copy(str(source), str(dest), verify="sha256")
    assert err.value.errno == errno.EIO
    assert not isinstance(err.value, (DiskFullError, SourceMissingError))
    assert partial_path(dest).stat().st_size == have
    monkeypatch.undo()
    result = await make("builtin").copy(str(source), str(dest), verify="sha256")
    assert result.resumed_from > 0
    assert dest.read_bytes() == source.read_bytes()


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="direct I/O is Linux's")
async def test_builtin_writes_buffered_where_direct_io_cannot_be_turned_on(
    source: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses the O_DIRECT flag itself (fcntl fails): every chunk is written
    buffered and the copy is whole."""
    real = fcntl.fcntl

    def refusing(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    seen = record_writes(monkeypatch)
    result = await BuiltinCopier(chunk_size=MiB).copy(str(source), str(dest))
    assert result.sha256 == sha(source)
    assert dest.read_bytes() == source.read_bytes()
    assert seen == [False] * 8
