"""What both copiers share: the result, the protocol, the resume/verify/rename steps, errors.

See :mod:`.copier` for the semantics; :class:`BaseCopier` runs the steps around a subclass's
``_transfer`` (which moves the bytes).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import errno
import hashlib
import logging
import os
from pathlib import Path, PurePath
import threading
import time
from typing import Final, Protocol

from .discovery import RunSync
from .errors import DiskFullError, SourceMissingError, VerificationError
from .models import Verify
from .paths import free_bytes, partial_path

_LOGGER = logging.getLogger(__name__)

TAIL_CHECK: Final = 1024 * 1024
CHUNK: Final = 8 * 1024 * 1024
HASH_CHUNK: Final = 8 * 1024 * 1024
REPORT_EVERY: Final = 0.1  # seconds between progress reports from a copy

# (bytes done including any resumed prefix, total bytes); called on the event loop.
type Progress = Callable[[int, int], None]

DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
SOURCE_GONE_ERRNOS: Final = frozenset(
    {errno.ENOENT, errno.ENOTCONN, errno.ESTALE, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENODEV}
)


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


def in_own_thread[T](func: Callable[[], T], name: str) -> asyncio.Future[T]:
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


def disk_full(size: int, partial: Path) -> DiskFullError:
    """Return the error for a destination without room for the rest of ``partial``."""
    try:
        have = partial.stat().st_size
    except OSError:
        have = 0
    free = free_bytes(partial.parent)
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
    if number in DISK_FULL_ERRNOS or any(marker in text for marker in _DISK_FULL_TEXT):
        return disk_full(size, partial)
    if number in SOURCE_GONE_ERRNOS or not Path(source).exists():
        detail = (err.strerror or "") if err is not None else text
        return SourceMissingError(source, detail)
    return None


def stat_source(source: str) -> tuple[int, int]:
    """Return the source's (size, mtime_ns); SourceMissingError when it (or its share) is gone."""
    try:
        st = Path(source).stat()
    except OSError as err:
        if err.errno in SOURCE_GONE_ERRNOS:
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


class StoppedError(Exception):
    """A copy or hashing thread was asked to stop (the task was cancelled or failed)."""


def hash_file(path: str | Path, stop: threading.Event | None = None) -> str:
    """Return the SHA-256 of a file; ``stop`` ends it early."""
    digest = hashlib.sha256()
    with Path(path).open("rb", buffering=0) as handle:
        while block := handle.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise StoppedError
            digest.update(block)
    return digest.hexdigest()


def hash_prefix(path: str | Path, length: int) -> hashlib._Hash:
    """Return a SHA-256 fed with a file's first ``length`` bytes (to go on with)."""
    digest = hashlib.sha256()
    remaining = length
    with Path(path).open("rb", buffering=0) as handle:
        while remaining > 0:
            block = handle.read(min(HASH_CHUNK, remaining))
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


class BaseCopier:
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
            if err.errno in SOURCE_GONE_ERRNOS and not await self._run_sync(Path(src).exists):
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
        size, mtime = await self._run_sync(lambda: stat_source(src))
        await self._run_sync(lambda: partial.parent.mkdir(parents=True, exist_ok=True))
        offset = await self._run_sync(lambda: prepare_partial(src, partial, size))
        offset -= offset % self.resume_align
        written, digest = await self._transfer(
            src, partial, offset, size, verify == "sha256", bandwidth_limit, progress
        )
        after = await self._run_sync(lambda: stat_source(src))
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
