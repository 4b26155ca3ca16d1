"""The end-to-end tools: the delaying MQTT proxy and the clock-skewed Home Assistant launcher."""

import asyncio
import subprocess
import sys
import time

import pytest

from tests.e2e.harness import ROOT
from tests.e2e.mqtt_proxy import DelayingProxy


@pytest.mark.usefixtures("socket_enabled")
async def test_proxy_delays_in_order() -> None:
    """Bytes written through the proxy come back from an echo server in order and later."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = DelayingProxy("127.0.0.1", port, delay_ms=(20.0, 40.0))
    proxy_port = await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
        sent = time.monotonic()
        for n in range(20):
            writer.write(f"{n:02d}".encode())
            await asyncio.sleep(0.001)
        await writer.drain()
        received = b""
        async with asyncio.timeout(5):
            while len(received) < 40:
                received += await reader.read(1024)
        elapsed = time.monotonic() - sent
        assert received == b"".join(f"{n:02d}".encode() for n in range(20))
        assert elapsed >= 0.040  # at least 20 ms each way
        writer.close()
    finally:
        await proxy.stop()
        server.close()


def test_skewed_clock_moves_wall_time_only() -> None:
    """The launcher's skew moves time.time by the offset and leaves the monotonic clock alone."""
    code = (
        "import time\n"
        "from tests.e2e.skewed_hass import skew_wall_clock\n"
        "wall, mono = time.time(), time.monotonic()\n"
        "skew_wall_clock(-1.7)\n"
        "print(round(time.time() - wall, 1), round(time.monotonic() - mono, 1),"
        " round(time.time_ns() / 1e9 - wall, 1))\n"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert output == ["-1.7", "0.0", "-1.7"]
