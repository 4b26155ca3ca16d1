"""Watch tracking (no Home Assistant imports): webhooks, the watch history, Up Next, conflicts.

``payload`` reads and validates Plex webhook requests; ``inbox`` queues them between the answer
and the database; ``store`` keeps the history, audit log, show
mappings and pending watches in the catalog database; ``tracker`` turns events into watches.
"""

from .inbox import WebhookInbox
from .payload import (
    EVENT_TYPES,
    MAX_BODY,
    ItemSummary,
    Named,
    WebhookError,
    WebhookEvent,
    parse_payload,
    read_webhook,
)
from .store import AuditEntry, Mapping, PendingWatch, TrackingStore, Watch, WatchSource
from .tracker import (
    Conflict,
    Outcome,
    SessionEnd,
    TrackerOptions,
    UpNext,
    UserStats,
    WatchTracker,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_BODY",
    "AuditEntry",
    "Conflict",
    "ItemSummary",
    "Mapping",
    "Named",
    "Outcome",
    "PendingWatch",
    "SessionEnd",
    "TrackerOptions",
    "TrackingStore",
    "UpNext",
    "UserStats",
    "Watch",
    "WatchSource",
    "WatchTracker",
    "WebhookError",
    "WebhookEvent",
    "WebhookInbox",
    "parse_payload",
    "read_webhook",
]
