"""Task supervision: no background task of the engine dies silently.

One-shot tasks (a command, a clock burst) log their failure once. Long-running loops (drift
control, clock sampling, heartbeats) are supervised: an unexpected exception is logged (the
first time with its traceback, repeats of the same failure only at debug level) and the loop
restarts after a short back-off that grows while it keeps failing.
"""

import asyncio
from collections.abc import Callable, Coroutine
import logging
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0
# A loop that ran this long since its last restart counts as healthy again.
HEALTHY_AFTER_S: Final = 60.0

type LoopFactory = Callable[[], Coroutine[Any, Any, None]]


class OnceLog:
    """Log a failure of one source with its traceback once; repeats go to debug."""

    def __init__(self, logger: logging.Logger, prefix: str) -> None:
        """Log through `logger`, every line starting with `prefix`."""
        self._logger = logger
        self._prefix = prefix
        self._logged: set[str] = set()
        self.failures: dict[str, int] = {}

    def failed(self, source: str, error: BaseException) -> None:
        """Note one failure of `source`."""
        self.failures[source] = self.failures.get(source, 0) + 1
        if source in self._logged:
            self._logger.debug("%s: %s failed again: %r", self._prefix, source, error)
            return
        self._logged.add(source)
        self._logger.error(
            "%s: %s failed (logged once; it goes on)", self._prefix, source, exc_info=error
        )

    def recovered(self, source: str) -> None:
        """`source` works again: its next failure is logged in full."""
        self._logged.discard(source)


class TaskSupervisor:
    """Owns every task of one engine: spawn, supervise, cancel all."""

    def __init__(self, name: str, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Tasks of the engine called `name` (used in log lines)."""
        self.name = name
        self.log = OnceLog(_LOGGER, f"Sync group {name}")
        self.restarts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sleep = sleep

    def spawn[T](self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run a one-shot task; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def supervise(self, name: str, factory: LoopFactory) -> asyncio.Task[None]:
        """Run `factory()` for as long as the engine runs, restarting it after a failure."""
        return self.spawn(self._supervised(name, factory))

    async def _supervised(self, name: str, factory: LoopFactory) -> None:
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_MIN_S
        while True:
            started = loop.time()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure: log, back off, restart
                self.log.failed(f"{name} loop", err)
                self.restarts[name] = self.restarts.get(name, 0) + 1
            else:
                return  # the loop ended by itself: nothing to restart
            if loop.time() - started >= HEALTHY_AFTER_S:
                backoff = BACKOFF_MIN_S
                self.log.recovered(f"{name} loop")
            await self._sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2.0)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.log.failed(f"a task ({type(error).__name__})", error)

    async def cancel_all(self) -> None:
        """Cancel every task (but the calling one) and wait for them to end."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
