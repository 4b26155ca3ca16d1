"""Task supervision: a failing loop is logged once and restarted, never lost."""

import asyncio
import logging

import pytest

from custom_components.plexus.syncplay import TaskSupervisor, tasks as tasks_module


async def test_supervised_loop_restarts_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A loop that raises three times, then runs: one ERROR line, three restarts."""
    supervisor = TaskSupervisor("den")
    runs: list[int] = []
    healthy = asyncio.Event()

    async def loop() -> None:
        runs.append(1)
        if len(runs) <= 3:
            raise RuntimeError(f"bad value {len(runs)}")
        healthy.set()
        await asyncio.Event().wait()  # runs until cancelled

    with caplog.at_level(logging.DEBUG):
        supervisor.supervise("drift", loop)
        await asyncio.wait_for(healthy.wait(), 5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "drift loop failed" in errors[0].getMessage()
    assert supervisor.restarts == {"drift": 3}
    assert supervisor.log.failures == {"drift loop": 3}
    await supervisor.cancel_all()


async def test_one_shot_task_failure_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = TaskSupervisor("den")

    async def boom() -> None:
        raise ValueError("nope")

    with caplog.at_level(logging.ERROR):
        task = supervisor.spawn(boom())
        with pytest.raises(ValueError, match="nope"):
            await task
        await asyncio.sleep(0)
    assert supervisor.log.failures == {"a task (ValueError)": 1}
    assert len(caplog.records) == 1
    await supervisor.cancel_all()


async def test_a_loop_that_ends_is_not_restarted() -> None:
    supervisor = TaskSupervisor("den")
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    await supervisor.supervise("once", once)
    assert runs == [1]
    assert supervisor.restarts == {}


async def test_a_loop_that_fails_again_after_a_healthy_run_is_logged_in_full(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails twice, runs healthy for a while and fails, then fails again: that relapse gets
    a full ERROR line again (not hidden at debug level) and the back-off starts over."""
    monkeypatch.setattr(tasks_module, "HEALTHY_AFTER_S", 0.05)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    supervisor = TaskSupervisor("den", sleep=sleep)
    runs: list[int] = []

    async def loop() -> None:
        runs.append(1)
        if len(runs) == 3:
            await asyncio.sleep(0.1)  # a healthy stretch before it breaks again
        if len(runs) <= 4:
            raise RuntimeError(f"bad value {len(runs)}")

    with caplog.at_level(logging.DEBUG):
        await supervisor.supervise("drift", loop)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    repeats = [r for r in caplog.records if r.levelno == logging.DEBUG and "again" in r.message]
    assert [r.exc_info is not None for r in errors] == [True, True]
    assert "bad value 4" in str(errors[1].exc_info)
    assert len(repeats) == 2
    assert supervisor.restarts == {"drift": 4}
    assert supervisor.log.failures == {"drift loop": 4}
    assert waits == [0.1, 0.2, 0.1, 0.2]
