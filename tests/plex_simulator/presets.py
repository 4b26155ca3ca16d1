"""How real Plex players behave, as simulator presets (see the README's "Player presets").

A `ClientBehaviour` gives one simulated player: its own typical latency per command kind (with
a small jitter around it), a separate load time for playMedia, how late its state changes are
reported, how often it sends a timeline while playing or paused, the granularity of the
positions it reports, and how often a periodic timeline is lost.

`behaviour(preset, rng)` draws one player of a preset (each player of a preset gets its own
typical latency from the preset's range, as real players of one kind differ).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import random
from typing import Final

# The simulator's remote-control commands, by the kind of latency they have.
_KINDS: Final = {"play": "play", "pause": "pause", "seekTo": "seek", "stop": "stop"}


@dataclass(frozen=True, slots=True)
class ClientBehaviour:
    """One player's timing: command latencies (ms), reports, position granularity."""

    play_ms: float
    pause_ms: float
    seek_ms: float
    stop_ms: float
    jitter_ms: float = 15.0
    load_ms: tuple[float, float] = (500.0, 1500.0)
    report_delay_ms: tuple[float, float] = (0.0, 0.0)
    timeline_interval_s: float = 1.0
    granularity_ms: int = 1
    lost_reports: float = 0.0

    def command_delay(self, command: str, rng: random.Random) -> float:
        """Seconds until `command` takes effect (playMedia: the whole load time)."""
        if command in ("playMedia", "createPlayQueue"):
            return rng.uniform(*self.load_ms) / 1000.0
        kind = _KINDS.get(command)
        typical = self.pause_ms if kind is None else getattr(self, f"{kind}_ms")
        return max(0.0, typical + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000.0

    def report_delay(self, rng: random.Random) -> float:
        """Seconds until a state change is reported."""
        low, high = self.report_delay_ms
        return rng.uniform(low, high) / 1000.0 if high > 0 else 0.0

    def reported_position(self, position_ms: int) -> int:
        """The position as the player reports it (truncated to its granularity)."""
        step = max(1, self.granularity_ms)
        return position_ms - position_ms % step


@dataclass(frozen=True, slots=True)
class Preset:
    """A kind of player: ranges each drawn player's own figures come from."""

    command_ms: tuple[float, float]
    load_ms: tuple[float, float]
    report_delay_ms: tuple[float, float]
    timeline_interval_s: float
    granularity_ms: int
    lost_reports: float
    jitter_ms: float = 15.0


PRESETS: Final[dict[str, Preset]] = {
    # A phone/desktop app on the LAN: acts in 60-250 ms, reports a state change at once and
    # every second while playing (PMS's `playing` notifications, ~1 s apart, ms positions).
    "fast_app": Preset((60.0, 250.0), (500.0, 1500.0), (0.0, 20.0), 1.0, 1, 0.0),
    # A smart-TV app: a state change reported 50-250 ms late, a timeline every 5 s while it
    # plays, positions in tenths of a second, now and then a timeline lost.
    "tv_app": Preset((150.0, 600.0), (1500.0, 4000.0), (50.0, 250.0), 5.0, 100, 0.02),
    # A TV that reports whole seconds.
    "coarse_tv": Preset((150.0, 600.0), (2000.0, 5000.0), (50.0, 250.0), 5.0, 1000, 0.02),
    # A slow streaming stick: 1-3 s per command, 3-9 s to load an item, whole seconds.
    "slow_stick": Preset((1000.0, 3000.0), (3000.0, 9000.0), (50.0, 250.0), 5.0, 1000, 0.02),
}


def behaviour(preset: str | Preset, rng: random.Random, **changes: object) -> ClientBehaviour:
    """One player of `preset`, its typical latencies drawn from `rng`; `changes` override."""
    spec = PRESETS[preset] if isinstance(preset, str) else preset
    low, high = spec.command_ms
    typical = rng.uniform(low, high)
    # A player's kinds differ a little (a seek decodes a new frame, a pause does not).
    result = ClientBehaviour(
        play_ms=typical,
        pause_ms=typical * rng.uniform(0.8, 1.0),
        seek_ms=typical * rng.uniform(1.0, 1.3),
        stop_ms=typical,
        jitter_ms=spec.jitter_ms,
        load_ms=spec.load_ms,
        report_delay_ms=spec.report_delay_ms,
        timeline_interval_s=spec.timeline_interval_s,
        granularity_ms=spec.granularity_ms,
        lost_reports=spec.lost_reports,
    )
    return replace(result, **changes) if changes else result  # type: ignore[arg-type]
