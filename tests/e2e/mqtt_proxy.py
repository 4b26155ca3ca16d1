"""A TCP proxy in front of the MQTT broker that delays traffic: a slow path between homes.

Every chunk read from one side reaches the other side a random 2.5-75 ms later (per direction, so
a message from one home to another through the broker gains 5-150 ms), in order, as on a real
link: bytes of one connection are never reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import random


class DelayingProxy:
    """Listen on a local port; forward every connection to the broker with added delay."""

    def __init__(
        self,
        upstream_host: str = "127.0.0.1",
        upstream_port: int = 1883,
        *,
        delay_ms: tuple[float, float] = (2.5, 75.0),
        seed: int = 1,
    ) -> None:
        """Nothing listens until `start`."""
        self.upstream = (upstream_host, upstream_port)
        self.delay_ms = delay_ms
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; return the port."""
        self._server = await asyncio.start_server(self._connection, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def _delay(self) -> float:
        low, high = self.delay_ms
        return self._rng.uniform(low, high) / 1000.0

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for side in (writer, up_writer):
            side.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; each chunk is released at max(previous release, now + delay)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                release, chunk = await queue.get()
                if chunk == b"":
                    return
                await asyncio.sleep(max(0.0, release - loop.time()))
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        last = 0.0
        try:
            while chunk := await reader.read(65536):
                last = max(last, loop.time() + self._delay())
                queue.put_nowait((last, chunk))
            queue.put_nowait((last, b""))
            await sender
        finally:
            sender.cancel()
