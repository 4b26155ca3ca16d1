"""Sync-play engine: signed group messages, clock sync, scheduled commands, drift control.

No Home Assistant imports: the clock, the transport and the players come in as interfaces.
"""

from .clock import ClockSample, OffsetEstimator
from .engine import (
    CommandResult,
    GroupState,
    MemberInfo,
    NothingPlayingError,
    NotRunningError,
    SyncConfig,
    SyncEngine,
    SyncError,
)
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
from .players import PlexMemberPlayer
from .protocol import DropReason, Message, MessageCodec, canonical, sign

__all__ = [
    "Clock",
    "ClockSample",
    "CommandResult",
    "DropReason",
    "GroupState",
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
    "Transport",
    "canonical",
    "sign",
    "topic_matches",
]
