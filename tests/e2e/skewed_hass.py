"""Run Home Assistant with its wall clock moved by some seconds (a home whose clock is off).

    python -m tests.e2e.skewed_hass --clock-offset 1.7 -c CONFIG_DIR [hass arguments]

`time.time` / `time.time_ns` (what the sync-play engine, its message timestamps and most of HA
read as "now") return the machine's time plus the offset; the monotonic clock is left alone, as
on a real machine whose wall clock is wrong. Test-only: nothing in Plexus knows about it.
"""

import sys
import time


def skew_wall_clock(offset_s: float) -> None:
    """Move this process's wall clock by `offset_s` seconds."""
    real_time, real_time_ns = time.time, time.time_ns
    offset_ns = round(offset_s * 1e9)

    def skewed_time() -> float:
        return real_time() + offset_s

    def skewed_time_ns() -> int:
        return real_time_ns() + offset_ns

    time.time = skewed_time
    time.time_ns = skewed_time_ns


def main(argv: list[str]) -> int:
    """Skew the clock, then hand the remaining arguments to Home Assistant."""
    offset = 0.0
    if len(argv) >= 2 and argv[0] == "--clock-offset":
        offset = float(argv[1])
        argv = argv[2:]
    skew_wall_clock(offset)
    from homeassistant.__main__ import main as hass_main

    sys.argv = ["hass", *argv]
    return hass_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
