"""The webhook inbox: answer the sender first, record a moment later.

:class:`WebhookInbox` sits between the HTTP answer and the database. :meth:`WebhookInbox.offer`
runs on the event loop and does only what must happen before answering: it drops the same
payload seen within :data:`DIGEST_WINDOW_S` (its digest), and queues the event (bounded: a full
queue says ``busy`` and the caller refuses the request). Nothing in it waits.

One worker task takes the queue in batches of :data:`BATCH_SIZE` and hands each to ``record``
(the caller runs it in an executor). Under a burst it first waits until webhooks stop arriving
for :data:`QUIET_S` — at most :data:`MAX_DEFER_S`, or until :data:`DEFER_LIMIT` are queued — so
recording never competes with answering. :meth:`wait_for_a_pause` is offered to the caller for
other work that can wait (creating a new user's entities).

The database away (``record`` raises :class:`.StoreUnavailableError`): the events not handled
are held — recorded first, in order, once it answers again; the worker tries again after
:data:`RETRY_FIRST_S`, doubling, at most :data:`RESTART_MAX_S`. Logged once when it goes away
and once when it is back; meanwhile new webhooks queue (up to :data:`QUEUE_SIZE`, then ``busy``).

Supervision: another error of a batch is counted and logged (once until a batch succeeds) and the
worker goes on; a worker that ends by an error is logged and started again — at once the first
time, then backing off (1 s, doubling, at most :data:`RESTART_MAX_S`) while it keeps failing.
:meth:`flush` records what is queued at full speed (shutting down).
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
import contextlib
from dataclasses import dataclass
from datetime import datetime
import logging
import time
from typing import Any, Final, Literal

from .payload import WebhookEvent
from .tracker import Outcome, StoreUnavailableError

_LOGGER = logging.getLogger(__name__)

QUEUE_SIZE: Final = 10_000
BATCH_SIZE: Final = 50
QUIET_S: Final = 0.2
MAX_DEFER_S: Final = 10.0
DEFER_LIMIT: Final = 2_000
DIGEST_WINDOW_S: Final = 60.0
REFRESH_S: Final = 2.0
RESTART_MAX_S: Final = 60.0
RETRY_FIRST_S: Final = 1.0  # the database away: first wait before handing held events in again

type Received = tuple[WebhookEvent, datetime]
type Offered = Literal["queued", "duplicate", "busy"]


@dataclass(slots=True)
class InboxCounters:
    """What the inbox did (diagnostics)."""

    refused_busy: int = 0
    worker_failures: int = 0


class WebhookInbox:
    """A bounded queue of accepted webhooks with its supervised worker (see the module docstring).

    ``record`` records a batch and returns an outcome per event; ``on_outcomes`` is told them
    (on the loop); ``on_settled`` is called at the end of each worker run and every
    :data:`REFRESH_S` during a long one (time to tell entities). ``start_task`` starts a
    background task; ``call_later`` schedules a callback after a delay. ``name`` names the inbox
    in log lines.
    """

    def __init__(
        self,
        name: str,
        *,
        record: Callable[[list[Received]], Awaitable[Sequence[Outcome]]],
        on_outcomes: Callable[[Sequence[Outcome]], None],
        on_settled: Callable[[], None],
        start_task: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]],
        call_later: Callable[[float, Callable[[], None]], Callable[[], None]],
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        """Prepare an empty inbox (the worker starts with the first event)."""
        self.name = name
        self._record = record
        self._on_outcomes = on_outcomes
        self._on_settled = on_settled
        self._start_task = start_task
        self._call_later = call_later
        self.counters = InboxCounters()
        self._queue: asyncio.Queue[Received] = asyncio.Queue(queue_size)
        self._recent: OrderedDict[str, float] = OrderedDict()  # payload digest -> when
        self._arrived = asyncio.Event()  # set by every offered webhook
        self._last_arrival = 0.0
        self._worker: asyncio.Task[None] | None = None
        self._failure_logged = False
        self._in_flight = 0  # taken off the queue, being recorded
        self._deaths = 0  # in a row (reset by a batch that succeeds)
        self._cancel_restart: Callable[[], None] | None = None
        self._held: list[Received] = []  # not recorded: the database was away
        self._held_since_logged = False
        self._retry_delay = RETRY_FIRST_S
        self._retry_now = asyncio.Event()
        self.stopping = False

    @property
    def queued(self) -> int:
        """Return how many events wait to be recorded."""
        return self._queue.qsize() + len(self._held)

    # -- on the loop, before answering ------------------------------------------------------------

    def arrived(self, event: WebhookEvent) -> bool:
        """Note an arrival; return True when it is the same payload as one within the window."""
        now = time.monotonic()
        self._last_arrival = now
        self._arrived.set()
        recent = self._recent
        while recent:
            digest, at = next(iter(recent.items()))
            if now - at < DIGEST_WINDOW_S and len(recent) < QUEUE_SIZE:
                break
            del recent[digest]
        return event.digest in recent

    def remember(self, event: WebhookEvent) -> None:
        """Remember a payload as received (kept elsewhere): the same again is a duplicate."""
        self._recent[event.digest] = time.monotonic()

    def offer(self, event: WebhookEvent, received_at: datetime) -> Offered:
        """Queue an event for recording (after `arrived`); ``busy`` when the queue is full."""
        try:
            self._queue.put_nowait((event, received_at))
        except asyncio.QueueFull:
            self.counters.refused_busy += 1
            return "busy"
        self.remember(event)
        self._ensure_worker()
        return "queued"

    # -- the worker ------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = self._start_task(self._run(), f"plexus webhook inbox {self.name}")
            self._worker.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or (error := task.exception()) is None:
            return
        self.counters.worker_failures += 1
        self._deaths += 1
        if self._deaths == 1:
            _LOGGER.error(
                "Webhook recording of %s stopped unexpectedly; restarting it",
                self.name,
                exc_info=error,
            )
        if self._worker is not task:
            return
        self._worker = None
        if self._deaths == 1:
            self._restart()
        else:
            delay = min(RESTART_MAX_S, 2.0 ** (self._deaths - 2))
            self._cancel_restart = self._call_later(delay, self._restart)

    def _restart(self) -> None:
        self._cancel_restart = None
        if self._held or not self._queue.empty():
            self._ensure_worker()

    async def _run(self) -> None:
        """Record queued events until none is left (started by `offer`)."""
        settled = time.monotonic()
        try:
            while self._held or not self._queue.empty():
                if not self._held:
                    await self.wait_for_a_pause()
                batch, self._held = self._held, []  # held ones first (taken off the queue before)
                while not self._queue.empty() and len(batch) < BATCH_SIZE:
                    batch.append(self._queue.get_nowait())
                self._in_flight = len(batch)
                held: list[Received] = []
                try:
                    outcomes = await self._record(batch)
                except StoreUnavailableError as err:
                    handled = len(err.outcomes)
                    held = batch[handled:]
                    if err.outcomes:
                        self._on_outcomes(err.outcomes)
                    if not self._held_since_logged:
                        self._held_since_logged = True
                        _LOGGER.warning(
                            "Watch history database of %s not answering; %s webhooks held until "
                            "it does: %s",
                            self.name,
                            len(held),
                            err.cause,
                        )
                except Exception:
                    self.counters.worker_failures += 1
                    if not self._failure_logged:
                        _LOGGER.exception("%s webhooks of %s not recorded", len(batch), self.name)
                        self._failure_logged = True
                else:
                    self._failure_logged = False
                    self._deaths = 0
                    self._retry_delay = RETRY_FIRST_S
                    if self._held_since_logged:
                        self._held_since_logged = False
                        _LOGGER.info("Watch history database of %s answers again", self.name)
                    self._on_outcomes(outcomes)
                finally:
                    self._in_flight = 0
                    self._held = held  # still unfinished in the queue's count (join waits)
                    for _ in range(len(batch) - len(held)):
                        self._queue.task_done()
                if held:
                    await self._wait_to_retry()
                if time.monotonic() - settled >= REFRESH_S:
                    settled = time.monotonic()
                    self._on_settled()
        finally:
            self._on_settled()

    async def _wait_to_retry(self) -> None:
        """Back off before handing held events in again (cut short by `flush`)."""
        delay, self._retry_delay = self._retry_delay, min(RESTART_MAX_S, self._retry_delay * 2)
        self._retry_now.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._retry_now.wait()

    async def wait_for_a_pause(self) -> None:
        """Under a burst, wait until webhooks stop arriving for `QUIET_S` (answering first)."""
        deferred = time.monotonic()
        while (
            not self.stopping
            and self._queue.qsize() < DEFER_LIMIT
            and time.monotonic() - deferred < MAX_DEFER_S
        ):
            quiet_for = time.monotonic() - self._last_arrival
            if quiet_for >= QUIET_S:
                return  # a pause
            self._arrived.clear()
            try:
                async with asyncio.timeout(QUIET_S - quiet_for):
                    await self._arrived.wait()
            except TimeoutError:
                return  # a pause

    # -- shutting down ---------------------------------------------------------------------------

    async def flush(self, limit_s: float) -> int:
        """Record what is queued at full speed; return how many were left after ``limit_s``.

        Left: those still queued and those of the batch being recorded.
        """
        self.stopping = True
        self._arrived.set()
        self._retry_now.set()
        if self._queue.empty() and not self._held:
            return 0
        self._ensure_worker()
        try:
            async with asyncio.timeout(limit_s):
                await self._queue.join()
        except TimeoutError:
            return self._queue.qsize() + self._in_flight + len(self._held)
        return 0

    async def stop(self) -> None:
        """Stop the worker (call `flush` first to record what is queued)."""
        if self._cancel_restart is not None:
            self._cancel_restart()
            self._cancel_restart = None
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
