"""Sync-play engine: signed group messages, clock sync, scheduled commands, drift control.

No Home Assistant imports: the clock, the transport and the players come in as interfaces.
`SyncEngine` is the facade; its parts live in `peers`, `clock`, `protocol`, `commands`,
`driver`, `drift` and `tasks` (see `engine`'s docstring).
"""

from .clock import ClockSample, ClockSync, OffsetEstimator
from .engine import SyncEngine
from .interfaces import (
    Clock,
    MediaRef,
    MemberPlayer,
    PlayerSnapshot,
    SystemClock,
    Transport,
)
from .latency import LatencyTracker
from .local import LocalBus, topic_matches
from .model import (
    MAX_POSITION_MS,
    CommandResult,
    GroupState,
    InvalidPositionError,
    MemberInfo,
    NothingPlayingError,
    NotRunningError,
    SyncConfig,
    SyncError,
)
from .players import PlexMemberPlayer
from .protocol import DropReason, Message, MessageCodec, canonical, sign
from .tasks import TaskSupervisor

__all__ = [
    "MAX_POSITION_MS",
    "Clock",
    "ClockSample",
    "ClockSync",
    "CommandResult",
    "DropReason",
    "GroupState",
    "InvalidPositionError",
    "LatencyTracker",
    "LocalBus",
    "MediaRef",
    "MemberInfo",
    "MemberPlayer",
    "Message",
    "MessageCodec",
    "NotRunningError",
    "NothingPlayingError",
    "OffsetEstimator",
    "PlayerSnapshot",
    "PlexMemberPlayer",
    "SyncConfig",
    "SyncEngine",
    "SyncError",
    "SystemClock",
    "TaskSupervisor",
    "Transport",
    "canonical",
    "sign",
    "topic_matches",
]
