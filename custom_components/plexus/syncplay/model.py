"""What the sync-play engine's parts share: settings, errors, the group's timeline, results."""

from dataclasses import dataclass, field
import math
from typing import Any, Final, Literal

from .interfaces import MediaRef

type GroupStateName = Literal["idle", "preparing", "playing", "paused", "waiting"]

# The longest position a command may name (24 h; what the services allow).
MAX_POSITION_MS: Final = 86_400_000.0


class SyncError(Exception):
    """A sync-play command cannot be carried out."""


class NothingPlayingError(SyncError):
    """No local member plays anything to follow."""


class NotRunningError(SyncError):
    """The engine is not started."""


class InvalidPositionError(SyncError, ValueError):
    """A position that is not a finite number of milliseconds within 24 hours."""


@dataclass(slots=True)
class SyncConfig:
    """Settings of one group on one instance."""

    group: str
    secret: str
    instance_id: str
    home: str
    base_topic: str = ""
    drift_threshold_ms: float = 400.0
    drift_check_interval_s: float = 1.5
    status_interval_s: float = 1.5
    heartbeat_s: float = 5.0
    expire_after_s: float = 15.0
    ready_timeout_s: float = 10.0
    min_start_lead_s: float = 0.5
    start_margin_s: float = 0.15
    wait_for_buffering: bool = True
    follow: bool = False
    clock_samples: int = 16
    clock_sample_interval_s: float = 1.0
    clock_jump_s: float = 0.5
    replay_window_s: float = 30.0
    default_latency_s: float = 0.2
    # A player's report lag when its positions cannot measure it (whole seconds) and no other
    # member's can: the middle of the 50-250 ms real TV apps show.
    default_report_lag_s: float = 0.15
    command_timeout_s: float = 8.0
    calibration_rounds: int = 2

    def __post_init__(self) -> None:
        """Default topic `plexus/sync/<group>`."""
        if not self.base_topic:
            self.base_topic = f"plexus/sync/{self.group}"
        self.base_topic = self.base_topic.rstrip("/")


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member as the HA entities show it."""

    member_id: str
    player_id: str
    name: str
    home: str
    instance_id: str
    local: bool
    state: str
    capabilities: tuple[str, ...]
    latency_ms: float | None
    clock_offset_ms: float | None
    drift_ms: float | None
    # How close to the others it can be started (None: not known yet - nothing measured - or
    # an older peer).
    expected_precision_ms: float | None = None


@dataclass(frozen=True, slots=True)
class GroupState:
    """Group state for entities and diagnostics."""

    state: GroupStateName
    media: MediaRef | None
    position_ms: float | None
    leader: str | None
    members: tuple[MemberInfo, ...]
    largest_drift_ms: float | None
    in_sync: bool
    clock_offset_ms: float | None
    instance_id: str
    homes: int
    dropped: dict[str, int]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: its id and the members that failed (the others went on)."""

    command_id: str
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Session:
    """The group's timeline: position `position_ms` at local monotonic `at`."""

    gen: int
    cid: str
    leader: str
    media: MediaRef | None
    state: GroupStateName
    position_ms: float
    at: float

    def position_at(self, monotonic: float) -> float:
        """Where the group is at a monotonic instant."""
        if self.state != "playing":
            return self.position_ms
        return self.position_ms + (monotonic - self.at) * 1000.0


def number(value: Any) -> float | None:
    """A finite JSON number as a float (None for anything else, booleans included)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
        return result if math.isfinite(result) else None
    return None


def position(value: Any) -> float | None:
    """A position from a message: a number within +-24 h (None for anything else).

    (Negative ones are real: where a group is before its start instant.)
    """
    result = number(value)
    return result if result is not None and abs(result) <= MAX_POSITION_MS else None


def check_position(position_ms: float) -> float:
    """A caller's position, negative ones moved to 0; InvalidPositionError when not usable."""
    if (
        not isinstance(position_ms, int | float)
        or isinstance(position_ms, bool)
        or not math.isfinite(position_ms)
        or position_ms > MAX_POSITION_MS
    ):
        raise InvalidPositionError(
            f"position must be a finite number of milliseconds up to {MAX_POSITION_MS:.0f},"
            f" not {position_ms!r}"
        )
    return max(0.0, float(position_ms))
