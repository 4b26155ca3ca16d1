"""The built-in copier (where rsync is not installed): pipelined, direct I/O, hash while copying."""

import asyncio
from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass
import errno
import fcntl
import hashlib
import mmap
import os
from pathlib import Path
import queue as thread_queue
import threading
import time
from typing import Final

from .copying import (
    CHUNK,
    REPORT_EVERY,
    BaseCopier,
    Progress,
    StoppedError,
    classify_failure,
    hash_prefix,
    in_own_thread,
)
from .discovery import RunSync
from .errors import VerificationError

_ALIGN: Final = 4096  # direct I/O: buffer address, offset and length multiples of this
_BUFFERS: Final = 4  # chunks in flight between the reader, the hasher and the writer
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)


def _on_a_block_device(fd: int) -> bool:
    """Return True when the file lives on a disk's filesystem (ext4, xfs …).

    Network and virtual filesystems (NFS, SMB, FUSE, tmpfs; also btrfs and ZFS, whose device
    numbers are anonymous too) have device major number 0: they keep their own, buffered writes,
    which they pipeline better than one synchronous direct write after another.
    """
    return os.major(os.fstat(fd).st_dev) != 0


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


class BuiltinCopier(BaseCopier):
    """Pipelined copy: a reader, a hasher and a writer thread; direct I/O into the copy.

    The writer uses direct I/O (``O_DIRECT``) where the destination is a disk's filesystem that
    allows it: the data goes from the buffer to the disk without filling the page cache with a
    film the host will not read again, and the final ``fsync`` has little left to do. Elsewhere
    (network or virtual filesystems, or a refusal) it writes through the page cache. A resumed
    partial is continued from its length rounded down to 4 KiB (direct I/O wants aligned
    offsets), so up to 4 KiB are written again.
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

        def copy_blocking() -> tuple[int, str | None]:
            try:
                return self._pipeline(
                    source, partial, offset, size, want_hash, bandwidth_limit, stop, report
                )
            except OSError as err:  # (classified in the thread: it looks at the files)
                if (typed := classify_failure(source, partial, size, err)) is None:
                    raise
                raise typed from err

        future = in_own_thread(copy_blocking, f"plexus-copy {Path(source).name}")
        try:
            await asyncio.wait([future])  # cancelling this wait leaves the thread's future be
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([future])
            future.exception()  # retrieved: the stop is the expected outcome
            raise
        return future.result()

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
            direct = _on_a_block_device(fout) and _set_direct(fout, on=True)
            reader = _ReadAhead(fin, offset, size, chunk, digest, "plexus-copy")
            try:
                for piece in reader:
                    if stop.is_set():
                        raise StoppedError
                    with memoryview(reader.buffers[piece.buffer]) as view:
                        direct = _write_at(fout, view[: piece.length], piece.pos, direct)
                    reader.release(piece)
                    pos = piece.pos + piece.length
                    written += piece.length
                    now = time.monotonic()
                    if now - last_report >= REPORT_EVERY:
                        last_report = now
                        report(pos)
                    if bandwidth_limit is not None:
                        ahead = written / bandwidth_limit - (now - started)
                        if ahead > 0 and stop.wait(ahead):
                            raise StoppedError
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
                box["source"] = hash_prefix(source, offset).hexdigest()
            except BaseException as err:  # noqa: BLE001  (re-raised below)
                box["error"] = err

        thread = threading.Thread(target=source_side, daemon=True)
        thread.start()
        copy_digest = hash_prefix(partial, offset)
        thread.join()
        if isinstance(error := box.get("error"), BaseException):
            raise error
        if box.get("source") != copy_digest.hexdigest():
            raise VerificationError(
                f"the partial copy's first {offset} bytes differ from the source: {partial}"
            )
        return copy_digest
