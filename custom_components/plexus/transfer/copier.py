"""Copiers: ``rsync`` as an asyncio subprocess, and a built-in copier where rsync is missing.

Both have the same interface and the same semantics (:meth:`Copier.copy`):

1. The copy is written under a temporary name beside the destination
   (``.<name>.plexus-partial``, :func:`.paths.partial_path`) and only renamed to its final name
   after ``fsync`` (then the folder is fsynced): a half-written file is never where a finished
   one belongs.
2. Resume: an existing partial is kept when its last (up to) 1 MiB equals the source's bytes at
   the same offsets; the copy then continues from the partial's length. Otherwise it starts over.
   rsync runs with ``--append`` (which implies ``--inplace``): without it rsync copies local
   paths with ``--whole-file`` into a fresh temporary file and throws the old data away, so it
   would re-copy everything. ``--append`` sends only the bytes past the receiver's length —
   ``rsync --stats``' "Literal data" is what it wrote, reported as ``bytes_written``.
   ``--preallocate`` reserves the file's length up front (``FALLOC_FL_KEEP_SIZE``: the
   partial's length stays what was written); the receiver then does less work per block.
3. Verification ``size``: the copy has the source's size, and the source's ``(size, mtime)`` did
   not change during the copy. ``sha256`` adds a SHA-256 comparison: the built-in copier hashes
   while copying (a reader, a hasher and a writer thread pass chunks along a ring of buffers:
   each chunk is hashed and written from the same buffer, so the hash is that of the bytes
   written); on a resume it hashes
   the partial's prefix and re-reads the source's prefix (reading, not writing) so a corrupted
   partial is found. rsync: a fresh copy is checked by rsync's own whole-file checksum (what
   the sender read against what the receiver wrote), then the copy is hashed; a resumed copy
   (rsync's checksum covers only the appended bytes) has the source and the copy hashed in
   parallel and compared.
   A mismatch raises :class:`.VerificationError`; the SHA-256 of the copy is returned.
4. Errors are typed: :class:`.DiskFullError` (``ENOSPC``/"No space left on device", with the
   bytes still needed), :class:`.SourceMissingError` (the source or its share is gone),
   :class:`.CopierError` (anything else, rsync's exit code explained). Cancelling the task stops
   the copy (rsync is terminated; the built-in thread stops at the next chunk) and keeps the
   partial for a later resume. :func:`classify_failure` is the one mapping both copiers use.
5. The built-in copier writes with direct I/O where the destination allows it (no page cache
   filled with a film; see :class:`BuiltinCopier`), and resumes from a 4 KiB boundary.

:func:`copier_for` picks rsync when ``shutil.which("rsync")`` finds it, the built-in copier
otherwise, and says which (``copier.name``, ``copier.description``).
"""

import asyncio
from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass
import errno
import fcntl
import hashlib
import logging
import mmap
import os
from pathlib import Path, PurePath
import queue as thread_queue
import re
import shutil
import signal
import threading
import time
from typing import Final, Literal, Protocol

from .discovery import RunSync
from .errors import CopierError, DiskFullError, SourceMissingError, VerificationError
from .models import Verify
from .paths import partial_path

_LOGGER = logging.getLogger(__name__)

TAIL_CHECK: Final = 1024 * 1024
CHUNK: Final = 8 * 1024 * 1024
_HASH_CHUNK: Final = 8 * 1024 * 1024
_REPORT_EVERY: Final = 0.1  # seconds between progress reports from a copy

# (bytes done including any resumed prefix, total bytes); called on the event loop.
type Progress = Callable[[int, int], None]

_DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_SOURCE_GONE_ERRNOS: Final = frozenset(
    {errno.ENOENT, errno.ENOTCONN, errno.ESTALE, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENODEV}
)

RSYNC_EXIT_CODES: Final[dict[int, str]] = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or folders",
    4: "requested action not supported",
    5: "error starting the client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in the rsync protocol data stream",
    13: "errors with program diagnostics",
    14: "error in IPC code",
    20: "received SIGUSR1 or SIGINT",
    21: "some error returned by waitpid()",
    22: "error allocating memory buffers",
    23: "partial transfer due to an error",
    24: "partial transfer: source files vanished",
    25: "the --max-delete limit stopped deletions",
    30: "timeout in data send/receive",
    35: "timeout waiting for a daemon connection",
}


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What one :meth:`Copier.copy` call did."""

    size: int
    # Length of the partial file this run continued from (0: from scratch).
    resumed_from: int
    # Bytes this run wrote to the destination.
    bytes_written: int
    sha256: str | None
    seconds: float
    copier: str


class Copier(Protocol):
    """A copier (see the module docstring for the semantics both share)."""

    name: str
    description: str

    async def copy(
        self,
        source: str,
        destination: str,
        *,
        verify: Verify = "sha256",
        bandwidth_limit: int | None = None,
        progress: Progress | None = None,
    ) -> CopyResult:
        """Copy ``source`` to ``destination`` (resuming a partial), verify, rename into place."""
        ...


async def _to_thread[T](func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


def _in_own_thread[T](func: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run a long blocking job in a dedicated thread (not the shared executor)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if thread.is_alive():  # settle once the thread is gone: nothing outlives the await
            loop.call_later(0.001, settle, result, error)
            return
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            value = func()
        except BaseException as err:  # noqa: BLE001  (handed to the awaiting task)
            loop.call_soon_threadsafe(settle, None, err)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return future


def _free_bytes(folder: Path) -> int | None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def disk_full(size: int, partial: Path) -> DiskFullError:
    """Return the error for a destination without room for the rest of ``partial``."""
    try:
        have = partial.stat().st_size
    except OSError:
        have = 0
    free = _free_bytes(partial.parent)
    return DiskFullError(max(0, size - have), free, partial.parent)


_DISK_FULL_TEXT: Final = ("No space left on device", "Disk quota exceeded")


def classify_failure(
    source: str, partial: Path, size: int, err: OSError | None = None, text: str = ""
) -> DiskFullError | SourceMissingError | None:
    """Return the typed error for a failed copy (both copiers), or None for "something else".

    ``err`` is the built-in copier's ``OSError``; ``text`` is rsync's error output. A full
    destination wins (the partial is kept); a source that is gone (or an errno saying its
    share is) comes next. Blocking (stats files): run it off the event loop.
    """
    number = err.errno if err is not None else None
    if number in _DISK_FULL_ERRNOS or any(marker in text for marker in _DISK_FULL_TEXT):
        return disk_full(size, partial)
    if number in _SOURCE_GONE_ERRNOS or not Path(source).exists():
        detail = (err.strerror or "") if err is not None else text
        return SourceMissingError(source, detail)
    return None


def _stat_source(source: str) -> tuple[int, int]:
    try:
        st = Path(source).stat()
    except OSError as err:
        if err.errno in _SOURCE_GONE_ERRNOS:
            raise SourceMissingError(source, err.strerror or "") from err
        raise
    return st.st_size, st.st_mtime_ns


def prepare_partial(source: str, partial: Path, size: int) -> int:
    """Return the offset to resume from: the partial's length when its tail matches the source.

    A partial that is longer than the source or whose tail differs is removed (start over).
    """
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        return 0
    if have == 0:
        return 0
    if have > size:
        _LOGGER.info("Partial %s is longer than its source; starting over", partial)
        partial.unlink()
        return 0
    window = min(have, TAIL_CHECK)
    with Path(source).open("rb") as src, partial.open("rb") as part:
        src.seek(have - window)
        part.seek(have - window)
        same = src.read(window) == part.read(window)
    if not same:
        _LOGGER.info("Partial %s does not match its source's bytes; starting over", partial)
        partial.unlink()
        return 0
    return have


class _StoppedError(Exception):
    """A copy or hashing thread was asked to stop (the task was cancelled or failed)."""


def _hash_file(
    path: str | Path, length: int | None = None, stop: threading.Event | None = None
) -> str:
    digest = hashlib.sha256()
    remaining = length
    with Path(path).open("rb", buffering=0) as handle:
        while remaining is None or remaining > 0:
            if stop is not None and stop.is_set():
                raise _StoppedError
            size = _HASH_CHUNK if remaining is None else min(_HASH_CHUNK, remaining)
            block = handle.read(size)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def _hash_prefix(path: str | Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    remaining = length
    with Path(path).open("rb", buffering=0) as handle:
        while remaining > 0:
            block = handle.read(min(_HASH_CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


def finish(partial: Path, destination: str) -> None:
    """Fsync the partial, rename it to its final name, fsync the folder."""
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(destination)
    dir_fd = os.open(partial.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _BaseCopier:
    """The steps both copiers share; subclasses move the bytes (:meth:`_transfer`)."""

    name = "base"
    description = "base"
    # A resume continues from the partial's length rounded down to a multiple of this.
    resume_align = 1

    def __init__(self, run_sync: RunSync | None = None) -> None:
        """Keep the executor hand-off for short blocking steps (default: ``asyncio.to_thread``)."""
        self._run_sync: RunSync = run_sync or _to_thread

    async def copy(
        self,
        source: str,
        destination: str,
        *,
        verify: Verify = "sha256",
        bandwidth_limit: int | None = None,
        progress: Progress | None = None,
    ) -> CopyResult:
        """Copy, resume, verify and rename into place (see the module docstring)."""
        if verify not in ("size", "sha256"):
            raise ValueError(f"verify must be 'size' or 'sha256', not {verify!r}")
        src, dest = str(source), str(destination)
        if not (PurePath(src).is_absolute() and PurePath(dest).is_absolute()):
            raise ValueError(f"copy needs absolute paths, not {src!r} -> {dest!r}")
        try:
            return await self._copy(src, dest, verify, bandwidth_limit, progress)
        except OSError as err:
            if err.errno in _SOURCE_GONE_ERRNOS and not await self._run_sync(Path(src).exists):
                raise SourceMissingError(src, err.strerror or "") from err
            raise

    async def _copy(
        self,
        src: str,
        dest: str,
        verify: Verify,
        bandwidth_limit: int | None,
        progress: Progress | None,
    ) -> CopyResult:
        partial = partial_path(dest)
        started = time.monotonic()
        size, mtime = await self._run_sync(lambda: _stat_source(src))
        await self._run_sync(lambda: partial.parent.mkdir(parents=True, exist_ok=True))
        offset = await self._run_sync(lambda: prepare_partial(src, partial, size))
        offset -= offset % self.resume_align
        written, digest = await self._transfer(
            src, partial, offset, size, verify == "sha256", bandwidth_limit, progress
        )
        after = await self._run_sync(lambda: _stat_source(src))
        if after != (size, mtime):
            raise VerificationError(
                f"the source changed during the copy (size/mtime {size}/{mtime} -> "
                f"{after[0]}/{after[1]}): {src}"
            )
        have = await self._run_sync(lambda: partial.stat().st_size)
        if have != size:
            raise VerificationError(f"the copy has {have} bytes, the source {size}: {src}")
        await self._run_sync(lambda: finish(partial, dest))
        return CopyResult(size, offset, written, digest, time.monotonic() - started, self.name)

    async def _transfer(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        want_hash: bool,
        bandwidth_limit: int | None,
        progress: Progress | None,
    ) -> tuple[int, str | None]:
        raise NotImplementedError


_ALIGN: Final = 4096  # direct I/O: buffer address, offset and length multiples of this
_BUFFERS: Final = 4  # chunks in flight between the reader, the hasher and the writer
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)


def _set_direct(fd: int, on: bool) -> bool:
    """Turn direct I/O on or off for ``fd``; return whether it is on (False where refused)."""
    if not _O_DIRECT:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | _O_DIRECT) if on else (flags & ~_O_DIRECT))
    except OSError:
        return False
    return on


def _write_at(fd: int, data: memoryview, pos: int, direct: bool) -> bool:
    """Write all of ``data`` at ``pos``; return whether direct I/O is still on.

    Direct I/O needs aligned offsets and lengths: the file's unaligned tail (and anything after a
    short write) goes through the page cache, and a filesystem that refuses direct writes
    (``EINVAL``) gets buffered ones from then on.
    """
    while data:
        if direct and (pos % _ALIGN or len(data) % _ALIGN):
            direct = _set_direct(fd, on=False)
        try:
            n = os.pwrite(fd, data, pos)
        except OSError as err:
            if direct and err.errno == errno.EINVAL:
                direct = _set_direct(fd, on=False)
                continue
            raise
        data = data[n:]
        pos += n
    return direct


@dataclass(frozen=True, slots=True)
class _Chunk:
    buffer: int  # index into the pipeline's buffers
    pos: int
    length: int


type _Item = _Chunk | BaseException | None  # None: the end


class _ReadAhead:
    """Read the source ahead of the writer into a ring of page-aligned buffers; hash them.

    A reader thread fills free buffers in order; with a digest, a hasher thread hashes each
    filled buffer (hashlib releases the GIL on large blocks) before handing it on; the writer
    (the caller, iterating) writes it and gives the buffer back (:meth:`release`). So reading,
    hashing and writing overlap, and the hash is that of the very bytes written.
    The reader owns ``fd`` and closes it.
    """

    def __init__(  # noqa: PLR0917 - one internal call site
        self,
        fd: int,
        start: int,
        end: int,
        chunk: int,
        digest: hashlib._Hash | None,
        name: str,
    ) -> None:
        self._fd = fd
        self._start = start
        self._end = end
        self._chunk = chunk
        self._digest = digest
        self._closing = False
        try:
            # Anonymous mappings are page-aligned, as direct I/O wants.
            self.buffers = [mmap.mmap(-1, chunk) for _ in range(_BUFFERS)]
        except BaseException:
            os.close(fd)
            raise
        self._free: thread_queue.SimpleQueue[int | None] = thread_queue.SimpleQueue()
        for index in range(_BUFFERS):
            self._free.put(index)
        self._ready: thread_queue.SimpleQueue[_Item] = thread_queue.SimpleQueue()
        self._to_hash: thread_queue.SimpleQueue[_Item] | None = None
        self._threads = [threading.Thread(target=self._read, name=f"{name} read", daemon=True)]
        if digest is not None:
            self._to_hash = thread_queue.SimpleQueue()
            self._threads.append(
                threading.Thread(target=self._hash, name=f"{name} sha256", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        out = self._to_hash if self._to_hash is not None else self._ready
        pos = self._start
        try:
            with contextlib.suppress(OSError):  # a hint: more read-ahead on shares
                os.posix_fadvise(self._fd, pos, 0, os.POSIX_FADV_SEQUENTIAL)
            while pos < self._end:
                index = self._free.get()
                if index is None or self._closing:
                    break
                with memoryview(self.buffers[index]) as view:
                    got = os.preadv(self._fd, [view[: min(self._chunk, self._end - pos)]], pos)
                if got == 0:
                    break  # the source is shorter than it was: verification says so
                out.put(_Chunk(index, pos, got))
                pos += got
        except BaseException as err:  # noqa: BLE001  (raised by the writer)
            out.put(err)
        finally:
            os.close(self._fd)
            out.put(None)

    def _hash(self) -> None:
        assert self._to_hash is not None
        assert self._digest is not None
        while True:
            item = self._to_hash.get()
            if isinstance(item, _Chunk) and not self._closing:
                with memoryview(self.buffers[item.buffer]) as view:
                    self._digest.update(view[: item.length])
            self._ready.put(item)
            if item is None:
                return

    def __iter__(self) -> Iterator[_Chunk]:
        """Yield the filled chunks in order; raise the reader's error."""
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def release(self, chunk: _Chunk) -> None:
        """Give a written chunk's buffer back to the reader."""
        self._free.put(chunk.buffer)

    def close(self) -> None:
        """Stop reading (at the next chunk) and wait a little for the threads."""
        self._closing = True
        self._free.put(None)
        for thread in self._threads:
            thread.join(timeout=10)


class BuiltinCopier(_BaseCopier):
    """Pipelined copy: a reader, a hasher and a writer thread; direct I/O into the copy.

    The writer uses direct I/O (``O_DIRECT``) where the destination's filesystem allows it: the
    data goes from the buffer to the disk without filling the page cache with a film the host
    will not read again, and the final ``fsync`` has little left to do. Elsewhere it writes
    through the page cache. A resumed partial is continued from its length rounded down to
    4 KiB (direct I/O wants aligned offsets), so up to 4 KiB are written again.
    """

    name = "builtin"
    description = "built-in copier (Python, pipelined, direct I/O, hash while copying)"
    resume_align = _ALIGN

    def __init__(self, run_sync: RunSync | None = None, *, chunk_size: int = CHUNK) -> None:
        """Set the chunk size (bytes read and written per step; rounded up to 4 KiB)."""
        super().__init__(run_sync)
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = -(-chunk_size // _ALIGN) * _ALIGN

    async def _transfer(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        want_hash: bool,
        bandwidth_limit: int | None,
        progress: Progress | None,
    ) -> tuple[int, str | None]:
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def report(done: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, done, size)

        future = _in_own_thread(
            lambda: self._copy_blocking(
                source, partial, offset, size, want_hash, bandwidth_limit, stop, report
            ),
            f"plexus-copy {Path(source).name}",
        )
        try:
            await asyncio.wait([future])  # cancelling this wait leaves the thread's future be
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([future])
            future.exception()  # retrieved: the stop is the expected outcome
            raise
        return future.result()

    def _copy_blocking(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        want_hash: bool,
        bandwidth_limit: int | None,
        stop: threading.Event,
        report: Callable[[int], None],
    ) -> tuple[int, str | None]:
        try:
            return self._pipeline(
                source, partial, offset, size, want_hash, bandwidth_limit, stop, report
            )
        except OSError as err:
            if (typed := classify_failure(source, partial, size, err)) is None:
                raise
            raise typed from err

    def _pipeline(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        want_hash: bool,
        bandwidth_limit: int | None,
        stop: threading.Event,
        report: Callable[[int], None],
    ) -> tuple[int, str | None]:
        digest = self._verified_prefix(source, partial, offset) if want_hash else None
        chunk = self.chunk_size
        if bandwidth_limit is not None:
            chunk = max(64 * 1024, min(chunk, bandwidth_limit // 10 // _ALIGN * _ALIGN))
        written = 0
        pos = offset
        started = time.monotonic()
        last_report = 0.0
        fin = os.open(source, os.O_RDONLY)
        try:
            fout = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o644)
        except BaseException:
            os.close(fin)
            raise
        try:
            try:
                os.ftruncate(fout, offset)
            except BaseException:
                os.close(fin)
                raise
            direct = _set_direct(fout, on=True)
            reader = _ReadAhead(fin, offset, size, chunk, digest, "plexus-copy")
            try:
                for piece in reader:
                    if stop.is_set():
                        raise _StoppedError
                    with memoryview(reader.buffers[piece.buffer]) as view:
                        direct = _write_at(fout, view[: piece.length], piece.pos, direct)
                    reader.release(piece)
                    pos = piece.pos + piece.length
                    written += piece.length
                    now = time.monotonic()
                    if now - last_report >= _REPORT_EVERY:
                        last_report = now
                        report(pos)
                    if bandwidth_limit is not None:
                        ahead = written / bandwidth_limit - (now - started)
                        if ahead > 0 and stop.wait(ahead):
                            raise _StoppedError
            finally:
                reader.close()
        finally:
            os.close(fout)
        report(pos)
        return written, digest.hexdigest() if digest is not None else None

    @staticmethod
    def _verified_prefix(source: str, partial: Path, offset: int) -> hashlib._Hash:
        """Hash the partial's first ``offset`` bytes; check them against the source's."""
        if offset == 0:
            return hashlib.sha256()
        box: dict[str, str | BaseException] = {}

        def source_side() -> None:
            try:
                box["source"] = _hash_prefix(source, offset).hexdigest()
            except BaseException as err:  # noqa: BLE001  (re-raised below)
                box["error"] = err

        thread = threading.Thread(target=source_side, daemon=True)
        thread.start()
        copy_digest = _hash_prefix(partial, offset)
        thread.join()
        if isinstance(error := box.get("error"), BaseException):
            raise error
        if box.get("source") != copy_digest.hexdigest():
            raise VerificationError(
                f"the partial copy's first {offset} bytes differ from the source: {partial}"
            )
        return copy_digest


async def _stop_threads(stop: threading.Event, futures: list[asyncio.Future[str]]) -> None:
    """Ask helper threads to stop and wait for them (each stops at its next chunk)."""
    stop.set()
    if futures:
        await asyncio.wait(futures)
    for future in futures:
        if not future.cancelled():
            future.exception()  # retrieved: the failure that stopped them is what counts


class _Follower:
    """Hash a file while another process appends to it (rsync writing the copy).

    A thread reads what is there, waits for more, and after :meth:`finish` reads to the end:
    the hash covers the copy's bytes as they are in the file, read from its fresh pages.
    Setting ``stop`` ends it early (with :class:`_StoppedError`).
    """

    _POLL: Final = 0.05

    def __init__(self, path: Path, stop: threading.Event) -> None:
        self._path = path
        self._done = threading.Event()
        self._stop = stop
        self.future = _in_own_thread(self._run, "plexus-sha256-copy")

    def _run(self) -> str:
        digest = hashlib.sha256()
        buffer = bytearray(_HASH_CHUNK)
        pos = 0
        fd = os.open(self._path, os.O_RDONLY)
        try:
            while not self._stop.is_set():
                finished = self._done.is_set()  # before the read: the last pass sees it all
                got = os.preadv(fd, [buffer], pos)
                if got:
                    with memoryview(buffer) as view:
                        digest.update(view[:got])
                    pos += got
                elif finished:
                    return digest.hexdigest()
                else:
                    self._done.wait(self._POLL)  # finish() wakes it at once
        finally:
            os.close(fd)
        raise _StoppedError

    def finish(self) -> None:
        """The writer is done: hash the rest and stop."""
        self._done.set()


_PROGRESS_RE: Final = re.compile(r"^\s*([\d,.]+)\s+\d+%")
_LITERAL_RE: Final = re.compile(r"Literal data:\s*([\d,.]+)")


def _number(text: str) -> int:
    return int(re.sub(r"[,.]", "", text))


class RsyncCopier(_BaseCopier):
    """``rsync --append`` as an asyncio subprocess; the SHA-256 computed while it copies."""

    name = "rsync"

    def __init__(self, run_sync: RunSync | None = None, *, rsync: str = "rsync") -> None:
        """Use the ``rsync`` executable at ``rsync`` (a name looked up on PATH, or a path)."""
        super().__init__(run_sync)
        self.rsync = rsync
        self.description = f"rsync ({rsync})"
        # Process ids of running rsyncs (diagnostics; tests kill them).
        self.pids: set[int] = set()

    def command(self, source: str, partial: Path, bandwidth_limit: int | None) -> list[str]:
        """Return the rsync command line for one file."""
        cmd = [
            self.rsync,
            "--append",
            "--preallocate",
            "--info=progress2",
            "--outbuf=N",
            "--stats",
            "--no-motd",
        ]
        if bandwidth_limit is not None:
            cmd.append(f"--bwlimit={max(1, bandwidth_limit // 1024)}")
        return [*cmd, "--", source, str(partial)]

    async def _transfer(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        want_hash: bool,
        bandwidth_limit: int | None,
        progress: Progress | None,
    ) -> tuple[int, str | None]:
        if offset == 0:
            # --append must not trust a stale file of any length: start from an empty one.
            await self._run_sync(lambda: partial.open("wb").close())
        # Hash while copying: the copy as rsync appends to it and, for a resumed copy (rsync's
        # own checksum covers only the appended bytes), the whole source beside it.
        stop = threading.Event()
        follower = _Follower(partial, stop) if want_hash else None
        source_hash: asyncio.Future[str] | None = None
        if want_hash and offset > 0:
            source_hash = _in_own_thread(
                lambda: _hash_file(source, stop=stop), "plexus-sha256-source"
            )
        hashing = [follower.future] if follower is not None else []
        if source_hash is not None:
            hashing.append(source_hash)
        try:
            written = await self._run_rsync(
                source, partial, offset, size, bandwidth_limit, progress
            )
            if follower is None:
                return written, None
            follower.finish()
            copy_sha = await follower.future
        except BaseException:
            await _stop_threads(stop, hashing)
            raise
        if source_hash is None:
            # rsync checked the whole transfer with its own whole-file checksum (what it read
            # against what it wrote); the hash records the copy's SHA-256.
            return written, copy_sha
        source_sha = await source_hash
        if source_sha != copy_sha:
            raise VerificationError(
                f"SHA-256 mismatch: source {source_sha}, copy {copy_sha}: {source}"
            )
        return written, copy_sha

    async def _run_rsync(  # noqa: PLR0917 - one internal call site
        self,
        source: str,
        partial: Path,
        offset: int,
        size: int,
        bandwidth_limit: int | None,
        progress: Progress | None,
    ) -> int:
        """Run rsync for one file; return the bytes it wrote."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(source, partial, bandwidth_limit),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group: rsync forks a receiver; stopping must stop both.
                start_new_session=True,
            )
        except OSError as err:
            raise CopierError(f"cannot run {self.rsync}: {err}") from err
        self.pids.add(proc.pid)
        try:
            stdout, stderr = await asyncio.gather(
                self._read_progress(proc, offset, size, progress), _read_all(proc.stderr)
            )
            code = await proc.wait()
        except asyncio.CancelledError:
            await _stop_process(proc)
            raise
        finally:
            self.pids.discard(proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # nothing of a finished rsync stays behind
        if code != 0:
            raise await self._error(code, stderr, source, partial, size)
        literal = _LITERAL_RE.search(stdout)
        written = _number(literal[1]) if literal else max(0, size - offset)
        if progress is not None:
            progress(size, size)
        return written

    async def _read_progress(
        self, proc: asyncio.subprocess.Process, offset: int, size: int, progress: Progress | None
    ) -> str:
        assert proc.stdout is not None
        tail = ""
        kept: list[str] = []
        last = 0.0
        while chunk := await proc.stdout.read(4096):
            text = tail + chunk.decode(errors="replace")
            pieces = re.split(r"[\r\n]", text)
            tail = pieces.pop()
            # rsync starts each progress line with \r: the newest one is the unterminated tail.
            for piece in (*pieces, tail):
                if (match := _PROGRESS_RE.match(piece)) is not None:
                    now = time.monotonic()
                    if progress is not None and now - last >= _REPORT_EVERY:
                        last = now
                        progress(min(size, max(offset, _number(match[1]))), size)
                elif piece.strip() and piece is not tail:
                    kept.append(piece)
        kept.append(tail)
        return "\n".join(kept)

    async def _error(
        self, code: int, stderr: str, source: str, partial: Path, size: int
    ) -> Exception:
        message = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        if code == 24:
            return SourceMissingError(source, message or RSYNC_EXIT_CODES[code])
        typed = await self._run_sync(lambda: classify_failure(source, partial, size, text=stderr))
        if typed is not None:
            return typed
        if code < 0:
            return CopierError(f"rsync was killed by signal {-code}", exit_code=code)
        meaning = RSYNC_EXIT_CODES.get(code, "unknown error")
        return CopierError(f"rsync failed (exit {code}: {meaning}): {message}", exit_code=code)


async def _read_all(stream: asyncio.StreamReader | None) -> str:
    if stream is None:
        return ""
    return (await stream.read()).decode(errors="replace")


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    """Stop rsync and the processes it forked (its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(5):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


type Prefer = Literal["auto", "rsync", "builtin"]


def copier_for(
    prefer: Prefer = "auto",
    *,
    run_sync: RunSync | None = None,
    which: Callable[[str], str | None] | None = None,
) -> RsyncCopier | BuiltinCopier:
    """Return rsync's copier when rsync is installed (and not refused), the built-in one otherwise.

    ``prefer="rsync"`` without rsync installed logs a warning and returns the built-in copier
    (never a silent failure: ``copier.name`` says which runs).
    """
    if prefer not in ("auto", "rsync", "builtin"):
        raise ValueError(f"prefer must be 'auto', 'rsync' or 'builtin', not {prefer!r}")
    if prefer != "builtin":
        path = (which or shutil.which)("rsync")
        if path is not None:
            return RsyncCopier(run_sync, rsync=path)
        if prefer == "rsync":
            _LOGGER.warning("rsync is not installed; using the built-in copier")
    return BuiltinCopier(run_sync)


__all__ = [
    "BuiltinCopier",
    "Copier",
    "CopyResult",
    "RsyncCopier",
    "copier_for",
]
