"""Task supervision: a failing loop is logged once and restarted, never lost."""

import asyncio
import logging

import pytest

from custom_components.plexus.syncplay import TaskSupervisor


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
