"""rsync as an asyncio subprocess (``--append``: it really resumes), hashing while it copies."""

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path
import re
import signal
import threading
import time
from typing import Final

from .copying import (
    HASH_CHUNK,
    REPORT_EVERY,
    BaseCopier,
    Progress,
    StoppedError,
    classify_failure,
    hash_file,
    in_own_thread,
)
from .discovery import RunSync
from .errors import CopierError, SourceMissingError, VerificationError

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
    Setting ``stop`` ends it early (with :class:`StoppedError`).
    """

    _POLL: Final = 0.05

    def __init__(self, path: Path, stop: threading.Event) -> None:
        self._path = path
        self._done = threading.Event()
        self._stop = stop
        self.future = in_own_thread(self._run, "plexus-sha256-copy")

    def _run(self) -> str:
        digest = hashlib.sha256()
        buffer = bytearray(HASH_CHUNK)
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
        raise StoppedError

    def finish(self) -> None:
        """The writer is done: hash the rest and stop."""
        self._done.set()


_PROGRESS_RE: Final = re.compile(r"^\s*([\d,.]+)\s+\d+%")
_LITERAL_RE: Final = re.compile(r"Literal data:\s*([\d,.]+)")


def _number(text: str) -> int:
    return int(re.sub(r"[,.]", "", text))


class RsyncCopier(BaseCopier):
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
            source_hash = in_own_thread(
                lambda: hash_file(source, stop=stop), "plexus-sha256-source"
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
                    if progress is not None and now - last >= REPORT_EVERY:
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
