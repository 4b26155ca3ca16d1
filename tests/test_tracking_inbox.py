"""WebhookInbox (HA-free): duplicates, a full queue, waiting for a pause, supervision, flushing."""

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
import json
import logging
import time
from typing import Any

import pytest

from custom_components.plexus.tracking import inbox as inbox_module
from custom_components.plexus.tracking.inbox import QUIET_S, Received, WebhookInbox
from custom_components.plexus.tracking.payload import WebhookEvent, parse_payload
from custom_components.plexus.tracking.tracker import Outcome, StoreUnavailableError

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


def event(n: int) -> WebhookEvent:
    return parse_payload(json.dumps({"event": "media.play", "n": n}))


class Harness:
    """An inbox whose recorder, tasks and timers the test watches."""

    def __init__(self, queue_size: int = 100) -> None:
        self.recorded: list[tuple[float, list[int]]] = []
        self.outcomes: list[Outcome] = []
        self.settled = 0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.fail: list[BaseException] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.inbox = WebhookInbox(
            "test",
            record=self.record,
            on_outcomes=self.outcomes.extend,
            on_settled=self.on_settled,
            start_task=self.start_task,
            call_later=self.call_later,
            queue_size=queue_size,
        )

    async def record(self, batch: list[Received]) -> Sequence[Outcome]:
        if self.fail:
            raise self.fail.pop(0)
        self.recorded.append((time.monotonic(), [e.digest for e, _ in batch]))  # type: ignore[misc]
        return [Outcome("skipped", "not_a_watch") for _ in batch]

    def on_settled(self) -> None:
        self.settled += 1

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    def call_later(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        self.timers.append((delay, action))
        return lambda: None

    def offer(self, n: int) -> str:
        e = event(n)
        if self.inbox.arrived(e):
            return "duplicate"
        return self.inbox.offer(e, NOW)

    async def idle(self) -> None:
        while any(not t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def count(self) -> int:
        return sum(len(keys) for _, keys in self.recorded)


async def test_the_same_payload_within_the_window_is_a_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness()
    assert h.offer(1) == "queued"
    assert h.offer(1) == "duplicate"
    assert h.offer(2) == "queued"
    clock = time.monotonic()
    monkeypatch.setattr(inbox_module.time, "monotonic", lambda: clock + 61)
    assert h.offer(1) == "queued"  # a minute later: a new delivery
    monkeypatch.undo()
    await h.inbox.flush(5)
    assert h.count == 3


async def test_a_full_queue_is_busy_and_a_refused_payload_may_come_again() -> None:
    h = Harness(queue_size=2)
    assert [h.offer(n) for n in (1, 2, 3)] == ["queued", "queued", "busy"]
    assert h.inbox.counters.refused_busy == 1
    await h.idle()
    assert h.offer(3) == "queued"  # refused, so not remembered as received
    await h.idle()
    assert h.count == 3
    assert h.settled >= 1


async def test_recording_waits_until_webhooks_pause() -> None:
    h = Harness()
    last = time.monotonic()
    for n in range(10):
        h.offer(n)
        last = time.monotonic()
        await asyncio.sleep(QUIET_S / 4)
    assert h.recorded == []  # nothing recorded while they keep arriving
    await h.idle()
    assert h.count == 10
    assert h.recorded[0][0] >= last + QUIET_S * 0.8


async def test_a_failing_batch_is_logged_once_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.fail = [RuntimeError("disk on fire"), RuntimeError("again")]
    for n in range(3):
        h.offer(n)
        await h.idle()
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 1
    assert "disk on fire" in str(logged[0].exc_info[1] if logged[0].exc_info else "")
    assert h.inbox.counters.worker_failures == 2
    assert h.count == 1
    assert h.inbox.queued == 0


async def test_a_dying_worker_restarts_at_once_then_backs_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness()
    deaths = [RuntimeError("first"), RuntimeError("second"), RuntimeError("third")]
    real = h.inbox.wait_for_a_pause

    async def broken() -> None:
        if deaths:
            raise deaths.pop(0)
        await real()

    monkeypatch.setattr(h.inbox, "wait_for_a_pause", broken)
    h.offer(1)
    for _ in range(5):
        await h.idle()
        await asyncio.sleep(0)
    assert h.inbox.counters.worker_failures == 2  # at once after the first; a timer after the 2nd
    assert [delay for delay, _ in h.timers] == [1.0]
    h.timers.pop()[1]()  # the timer fires: third death, two seconds next
    for _ in range(3):
        await h.idle()
        await asyncio.sleep(0)
    assert [delay for delay, _ in h.timers] == [2.0]
    h.timers.pop()[1]()
    await h.idle()
    assert h.count == 1
    assert len([r for r in caplog.records if "stopped unexpectedly" in r.getMessage()]) == 1


async def test_flush_records_at_once_and_stop_ends_the_worker() -> None:
    h = Harness(queue_size=200)
    for n in range(120):
        h.offer(n)
    started = time.monotonic()
    assert await h.inbox.flush(5) == 0
    assert time.monotonic() - started < QUIET_S  # no waiting for a pause
    assert h.count == 120
    assert [len(keys) for _, keys in h.recorded] == [50, 50, 20]
    await h.inbox.stop()
    assert all(t.done() for t in h.tasks)


async def test_a_flush_that_runs_out_of_time_says_how_many_are_left() -> None:
    """A recorder too slow for the shutdown limit: flush returns what is still queued, and stop
    ends the worker in the middle of its batch."""
    h = Harness(queue_size=200)
    release = asyncio.Event()
    real = h.record

    async def slow(batch: list[Received]) -> Sequence[Outcome]:
        await release.wait()
        return await real(batch)

    h.inbox._record = slow  # type: ignore[method-assign]
    for n in range(120):
        h.offer(n)
    # The first batch of 50 taken and not recorded, the other 70 waiting: none recorded.
    assert await h.inbox.flush(0.2) == 120
    await h.inbox.stop()
    assert all(t.done() for t in h.tasks)
    assert h.count == 0


async def test_a_long_run_tells_entities_on_the_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """During a long worker run, entities hear of changes every REFRESH_S, not only at the end."""
    monkeypatch.setattr(inbox_module, "REFRESH_S", 0.0)
    h = Harness(queue_size=200)
    for n in range(120):
        h.offer(n)
    assert await h.inbox.flush(5) == 0
    await h.idle()
    assert h.count == 120
    assert h.settled == 4  # after each of the three batches, and once at the end


async def test_stop_cancels_a_pending_restart() -> None:
    """The worker died twice (a restart timer waits): stopping cancels the timer."""
    h = Harness()
    cancelled: list[bool] = []

    def call_later(delay: float, action: Callable[[], None]) -> Callable[[], None]:
        h.timers.append((delay, action))
        return lambda: cancelled.append(True)

    h.inbox._call_later = call_later  # type: ignore[method-assign]
    deaths = [RuntimeError("first"), RuntimeError("second")]
    real = h.inbox.wait_for_a_pause

    async def broken() -> None:
        if deaths:
            raise deaths.pop(0)
        await real()

    h.inbox.wait_for_a_pause = broken  # type: ignore[method-assign]
    h.offer(1)
    for _ in range(5):
        await h.idle()
        await asyncio.sleep(0)
    assert len(h.timers) == 1
    await h.inbox.stop()
    assert cancelled == [True]


async def test_a_database_away_holds_the_batch_and_records_it_when_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The recorder says the database is away (StoreUnavailableError): first after handling one
    event of the batch, then twice with none handled, while more webhooks arrive. Before: the
    batch was logged and dropped (webhooks lost on a PostgreSQL restart). Now: the first event's
    outcome is kept, every other event is recorded once it answers, in arrival order, none twice;
    one warning when it goes away, one line when it is back; flush waits for the held ones."""
    monkeypatch.setattr(inbox_module, "RETRY_FIRST_S", 0.01)
    h = Harness()
    handled = Outcome("recorded", "webhook")
    h.fail = [
        StoreUnavailableError([handled], "OperationalError: connection refused"),
        StoreUnavailableError([], "OperationalError: connection refused"),
        StoreUnavailableError([], "OperationalError: the database system is starting up"),
    ]
    for n in (1, 2, 3):
        h.offer(n)
    for _ in range(3_000):  # away (a second refusal): a webhook arrives meanwhile
        if len(h.fail) <= 1 or not h.inbox.queued:
            break
        await asyncio.sleep(0.01)
    h.offer(4)
    assert await h.inbox.flush(30) == 0
    recorded = [key for _, keys in h.recorded for key in keys]
    assert recorded == [event(n).digest for n in (2, 3, 4)]
    assert h.outcomes[0] is handled
    assert len(h.outcomes) == 4
    assert h.inbox.queued == 0
    away = [r for r in caplog.records if "not answering" in r.getMessage()]
    assert len(away) == 1
    assert away[0].levelno == logging.WARNING
    assert "2 webhooks held" in away[0].getMessage()
    assert sum("answers again" in r.getMessage() for r in caplog.records) == 1
    assert not [r for r in caplog.records if r.exc_info]
    await h.inbox.stop()
