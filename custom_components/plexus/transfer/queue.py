"""A profile's transfer queue: stored in the database, worked by supervised workers.

One :class:`TransferQueue` per transfer profile. Its items live in ``plexus_transfer_queue``, so
the queue survives restarts: :meth:`TransferQueue.start` puts transfers a crash left ``running``
back to ``queued``, and they resume from their partial files.

Per transfer, the worker:

1. checks free space at the destination (bytes still to copy + the profile's reserve);
2. runs the copier (:mod:`.copier`), reporting progress at most once a second;
3. on success records ``done`` with the SHA-256 and the source's size/mtime (for
   "changed at source"), and emits ``finished``.

Outcomes other than success:

- :class:`.DiskFullError` (before start or ``ENOSPC`` during): the transfer is ``paused``, the
  partial is kept, ``on_disk_full(error, item)`` is called (the glue raises a Repairs issue) and
  a ``paused`` event says how much space is needed; :meth:`resume` re-queues it.
- :class:`.VerificationError`: the partial is deleted and the copy starts over ONCE; a second
  mismatch fails the transfer with both errors' text.
- The source gone (:class:`.SourceMissingError`, an I/O error with the source missing): the worker
  polls the source every ``source_poll`` (≤ 2 s) and retries as soon as it is back, without using
  up retries while it waits.
- Other copier/I/O errors: retried ``retries`` times with back-off ``base * 2^(n-1)`` capped at
  ``backoff_cap`` (≤ 60 s), then ``failed``.

Workers are supervised: an unexpected error is logged once (with its traceback), the worker
restarts after a short delay, and a recovery is logged once.
"""

import asyncio
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, replace
import functools
import logging
from pathlib import Path
import time
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from ..catalog.errors import short_cause
from .copier import Copier, CopyResult
from .discovery import RunSync
from .errors import (
    CopierError,
    DiskFullError,
    SourceMissingError,
    TransferError,
    VerificationError,
    is_disk_full_text,
)
from .local import (
    check_destination,
    file_size,
    remove_file,
    shortfall,
    source_present,
    stat_source,
    sync_status,
    utcnow,
)
from .models import (
    ACTIVE_STATES,
    EventKind,
    ProfileOptions,
    SyncStatus,
    TransferEvent,
    TransferItem,
    TransferRequest,
    TransferState,
)
from .paths import IsAllowed, partial_path
from .store import TransferStore

_LOGGER = logging.getLogger(__name__)
_PERSIST_EVERY = 5.0  # seconds between bytes_done writes to the database
_RECORD_RETRY_MAX = 60.0  # seconds between tries to record a finished copy (database away)


@dataclass(slots=True)
class CurrentTransfer:
    """A running transfer's live figures (for the "current transfer" sensor)."""

    item_id: int
    title: str
    size: int
    bytes_done: int = 0
    speed: float | None = None
    eta: float | None = None

    @property
    def percent(self) -> float:
        """Return the progress in percent."""
        return 100.0 if self.size == 0 else round(100.0 * self.bytes_done / self.size, 1)


type StopReason = Literal["cancel", "pause", "stop"]


class TransferQueue:
    """The queue of one transfer profile (see the module docstring)."""

    def __init__(
        self,
        store: TransferStore,
        profile: str,
        *,
        copier: Copier,
        run_sync: RunSync,
        options: ProfileOptions,
        is_allowed: IsAllowed | None = None,
        on_event: Callable[[TransferEvent], None] | None = None,
        on_disk_full: Callable[[DiskFullError, TransferItem], None] | None = None,
        restart_delay: float = 1.0,
    ) -> None:
        """Keep the store, the copier and the callbacks; nothing runs before :meth:`start`."""
        if not options.destination_roots:
            raise ValueError("a transfer profile needs at least one destination root")
        self.store = store
        self.profile = profile
        self.copier = copier
        self.options = options
        self._run_sync = run_sync
        self._is_allowed = is_allowed
        self._on_event = on_event
        self._on_disk_full = on_disk_full
        self._restart_delay = restart_delay
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[int, asyncio.Task[None]] = {}
        self._stop_reason: dict[int, StopReason] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._paused = False
        self._crashed = False
        self._callback_failed = False
        self._persist_failed = False
        self._forgotten = False
        self.current: dict[int, CurrentTransfer] = {}

    # -- life cycle ------------------------------------------------------------------------------

    @property
    def copier_name(self) -> str:
        """Return which copier runs ("rsync" or "builtin")."""
        return self.copier.name

    @property
    def paused(self) -> bool:
        """Return True while the whole queue is paused."""
        return self._paused

    @property
    def forgotten(self) -> bool:
        """Return True once :meth:`forget` ran (the queue never starts again)."""
        return self._forgotten

    async def start(self) -> None:
        """Recover transfers a crash left running, and start the workers."""
        if self._workers or self._forgotten:
            return
        recovered = await self._run_sync(
            lambda: self.store.move_states(
                self.profile, [TransferState.RUNNING], TransferState.QUEUED
            )
        )
        if recovered:
            _LOGGER.info(
                "Profile %s: resuming %s interrupted transfer(s)", self.profile, len(recovered)
            )
        await self._restore_disk_full()
        if self.forgotten:
            return  # forget() ran meanwhile
        self._workers = [
            asyncio.create_task(self._supervise(n), name=f"plexus transfer {self.profile} #{n}")
            for n in range(self.options.concurrency)
        ]
        self._wake.set()

    async def _restore_disk_full(self) -> None:
        """Call ``on_disk_full`` again for a transfer still paused for space (after a restart)."""
        paused = await self.items([TransferState.PAUSED])
        waiting = next((i for i in paused if is_disk_full_text(i.error)), None)
        if waiting is None:
            return
        options = self.options
        short = await self._run_sync(
            lambda: shortfall(waiting.size, waiting.destination, options.free_space_reserve)
        )
        self._notify_disk_full(short, waiting)

    async def forget(self) -> int:
        """Stop, delete the partials of unfinished transfers, forget all of this profile's rows.

        For a profile whose subentry was removed. Finished copies stay where they are; a partial
        is deleted only where it lies inside the profile's destination roots and HA allows it.
        Returns how many transfers were forgotten.
        """
        self._forgotten = True
        await self.stop()
        for item in await self.items():
            if item.state != TransferState.DONE:
                await self._discard_partial(item)
        return await self._run_sync(lambda: self.store.delete_profile(self.profile))

    async def _discard_partial(self, item: TransferItem) -> None:
        """Delete a transfer's partial file, only inside the roots and where HA allows it."""
        try:
            await self._run_sync(functools.partial(self._remove_partial, item.destination))
        except (TransferError, OSError) as err:
            _LOGGER.warning("Partial file of transfer %s left in place: %s", item.id, err)

    def _remove_partial(self, destination: str) -> None:
        self._check_destination(destination)
        remove_file(partial_path(destination))

    async def stop(self) -> None:
        """Stop the workers; running transfers go back to ``queued`` with their partials kept."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def update_options(self, options: ProfileOptions) -> None:
        """Use new options from the next transfer on (a reconfigure keeps the queue)."""
        if not options.destination_roots:
            raise ValueError("a transfer profile needs at least one destination root")
        self.options = options

    # -- commands --------------------------------------------------------------------------------

    async def enqueue(self, request: TransferRequest) -> TransferItem:
        """Queue a copy; the same destination already queued returns that transfer.

        So does a finished copy to the same destination that is still synced (the file there,
        its size as copied, the source unchanged): asking again does not copy again.
        """
        await self._run_sync(lambda: self._check_destination(request.destination))
        size, mtime = await self._run_sync(lambda: stat_source(request.source))
        done = await self._run_sync(lambda: self._synced_copy(request))
        if done is not None:
            return done
        item, created = await self._run_sync(
            lambda: self.store.add_transfer(self.profile, request, size, mtime)
        )
        if created:
            if self._paused:
                await self._run_sync(
                    lambda: self.store.update_transfer(item.id, state=TransferState.PAUSED)
                )
                item = replace(item, state=TransferState.PAUSED)
            self._emit("queued", item)
            self._idle.clear()
            self._wake.set()
        return item

    def _synced_copy(self, request: TransferRequest) -> TransferItem | None:
        """Return the finished copy of ``request`` that is still synced, if there is one."""
        latest = self.store.latest_by_source(self.profile, [request.source]).get(request.source)
        if (
            latest is None
            or latest.state != TransferState.DONE
            or latest.destination != request.destination
        ):
            return None
        status = sync_status(self.store, self.profile, [request.source])[request.source]
        return latest if status == SyncStatus.SYNCED else None

    async def cancel(self, item_id: int) -> TransferItem:
        """Cancel a transfer (its partial file is deleted)."""
        item = await self._run_sync(lambda: self.store.get(item_id, self.profile))
        if (task := self._running.get(item_id)) is not None:
            self._stop_reason[item_id] = "cancel"
            task.cancel()
            await asyncio.wait([task])
        elif item.state in ACTIVE_STATES | {TransferState.FAILED}:
            await self._run_sync(
                lambda: self.store.update_transfer(item_id, state=TransferState.CANCELLED)
            )
            await self._discard_partial(item)
            self._emit("cancelled", item)
        return await self._run_sync(lambda: self.store.get(item_id, self.profile))

    async def pause(self) -> None:
        """Pause the whole queue: running transfers stop (partials kept), queued ones wait."""
        self._paused = True
        await self._run_sync(
            lambda: self.store.move_states(
                self.profile, [TransferState.QUEUED], TransferState.PAUSED
            )
        )
        tasks = list(self._running.items())
        for item_id, task in tasks:
            self._stop_reason[item_id] = "pause"
            task.cancel()
        if tasks:
            await asyncio.wait([t for _, t in tasks])

    async def resume(self) -> None:
        """Resume: paused transfers (also those a full disk paused) are queued again."""
        self._paused = False
        await self._run_sync(
            lambda: self.store.move_states(
                self.profile, [TransferState.PAUSED], TransferState.QUEUED, error=None
            )
        )
        self._idle.clear()
        self._wake.set()

    async def retry(self, item_id: int) -> TransferItem:
        """Queue a failed or cancelled transfer again (with fresh retry counters)."""
        await self._run_sync(
            lambda: self.store.update_transfer(
                item_id,
                only_from=[TransferState.FAILED, TransferState.CANCELLED],
                state=TransferState.QUEUED,
                attempts=0,
                verify_failures=0,
                error=None,
            )
        )
        self._idle.clear()
        self._wake.set()
        return await self._run_sync(lambda: self.store.get(item_id, self.profile))

    async def items(self, states: Sequence[TransferState] | None = None) -> list[TransferItem]:
        """Return the profile's transfers (oldest first)."""
        return await self._run_sync(lambda: self.store.items(self.profile, states))

    async def get(self, item_id: int) -> TransferItem:
        """Return one transfer of this profile."""
        return await self._run_sync(lambda: self.store.get(item_id, self.profile))

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or running (paused items do not count)."""
        while True:
            busy = await self._run_sync(
                lambda: self.store.items(
                    self.profile, [TransferState.QUEUED, TransferState.RUNNING]
                )
            )
            if not busy and not self._running:
                return
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._idle.wait()

    async def sync_status(self, sources: Sequence[str]) -> dict[str, SyncStatus]:
        """Return each source file's sync status in this profile."""
        return await self._run_sync(lambda: sync_status(self.store, self.profile, list(sources)))

    async def remove_local_copy(self, destination: str) -> TransferItem:
        """Delete a copy THIS profile made (recorded as done); refuse any other file."""
        item = await self._run_sync(
            lambda: self.store.done_by_destination(self.profile, destination)
        )
        if item is None:
            raise TransferError(f"{destination} is not a file this profile copied")
        await self._run_sync(lambda: self._check_destination(item.destination))
        await self._run_sync(lambda: remove_file(Path(item.destination)))
        return item

    # -- workers ---------------------------------------------------------------------------------

    async def _supervise(self, number: int) -> None:
        while True:
            try:
                await self._worker()
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self._crashed:
                    self._crashed = True
                    _LOGGER.exception(
                        "Transfer worker %s of profile %s failed; restarting", number, self.profile
                    )
                await asyncio.sleep(self._restart_delay)

    async def _worker(self) -> None:
        while True:
            if self._paused:
                self._set_idle_if_quiet()
                self._wake.clear()
                await self._wait_wake()
                continue
            self._wake.clear()
            item = await self._run_sync(lambda: self.store.claim_next(self.profile))
            if self._crashed:
                self._crashed = False
                _LOGGER.info("Transfer worker of profile %s recovered", self.profile)
            if item is None:
                self._set_idle_if_quiet()
                await self._wait_wake()
                continue
            if self.paused:  # paused while this worker was claiming
                await self._update(item.id, state=TransferState.PAUSED)
                continue
            await self._run_one(item)

    async def _wait_wake(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await self._wake.wait()

    def _set_idle_if_quiet(self) -> None:
        if not self._running:
            self._idle.set()

    async def _run_one(self, item: TransferItem) -> None:
        task = asyncio.create_task(self._transfer(item), name=f"plexus transfer {item.id}")
        self._running[item.id] = task
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            self._stop_reason.setdefault(item.id, "stop")
            task.cancel()
            await asyncio.wait([task])
            raise
        finally:
            self._running.pop(item.id, None)
            self.current.pop(item.id, None)
            self._stop_reason.pop(item.id, None)
            self._idle.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            # An unexpected error (a database hiccup …): the transfer goes back to the queue,
            # the supervisor logs and restarts the worker.
            with contextlib.suppress(Exception):
                await self._update(item.id, state=TransferState.QUEUED, error=short_cause(error))
            raise error

    async def _stopped(self, item: TransferItem) -> None:
        reason = self._stop_reason.get(item.id, "stop")
        current = self.current.get(item.id)
        done = current.bytes_done if current else item.bytes_done
        if reason == "cancel":
            await self._run_sync(
                lambda: self.store.update_transfer(item.id, state=TransferState.CANCELLED)
            )
            await self._discard_partial(item)
            self._emit("cancelled", item)
        else:
            state = TransferState.PAUSED if reason == "pause" else TransferState.QUEUED
            await self._run_sync(
                lambda: self.store.update_transfer(item.id, state=state, bytes_done=done)
            )
            if reason == "pause":
                self._emit("paused", item, bytes_done=done)

    async def _transfer(self, item: TransferItem) -> None:
        try:
            await self._attempts(item)
        except asyncio.CancelledError:
            await asyncio.shield(self._stopped(item))
            raise

    async def _attempts(self, item: TransferItem) -> None:
        attempt = item.attempts
        verify_failures = item.verify_failures
        while True:
            options = self.options
            try:
                await self._run_sync(functools.partial(self._check_destination, item.destination))
                size = await self._check_space(item, options)
                item = replace(item, size=size)
                self._emit("started", item)
                try:
                    result = await self._copy(item, options)
                except DiskFullError as err:  # ENOSPC: the rest of the file, plus the reserve
                    needed = err.needed_bytes + options.free_space_reserve
                    raise DiskFullError(needed, err.free_bytes, err.path) from err
            except DiskFullError as err:
                await self._disk_full(item, err, options)
                return
            except VerificationError as err:
                verify_failures += 1
                await self._run_sync(functools.partial(remove_file, partial_path(item.destination)))
                message = str(err)
                if verify_failures > 1:
                    await self._fail(
                        item, f"verification failed twice: {err}", verify_failures=verify_failures
                    )
                    return
                _LOGGER.info("Transfer %s: %s; copying again from scratch", item.id, err)
                await self._update(
                    item.id, verify_failures=verify_failures, error=message, bytes_done=0
                )
                self._emit("retrying", item, error=message)
                continue
            except (SourceMissingError, CopierError, OSError) as err:
                attempt += 1
                text = str(err) or type(err).__name__
                await self._update(item.id, attempts=attempt, error=text)
                if attempt > options.retries:
                    await self._fail(item, f"gave up after {attempt} attempts: {text}")
                    return
                self._emit("retrying", item, error=text)
                await self._wait_for_retry(item, options.backoff(attempt), options)
                continue
            except TransferError as err:
                await self._fail(item, str(err))
                return
            await self._done(item, result.sha256)
            return

    async def _copy(self, item: TransferItem, options: ProfileOptions) -> CopyResult:
        current = CurrentTransfer(item.id, item.title, item.size, item.bytes_done)
        self.current[item.id] = current

        def progress(done: int, total: int) -> None:
            current.bytes_done = done
            current.size = total

        reporter = asyncio.create_task(self._report(item, current))
        try:
            return await self.copier.copy(
                item.source,
                item.destination,
                verify=options.verify,
                bandwidth_limit=options.bandwidth_limit,
                progress=progress,
            )
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter

    async def _report(self, item: TransferItem, current: CurrentTransfer) -> None:
        """Emit progress at most once a second; store bytes done every few seconds."""
        last_bytes = current.bytes_done
        last_time = time.monotonic()
        last_persist = last_time
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            delta = current.bytes_done - last_bytes
            rate = delta / max(1e-6, now - last_time)
            current.speed = rate if current.speed is None else 0.5 * current.speed + 0.5 * rate
            remaining = max(0, current.size - current.bytes_done)
            current.eta = remaining / current.speed if current.speed else None
            last_bytes, last_time = current.bytes_done, now
            if delta:
                self._emit(
                    "progress",
                    item,
                    bytes_done=current.bytes_done,
                    speed=current.speed,
                    eta=current.eta,
                )
            if now - last_persist >= _PERSIST_EVERY:
                last_persist = now
                await self._persist_progress(item, current.bytes_done)

    async def _persist_progress(self, item: TransferItem, done: int) -> None:
        """Store bytes done (best effort: the copy goes on while the database is away)."""
        try:
            await self._update(item.id, bytes_done=done)
        except SQLAlchemyError as err:
            if not self._persist_failed:
                self._persist_failed = True
                _LOGGER.warning(
                    "Progress of transfer %s not stored (the copy goes on): %s",
                    item.id,
                    short_cause(err),
                )
            return
        if self._persist_failed:
            self._persist_failed = False
            _LOGGER.info("Progress of transfers of profile %s stored again", self.profile)

    async def _check_space(self, item: TransferItem, options: ProfileOptions) -> int:
        size, mtime = await self._run_sync(lambda: stat_source(item.source))

        def check() -> None:
            short = shortfall(size, item.destination, options.free_space_reserve)
            if short.free_bytes is not None and short.free_bytes < short.needed_bytes:
                raise short

        await self._run_sync(check)
        await self._run_sync(
            lambda: self.store.update_transfer(
                item.id, size=size, source_size=size, source_mtime_ns=mtime, error=None
            )
        )
        return size

    async def _disk_full(
        self, item: TransferItem, err: DiskFullError, options: ProfileOptions
    ) -> None:
        done = await self._run_sync(lambda: file_size(partial_path(item.destination)))
        await self._run_sync(
            lambda: self.store.update_transfer(
                item.id, state=TransferState.PAUSED, error=str(err), bytes_done=done
            )
        )
        _LOGGER.warning("Transfer %s paused: %s", item.id, err)
        self._emit("paused", item, bytes_done=done, error=str(err))
        self._notify_disk_full(err, item)

    def _notify_disk_full(self, err: DiskFullError, item: TransferItem) -> None:
        if self._on_disk_full is not None:
            try:
                self._on_disk_full(err, item)
            except Exception:
                _LOGGER.exception("The disk-full callback failed")

    async def _wait_for_retry(
        self, item: TransferItem, delay: float, options: ProfileOptions
    ) -> None:
        """Wait ``delay``; while the source is missing, wait until it is back (polled)."""
        deadline = time.monotonic() + delay
        was_missing = False
        while True:
            present = await self._run_sync(lambda: source_present(item.source))
            now = time.monotonic()
            if present and (was_missing or now >= deadline):
                if was_missing:
                    _LOGGER.info("Transfer %s: the source is back; resuming", item.id)
                return
            if not present:
                was_missing = True
                await asyncio.sleep(options.source_poll)
            else:
                await asyncio.sleep(min(options.source_poll, deadline - now))

    async def _done(self, item: TransferItem, sha256: str | None) -> None:
        """Record a finished copy; while the database is away, keep trying (never lose it)."""
        now = utcnow()
        delay = self._restart_delay
        failed = False
        while True:
            try:
                await self._run_sync(
                    lambda: self.store.update_transfer(
                        item.id,
                        state=TransferState.DONE,
                        bytes_done=item.size,
                        sha256=sha256,
                        error=None,
                        finished_at=now,
                    )
                )
            except SQLAlchemyError as err:
                if not failed:
                    failed = True
                    _LOGGER.warning(
                        "Transfer %s finished but cannot be recorded yet; retrying: %s",
                        item.id,
                        short_cause(err),
                    )
                await asyncio.sleep(delay)
                delay = min(_RECORD_RETRY_MAX, delay * 2)
                continue
            break
        if failed:
            _LOGGER.info("Transfer %s recorded as done", item.id)
        self._emit("finished", item, bytes_done=item.size, sha256=sha256)

    async def _fail(self, item: TransferItem, error: str, **values: int) -> None:
        _LOGGER.warning("Transfer %s (%s) failed: %s", item.id, item.title, error)
        await self._update(
            item.id, state=TransferState.FAILED, error=error, finished_at=utcnow(), **values
        )
        self._emit("failed", item, error=error)

    # -- helpers ---------------------------------------------------------------------------------

    async def _update(self, item_id: int, **values: Any) -> None:
        await self._run_sync(functools.partial(self.store.update_transfer, item_id, **values))

    def _check_destination(self, destination: str) -> None:
        """Refuse a destination outside the roots or not allowed (blocking: in the executor)."""
        check_destination(destination, self.options.destination_roots, self._is_allowed)

    def _emit(self, kind: EventKind, item: TransferItem, **extra: object) -> None:
        if self._on_event is None:
            return
        event = TransferEvent(
            kind=kind,
            item_id=item.id,
            profile=self.profile,
            title=item.title,
            source=item.source,
            destination=item.destination,
            size=item.size,
            **extra,  # type: ignore[arg-type]
        )
        try:
            self._on_event(event)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                _LOGGER.exception("The transfer event callback failed")
